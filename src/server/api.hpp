// The server's API: DispatchService.Dispatch and Ratchet's extensions
// DispatchService.Wait, .Cancel and .RetryNow over Connect unary (PROTOCOL.md,
// docs/server.md), and GET /metrics, with bearer-key authentication. Requests
// are checked here, before anything is recorded: a Dispatch is all or nothing.
#pragma once

#include <functional>
#include <optional>
#include <set>
#include <string>

#include "common/clock.hpp"
#include "engine/scheduler.hpp"
#include "http/server.hpp"

namespace ratchet::server {

// At most this many calls in one Dispatch; a larger one is refused whole
// (invalid_argument, naming the limit) before it is decoded.
inline constexpr int kMaxCallsPerDispatch = 10'000;

struct ApiOptions {
  std::set<std::string> api_keys;            // empty: no authentication (never the default)
  Micros max_wait = 60 * kMicrosPerSecond;   // the longest one Wait blocks
  std::optional<Micros> default_expiration;  // for calls dispatched without one
  bool metrics_public = false;               // GET /metrics without a key
};

class JournalApi;

inline constexpr std::string_view kCancelPath = "/ratchet.v1.Control/Cancel";
inline constexpr std::string_view kRetryNowPath = "/ratchet.v1.Control/RetryNow";

// Who an API request acts as, in a call's history: "api-key:" and a
// fingerprint of its key (FNV-1a, 8 hex digits; never the key itself), or
// "api" when the server takes no keys.
std::string api_actor(std::string_view key);

class Api {
 public:
  // Runs a job off the I/O thread, or answers false when it cannot take more.
  // A Dispatch of thousands of calls takes milliseconds to decode: on the I/O
  // thread, that would hold up every other client's request.
  using Executor = std::function<bool(std::function<void()>)>;

  // With no executor, Dispatch requests are decoded where they arrive.
  Api(engine::Scheduler& scheduler, const Clock& clock, ApiOptions options, Executor decode = {});
  // Serves Ratchet's Journal service (journal_api.hpp) too, authenticated as
  // the RPCs are; without it, its path is the API's 404.
  void serve_journal(JournalApi* journal) { journal_ = journal; }
  // The http::Server handler.
  void handle(http::Request request, http::Responder responder);
  // The http::Server header check: refuses an unknown route, a method other
  // than POST and a missing or unknown key before any of the body is read.
  std::optional<http::Response> check_header(const http::Request& header) const;

 private:
  void dispatch(http::Request request, http::Responder responder);
  void record_dispatch(const http::Request& request, http::Responder responder);
  void wait(const http::Request& request, http::Responder responder);
  void act(const http::Request& request, http::Responder responder);
  void metrics(http::Responder responder);
  bool authorized(const http::Request& request) const;

  engine::Scheduler& scheduler_;
  const Clock& clock_;
  ApiOptions options_;
  Executor decode_;
  JournalApi* journal_ = nullptr;
};

// The calls of a DispatchRequest's bytes, each validated, as they are recorded
// (expirations from `now`, saturated); kInvalidArgument naming the first bad
// call, or the limit when there are more than kMaxCallsPerDispatch: a
// Dispatch is all or nothing. Pure: the fuzzer's way in.
Result<std::vector<NewCall>> decode_dispatch(std::string_view body, Micros now,
                                             const ApiOptions& options);

// A Connect error response.
http::Response connect_error(const Status& status);

}  // namespace ratchet::server
