// Adaptive concurrency per endpoint (AIMD): how many calls each endpoint may
// have in flight. The limit starts at `initial` and doubles per window while
// calls succeed (slow start, as TCP), until the endpoint first shows it is
// overloaded; after that it grows by one per window (additive increase). An
// overload signal (THROTTLED, HTTP 429 or 503, a timeout, an endpoint that
// cannot be reached) halves it (multiplicative decrease), at most once per
// window: the replies of calls sent before a cut do not cut again. The
// scheduler claims no more calls of an endpoint than its room (limit minus
// in flight), so a slow or failing endpoint holds its calls in the store,
// not in memory, and leaves the other endpoints' room untouched.
//
// Not thread-safe: the scheduler guards it with its mutex.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "engine/endpoint_client.hpp"

namespace ratchet::engine {

struct AimdOptions {
  int initial = 16;
  int min = 1;
  int max = 512;
  double decrease = 0.5;  // the factor a cut multiplies the limit by
};

// What a reply says about its endpoint's load.
enum class LoadSignal { kFine, kOverloaded };

// THROTTLED, 429, 503, a timeout, or no connection: overloaded.
LoadSignal load_signal(const EndpointReply& reply, protocol::DispatchStatus status);

struct EndpointFigure {
  std::string endpoint;
  int in_flight = 0;
  int limit = 0;
};

class EndpointLimits {
 public:
  explicit EndpointLimits(AimdOptions options) : options_(options) {}

  // How many more calls the endpoint may have in flight now.
  int room(const std::string& endpoint) const;
  // A call was sent to the endpoint; the ticket names its window.
  std::uint64_t sent(const std::string& endpoint);
  // Its reply came (or it failed): one call fewer in flight.
  void answered(const std::string& endpoint);
  // What the reply to the call sent with `ticket` said about the endpoint.
  void observed(const std::string& endpoint, std::uint64_t ticket, LoadSignal signal);

  std::vector<EndpointFigure> figures() const;
  int limit(const std::string& endpoint) const;

 private:
  struct State {
    int in_flight = 0;
    double limit = 0;
    bool slow_start = true;
    std::uint64_t cut_at = 0;  // replies to calls sent before this ticket do not cut
  };
  State& state(const std::string& endpoint);
  void forget_if_idle(std::map<std::string, State>::iterator it);

  // Idle endpoints whose limit grew are remembered up to this many.
  static constexpr std::size_t kRemembered = 1024;

  AimdOptions options_;
  std::map<std::string, State> endpoints_;
  std::uint64_t next_ticket_ = 1;
};

}  // namespace ratchet::engine
