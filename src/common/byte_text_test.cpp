#include "common/byte_text.hpp"

#include <gtest/gtest.h>

#include <random>

namespace ratchet {
namespace {

bool is_valid_utf8(std::string_view s) {
  // The escaping's promise, checked independently of it: no byte sequence an
  // RFC 3629 decoder rejects. Round trips through the escaping alone prove
  // nothing about this.
  std::size_t i = 0;
  while (i < s.size()) {
    auto b = static_cast<unsigned char>(s[i]);
    std::size_t n = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (std::size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += n;
  }
  return true;
}

TEST(ByteText, ValidUtf8IsShownAsItIs) {
  for (std::string key : {"nightly-backup", "clé été", "日本語のキー", "emoji 🎉", ""}) {
    EXPECT_EQ(bytes_to_text(key), key);
    EXPECT_EQ(text_to_bytes(key), key);
  }
}

TEST(ByteText, InvalidBytesBecomePrivateUseCodePointsAndComeBack) {
  const std::string key =
      "a\xff"
      "b\x80\xc3";
  std::string shown = bytes_to_text(key);
  EXPECT_TRUE(is_valid_utf8(shown)) << shown;
  // 0xFF -> U+10FF7F (F4 8F BD BF), 0x80 -> U+10FF00, 0xC3 (cut short) -> U+10FF43.
  EXPECT_EQ(shown,
            "a\xf4\x8f\xbd\xbf"
            "b\xf4\x8f\xbc\x80\xf4\x8f\xbd\x83");
  EXPECT_EQ(text_to_bytes(shown), key);
}

TEST(ByteText, RawInvalidBytesOnInputAreKept) {
  // A shell passes the key's own bytes: they name the same key as its text.
  EXPECT_EQ(text_to_bytes("a\xff"), "a\xff");
  EXPECT_EQ(text_to_bytes(bytes_to_text("a\xff")), text_to_bytes("a\xff"));
}

TEST(ByteText, OverlongSurrogateAndOutOfRangeSequencesAreEscaped) {
  for (std::string bad : {"\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82"}) {
    std::string shown = bytes_to_text(bad);
    EXPECT_TRUE(is_valid_utf8(shown));
    EXPECT_EQ(shown.size(), 4 * bad.size()) << "each byte escaped on its own";
    EXPECT_EQ(text_to_bytes(shown), bad);
  }
}

TEST(ByteText, AKeyHoldingAnEscapeCodePointItselfRoundTrips) {
  const std::string literal = "x\xf4\x8f\xbc\x80";  // U+10FF00 as real UTF-8
  std::string shown = bytes_to_text(literal);
  EXPECT_NE(shown, literal);
  EXPECT_EQ(text_to_bytes(shown), literal);
}

TEST(ByteText, IsUtf8TellsTextFromOtherBytes) {
  for (std::string text : {"", "nightly", "clé été", "emoji 🎉", "x\xf4\x8f\xbc\x80"}) {
    EXPECT_TRUE(is_utf8(text)) << text;
  }
  for (std::string bytes :
       {"caf\xe9", "\xff", "\xc3", "\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80"}) {
    EXPECT_FALSE(is_utf8(bytes)) << bytes;
  }
}

TEST(ByteText, EveryByteStringRoundTrips) {
  std::mt19937 random(42);
  std::uniform_int_distribution<int> byte(0, 255), length(0, 24);
  for (int i = 0; i < 20000; ++i) {
    std::string bytes(static_cast<std::size_t>(length(random)), '\0');
    for (char& c : bytes) c = static_cast<char>(byte(random));
    std::string shown = bytes_to_text(bytes);
    ASSERT_TRUE(is_valid_utf8(shown));
    ASSERT_EQ(text_to_bytes(shown), bytes);
  }
}

}  // namespace
}  // namespace ratchet
