#include "protocol/base64.hpp"

#include <gtest/gtest.h>

namespace ratchet::protocol {
namespace {

TEST(Base64, EncodesTheRfc4648Vectors) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64_encode(std::string("\xff\xfe\x00", 3)), "//4A");
}

TEST(Base64, DecodesWithOrWithoutPadding) {
  EXPECT_EQ(base64_decode("Zg=="), "f");
  EXPECT_EQ(base64_decode("Zg"), "f");
  EXPECT_EQ(base64_decode("Zm8="), "fo");
  EXPECT_EQ(base64_decode("Zm9vYmFy"), "foobar");
  EXPECT_EQ(base64_decode("//4A"), std::string("\xff\xfe\x00", 3));
  EXPECT_EQ(base64_decode(""), "");
}

TEST(Base64, RejectsWhatIsNotBase64) {
  for (const char* bad : {"Z", "Zg=", "Z===", "Zg==Zg==", "Zm 9v", "Zm9v-_", "=", "Zm9v\n"}) {
    EXPECT_FALSE(base64_decode(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace ratchet::protocol
