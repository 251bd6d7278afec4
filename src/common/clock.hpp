// Time as Ratchet stores it: integer microseconds since the Unix epoch (UTC).
//
// Engine and storage code never read the system clock directly: they are given
// a Clock, so that leases, retries and timers are testable without sleeping.
#pragma once

#include <cstdint>

namespace ratchet {

using Micros = std::int64_t;

constexpr Micros kMicrosPerMilli = 1000;
constexpr Micros kMicrosPerSecond = 1000 * kMicrosPerMilli;

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock time, microseconds since the epoch (UTC).
  virtual Micros now() const = 0;
};

class SystemClock final : public Clock {
 public:
  Micros now() const override;
  static const SystemClock& instance();
};

// A clock that moves only when told to; for tests.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(Micros start = 1'700'000'000 * kMicrosPerSecond) : now_(start) {}
  Micros now() const override { return now_; }
  void advance(Micros by) { now_ += by; }
  void set(Micros to) { now_ = to; }

 private:
  Micros now_;
};

}  // namespace ratchet
