// The scheduler's figures: the one internal interface that /metrics (the
// Prometheus text format, server/metrics.hpp) and the dashboard's health view
// read. Counters count since the server started; gauges are the value now.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "engine/endpoint_limits.hpp"

namespace ratchet::engine {

// A histogram with fixed upper bounds (Prometheus "le"), cumulative on output.
struct Histogram {
  std::vector<double> bounds;
  std::vector<std::uint64_t> counts;  // per bucket, the last one +Inf
  double sum = 0;
  std::uint64_t count = 0;

  explicit Histogram(std::vector<double> upper_bounds = {})
      : bounds(std::move(upper_bounds)), counts(bounds.size() + 1, 0) {}
  void observe(double value) {
    std::size_t i = 0;
    while (i < bounds.size() && value > bounds[i]) ++i;
    ++counts[i];
    sum += value;
    ++count;
  }
};

struct SchedulerFigures {
  // Calls that ended, by (function, status name), since the server started.
  std::map<std::pair<std::string, std::string>, std::uint64_t> calls_ended;
  std::uint64_t calls_dispatched = 0;
  std::uint64_t attempts = 0;  // replies recorded
  std::uint64_t retries = 0;   // attempts that will be tried again
  std::uint64_t cancelled = 0;
  std::uint64_t expired = 0;
  // READY calls due now, by function (read from the store at most every
  // figures_period, while someone reads the figures).
  std::map<std::string, std::int64_t> queue_depth;
  std::int64_t waiting = 0;  // suspended coroutines (sleeping, or waiting for children)
  int in_flight = 0;
  int max_in_flight = 0;
  std::vector<EndpointFigure> endpoints;  // in flight and current limit
  bool store_failing = false;
  Histogram commit_seconds{{0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1}};
  Histogram turn_size{{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000}};
};

}  // namespace ratchet::engine
