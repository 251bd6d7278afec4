#include "engine/retry_log.hpp"

#include <algorithm>

namespace ratchet::engine {

RetryLog::RetryLog(Micros period, int first_lines, Sink sink)
    : period_(period), first_lines_(first_lines), sink_(std::move(sink)) {}

namespace {

std::string line_of(const RetryEvent& event) {
  return "call " + event.call_id + " (" + event.function + ") attempt " +
         std::to_string(event.attempt) + " " + event.what + ", retrying in " +
         std::to_string(event.delay / kMicrosPerMilli) + " ms: " + event.reason.type + ": " +
         event.reason.message;
}

}  // namespace

void RetryLog::retried(const RetryEvent& event, Micros now) {
  if (event.restart) {
    restarted(event, now);
    return;
  }
  if (counts_.empty()) period_start_ = now;
  Counts& counts = counts_[{event.function, event.endpoint}];
  std::string because = event.reason.type + ": " + event.reason.message;
  if (event.attempt <= 1 && counts.logged < first_lines_) {
    ++counts.logged;
    sink_(line_of(event) + " (further retries are counted in a summary; ratchet status --job-id " +
          event.call_id + " shows its attempts and last error)");
    return;
  }
  ++counts.retries;
  counts.calls.insert(event.call_id);
  counts.last_reason = std::move(because);
}

void RetryLog::restarted(const RetryEvent& event, Micros now) {
  auto found = restarts_.find(event.function);
  if (found == restarts_.end() ||
      (found->second.restarts == 0 && now >= found->second.since + kRestartPeriod)) {
    restarts_[event.function] = Restarts{now, 0, {}, {}, {}};
    sink_(line_of(event) + " (further restarts of " + event.function +
          " are counted in a summary at most once a minute; ratchet status --job-id " +
          event.call_id + " shows its attempts and last error)");
    return;
  }
  Restarts& counts = found->second;
  ++counts.restarts;
  counts.calls.insert(event.call_id);
  counts.last_reason = event.reason.type + ": " + event.reason.message;
  counts.last_call = event.call_id;
}

void RetryLog::flush_restarts(Micros now) {
  for (auto it = restarts_.begin(); it != restarts_.end();) {
    Restarts& counts = it->second;
    if (now < counts.since + kRestartPeriod) {
      ++it;
    } else if (counts.restarts == 0) {
      it = restarts_.erase(it);  // quiet for a period: the next restart has a line again
    } else {
      sink_(std::to_string(counts.restarts) + " more restarts of " +
            std::to_string(counts.calls.size()) + " calls of " + it->first +
            " from their input in the last " +
            std::to_string((now - counts.since) / kMicrosPerSecond) + " s; the last: call " +
            counts.last_call + ": " + counts.last_reason);
      counts = Restarts{now, 0, {}, {}, {}};
      ++it;
    }
  }
}

void RetryLog::flush(Micros now) {
  flush_restarts(now);
  if (counts_.empty() || now < period_start_ + period_) return;
  for (const auto& [key, counts] : counts_) {
    if (counts.retries == 0) continue;
    sink_(std::to_string(counts.retries) + " more retries of " +
          std::to_string(counts.calls.size()) + " calls to " + key.first + " at " + key.second +
          " in the last " + std::to_string((now - period_start_) / kMicrosPerSecond) +
          " s; the last: " + counts.last_reason);
  }
  counts_.clear();
}

std::optional<Micros> RetryLog::next_flush() const {
  std::optional<Micros> next;
  if (!counts_.empty()) next = period_start_ + period_;
  // Only a count needs its summary on time; a quiet function's entry goes at
  // the next flush, or makes way for a line of its own.
  for (const auto& [function, counts] : restarts_) {
    if (counts.restarts == 0) continue;
    Micros due = counts.since + kRestartPeriod;
    next = next ? std::min(*next, due) : due;
  }
  return next;
}

}  // namespace ratchet::engine
