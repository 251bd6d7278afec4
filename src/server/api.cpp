#include "server/api.hpp"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>

#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>

#include "dispatch/sdk/v1/dispatch.pb.h"
#include "protocol/connect.hpp"
#include "server/journal_api.hpp"
#include "server/metrics.hpp"

namespace ratchet::server {
namespace {

namespace pb = dispatch::sdk::v1;

http::Response proto_response(const google::protobuf::Message& message) {
  return http::Response::with_body(200, std::string(protocol::kProtoContentType),
                                   message.SerializeAsString());
}

Micros duration_micros(const google::protobuf::Duration& d) {
  return protocol::duration_micros(d.seconds(), d.nanos());
}

// Reads the dispatch id that Wait, Cancel and RetryNow take as their body:
// printable, bounded.
Result<std::string> parse_dispatch_id(std::string_view body) {
  if (body.empty() || body.size() > 256) {
    return invalid_argument("the RPC expects a dispatch id (1 to 256 bytes) as its body");
  }
  for (unsigned char c : body) {
    if (c < 0x21 || c > 0x7e) return invalid_argument("the dispatch id has invalid bytes");
  }
  return std::string(body);
}

// The calls in a serialized DispatchRequest (field 1), counted without
// decoding them; nullopt when the bytes are not a well-formed message (the
// parser then says so).
std::optional<std::size_t> count_calls(std::string_view body) {
  using google::protobuf::internal::WireFormatLite;
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const std::uint8_t*>(body.data()),
                                            static_cast<int>(body.size()));
  std::size_t calls = 0;
  while (std::uint32_t tag = in.ReadTag()) {
    if (WireFormatLite::GetTagFieldNumber(tag) == pb::DispatchRequest::kCallsFieldNumber &&
        WireFormatLite::GetTagWireType(tag) == WireFormatLite::WIRETYPE_LENGTH_DELIMITED) {
      ++calls;
    }
    if (!WireFormatLite::SkipField(&in, tag)) return std::nullopt;
  }
  if (!in.ConsumedEntireMessage()) return std::nullopt;
  return calls;
}

}  // namespace

std::string api_actor(std::string_view key) {
  if (key.empty()) return "api";
  std::uint64_t hash = 14695981039346656037ULL;  // FNV-1a's offset basis
  for (unsigned char c : key) {
    hash ^= c;
    hash *= 1099511628211ULL;
  }
  char hex[9];
  std::snprintf(hex, sizeof hex, "%08x", static_cast<unsigned>(hash >> 32));
  return std::string("api-key:") + hex;
}

Result<std::vector<NewCall>> decode_dispatch(std::string_view body, Micros now,
                                             const ApiOptions& options) {
  auto calls_in_body = count_calls(body);
  if (calls_in_body && *calls_in_body > static_cast<std::size_t>(kMaxCallsPerDispatch)) {
    return invalid_argument("a Dispatch carries at most " + std::to_string(kMaxCallsPerDispatch) +
                            " calls; this one has " + std::to_string(*calls_in_body) +
                            ": split it into several (nothing was recorded)");
  }
  pb::DispatchRequest message;
  if (!message.ParseFromArray(body.data(), static_cast<int>(body.size()))) {
    return invalid_argument("the body is not a DispatchRequest");
  }
  std::vector<NewCall> calls;
  calls.reserve(static_cast<std::size_t>(message.calls_size()));
  for (int i = 0; i < message.calls_size(); ++i) {
    const pb::Call& call = message.calls(i);
    Status valid = protocol::validate_dispatched_call(call.endpoint(), call.function());
    if (!valid.is_ok()) {
      return invalid_argument("call " + std::to_string(i) + ": " + valid.message());
    }
    NewCall next;
    next.function = call.function();
    next.endpoint = call.endpoint();
    next.version = call.version();
    call.input().SerializeToString(&next.input);
    next.run_key = call.run_key();
    next.run_key_once = call.run_key_scope() == pb::Call::RUN_KEY_ONCE_EVER;
    next.max_attempts = static_cast<int>(std::min<std::uint32_t>(call.max_attempts(), 1'000'000));
    if (call.has_expiration() && duration_micros(call.expiration()) > 0) {
      // Saturated: an expiration too far away to count (9.2e12 s overflowed
      // into the past and failed the call at once) is as good as none.
      next.expires_at = saturating_add(now, duration_micros(call.expiration()));
    } else if (options.default_expiration) {
      next.expires_at = saturating_add(now, *options.default_expiration);
    }
    calls.push_back(std::move(next));
  }
  return calls;
}

http::Response connect_error(const Status& status) {
  return http::Response::with_body(http_status_for(status.code()),
                                   std::string(protocol::kJsonContentType),
                                   protocol::connect_error_body(status));
}

Api::Api(engine::Scheduler& scheduler, const Clock& clock, ApiOptions options, Executor decode)
    : scheduler_(scheduler),
      clock_(clock),
      options_(std::move(options)),
      decode_(std::move(decode)) {}

bool Api::authorized(const http::Request& request) const {
  if (options_.api_keys.empty()) return true;
  std::string_view key = request.bearer_key();
  return !key.empty() && options_.api_keys.count(std::string(key)) > 0;
}

