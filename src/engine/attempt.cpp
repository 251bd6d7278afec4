#include "engine/attempt.hpp"

#include <google/protobuf/any.pb.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>

#include <algorithm>

#include "dispatch/sdk/v1/function.pb.h"
#include "protocol/connect.hpp"
#include "protocol/journal_delta.hpp"

namespace ratchet::engine {
namespace {

namespace pb = dispatch::sdk::v1;
using protocol::DispatchStatus;

// google.protobuf.Timestamp ends at 9999-12-31T23:59:59Z; a later (saturated)
// time is sent as that.
constexpr std::int64_t kLastTimestampSecond = 253'402'300'799;

void set_timestamp(google::protobuf::Timestamp* out, Micros t) {
  if (t / kMicrosPerSecond > kLastTimestampSecond) {
    out->set_seconds(kLastTimestampSecond);
    return;
  }
  out->set_seconds(t / kMicrosPerSecond);
  out->set_nanos(static_cast<int>((t % kMicrosPerSecond) * 1000));
}

// An endpoint's error goes on exactly as it came, every field included; one the
// server made has a type and a message.
void fill_error(pb::Error* out, const CallError& error) {
  if (!error.encoded.empty() && out->ParseFromString(error.encoded)) return;
  out->Clear();
  out->set_type(error.type);
  out->set_message(error.message);
}

void fill_call_result(pb::CallResult* out, const std::string& dispatch_id,
                      std::uint64_t correlation_id, const std::optional<std::string>& output,
                      const std::optional<CallError>& error) {
  out->set_correlation_id(correlation_id);
  out->set_dispatch_id(dispatch_id);
  if (output) out->mutable_output()->ParseFromString(*output);
  if (error) fill_error(out->mutable_error(), *error);
}

Transition retry_because(DispatchStatus status, std::string message) {
  Transition t;
  t.kind = Transition::Kind::kRetry;
  t.status = status;
  t.reason = CallError{std::string(protocol::status_name(status)), std::move(message)};
  return t;
}

Transition finish_with(CallEnd end, DispatchStatus status) {
  Transition t;
  t.kind = Transition::Kind::kFinish;
  t.status = status;
  t.end = std::move(end);
  return t;
}

// An HTTP answer that is not a RunResponse.
Transition interpret_http_failure(const EndpointReply& reply) {
  DispatchStatus status =
      protocol::classify_endpoint_http_failure(reply.http_status, reply.content_type);
  std::string message = "the endpoint answered HTTP " + std::to_string(reply.http_status);
  std::string text = protocol::relayed_error_text(reply.body);
  if (!text.empty()) message += ": " + text;
  if (status == DispatchStatus::kInvalidResponse) {
    message = "the endpoint answered HTTP " + std::to_string(reply.http_status) +
              " with Content-Type '" + reply.content_type + "', not application/proto";
  }
  if (reply.http_status == 403) {
    message += " (check the endpoint's DISPATCH_VERIFICATION_KEY)";
  }
  if (protocol::is_temporary(status)) return retry_because(status, message);
  return finish_with(failure_end(status, message), status);
}

Transition interpret_poll(const CallRecord& call, const pb::Poll& poll, Micros now,
                          const PollDefaults& defaults) {
  Transition t;
  t.status = DispatchStatus::kOk;
  if (poll.has_typed_coroutine_state()) {
    t.poll.member = pb::Poll::kTypedCoroutineStateFieldNumber;
    const auto& state = poll.typed_coroutine_state();
    state.SerializeToString(&t.poll.state);
    if (auto revision = protocol::state_revision(state.type_url(), state.value())) {
      t.poll.delta = revision->delta;
      t.poll.revision = revision->revision;
      t.poll.base_revision = revision->base_revision;
    } else if (state.type_url() == protocol::kJournalDeltaType) {
      // A delta that does not read (revision 0: no store holds its base) is
      // refused, and the next attempt carries the whole journal. Stored as a
      // whole journal, it would go back as a delta that no process holds.
      t.poll.delta = true;
    }
  } else {
    t.poll.member = pb::Poll::kCoroutineStateFieldNumber;
    t.poll.state = poll.coroutine_state();
  }
  std::optional<Micros> max_wait;
  if (poll.has_max_wait()) {
    const auto& wait = poll.max_wait();
    max_wait = protocol::duration_micros(wait.seconds(), wait.nanos());
    // A positive wait under a microsecond is the shortest there is, not an
    // unset one (which waits the default).
    if (*max_wait == 0 && (wait.seconds() > 0 || wait.nanos() > 0)) max_wait = 1;
  }
  // Real SDKs leave max_results unset: read that as "as many as there are".
  auto limits = protocol::normalize_poll_limits(
      poll.min_results(), poll.max_results() > 0 ? poll.max_results() : protocol::kMaxPollResults,
      max_wait ? max_wait : std::optional<Micros>(defaults.max_wait));
  t.poll.min_results = limits.min_results;
  t.poll.max_results = limits.max_results;
  t.poll.deadline = saturating_add(now, limits.max_wait);

  for (const auto& child : poll.calls()) {
    // A child without an endpoint runs where its parent runs.
    std::string endpoint = child.endpoint().empty() ? call.endpoint : child.endpoint();
    Status valid = protocol::validate_dispatched_call(endpoint, child.function());
    if (!valid.is_ok()) {
      t.kind = Transition::Kind::kRejectChildren;
      t.reason = CallError{"InvalidArgument", valid.message()};
      t.children.clear();
      return t;
    }
    NewCall next;
    next.function = child.function();
    next.endpoint = std::move(endpoint);
    next.version = child.version();
    child.input().SerializeToString(&next.input);
    next.correlation_id = child.correlation_id();
    next.max_attempts = static_cast<int>(std::min<std::uint32_t>(child.max_attempts(), 1'000'000));
    Micros expiration =
        protocol::duration_micros(child.expiration().seconds(), child.expiration().nanos());
    // Saturated: an expiration too far away to count is as good as none.
    if (expiration > 0) {
      next.expires_at = saturating_add(now, expiration);
    } else if (defaults.expiration) {
      next.expires_at = saturating_add(now, *defaults.expiration);
    }
    t.children.push_back(std::move(next));
  }
  t.kind = Transition::Kind::kSuspend;
  return t;
}

// The fields of a message's bytes, each as it came: (field number, its raw bytes,
// tag included); nullopt when the bytes are not a well-formed message.
std::optional<std::vector<std::pair<int, std::string_view>>> raw_fields(std::string_view bytes) {
  using google::protobuf::internal::WireFormatLite;
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const std::uint8_t*>(bytes.data()),
                                            static_cast<int>(bytes.size()));
  std::vector<std::pair<int, std::string_view>> fields;
  int start = 0;
  while (std::uint32_t tag = in.ReadTag()) {
    if (!WireFormatLite::SkipField(&in, tag)) return std::nullopt;
    int end = in.CurrentPosition();
    fields.emplace_back(
        WireFormatLite::GetTagFieldNumber(tag),
        bytes.substr(static_cast<std::size_t>(start), static_cast<std::size_t>(end - start)));
    start = end;
  }
  if (!in.ConsumedEntireMessage()) return std::nullopt;
  return fields;
}

// A RunResponse whose Poll makes more than kMaxCallsPerPoll calls, read without
// them (parsed, they would cost what the bound is there to prevent), and their
// number; nullopt for any other reply (or bytes that do not read).
std::optional<std::pair<pb::RunResponse, std::size_t>> with_poll_calls_left_out(
    std::string_view body) {
  // The smallest call takes 2 bytes: a body under this cannot be over the bound.
  if (body.size() <= 2 * static_cast<std::size_t>(kMaxCallsPerPoll)) return std::nullopt;
  auto fields = raw_fields(body);
  if (!fields) return std::nullopt;
  pb::RunResponse response;
  std::size_t calls = 0;
  for (const auto& [number, raw] : *fields) {
    if (number != pb::RunResponse::kPollFieldNumber) {
      if (!response.MergeFromString(std::string(raw))) return std::nullopt;
      continue;
    }
    google::protobuf::io::CodedInputStream in(reinterpret_cast<const std::uint8_t*>(raw.data()),
                                              static_cast<int>(raw.size()));
    std::string poll_bytes;
    std::uint32_t length = 0;
    if (!in.ReadTag() || !in.ReadVarint32(&length) ||
        !in.ReadString(&poll_bytes, static_cast<int>(length))) {
      return std::nullopt;
    }
    auto poll_fields = raw_fields(poll_bytes);
    if (!poll_fields) return std::nullopt;
    for (const auto& [poll_number, poll_raw] : *poll_fields) {
      if (poll_number == pb::Poll::kCallsFieldNumber) {
        ++calls;
      } else if (!response.mutable_poll()->MergeFromString(std::string(poll_raw))) {
        return std::nullopt;
      }
    }
  }
  if (calls <= static_cast<std::size_t>(kMaxCallsPerPoll)) return std::nullopt;
  return std::make_pair(std::move(response), calls);
}

Transition interpret_exit(const pb::RunResponse& response, DispatchStatus status) {
  const pb::Exit& exit = response.exit();
  if (exit.has_tail_call()) {
    // Whatever the status: the Python SDK sends tail calls as TEMPORARY_ERROR.
    Transition t;
    t.kind = Transition::Kind::kTailCall;
    t.status = status;
    t.function = exit.tail_call().function();
    exit.tail_call().input().SerializeToString(&t.input);
    return t;
  }
  const pb::CallResult& result = exit.result();
  std::optional<CallError> error;
  if (result.has_error()) {
    error = CallError{result.error().type(), result.error().message(),
                      result.error().SerializeAsString()};
  }
  if (status == DispatchStatus::kIncompatibleState) {
    Transition t = retry_because(status, error ? error->message : "incompatible coroutine state");
    t.kind = exit.hold() ? Transition::Kind::kHold : Transition::Kind::kRestart;
    if (exit.hold() && error && !error->type.empty()) t.reason.type = error->type;
    return t;
  }
  if (protocol::is_temporary(status)) {
    Transition t = retry_because(status, error ? error->message : "");
    if (error && !error->type.empty()) t.reason.type = error->type;
    // The attempt's whole error, for the dashboard (a Python traceback): the
    // call's final error replaces it, bytes and all.
    if (error) t.reason.encoded = error->encoded;
    return t;
  }
  CallEnd end;
  end.succeeded = status == DispatchStatus::kOk;
  end.call_status = static_cast<int>(status);
  if (end.succeeded) {
    std::string output;
    if (result.has_output()) {
      result.output().SerializeToString(&output);
      end.output = std::move(output);
    }
  } else {
    end.error = error.value_or(CallError{std::string(protocol::status_name(status)), ""});
    if (end.error->type.empty()) end.error->type = protocol::status_name(status);
  }
  return finish_with(std::move(end), status);
}

}  // namespace

