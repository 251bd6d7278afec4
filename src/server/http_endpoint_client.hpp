// The real EndpointClient: signs each RunRequest (RFC 9421, Ed25519) and sends
// it over pooled keep-alive HTTP(S), mapping transport failures onto Dispatch
// statuses (DNS_ERROR, TCP_ERROR, TLS_ERROR, TIMEOUT). With a key, a request
// or two while nothing waits to be signed are signed on the caller's thread;
// larger batches go to a thread of its own, which signs and sends them in
// order, and so does anything sent while it has work.
#pragma once

#include <chrono>
#include <memory>
#include <optional>

#include "common/clock.hpp"
#include "engine/endpoint_client.hpp"
#include "protocol/signing.hpp"

namespace ratchet::server {

struct EndpointClientOptions {
  std::chrono::milliseconds request_timeout{5 * 60 * 1000};
  int io_threads = 1;
  std::size_t max_connections_per_host = 256;
  bool verify_peer = true;
};

class HttpEndpointClient final : public engine::EndpointClient {
 public:
  HttpEndpointClient(std::optional<protocol::SigningKey> key, const Clock& clock,
                     EndpointClientOptions options);
  ~HttpEndpointClient() override;

  void run(const std::string& endpoint, std::string run_request,
           std::function<void(engine::EndpointReply)> done) override;
  void run_all(std::vector<engine::EndpointRun> runs) override;

 private:
  using Done = std::function<void(engine::EndpointReply)>;
  // Signs (with a key) and sends, on the calling thread.
  void send(const std::string& endpoint, std::string run_request, Done done);

  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ratchet::server
