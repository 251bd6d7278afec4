// The endpoint: FunctionService/Run requests in, RunResponses out (PROTOCOL.md).
// Checks, in order: the route, the body's size, the signature (when a
// verification key is configured) and that it was not used before (a replay,
// 503: protocol/replay_guard.hpp), the RunRequest, the function's name. Every
// refusal is a Connect JSON error; a function's own failure is a 200 whose
// RunResponse carries the status.
#include <cstdio>

#include "common/clock.hpp"
#include "http/message.hpp"
#include "protocol/connect.hpp"
#include "protocol/signing.hpp"
#include "sdk/core.hpp"

namespace ratchet {

namespace pb = ::dispatch::sdk::v1;

namespace {

Response connect_error(protocol::ConnectCode code, std::string_view message) {
  Response response;
  response.status = protocol::http_status_for(code);
  response.headers.emplace_back("Content-Type", std::string(protocol::kJsonContentType));
  response.body = protocol::connect_error_body(code, message);
  return response;
}

bool ends_with(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

std::string_view path_of(std::string_view target) {
  auto query = target.find('?');
  return query == std::string_view::npos ? target : target.substr(0, query);
}

protocol::HeaderLookup lookup_in(const Request& request) {
  return [&request](std::string_view name) -> std::optional<std::string> {
    std::optional<std::string> combined;
    for (const auto& [key, value] : request.headers) {
      if (!http::iequals(key, name)) continue;
      combined = combined ? *combined + ", " + value : value;
    }
    return combined;
  };
}

std::string authority_of(const Request& request) {
  return std::string(request.header("Host").value_or(""));
}

// The signature's checks, then whether it was seen before (a replay).
Status verify(const protocol::VerificationKey& key, protocol::ReplayGuard& replays,
              const Request& request, Micros now) {
  ASSIGN_OR_RETURN(
      protocol::VerifiedSignature verified,
      protocol::verify_request_signature(key, request.method, request.path, authority_of(request),
                                         lookup_in(request), request.body, now));
  return replays.admit(verified.signature, verified.created, now);
}

Response signature_refusal(const Status& status) {
  return connect_error(protocol::connect_code_for(status.code()),
                       "request signature: " + status.message());
}

// 404 for anything but a POST to the Run RPC.
std::optional<Response> check_route(const Request& request) {
  using protocol::ConnectCode;
  std::string_view path = path_of(request.path);
  if (!ends_with(path, protocol::kRunPath)) {
    return connect_error(ConnectCode::kNotFound, "no such RPC: " + std::string(path) +
                                                     " (this endpoint serves POST " +
                                                     std::string(protocol::kRunPath) + ")");
  }
  if (request.method != "POST") {
    return connect_error(ConnectCode::kNotFound,
                         std::string(protocol::kRunPath) + " takes POST, not " + request.method);
  }
  return std::nullopt;
}

}  // namespace

namespace detail {

std::optional<Response> check_request_header(const DispatchCore& core, const Request& header) {
  if (auto refusal = check_route(header)) return refusal;
  if (!core.verification_key) return std::nullopt;
  auto verified =
      protocol::verify_request_header(*core.verification_key, header.method, header.path,
                                      authority_of(header), lookup_in(header), core.clock.now());
  if (verified.is_ok()) return std::nullopt;
  return signature_refusal(verified.status());
}

std::optional<Response> check_request_signature(DispatchCore& core, const Request& request) {
  if (!core.verification_key) {
    core.warn_unverified();
    return std::nullopt;
  }
  Status verified = verify(*core.verification_key, core.replay_guard, request, core.clock.now());
  if (verified.is_ok()) return std::nullopt;
  return signature_refusal(verified);
}

}  // namespace detail

Response Dispatch::handle(const Request& request) {
  // Whatever goes wrong answers this request; it never escapes into the
  // server's thread (where it would end the process).
  try {
    return handle_run(request);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ratchet: the endpoint failed to answer a request: %s\n", e.what());
    return connect_error(protocol::ConnectCode::kInternal,
                         std::string("the endpoint failed: ") + e.what());
  } catch (...) {
    std::fprintf(stderr, "ratchet: the endpoint failed to answer a request\n");
    return connect_error(protocol::ConnectCode::kInternal, "the endpoint failed");
  }
}

Response Dispatch::handle_run(const Request& request) {
  using protocol::ConnectCode;
  if (auto refusal = check_route(request)) return std::move(*refusal);
  if (request.body.empty() || request.body.size() > protocol::kMaxRequestBodyBytes) {
    return connect_error(ConnectCode::kInvalidArgument,
                         request.body.empty() ? "the request body is empty: expected a RunRequest"
                                              : "the request body is larger than 16000000 bytes");
  }
  if (auto refusal = detail::check_request_signature(*core_, request)) return std::move(*refusal);
  pb::RunRequest run;
  if (!run.ParseFromString(request.body)) {
    return connect_error(ConnectCode::kInvalidArgument, "the body is not a RunRequest");
  }
  const detail::FunctionEntry* entry = core_->find(run.function());
  if (entry == nullptr || !detail::is_defined(*entry)) {
    return connect_error(ConnectCode::kNotFound,
                         "function \"" + run.function() + "\" is " +
                             (entry ? "declared but not defined" : "not registered") +
                             " at this endpoint");
  }
  // The calls a coroutine makes run here too: at the configured URL, or else
  // at the address the server used to reach us.
  std::string endpoint = core_->endpoint_url();
  if (endpoint.empty()) endpoint = "http://" + std::string(request.header("Host").value_or(""));
  pb::RunResponse answer = core_->runtime().run(*entry, run, endpoint);
  Response response;
  response.headers.emplace_back("Content-Type", std::string(protocol::kProtoContentType));
  answer.SerializeToString(&response.body);
  return response;
}

}  // namespace ratchet
