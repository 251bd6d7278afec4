// The client side of the server's API: DispatchService.Dispatch and Ratchet's
// DispatchService.Wait (PROTOCOL.md), as blocking calls that raise the
// ratchet::Error for what went wrong.
#include <algorithm>
#include <optional>
#include <thread>

#include "dispatch/sdk/v1/dispatch.pb.h"
#include "protocol/connect.hpp"
#include "protocol/values.hpp"
#include "sdk/core.hpp"

namespace ratchet::detail {

namespace pb = ::dispatch::sdk::v1;

namespace {

using Clock = std::chrono::steady_clock;

http::Url api_url(const DispatchCore& core) {
  return *http::parse_url(core.config.api_url);  // resolve_config checked that it parses
}

http::Request api_request(const DispatchCore& core, std::string_view path, std::string body) {
  if (core.config.api_key.empty()) {
    throw ConfigurationError(
        "DISPATCH_API_KEY is not set: set it to the API key of the Ratchet server at " +
        core.config.api_url + " (`ratchet dev` uses \"test\")");
  }
  http::Request request;
  request.method = "POST";
  request.target = std::string(path);
  request.headers.set("Authorization", "Bearer " + core.config.api_key);
  request.headers.set("Content-Type", std::string(protocol::kProtoContentType));
  request.headers.set(std::string(protocol::kConnectProtocolVersionHeader),
                      std::string(protocol::kConnectProtocolVersion));
  request.body = std::move(body);
  return request;
}

[[noreturn]] void throw_transport_error(const DispatchCore& core, const Status& status) {
  std::string message = "cannot reach the Ratchet server at " + core.config.api_url + ": " +
                        status.message() + " (check DISPATCH_API_URL)";
  auto kind = http::error_kind(status);
  CallStatus call_status = CallStatus::kTcpError;
  if (kind == http::ErrorKind::kDns) call_status = CallStatus::kDnsError;
  if (kind == http::ErrorKind::kTls) call_status = CallStatus::kTlsError;
  if (kind == http::ErrorKind::kTimeout) call_status = CallStatus::kTimeout;
  if (kind == http::ErrorKind::kMalformedResponse) call_status = CallStatus::kInvalidResponse;
  throw_error(call_status, std::move(message));
}

[[noreturn]] void throw_api_error(const http::Response& response, std::string_view what) {
  auto error = protocol::connect_error_from_response(response.status, response.body);
  std::string message = std::string(what) + ": " +
                        std::string(protocol::connect_code_name(error.code)) + ": " + error.message;
  if (response.status == 401) message += " (check DISPATCH_API_KEY)";
  throw_error(status_for_http_code(response.status), std::move(message));
}

Result<http::Response> send(DispatchCore& core, http::Request request,
                            std::chrono::milliseconds timeout) {
  http::RequestOptions options;
  options.timeout = timeout;
  return core.client().send_sync(api_url(core), std::move(request), options);
}

// A call the server gave up on because it could not reach its endpoint most
// often means the service listens somewhere else than its URL says.
std::string unreachable_hint(const std::string& error_type) {
  if (error_type != "STATUS_TCP_ERROR" && error_type != "STATUS_DNS_ERROR") return {};
  return " (the Ratchet server could not reach the function's endpoint: check that the "
         "service serving it listens where DISPATCH_ENDPOINT_URL says; it logs the address "
         "it listens at when it starts)";
}

}  // namespace

std::vector<std::string> dispatch_calls(DispatchCore& core, std::vector<CallSpec> calls) {
  const std::string endpoint = core.endpoint_url();
  if (endpoint.empty()) {
    throw ConfigurationError(
        "DISPATCH_ENDPOINT_URL is not set: set it to the URL where the Ratchet server reaches "
        "this service's functions, e.g. http://127.0.0.1:8000 (or start() this service first)");
  }
  pb::DispatchRequest dispatch;
  for (auto& spec : calls) {
    pb::Call* call = dispatch.add_calls();
    *call = make_call(spec, endpoint, spec.function);
    if (!protocol::is_utf8(spec.options.run_key())) {
      // Sent anyway, protobuf would log an error and the server refuse the whole request.
      throw InvalidArgumentError("the run key of " + spec.function + " is not UTF-8");
    }
    call->set_run_key(spec.options.run_key());
    if (spec.options.run_key_scope() == RunKeyScope::kOnceEver) {
      call->set_run_key_scope(pb::Call::RUN_KEY_ONCE_EVER);
    }
  }
  auto response =
      send(core, api_request(core, protocol::kDispatchPath, dispatch.SerializeAsString()),
           core.options.api_timeout);
  if (!response.is_ok()) throw_transport_error(core, response.status());
  if (response->status != 200) throw_api_error(*response, "the server refused the dispatch");
  pb::DispatchResponse ids;
  if (!ids.ParseFromString(response->body) || ids.dispatch_ids_size() != dispatch.calls_size()) {
    throw InvalidResponseError("the server's answer to Dispatch is not a DispatchResponse with " +
                               std::to_string(dispatch.calls_size()) + " ids");
  }
  bool keyed = std::any_of(dispatch.calls().begin(), dispatch.calls().end(),
                           [](const pb::Call& call) { return !call.run_key().empty(); });
  if (keyed && !ids.run_keys()) {
    // Dispatched already: say so, since dispatching again would run it twice.
    throw ConfigurationError("the server at " + core.config.api_url +
                             " ignores run keys (only a Ratchet server honours them): the "
                             "calls were dispatched without one, as " +
                             ids.dispatch_ids(0) + (ids.dispatch_ids_size() > 1 ? ", ..." : ""));
  }
  return {ids.dispatch_ids().begin(), ids.dispatch_ids().end()};
}

namespace {

// A server that restarts (a deploy, a crash) refuses connections or drops
// them for a moment while the call goes on in its store: a wait rides over
// that, trying again after 50 ms, 100 ms, ... up to 1 s, until its deadline.
bool server_away(const Result<http::Response>& response) {
  if (!response.is_ok()) return http::error_kind(response.status()) == http::ErrorKind::kTcp;
  return response->status == 503;  // unavailable: starting, stopping or its store failing
}

}  // namespace

Outcome wait_for_result(DispatchCore& core, const std::string& dispatch_id,
                        std::chrono::milliseconds timeout) {
  using std::chrono::duration_cast;
  using std::chrono::milliseconds;
  // A timeout past what the clock can hold ("forever") has no deadline; adding it
  // (or comparing it in the clock's nanoseconds) would overflow into the past.
  const auto start = Clock::now();
  const auto deadline = timeout >= duration_cast<milliseconds>(Clock::time_point::max() - start)
                            ? Clock::time_point::max()
                            : start + timeout;
  auto backoff = milliseconds(50);
  std::optional<Result<http::Response>> away;  // the last answer of a server away
  while (true) {
    auto left = duration_cast<milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      // Still away at the deadline: that, not a timeout, is what to report.
      if (away && !away->is_ok()) throw_transport_error(core, away->status());
      if (away) throw_api_error(**away, "cannot wait for call " + dispatch_id);
      throw WaitTimeoutError(dispatch_id, "call " + dispatch_id + " has no result after " +
                                              std::to_string(timeout.count()) +
                                              " ms of waiting; it goes on: wait again");
    }
    // The server answers 504 after at most a minute: ask again until the deadline.
    auto chunk = std::min(left, milliseconds(50'000));
    http::Request request = api_request(core, protocol::kWaitPath, dispatch_id);
    request.headers.set(std::string(protocol::kConnectTimeoutHeader),
                        std::to_string(chunk.count()));
    auto response = send(core, std::move(request), chunk + milliseconds(2'000));
    // A server that holds Wait past Connect-Timeout-Ms (dispatch-py's test server
    // answers only with the result) has no result yet either: the deadline ends it.
    bool held =
        !response.is_ok() && http::error_kind(response.status()) == http::ErrorKind::kTimeout;
    if (held) continue;
    if (server_away(response)) {
      std::this_thread::sleep_for(std::min(backoff, left));
      backoff = std::min(backoff * 2, milliseconds(1'000));
      away = std::move(response);
      continue;
    }
    away.reset();
    backoff = milliseconds(50);
    if (!response.is_ok()) throw_transport_error(core, response.status());
    if (response->status == 504) continue;
    if (response->status != 200) throw_api_error(*response, "cannot wait for call " + dispatch_id);
    pb::CallResult result;
    if (!result.ParseFromString(response->body)) {
      throw InvalidResponseError("the server's answer to Wait is not a CallResult");
    }
    Outcome outcome;
    if (result.has_error()) {
      outcome.error_type = result.error().type();
      outcome.error_message = result.error().message() + unreachable_hint(outcome.error_type);
      return outcome;
    }
    auto value = result.has_output() ? protocol::unpack_to_json(result.output())
                                     : Result<nlohmann::json>(nlohmann::json());
    if (!value.is_ok()) {
      outcome.error_type = "InvalidResponseError";
      outcome.error_message =
          "the result of call " + dispatch_id + " cannot be read: " + value.status().message();
      return outcome;
    }
    outcome.ok = true;
    outcome.value = std::move(*value);
    return outcome;
  }
}

::ratchet::v1::ListOpenResponse list_open_coroutines(DispatchCore& core,
                                                     const std::vector<std::string>& functions,
                                                     const std::string& endpoint,
                                                     const std::string& after,
                                                     std::uint32_t limit) {
  ::ratchet::v1::ListOpenRequest list;
  for (const auto& function : functions) list.add_functions(function);
  list.set_endpoint(endpoint);
  list.set_after(after);
  list.set_limit(limit);
  auto response = send(core, api_request(core, protocol::kListOpenPath, list.SerializeAsString()),
                       core.options.api_timeout);
  if (!response.is_ok()) throw_transport_error(core, response.status());
  if (response->status != 200) {
    throw_api_error(*response,
                    "the server did not list the open coroutines (is it a Ratchet "
                    "server? ListOpen is Ratchet's own RPC)");
  }
  ::ratchet::v1::ListOpenResponse open;
  if (!open.ParseFromString(response->body)) {
    throw InvalidResponseError("the server's answer to ListOpen is not a ListOpenResponse");
  }
  return open;
}

}  // namespace ratchet::detail
