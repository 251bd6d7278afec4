// The scheduler's view of the endpoints it sends calls to: one RunRequest in,
// one reply out. The real implementation (src/server) signs the request and
// sends it over pooled HTTP; tests use a fake, so the engine needs no network.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "protocol/status_class.hpp"

namespace ratchet::engine {

// What came back from one attempt: an HTTP response (any status), or a failure
// to get one, with the Dispatch status it maps to (TCP_ERROR, DNS_ERROR, ...).
struct EndpointReply {
  bool responded = false;
  int http_status = 0;
  std::string content_type;
  std::string body;
  protocol::DispatchStatus failure = protocol::DispatchStatus::kTcpError;
  std::string failure_message;
};

// One RunRequest to send, for run_all().
struct EndpointRun {
  std::string endpoint;
  std::string run_request;
  std::function<void(EndpointReply)> done;
};

class EndpointClient {
 public:
  virtual ~EndpointClient() = default;
  // Sends the serialized RunRequest to `{endpoint}/dispatch.sdk.v1.FunctionService/Run`.
  // `done` runs exactly once, on any thread, and must not block.
  virtual void run(const std::string& endpoint, std::string run_request,
                   std::function<void(EndpointReply)> done) = 0;
  // Sends what a turn claimed, in order, as run() would each. A client may do
  // better with the whole batch in view (the real one signs a few requests on
  // the caller's thread and hands larger batches to a thread of its own).
  virtual void run_all(std::vector<EndpointRun> runs) {
    for (auto& r : runs) run(r.endpoint, std::move(r.run_request), std::move(r.done));
  }
};

}  // namespace ratchet::engine