std::optional<http::Response> Api::check_header(const http::Request& header) const {
  std::string_view path = header.path();
  auto unauthenticated = [] {
    return connect_error(
        Status(Code::kUnauthenticated, "missing or unknown API key (Authorization: Bearer <key>)"));
  };
  if (path == kMetricsPath) {
    if (header.method != "GET") return connect_error(invalid_argument("/metrics takes GET"));
    if (!options_.metrics_public && !authorized(header)) return unauthenticated();
    return std::nullopt;
  }
  bool journal = journal_ && path == protocol::kListOpenPath;
  if (path != protocol::kDispatchPath && path != protocol::kWaitPath && path != kCancelPath &&
      path != kRetryNowPath && !journal) {
    return connect_error(not_found("no such RPC: " + std::string(path)));
  }
  if (header.method != "POST") return connect_error(invalid_argument("RPCs are POST requests"));
  if (!authorized(header)) return unauthenticated();
  return std::nullopt;
}

void Api::handle(http::Request request, http::Responder responder) {
  // The server ran the check already; again here, so that the handler stands alone.
  if (auto refusal = check_header(request)) {
    responder.send(std::move(*refusal));
    return;
  }
  std::string_view path = request.path();
  if (path == kMetricsPath) {
    metrics(std::move(responder));
  } else if (path == protocol::kDispatchPath) {
    dispatch(std::move(request), std::move(responder));
  } else if (path == protocol::kListOpenPath) {
    journal_->handle(request, std::move(responder));
  } else if (path == protocol::kWaitPath) {
    wait(request, std::move(responder));
  } else {
    act(request, std::move(responder));
  }
}

void Api::act(const http::Request& request, http::Responder responder) {
  auto id = parse_dispatch_id(request.body);
  if (!id.is_ok()) {
    responder.send(connect_error(id.status()));
    return;
  }
  std::string key;
  if (!options_.api_keys.empty()) key = std::string(request.bearer_key());
  bool cancel = request.path() == kCancelPath;
  auto done = [responder, cancel](Result<std::vector<std::string>> ids) {
    if (!ids.is_ok()) {
      responder.send(connect_error(ids.status()));
      return;
    }
    nlohmann::json body =
        cancel ? nlohmann::json{{"cancelled", *ids}} : nlohmann::json{{"retried", !ids->empty()}};
    responder.send(
        http::Response::with_body(200, std::string(protocol::kJsonContentType), body.dump()));
  };
  if (cancel) {
    scheduler_.cancel(*id, api_actor(key), std::move(done));
  } else {
    scheduler_.retry_now(*id, api_actor(key), std::move(done));
  }
}

void Api::metrics(http::Responder responder) {
  responder.send(http::Response::with_body(200, std::string(kMetricsContentType),
                                           prometheus_text(scheduler_.figures())));
}

void Api::dispatch(http::Request request, http::Responder responder) {
  auto content_type = request.header("Content-Type").value_or("");
  if (!content_type.empty() && !protocol::is_proto_content_type(content_type)) {
    responder.send(connect_error(invalid_argument(
        "Dispatch takes Content-Type application/proto, not " + std::string(content_type))));
    return;
  }
  if (!decode_) {
    record_dispatch(request, std::move(responder));
    return;
  }
  auto job = [this, request = std::move(request), responder]() mutable {
    record_dispatch(request, std::move(responder));
  };
  if (!decode_(std::move(job))) {
    responder.send(connect_error(
        unavailable("the server is decoding too many Dispatch requests; try again shortly")));
  }
}

void Api::record_dispatch(const http::Request& request, http::Responder responder) {
  auto calls = decode_dispatch(request.body, clock_.now(), options_);
  if (!calls.is_ok()) {
    responder.send(connect_error(calls.status()));
    return;
  }
  scheduler_.dispatch(std::move(calls).value(), [responder](Result<std::vector<std::string>> ids,
                                                            engine::DispatchRelease release) {
    if (!ids.is_ok()) {
      responder.send(connect_error(ids.status()));
      return;
    }
    pb::DispatchResponse response;
    for (auto& id : *ids) response.add_dispatch_ids(std::move(id));
    response.set_run_keys(true);
    // The calls run once the client has its ids in hand, as far as a server can
    // tell (see engine::AnswerGate).
    responder.send(
        proto_response(response), [release] { release.written(); }, [release] { release.read(); });
  });
}

void Api::wait(const http::Request& request, http::Responder responder) {
  auto id = parse_dispatch_id(request.body);
  if (!id.is_ok()) {
    responder.send(connect_error(id.status()));
    return;
  }
  Micros wait_for = options_.max_wait;
  if (auto timeout = request.header(protocol::kConnectTimeoutHeader)) {
    Micros ms = 0;
    auto [end, error] = std::from_chars(timeout->data(), timeout->data() + timeout->size(), ms);
    // Compared in milliseconds: a huge timeout must not overflow into the past.
    if (error == std::errc() && ms > 0 && ms < wait_for / kMicrosPerMilli) {
      wait_for = ms * kMicrosPerMilli;
    }
  }
  scheduler_.wait(*id, clock_.now() + wait_for, [responder](engine::CallOutcome outcome) {
    if (!outcome.is_ok()) {
      responder.send(connect_error(outcome.status()));
      return;
    }
    responder.send(http::Response::with_body(200, std::string(protocol::kProtoContentType),
                                             engine::build_call_result(*outcome)));
  });
}

}  // namespace ratchet::server
