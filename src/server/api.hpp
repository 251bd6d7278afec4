// The server's API: DispatchService.Dispatch and Ratchet's DispatchService.Wait
// over Connect unary (PROTOCOL.md), with bearer-key authentication. Requests
// are checked here, before anything is recorded: a Dispatch is all or nothing.
#pragma once

#include <optional>
#include <set>
#include <string>

#include "common/clock.hpp"
#include "engine/scheduler.hpp"
#include "http/server.hpp"

namespace ratchet::server {

struct ApiOptions {
  std::set<std::string> api_keys;            // empty: no authentication (never the default)
  Micros max_wait = 60 * kMicrosPerSecond;   // the longest one Wait blocks
  std::optional<Micros> default_expiration;  // for calls dispatched without one
};

class JournalApi;

class Api {
 public:
  Api(engine::Scheduler& scheduler, const Clock& clock, ApiOptions options);
  // Serves Ratchet's Journal service (journal_api.hpp) too, authenticated as
  // the RPCs are; without it, its path is the API's 404.
  void serve_journal(JournalApi* journal) { journal_ = journal; }
  // The http::Server handler.
  void handle(http::Request request, http::Responder responder);
  // The http::Server header check: refuses an unknown route, a method other
  // than POST and a missing or unknown key before any of the body is read.
  std::optional<http::Response> check_header(const http::Request& header) const;

 private:
  void dispatch(const http::Request& request, http::Responder responder);
  void wait(const http::Request& request, http::Responder responder);
  bool authorized(const http::Request& request) const;

  engine::Scheduler& scheduler_;
  const Clock& clock_;
  ApiOptions options_;
  JournalApi* journal_ = nullptr;
};

// The calls of a DispatchRequest's bytes, each validated, as they are recorded
// (expirations from `now`); kInvalidArgument naming the first bad call: a
// Dispatch is all or nothing. Pure: the fuzzer's way in.
Result<std::vector<NewCall>> decode_dispatch(std::string_view body, Micros now,
                                             const ApiOptions& options);

// A Connect error response.
http::Response connect_error(const Status& status);

}  // namespace ratchet::server
