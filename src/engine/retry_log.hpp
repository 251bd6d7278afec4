// The scheduler's log lines about retries, aggregated: a flapping endpoint
// must not flood the log with one line per attempt (thousands a minute).
//
// A restart from the call's input (its coroutine's state was incompatible with
// the code: the SDK's "step N diverged: ...") is rare and is what an operator
// must see after a deploy: each has a line of its own. Otherwise the first
// failed attempt of a call is logged as it happens, for the first
// few calls of each function and endpoint in a period; every later one is
// counted, and one summary line per function and endpoint ends the period
// (how many retries of how many calls, and the last reason). What the lines
// leave out is in the store: `ratchet status --job-id` shows each call's
// attempts and last error.
#pragma once

#include <functional>
#include <map>
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
  Micros period_;
  int first_lines_;
  Sink sink_;
  Micros period_start_ = 0;
  std::map<std::pair<std::string, std::string>, Counts> counts_;  // (function, endpoint)
};

}  // namespace ratchet::engine
