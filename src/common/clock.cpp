#include "common/clock.hpp"

#include <algorithm>
#include <chrono>

namespace ratchet {

Micros SystemClock::now() const {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void SystemClock::wait_until(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                             Micros deadline, const std::function<bool()>& ready) const {
  Micros left = deadline - std::min(now(), deadline);
  if (left <= 0 || ready()) return;
  // Waits are bounded so that a far deadline cannot overflow the steady clock
  // the condition variable counts in; returning early is allowed.
  constexpr Micros kLongestWait = 3600 * kMicrosPerSecond;
  cv.wait_for(lock, std::chrono::microseconds(std::min(left, kLongestWait)), ready);
}

const SystemClock& SystemClock::instance() {
  static const SystemClock clock;
  return clock;
}

void FakeClock::set(Micros to) {
  std::lock_guard guard(mutex_);
  now_.store(to);
  for (Sleeper* sleeper : sleepers_) {
    // Taking the sleeper's mutex orders this wake-up after its last check of
    // the time: it is either before that check (which sees the new time) or
    // after it started waiting (and this notifies it).
    { std::lock_guard sleeping(*sleeper->mutex); }
    sleeper->cv->notify_all();
  }
}

void FakeClock::wait_until(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                           Micros deadline, const std::function<bool()>& ready) const {
  if (ready() || now() >= deadline) return;
  Sleeper me{lock.mutex(), &cv, deadline, &ready};
  // mutex_ is never taken while holding a sleeper's mutex (set() takes them
  // the other way round).
  lock.unlock();
  {
    std::lock_guard guard(mutex_);
    sleepers_.push_back(&me);
  }
  lock.lock();
  while (!ready() && now() < deadline) cv.wait(lock);
  lock.unlock();
  {
    std::lock_guard guard(mutex_);
    sleepers_.erase(std::find(sleepers_.begin(), sleepers_.end(), &me));
  }
  lock.lock();
}

int FakeClock::sleepers() const {
  std::lock_guard guard(mutex_);
  return static_cast<int>(sleepers_.size());
}

std::optional<Micros> FakeClock::earliest_deadline() const {
  std::lock_guard guard(mutex_);
  std::optional<Micros> earliest;
  for (const Sleeper* sleeper : sleepers_) {
    if (!earliest || sleeper->deadline < *earliest) earliest = sleeper->deadline;
  }
  return earliest;
}

int FakeClock::idle_sleepers() const {
  std::lock_guard guard(mutex_);
  int idle = 0;
  for (const Sleeper* sleeper : sleepers_) {
    std::lock_guard sleeping(*sleeper->mutex);
    // One whose deadline has come is about to run, even if it has not left
    // wait_until yet.
    if (!(*sleeper->ready)() && now() < sleeper->deadline) ++idle;
  }
  return idle;
}

}  // namespace ratchet
