// The scheduler's log lines about retries, aggregated: a flapping endpoint
// must not flood the log with one line per attempt (thousands a minute).
//
// A restart from the call's input (its coroutine's state was incompatible with
// the code: the SDK's "step N diverged: ...") is what an operator must see
// after a deploy, but a deploy can make every open coroutine of a function
// restart at once: the first restart of a function has a line of its own, the
// later ones are counted, and one summary line per function says how many at
// most once every kRestartPeriod (a function quiet for a whole period gets a
// line of its own again). Otherwise the first
// failed attempt of a call is logged as it happens, for the first
// few calls of each function and endpoint in a period; every later one is
// counted, and one summary line per function and endpoint ends the period
// (how many retries of how many calls, and the last reason). What the lines
// leave out is in the store: `ratchet status --job-id` shows each call's
// attempts and last error.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "common/clock.hpp"
#include "storage/call.hpp"

namespace ratchet::engine {

// One failed attempt that will run again.
struct RetryEvent {
  std::string call_id;
  std::string function;
  std::string endpoint;
  int attempt = 0;
  std::string what;  // "failed", or "answered ..., restarting from its input"
  CallError reason;
  Micros delay = 0;      // until the next attempt
  bool restart = false;  // from the call's input, not a retry of the same state
};

class RetryLog {
 public:
  using Sink = std::function<void(const std::string& line)>;
  // `first_lines`: how many calls of one function and endpoint get a line of
  // their own per period.
  RetryLog(Micros period, int first_lines, Sink sink);

  static constexpr Micros kRestartPeriod = 60 * kMicrosPerSecond;

  void retried(const RetryEvent& event, Micros now);
  // Ends the period if it is over: one summary line per function and endpoint.
  void flush(Micros now);
  // When flush() has something to say (nullopt: nothing is counted).
  std::optional<Micros> next_flush() const;

 private:
  struct Counts {
    int logged = 0;   // first failures with a line of their own
    int retries = 0;  // attempts counted, not logged
    std::set<std::string> calls;
    std::string last_reason;
  };
  // A function's restarts since its last line (the first one, or a summary).
  struct Restarts {
    Micros since = 0;  // that line's time
    int restarts = 0;
    std::set<std::string> calls;
    std::string last_reason;
    std::string last_call;
  };
  void restarted(const RetryEvent& event, Micros now);
  void flush_restarts(Micros now);

  Micros period_;
  int first_lines_;
  Sink sink_;
  Micros period_start_ = 0;
  std::map<std::pair<std::string, std::string>, Counts> counts_;  // (function, endpoint)
  std::map<std::string, Restarts> restarts_;                      // by function
};

}  // namespace ratchet::engine