CallEnd failure_end(DispatchStatus status, std::string message) {
  CallEnd end;
  end.succeeded = false;
  end.call_status = static_cast<int>(status);
  end.error = CallError{std::string(protocol::status_name(status)), std::move(message)};
  return end;
}

std::string build_run_request(const ClaimedCall& claimed) {
  const CallRecord& call = claimed.call;
  pb::RunRequest request;
  request.set_function(call.function);
  request.set_dispatch_id(call.id);
  request.set_parent_dispatch_id(call.parent_id);
  request.set_root_dispatch_id(call.root_id);
  set_timestamp(request.mutable_creation_time(), call.started_at);
  request.set_attempt(static_cast<std::uint32_t>(std::max(call.attempts, 0)));
  set_timestamp(request.mutable_expiration_time(), call.expires_at.value_or(kNeverExpires));
  if (!call.poll) {
    request.mutable_input()->ParseFromString(call.input);
    return request.SerializeAsString();
  }
  pb::PollResult* poll = request.mutable_poll_result();
  poll->set_arrival_order(true);   // claim() lists a call's inbox by arrival
  poll->set_journal_deltas(true);  // the store keeps them (PollState::delta)
  if (call.poll->member == pb::Poll::kTypedCoroutineStateFieldNumber) {
    poll->mutable_typed_coroutine_state()->ParseFromString(call.poll->state);
  } else {
    poll->set_coroutine_state(call.poll->state);
  }
  for (const auto& result : claimed.results) {
    fill_call_result(poll->add_results(), result.child_id, result.correlation_id, result.output,
                     result.error);
  }
  if (call.poll_error) fill_error(poll->mutable_error(), *call.poll_error);
  return request.SerializeAsString();
}

