#include "common/byte_text.hpp"

#include <cstdint>

namespace ratchet {
namespace {

constexpr char32_t kFirstEscape = 0x10FF00;
constexpr char32_t kLastEscape = kFirstEscape + 0x7F;

// The length of the valid UTF-8 sequence at the start of `s` and its code
// point, or 0 when it does not start with one (RFC 3629: no overlong forms,
// no surrogates, nothing past U+10FFFF).
std::size_t decode(std::string_view s, char32_t* code_point) {
  auto byte = [&](std::size_t i) { return static_cast<std::uint8_t>(s[i]); };
  std::uint8_t lead = byte(0);
  if (lead < 0x80) {
    *code_point = lead;
    return 1;
  }
  std::size_t length = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 0;
  if (length == 0 || lead > 0xF4 || s.size() < length) return 0;
  char32_t value = lead & (0x7F >> length);
  for (std::size_t i = 1; i < length; ++i) {
    if ((byte(i) & 0xC0) != 0x80) return 0;
    value = (value << 6) | (byte(i) & 0x3F);
  }
  static constexpr char32_t kSmallest[] = {0, 0, 0x80, 0x800, 0x10000};
  if (value < kSmallest[length] || value > 0x10FFFF || (value >= 0xD800 && value <= 0xDFFF)) {
    return 0;
  }
  *code_point = value;
  return length;
}

void append_utf8(char32_t c, std::string* out) {
  if (c < 0x80) {
    out->push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (c >> 6)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (c >> 12)));
    out->push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (c >> 18)));
    out->push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

void append_escaped(std::string_view bytes, std::string* out) {
  for (char b : bytes) append_utf8(kFirstEscape + (static_cast<std::uint8_t>(b) - 0x80), out);
}

}  // namespace

std::string bytes_to_text(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  while (!bytes.empty()) {
    char32_t c = 0;
    std::size_t length = decode(bytes, &c);
    if (length == 0) {
      append_escaped(bytes.substr(0, 1), &out);
      length = 1;
    } else if (c >= kFirstEscape && c <= kLastEscape) {
      append_escaped(bytes.substr(0, length), &out);
    } else {
      out.append(bytes.substr(0, length));
    }
    bytes.remove_prefix(length);
  }
  return out;
}

std::string text_to_bytes(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  while (!text.empty()) {
    char32_t c = 0;
    std::size_t length = decode(text, &c);
    if (length == 0) {
      length = 1;
      out.push_back(text.front());
    } else if (c >= kFirstEscape && c <= kLastEscape) {
      out.push_back(static_cast<char>(0x80 + (c - kFirstEscape)));
    } else {
      out.append(text.substr(0, length));
    }
    text.remove_prefix(length);
  }
  return out;
}

}  // namespace ratchet
