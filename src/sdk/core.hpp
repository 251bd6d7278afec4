// DispatchCore: what a ratchet::Dispatch owns (configuration, the function
// registry, the runtime, the API client, the built-in server).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "http/client.hpp"
#include "http/server.hpp"
#include "protocol/replay_guard.hpp"
#include "protocol/signing.hpp"
#include "ratchet/dispatch.hpp"
#include "ratchet/v1/journal_service.pb.h"
#include "sdk/runtime.hpp"

namespace ratchet::detail {

class DispatchCore {
 public:
  // `clock`: the time a request's signature is checked against (its
  // `created` and `expires`); tests pass a FakeClock.
  explicit DispatchCore(Options options, const Clock& clock = SystemClock::instance());
  ~DispatchCore();

  const Options options;
  const Config config;
  const Clock& clock;
  const std::optional<protocol::VerificationKey> verification_key;
  // The signatures accepted within their validity window: a replay is refused.
  protocol::ReplayGuard replay_guard;

  // The registered function `name`, or nullptr. Entries are never removed.
  const FunctionEntry* find(const std::string& name) const;
  void add(const std::string& name, FunctionEntry entry);
  // Gives a declared function its definition (std::invalid_argument if it
  // was not declared, or is defined already).
  void define(const std::string& name, FunctionEntry entry);
  // Declared functions without a definition.
  std::vector<std::string> undefined() const;
  // The coroutine functions (Task<T>), by name.
  std::vector<std::string> coroutines() const;

  sdk::Runtime& runtime() { return runtime_; }
  // The client of the server's API, made on first use.
  http::Client& client();

  // Logs once that requests are not verified.
  void warn_unverified();

  // Where the server reaches this service's functions: DISPATCH_ENDPOINT_URL, or
  // else the built-in server's address once start() listens on a specific host;
  // empty when neither.
  std::string endpoint_url() const;
  void set_served_url(std::string url);

  std::mutex server_mutex;
  std::unique_ptr<http::Server> server;

 private:
  mutable std::mutex functions_mutex_;
  std::map<std::string, FunctionEntry> functions_;
  std::once_flag unverified_warning_;
  std::mutex client_mutex_;
  // Its own lock: handlers read it while stop() holds server_mutex waiting for them.
  mutable std::mutex served_url_mutex_;
  std::string served_url_;  // http://HOST:PORT of the built-in server
  std::unique_ptr<http::Client> client_;
  // Declared last: destroyed first, so that cached frames go before the
  // functions whose code they run.
  sdk::Runtime runtime_;
};

// The built-in server's check of a request once its header has arrived (the body
// unread): a wrong route, or a signature that does not verify when a verification key
// is set, is refused at once, so that nobody without the key can make the endpoint read
// and hold a body. nullopt: read the body, and handle() checks everything again.
std::optional<Response> check_request_header(const DispatchCore& core, const Request& header);
// The whole request's check of its signature, body included, and that it was
// not seen before (a replay), when a verification key is set: the refusal, or
// nullopt to run it. Both checks read the time from core.clock.
std::optional<Response> check_request_signature(DispatchCore& core, const Request& request);

// The open coroutines of `functions`, and of any function at `endpoint` (a
// URL; empty: none), with their states (Ratchet's Journal service, ListOpen):
// the page of at most `limit` (0: the server's) whose dispatch ids sort after
// `after` (empty: the first); raises like dispatch_calls when the server
// cannot answer.
::ratchet::v1::ListOpenResponse list_open_coroutines(DispatchCore& core,
                                                     const std::vector<std::string>& functions,
                                                     const std::string& endpoint,
                                                     const std::string& after, std::uint32_t limit);

inline bool is_defined(const FunctionEntry& entry) {
  return static_cast<bool>(entry.plain) || static_cast<bool>(entry.start);
}

// Configuration from options and the environment; throws ConfigurationError.
Config resolve_config(const Options& options);
// Where to listen so that the server reaches this service at `endpoint_url`:
// its host and port (localhost as 127.0.0.1, another DNS name as 0.0.0.0);
// nullopt for an https URL (a proxy's) or one that does not parse.
std::optional<std::string> listen_address_for(const std::string& endpoint_url);

}  // namespace ratchet::detail
