#include "server/http_endpoint_client.hpp"

#include <atomic>
#include <limits>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "http/client.hpp"
#include "protocol/connect.hpp"
#include "server/work_queue.hpp"

namespace ratchet::server {

using protocol::DispatchStatus;

struct HttpEndpointClient::Impl {
  std::optional<protocol::SigningKey> key;
  const Clock& clock;
  EndpointClientOptions options;
  http::Client client;
  std::mutex urls_mutex;
  std::unordered_map<std::string, Result<http::Url>> urls;  // parsed once per endpoint
  // Signs and sends batches off the caller's thread: an Ed25519 signature is
  // about 40 us here, and the caller is the scheduler's loop, which would
  // otherwise spend a third of its time signing under load
  // (docs/performance.md). One thread keeps the requests in the order they
  // were given. Declared after `client`, so that it stops (sending what it
  // holds) before the client goes.
  WorkQueue<> signer;
  std::atomic<int> signing{0};  // batches given to `signer` and not yet sent

  Impl(std::optional<protocol::SigningKey> k, const Clock& c, EndpointClientOptions o)
      : key(std::move(k)),
        clock(c),
        options(o),
        client(client_options(o)),
        // Unbounded in effect: the scheduler holds at most its max in flight.
        signer(1, std::numeric_limits<std::size_t>::max(), "ratchet-sign") {}

  static http::ClientOptions client_options(const EndpointClientOptions& o) {
    http::ClientOptions options;
    options.io_threads = o.io_threads;
    options.max_connections_per_host = o.max_connections_per_host;
    options.verify_peer = o.verify_peer;
    options.user_agent = "ratchet-server";
    return options;
  }

  Result<http::Url> url_of(const std::string& endpoint) {
    std::lock_guard lock(urls_mutex);
    auto found = urls.find(endpoint);
    if (found == urls.end()) found = urls.emplace(endpoint, http::parse_url(endpoint)).first;
    return found->second;
  }
};

namespace {

DispatchStatus status_for(http::ErrorKind kind) {
  switch (kind) {
    case http::ErrorKind::kDns:
      return DispatchStatus::kDnsError;
    case http::ErrorKind::kTls:
      return DispatchStatus::kTlsError;
    case http::ErrorKind::kTimeout:
      return DispatchStatus::kTimeout;
    case http::ErrorKind::kResponseTooLarge:
    case http::ErrorKind::kMalformedResponse:
      return DispatchStatus::kHttpError;
    case http::ErrorKind::kInvalidRequest:
      return DispatchStatus::kInvalidArgument;
    case http::ErrorKind::kTcp:
    case http::ErrorKind::kShutdown:
      return DispatchStatus::kTcpError;
  }
  return DispatchStatus::kTcpError;
}

engine::EndpointReply failure(DispatchStatus status, std::string message) {
  engine::EndpointReply reply;
  reply.responded = false;
  reply.failure = status;
  reply.failure_message = std::move(message);
  return reply;
}

}  // namespace

HttpEndpointClient::HttpEndpointClient(std::optional<protocol::SigningKey> key, const Clock& clock,
                                       EndpointClientOptions options)
    : impl_(std::make_unique<Impl>(std::move(key), clock, options)) {}

HttpEndpointClient::~HttpEndpointClient() = default;

void HttpEndpointClient::run(const std::string& endpoint, std::string run_request,
                             std::function<void(engine::EndpointReply)> done) {
  std::vector<engine::EndpointRun> one;
  one.push_back({endpoint, std::move(run_request), std::move(done)});
  run_all(std::move(one));
}

// How many requests a caller signs itself when the signing thread is idle.
// Handing a request to that thread costs a thread's wake-up, which is more
// than a signature (40 us) when the machine is busy (100-170 us measured,
// docs/performance.md), and a step of a coroutine sends one request a turn.
// A turn of many calls would hold the scheduler's loop for 40 us each: those
// go to the thread, as does anything that would overtake what it holds.
constexpr std::size_t kSignedOnCallersThread = 2;

void HttpEndpointClient::run_all(std::vector<engine::EndpointRun> runs) {
  if (!impl_->key || (runs.size() <= kSignedOnCallersThread && impl_->signing.load() == 0)) {
    for (auto& r : runs) send(r.endpoint, std::move(r.run_request), std::move(r.done));
    return;
  }
  // A shared_ptr, as a std::function must be copyable: the job runs once.
  auto batch = std::make_shared<std::vector<engine::EndpointRun>>(std::move(runs));
  impl_->signing.fetch_add(1);
  bool queued = impl_->signer.post([this, batch] {
    for (auto& r : *batch) send(r.endpoint, std::move(r.run_request), std::move(r.done));
    impl_->signing.fetch_sub(1);
  });
  if (!queued) {
    impl_->signing.fetch_sub(1);
    for (auto& r : *batch)
      r.done(failure(DispatchStatus::kTcpError, "the server is shutting down"));
  }
}

void HttpEndpointClient::send(const std::string& endpoint, std::string run_request, Done done) {
  auto url = impl_->url_of(endpoint);
  if (!url.is_ok()) {
    done(failure(DispatchStatus::kInvalidArgument,
                 "this server cannot send calls to '" + endpoint + "': " + url.status().message()));
    return;
  }
  http::Request request;
  request.method = "POST";
  request.target = url->join(protocol::kRunPath);
  request.headers.add("Content-Type", std::string(protocol::kProtoContentType));
  request.headers.add(std::string(protocol::kConnectProtocolVersionHeader),
                      std::string(protocol::kConnectProtocolVersion));
  if (impl_->key) {
    auto signed_headers = protocol::sign_request(
        *impl_->key, "POST", request.path(), url->authority(), protocol::kProtoContentType,
        run_request, impl_->clock.now() / kMicrosPerSecond);
    if (!signed_headers.is_ok()) {
      done(failure(DispatchStatus::kPermanentError, signed_headers.status().message()));
      return;
    }
    request.headers.add("Content-Digest", signed_headers->content_digest);
    request.headers.add("Signature-Input", signed_headers->signature_input);
    request.headers.add("Signature", signed_headers->signature);
  }
  request.body = std::move(run_request);
  http::RequestOptions options;
  options.timeout = impl_->options.request_timeout;
  impl_->client.send(
      *url, std::move(request), options, [done = std::move(done)](Result<http::Response> response) {
        if (!response.is_ok()) {
          auto kind = http::error_kind(response.status());
          done(failure(kind ? status_for(*kind) : DispatchStatus::kTcpError,
                       response.status().message()));
          return;
        }
        engine::EndpointReply reply;
        reply.responded = true;
        reply.http_status = response->status;
        reply.content_type = std::string(response->header("Content-Type").value_or(""));
        reply.body = std::move(response->body);
        done(std::move(reply));
      });
}

}  // namespace ratchet::server
