#include "common/spin_before_sleep.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

namespace ratchet {
namespace {

using namespace std::chrono_literals;

TEST(SpinBeforeSleep, ReadyAtOnceIsTrueWithoutSpinning) {
  SpinBeforeSleep spin(0us, 1);
  std::mutex mutex;
  std::unique_lock lock(mutex);
  EXPECT_TRUE(spin.spin_until(lock, [] { return true; }));
  EXPECT_TRUE(lock.owns_lock());
}

TEST(SpinBeforeSleep, OffItLeavesTheWaitingToTheCaller) {
  SpinBeforeSleep spin(0us, 4);
  std::mutex mutex;
  std::unique_lock lock(mutex);
  int checks = 0;
  EXPECT_FALSE(spin.spin_until(lock, [&] { return ++checks > 1000; }));
  EXPECT_EQ(checks, 1);
  EXPECT_FALSE(spin.spin_once_since(SpinBeforeSleep::Steady::now()));
}

TEST(SpinBeforeSleep, GivesUpOnceTheWindowHasPassedHoldingTheLock) {
  SpinBeforeSleep spin(200us, 1);
  std::mutex mutex;
  std::unique_lock lock(mutex);
  int checks = 0;
  EXPECT_FALSE(spin.spin_until(lock, [&] { return ++checks < 0; }));
  EXPECT_GT(checks, 1);
  EXPECT_TRUE(lock.owns_lock());
  EXPECT_EQ(spin.spinning(), 0);
  EXPECT_FALSE(spin.spin_once_since(SpinBeforeSleep::Steady::now() - 200us));
}

// What another thread makes ready while this one spins is seen without any
// notification: the spinner checks with the lock held, as a waiter would.
TEST(SpinBeforeSleep, SeesNewsThatCameWhileItSpunWithoutANotification) {
  SpinBeforeSleep spin(10s, 1);  // long enough that only the news ends it
  std::mutex mutex;
  bool news = false;
  std::promise<void> spinning;
  auto writer = std::async(std::launch::async, [&] {
    spinning.get_future().wait();
    std::lock_guard lock(mutex);
    news = true;
  });
  std::unique_lock lock(mutex);
  bool told = false;
  EXPECT_TRUE(spin.spin_until(lock, [&] {
    if (!told) {
      told = true;
      spinning.set_value();
    }
    return news;
  }));
  EXPECT_TRUE(news);
  lock.unlock();
  writer.get();
}

// No more threads spin at once than it allows: the others go to sleep at once.
TEST(SpinBeforeSleep, NoMoreSpinnersThanItsPlaces) {
  SpinBeforeSleep spin(10s, 1);
  std::mutex first_mutex;
  bool first_done = false;
  std::promise<void> first_spinning;
  auto first = std::async(std::launch::async, [&] {
    std::unique_lock lock(first_mutex);
    int checks = 0;
    return spin.spin_until(lock, [&] {
      // The first check comes before it takes its place, the second after.
      if (++checks == 2) first_spinning.set_value();
      return first_done;
    });
  });
  first_spinning.get_future().wait();
  EXPECT_EQ(spin.spinning(), 1);
  std::mutex mutex;
  std::unique_lock lock(mutex);
  int checks = 0;
  EXPECT_FALSE(spin.spin_until(lock, [&] { return ++checks < 0; }));
  EXPECT_EQ(checks, 1);
  EXPECT_FALSE(spin.spin_once_since(SpinBeforeSleep::Steady::now()));
  {
    std::lock_guard done(first_mutex);
    first_done = true;
  }
  EXPECT_TRUE(first.get());
  EXPECT_EQ(spin.spinning(), 0);
  EXPECT_TRUE(spin.spin_once_since(SpinBeforeSleep::Steady::now()));
}

}  // namespace
}  // namespace ratchet
