// Time as Ratchet stores it: integer microseconds since the Unix epoch (UTC).
//
// Engine and storage code never read the system clock directly: they are given
// a Clock, so that leases, retries and timers are testable without sleeping.
// Waiting goes through the Clock too (wait_until), so that a FakeClock moved by
// a test wakes whoever sleeps until a time it passed.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <limits>
#include <mutex>
#include <optional>
#include <vector>

namespace ratchet {

using Micros = std::int64_t;

constexpr Micros kMicrosPerMilli = 1000;
constexpr Micros kMicrosPerSecond = 1000 * kMicrosPerMilli;
constexpr Micros kMaxMicros = std::numeric_limits<Micros>::max();
constexpr Micros kMinMicros = std::numeric_limits<Micros>::min();

// a + b, clamped to the range of Micros instead of overflowing: a deadline
// too far away to represent is as good as never.
constexpr Micros saturating_add(Micros a, Micros b) {
  Micros sum = 0;
  if (__builtin_add_overflow(a, b, &sum)) return b > 0 ? kMaxMicros : kMinMicros;
  return sum;
}

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock time, microseconds since the epoch (UTC).
  virtual Micros now() const = 0;
  // Waits on `cv`, whose mutex `lock` holds, until `ready()` (checked with the
  // lock held) or until this clock reads `deadline` or later. Like a condition
  // variable it may return early: callers re-check what they wait for.
  virtual void wait_until(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                          Micros deadline, const std::function<bool()>& ready) const = 0;
};

class SystemClock final : public Clock {
 public:
  Micros now() const override;
  void wait_until(std::unique_lock<std::mutex>& lock, std::condition_variable& cv, Micros deadline,
                  const std::function<bool()>& ready) const override;
  static const SystemClock& instance();
};

// A clock that moves only when told to; for tests. advance() and set() wake
// the threads in wait_until whose deadline they reach. Never call them while
// holding a mutex someone waits with.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(Micros start = 1'700'000'000 * kMicrosPerSecond) : now_(start) {}
  Micros now() const override { return now_.load(); }
  void advance(Micros by) { set(now_.load() + by); }
  void set(Micros to);
  void wait_until(std::unique_lock<std::mutex>& lock, std::condition_variable& cv, Micros deadline,
                  const std::function<bool()>& ready) const override;
  // How many threads are in wait_until now, and the earliest deadline they
  // wait for (nullopt: none waits): a test moves the clock there to run the
  // next timer, exactly.
  int sleepers() const;
  std::optional<Micros> earliest_deadline() const;
  // How many of them have nothing to do but wait for the clock: what they
  // wait for (`ready`) is false and their deadline is still to come. When all
  // are, and nothing else can give them work, moving the clock is the only way
  // forward.
  int idle_sleepers() const;

 private:
  struct Sleeper {
    std::mutex* mutex;
    std::condition_variable* cv;
    Micros deadline;
    const std::function<bool()>* ready;
  };
  std::atomic<Micros> now_;
  mutable std::mutex mutex_;  // guards sleepers_; taken before any sleeper's mutex
  mutable std::vector<Sleeper*> sleepers_;
};

}  // namespace ratchet
