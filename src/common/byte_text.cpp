#include "common/byte_text.hpp"

#include <algorithm>
#include <cstdint>
#include <optional>

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

// The text `each(sequence, code_point, &out)` writes for each valid UTF-8
// sequence of `text`, and for each byte that is not part of one (with no
// code point).
template <typename Each>
std::string rewrite(std::string_view text, Each&& each) {
  std::string out;
  out.reserve(text.size());
  while (!text.empty()) {
    char32_t c = 0;
    std::size_t length = decode(text, &c);
    std::optional<char32_t> code_point;
    if (length > 0) code_point = c;
    length = std::max<std::size_t>(length, 1);
    each(text.substr(0, length), code_point, &out);
    text.remove_prefix(length);
  }
  return out;
}

bool is_escape(std::optional<char32_t> c) { return c && *c >= kFirstEscape && *c <= kLastEscape; }

}  // namespace

std::string bytes_to_text(std::string_view bytes) {
  return rewrite(bytes, [](std::string_view sequence, std::optional<char32_t> c, std::string* out) {
    if (!c || is_escape(c)) {
      append_escaped(sequence, out);
    } else {
      out->append(sequence);
    }
  });
}

std::string text_to_bytes(std::string_view text) {
  return rewrite(text, [](std::string_view sequence, std::optional<char32_t> c, std::string* out) {
    if (is_escape(c)) {
      out->push_back(static_cast<char>(0x80 + (*c - kFirstEscape)));
    } else {
      out->append(sequence);
    }
  });
}

bool is_utf8(std::string_view text) {
  while (!text.empty()) {
    char32_t c = 0;
    std::size_t length = decode(text, &c);
    if (length == 0) return false;
    text.remove_prefix(length);
  }
  return true;
}

std::string utf8_or_byte_text(std::string_view text) {
  return is_utf8(text) ? std::string(text) : bytes_to_text(text);
}

}  // namespace ratchet
