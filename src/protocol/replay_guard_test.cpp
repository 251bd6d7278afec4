#include "protocol/replay_guard.hpp"

#include <gtest/gtest.h>

#include <string>

namespace ratchet::protocol {
namespace {

constexpr std::int64_t kCreated = 1'700'000'000;
constexpr Micros kNow = kCreated * kMicrosPerSecond;

// A distinct 64-byte "signature" for each n.
std::string signature(int n) {
  std::string bytes(64, '\0');
  bytes.replace(0, std::to_string(n).size(), std::to_string(n));
  return bytes;
}

TEST(ReplayGuard, RefusesASignatureSeenWithinItsWindow) {
  ReplayGuard guard;
  EXPECT_TRUE(guard.admit(signature(1), kCreated, kNow).is_ok());
  Status again = guard.admit(signature(1), kCreated, kNow + 299 * kMicrosPerSecond);
  EXPECT_EQ(again.code(), Code::kUnavailable);
  EXPECT_NE(again.message().find("replayed request"), std::string::npos) << again.message();
  EXPECT_TRUE(guard.admit(signature(2), kCreated, kNow).is_ok());
}

TEST(ReplayGuard, ForgetsSignaturesOnceTheyAreStale) {
  ReplayGuard guard;
  ASSERT_TRUE(guard.admit(signature(1), kCreated, kNow).is_ok());
  ASSERT_TRUE(guard.admit(signature(2), kCreated + 100, kNow + 100 * kMicrosPerSecond).is_ok());
  // Past 5 minutes the first fails verification as stale anyway: not kept.
  ASSERT_TRUE(guard.admit(signature(3), kCreated + 302, kNow + 302 * kMicrosPerSecond).is_ok());
  EXPECT_EQ(guard.size(), 2u);
}

TEST(ReplayGuard, AtCapacityRefusesWhatItMayHaveForgotten) {
  ReplayGuard guard(3);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(guard.admit(signature(i), kCreated + i, kNow + 10 * kMicrosPerSecond).is_ok());
  }
  // A fourth forgets the oldest (created kCreated): anything created up to
  // then is refused, the forgotten one included, and memory stays at 3.
  ASSERT_TRUE(guard.admit(signature(3), kCreated + 5, kNow + 10 * kMicrosPerSecond).is_ok());
  EXPECT_EQ(guard.size(), 3u);
  EXPECT_EQ(guard.admit(signature(0), kCreated, kNow + 10 * kMicrosPerSecond).code(),
            Code::kUnavailable);
  EXPECT_EQ(guard.admit(signature(9), kCreated, kNow + 10 * kMicrosPerSecond).code(),
            Code::kUnavailable);
  EXPECT_EQ(guard.admit(signature(1), kCreated + 1, kNow + 10 * kMicrosPerSecond).code(),
            Code::kUnavailable)
      << "still remembered";
  EXPECT_TRUE(guard.admit(signature(10), kCreated + 6, kNow + 10 * kMicrosPerSecond).is_ok());
  EXPECT_EQ(guard.size(), 3u);
}

}  // namespace
}  // namespace ratchet::protocol
