#include <gtest/gtest.h>

#include "jobs/supervisor.hpp"

namespace ratchet::jobs {
namespace {

constexpr Micros kSecond = kMicrosPerSecond;

TEST(RetryDelay, DoublesWithEachRetryWithinItsJitter) {
  // unit 0 takes nothing off; unit close to 1 takes off half.
  EXPECT_EQ(retry_delay(kSecond, 1, 0.0), kSecond);
  EXPECT_EQ(retry_delay(kSecond, 2, 0.0), 2 * kSecond);
  EXPECT_EQ(retry_delay(kSecond, 3, 0.0), 4 * kSecond);
  EXPECT_EQ(retry_delay(kSecond, 1, 0.999999), kSecond / 2 + 1);
  EXPECT_EQ(retry_delay(kSecond, 3, 0.5), 3 * kSecond);
  for (int retry = 1; retry <= 8; ++retry) {
    Micros full = kSecond << (retry - 1);
    for (double unit : {0.0, 0.25, 0.5, 0.75, 0.999}) {
      Micros delay = retry_delay(kSecond, retry, unit);
      EXPECT_GT(delay, full / 2) << "retry " << retry << " unit " << unit;
      EXPECT_LE(delay, full) << "retry " << retry << " unit " << unit;
    }
  }
}

TEST(RetryDelay, IsCappedAtFiveMinutesOrTheBaseIfLonger) {
  EXPECT_EQ(retry_delay(kSecond, 9, 0.0), 256 * kSecond);
  EXPECT_EQ(retry_delay(kSecond, 10, 0.0), kMaxRetryDelay);
  EXPECT_EQ(retry_delay(kSecond, 1000, 0.0), kMaxRetryDelay) << "no overflow";
  EXPECT_GT(retry_delay(kSecond, 1000, 0.999), kMaxRetryDelay / 2);
  EXPECT_EQ(retry_delay(kMaxRetryDelay * 2, 5, 0.0), kMaxRetryDelay * 2);
  EXPECT_EQ(retry_delay(0, 5, 0.5), 0);
}

}  // namespace
}  // namespace ratchet::jobs
