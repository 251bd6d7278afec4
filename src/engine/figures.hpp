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
  // Clients name their functions, and /metrics keeps a series per name for as
  // long as the server runs: past this many names, calls of a function not
  // yet counted count under kOtherFunction.
  static constexpr std::size_t kMaxEndedFunctions = 1000;
  static constexpr const char* kOtherFunction = "(other)";

  // Calls that ended, by (function, status name), since the server started.
  std::map<std::pair<std::string, std::string>, std::uint64_t> calls_ended;
  std::size_t ended_functions = 0;  // the distinct functions in calls_ended
  void count_ended(const std::string& function, const std::string& status, std::uint64_t n) {
    auto known = calls_ended.lower_bound({function, ""});
    bool counted = known != calls_ended.end() && known->first.first == function;
    if (!counted && ended_functions >= kMaxEndedFunctions) {
      calls_ended[{kOtherFunction, status}] += n;
      return;
    }
    if (!counted) ++ended_functions;
    calls_ended[{function, status}] += n;
  }

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
