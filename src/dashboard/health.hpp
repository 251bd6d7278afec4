// The health view's figures of the scheduler: read from the one internal
// interface /metrics reads (engine/figures.hpp), never computed again from
// the store. Gauges (queue depth per function, in flight and limit per
// endpoint) are shown as they are; rates (calls per second, error rate,
// commit latency) are the change of the counters over the last minute of
// samples this keeps.
#pragma once

#include <cstdint>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>

#include "common/clock.hpp"
#include "engine/figures.hpp"

namespace ratchet::dashboard {

class SchedulerHealth {
 public:
  explicit SchedulerHealth(Micros window = 60 * kMicrosPerSecond) : window_(window) {}
  // The figures as the health view shows them, at `now`; keeps a sample (at
  // most one a second) for the rates of later reads. Any thread.
  nlohmann::json read(const engine::SchedulerFigures& figures, Micros now);

 private:
  struct Sample {
    Micros at = 0;
    std::uint64_t ended = 0;
    std::uint64_t failed = 0;
    std::uint64_t attempts = 0;
    std::uint64_t retries = 0;
    double commit_sum = 0;
    std::uint64_t commits = 0;
  };
  static Sample sample_of(const engine::SchedulerFigures& figures, Micros now);

  const Micros window_;
  std::mutex mutex_;
  std::deque<Sample> samples_;  // oldest first, the oldest at most a window old
};

// The upper bound of the bucket the histogram's `quantile` falls in (its
// largest finite bound when it falls in +Inf); 0 when it is empty.
double histogram_quantile(const engine::Histogram& histogram, double quantile);

}  // namespace ratchet::dashboard
