#include "common/clock.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <thread>

namespace ratchet {
namespace {

TEST(Clock, SaturatingAddClampsInsteadOfOverflowing) {
  EXPECT_EQ(saturating_add(1, 2), 3);
  EXPECT_EQ(saturating_add(kMaxMicros - 1, 5), kMaxMicros);
  EXPECT_EQ(saturating_add(kMinMicros + 1, -5), kMinMicros);
  EXPECT_EQ(saturating_add(kMaxMicros, -1), kMaxMicros - 1);
}

// Waits in a thread of its own until `deadline` on `clock`; the future is
// ready once it returned.
std::future<void> sleep_until(const Clock& clock, Micros deadline, std::mutex& mutex,
                              std::condition_variable& cv, const bool& woken) {
  return std::async(std::launch::async, [&clock, deadline, &mutex, &cv, &woken] {
    std::unique_lock lock(mutex);
    while (!woken && clock.now() < deadline) {
      clock.wait_until(lock, cv, deadline, [&] { return woken; });
    }
  });
}

TEST(FakeClock, WakesASleeperOnlyWhenMovedPastItsDeadline) {
  FakeClock clock;
  std::mutex mutex;
  std::condition_variable cv;
  bool woken = false;
  Micros deadline = clock.now() + 10 * kMicrosPerSecond;
  auto sleeper = sleep_until(clock, deadline, mutex, cv, woken);
  for (auto bound = std::chrono::steady_clock::now() + std::chrono::seconds(10);
       clock.sleepers() == 0 && std::chrono::steady_clock::now() < bound;) {
    std::this_thread::yield();
  }
  ASSERT_EQ(clock.sleepers(), 1) << "the sleeper never started waiting";
  EXPECT_EQ(clock.earliest_deadline(), deadline);
  clock.advance(9 * kMicrosPerSecond);
  EXPECT_EQ(sleeper.wait_for(std::chrono::milliseconds(0)), std::future_status::timeout);
  EXPECT_EQ(clock.sleepers(), 1) << "woken before its deadline";
  clock.advance(kMicrosPerSecond);
  EXPECT_EQ(sleeper.wait_for(std::chrono::seconds(10)), std::future_status::ready)
      << "moving the clock to the deadline must wake the sleeper";
  EXPECT_EQ(clock.sleepers(), 0);
  EXPECT_EQ(clock.earliest_deadline(), std::nullopt);
}

TEST(FakeClock, ASleeperStillReturnsWhenWhatItWaitsForHappens) {
  FakeClock clock;
  std::mutex mutex;
  std::condition_variable cv;
  bool woken = false;
  auto sleeper = sleep_until(clock, kMaxMicros, mutex, cv, woken);
  {
    std::lock_guard lock(mutex);
    woken = true;
  }
  cv.notify_all();
  EXPECT_EQ(sleeper.wait_for(std::chrono::seconds(10)), std::future_status::ready);
}

TEST(SystemClock, WaitUntilADeadlineInThePastReturnsAtOnce) {
  auto waited = std::async(std::launch::async, [] {
    std::mutex mutex;
    std::condition_variable cv;
    std::unique_lock lock(mutex);
    const Clock& clock = SystemClock::instance();
    clock.wait_until(lock, cv, clock.now() - kMicrosPerSecond, [] { return false; });
    clock.wait_until(lock, cv, kMinMicros, [] { return false; });
  });
  EXPECT_EQ(waited.wait_for(std::chrono::seconds(30)), std::future_status::ready)
      << "a deadline in the past must not block";
}

}  // namespace
}  // namespace ratchet