std::string build_call_result(const CallRecord& call) {
  pb::CallResult result;
  bool failed = call.status != RunStatus::kSucceeded;
  fill_call_result(&result, call.id, call.correlation_id, call.output,
                   failed ? call.error : std::nullopt);
  return result.SerializeAsString();
}

std::vector<std::string> delivered_results(const ClaimedCall& claimed) {
  std::vector<std::string> ids;
  ids.reserve(claimed.results.size());
  for (const auto& result : claimed.results) ids.push_back(result.child_id);
  return ids;
}

bool continues_carried_journal(const CallRecord& call, const PollState& poll) {
  google::protobuf::Any carried;
  if (!call.poll || !carried.ParseFromString(call.poll->state)) return false;
  auto revision = protocol::state_revision(carried.type_url(), carried.value());
  return revision && revision->revision != 0 && poll.base_revision == revision->revision &&
         poll.revision == revision->revision + 1;
}

Transition interpret_reply(const CallRecord& call, const EndpointReply& reply, Micros now,
                           const PollDefaults& defaults) {
  if (!reply.responded) {
    if (protocol::is_temporary(reply.failure)) {
      return retry_because(reply.failure, reply.failure_message);
    }
    return finish_with(failure_end(reply.failure, reply.failure_message), reply.failure);
  }
  if (reply.http_status != 200 || !protocol::is_proto_content_type(reply.content_type)) {
    return interpret_http_failure(reply);
  }
  if (auto oversized = with_poll_calls_left_out(reply.body)) {
    Transition t = interpret_poll(call, oversized->first.poll(), now, defaults);
    t.kind = Transition::Kind::kRejectChildren;
    t.reason = CallError{"InvalidArgument",
                         "a Poll makes at most " + std::to_string(kMaxCallsPerPoll) +
                             " calls; this one made " + std::to_string(oversized->second) +
                             ": none was dispatched (split them into several Polls)"};
    t.children.clear();
    return t;
  }
  pb::RunResponse response;
  if (!response.ParseFromString(reply.body)) {
    return finish_with(failure_end(DispatchStatus::kInvalidResponse,
                                   "the endpoint's RunResponse is not valid protobuf"),
                       DispatchStatus::kInvalidResponse);
  }
  auto status =
      protocol::dispatch_status_from_wire(response.status()).value_or(DispatchStatus::kUnspecified);
  if (response.has_poll()) return interpret_poll(call, response.poll(), now, defaults);
  Transition t = interpret_exit(response, status);
  // Only a delta can be not held: a JournalNotHeld to a whole journal is an
  // ordinary error, so a confused process cannot make the server loop. Only
  // the first attempt after a Poll carries a delta back (storage/call.hpp):
  // a later one that carried the delta's type carried a broken base.
  if (t.kind == Transition::Kind::kRetry && t.reason.type == protocol::kJournalNotHeld &&
      call.attempts == 1 && call.poll && protocol::is_journal_delta(call.poll->state)) {
    t.kind = Transition::Kind::kResendWhole;
  }
  return t;
}

}  // namespace ratchet::engine
