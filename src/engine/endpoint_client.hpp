// The scheduler's view of the endpoints it sends calls to: one RunRequest in,
// one reply out. The real implementation (src/server) signs the request and
// sends it over pooled HTTP; tests use a fake, so the engine needs no network.
#pragma once

#include <functional>
#include <string>

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

class EndpointClient {
 public:
  virtual ~EndpointClient() = default;
  // Sends the serialized RunRequest to `{endpoint}/dispatch.sdk.v1.FunctionService/Run`.
  // `done` runs exactly once, on any thread, and must not block.
  virtual void run(const std::string& endpoint, std::string run_request,
                   std::function<void(EndpointReply)> done) = 0;
};

}  // namespace ratchet::engine
