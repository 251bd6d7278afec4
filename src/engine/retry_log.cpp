#include "engine/retry_log.hpp"

namespace ratchet::engine {

RetryLog::RetryLog(Micros period, int first_lines, Sink sink)
    : period_(period), first_lines_(first_lines), sink_(std::move(sink)) {}

void RetryLog::retried(const RetryEvent& event, Micros now) {
  if (counts_.empty()) period_start_ = now;
  Counts& counts = counts_[{event.function, event.endpoint}];
  std::string because = event.reason.type + ": " + event.reason.message;
  if (event.restart || (event.attempt <= 1 && counts.logged < first_lines_)) {
    if (!event.restart) ++counts.logged;
    sink_("call " + event.call_id + " (" + event.function + ") attempt " +
          std::to_string(event.attempt) + " " + event.what + ", retrying in " +
          std::to_string(event.delay / kMicrosPerMilli) + " ms: " + because +
          " (further retries are counted in a summary; ratchet status --job-id " + event.call_id +
          " shows its attempts and last error)");
    return;
  }
  ++counts.retries;
  counts.calls.insert(event.call_id);
  counts.last_reason = std::move(because);
}

void RetryLog::flush(Micros now) {
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
  if (counts_.empty()) return std::nullopt;
  return period_start_ + period_;
}

}  // namespace ratchet::engine
