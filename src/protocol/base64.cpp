#include "protocol/base64.hpp"

#include <array>
#include <cstdint>

namespace ratchet::protocol {
namespace {

constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr int kInvalid = -1;

constexpr std::array<int, 256> make_decode_table() {
  std::array<int, 256> table{};
  for (auto& entry : table) entry = kInvalid;
  for (std::size_t i = 0; i < kAlphabet.size(); ++i) {
    table[static_cast<unsigned char>(kAlphabet[i])] = static_cast<int>(i);
  }
  return table;
}

constexpr std::array<int, 256> kDecode = make_decode_table();

std::string_view strip_padding(std::string_view text) {
  int pads = 0;
  while (!text.empty() && text.back() == '=' && pads < 2) {
    text.remove_suffix(1);
    ++pads;
  }
  return text;
}

}  // namespace

std::string base64_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t n = (static_cast<unsigned char>(bytes[i]) << 16) |
                            (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                            static_cast<unsigned char>(bytes[i + 2]);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += kAlphabet[n & 63];
  }
  const std::size_t rest = bytes.size() - i;
  if (rest == 0) return out;
  std::uint32_t n = static_cast<unsigned char>(bytes[i]) << 16;
  if (rest == 2) n |= static_cast<unsigned char>(bytes[i + 1]) << 8;
  out += kAlphabet[(n >> 18) & 63];
  out += kAlphabet[(n >> 12) & 63];
  out += rest == 2 ? kAlphabet[(n >> 6) & 63] : '=';
  out += '=';
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  const bool padded = !text.empty() && text.back() == '=';
  if (padded && text.size() % 4 != 0) return std::nullopt;
  const std::string_view digits = strip_padding(text);
  if (digits.size() % 4 == 1) return std::nullopt;

  std::string out;
  out.reserve(digits.size() * 3 / 4);
  std::uint32_t buffer = 0;
  int bits = 0;
  for (const char c : digits) {
    const int value = kDecode[static_cast<unsigned char>(c)];
    if (value == kInvalid) return std::nullopt;  // includes a '=' in the middle
    buffer = (buffer << 6) | static_cast<std::uint32_t>(value);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buffer >> bits) & 0xFF);
    }
  }
  return out;
}

}  // namespace ratchet::protocol
