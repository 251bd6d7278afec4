#include "dashboard/health.hpp"

#include <cmath>

namespace ratchet::dashboard {
namespace {

using json = nlohmann::json;

double per_second(std::uint64_t delta, Micros elapsed) {
  return elapsed > 0 ? static_cast<double>(delta) * kMicrosPerSecond / elapsed : 0.0;
}

double ratio(double part, double whole) { return whole > 0 ? part / whole : 0.0; }

}  // namespace

double histogram_quantile(const engine::Histogram& histogram, double quantile) {
  if (histogram.count == 0) return 0;
  auto wanted = static_cast<std::uint64_t>(std::ceil(quantile * histogram.count));
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < histogram.counts.size(); ++i) {
    cumulative += histogram.counts[i];
    if (cumulative >= wanted) {
      return i < histogram.bounds.size() ? histogram.bounds[i] : histogram.bounds.back();
    }
  }
  return histogram.bounds.empty() ? 0 : histogram.bounds.back();
}

SchedulerHealth::Sample SchedulerHealth::sample_of(const engine::SchedulerFigures& figures,
                                                   Micros now) {
  Sample sample;
  sample.at = now;
  for (const auto& [key, n] : figures.calls_ended) {
    sample.ended += n;
    if (key.second != "SUCCEEDED") sample.failed += n;
  }
  sample.attempts = figures.attempts;
  sample.retries = figures.retries;
  sample.commit_sum = figures.commit_seconds.sum;
  sample.commits = figures.commit_seconds.count;
  return sample;
}

json SchedulerHealth::read(const engine::SchedulerFigures& figures, Micros now) {
  Sample current = sample_of(figures, now);
  Sample base;
  {
    std::lock_guard lock(mutex_);
    // Keeps one sample at or before the window's start, so that the rates
    // span the whole window once it has passed.
    while (samples_.size() > 1 && samples_[1].at <= now - window_) samples_.pop_front();
    if (samples_.empty() || samples_.back().at + kMicrosPerSecond <= now) {
      samples_.push_back(current);
    }
    base = samples_.front();
  }
  Micros elapsed = now - base.at;
  std::uint64_t ended = current.ended - base.ended;
  std::uint64_t commits = current.commits - base.commits;
  json queue = json::array();
  for (const auto& [function, depth] : figures.queue_depth) {
    queue.push_back({{"name", function}, {"count", depth}});
  }
  json endpoints = json::array();
  for (const auto& endpoint : figures.endpoints) {
    endpoints.push_back({{"endpoint", endpoint.endpoint},
                         {"in_flight", endpoint.in_flight},
                         {"limit", endpoint.limit}});
  }
  return json{{"window_seconds", static_cast<double>(elapsed) / kMicrosPerSecond},
              {"calls_per_second", per_second(ended, elapsed)},
              {"error_rate", ratio(static_cast<double>(current.failed - base.failed), ended)},
              {"attempts_per_second", per_second(current.attempts - base.attempts, elapsed)},
              {"retries_per_second", per_second(current.retries - base.retries, elapsed)},
              {"commit_mean_seconds", ratio(current.commit_sum - base.commit_sum, commits)},
              {"commit_p99_seconds", histogram_quantile(figures.commit_seconds, 0.99)},
              {"queue_by_function", std::move(queue)},
              {"waiting", figures.waiting},
              {"in_flight", figures.in_flight},
              {"max_in_flight", figures.max_in_flight},
              {"endpoints", std::move(endpoints)},
              {"store_failing", figures.store_failing}};
}

}  // namespace ratchet::dashboard
