#include "engine/endpoint_limits.hpp"

#include <algorithm>
#include <cmath>

namespace ratchet::engine {

using protocol::DispatchStatus;

LoadSignal load_signal(const EndpointReply& reply, DispatchStatus status) {
  if (!reply.responded) {
    // No answer at all: a timeout, or an endpoint that cannot be reached
    // now; either way, sending it more at once does not help.
    return LoadSignal::kOverloaded;
  }
  if (reply.http_status == 429 || reply.http_status == 503) return LoadSignal::kOverloaded;
  return status == DispatchStatus::kThrottled ? LoadSignal::kOverloaded : LoadSignal::kFine;
}

EndpointLimits::State& EndpointLimits::state(const std::string& endpoint) {
  auto [it, added] = endpoints_.try_emplace(endpoint);
  if (added) it->second.limit = options_.initial;
  return it->second;
}

int EndpointLimits::limit(const std::string& endpoint) const {
  auto it = endpoints_.find(endpoint);
  return it == endpoints_.end() ? options_.initial : static_cast<int>(it->second.limit);
}

int EndpointLimits::room(const std::string& endpoint) const {
  auto it = endpoints_.find(endpoint);
  if (it == endpoints_.end()) return options_.initial;
  return std::max(0, static_cast<int>(it->second.limit) - it->second.in_flight);
}

std::uint64_t EndpointLimits::sent(const std::string& endpoint) {
  ++state(endpoint).in_flight;
  return next_ticket_++;
}

void EndpointLimits::answered(const std::string& endpoint) {
  auto it = endpoints_.find(endpoint);
  if (it == endpoints_.end()) return;
  it->second.in_flight = std::max(0, it->second.in_flight - 1);
  forget_if_idle(it);
}

void EndpointLimits::observed(const std::string& endpoint, std::uint64_t ticket,
                              LoadSignal signal) {
  State& s = state(endpoint);
  if (signal == LoadSignal::kOverloaded) {
    if (ticket < s.cut_at) return;  // this window was cut already
    s.limit = std::max<double>(options_.min, std::floor(s.limit * options_.decrease));
    s.slow_start = false;
    s.cut_at = next_ticket_;
  } else {
    // Per reply: +1 in slow start (doubles per window), else +1/limit (+1 per window).
    s.limit += s.slow_start ? 1.0 : 1.0 / s.limit;
    s.limit = std::min<double>(s.limit, options_.max);
  }
  forget_if_idle(endpoints_.find(endpoint));
}

void EndpointLimits::forget_if_idle(std::map<std::string, State>::iterator it) {
  // An endpoint with nothing in flight that knows no more than a new one (its
  // limit the initial one, in slow start) is forgotten, so that the map does
  // not grow with every endpoint ever named. One that grew keeps its limit
  // while idle: a server whose calls go out and come back within a turn has
  // nothing in flight between turns, and starting again from the initial
  // limit each time would hold it there. Past kRemembered endpoints, idle
  // ones that grew go too. One that was cut keeps its limit until it grows
  // back.
  if (it == endpoints_.end() || it->second.in_flight != 0 || !it->second.slow_start) return;
  if (it->second.limit <= options_.initial || endpoints_.size() > kRemembered) {
    endpoints_.erase(it);
  }
}

std::vector<EndpointFigure> EndpointLimits::figures() const {
  std::vector<EndpointFigure> all;
  for (const auto& [endpoint, s] : endpoints_) {
    all.push_back(EndpointFigure{endpoint, s.in_flight, static_cast<int>(s.limit)});
  }
  return all;
}

}  // namespace ratchet::engine
