#include "engine/attempt.hpp"

#include <gtest/gtest.h>

#include <limits>

#include "dispatch/sdk/v1/function.pb.h"
#include "google/protobuf/wrappers.pb.h"
#include "protocol/connect.hpp"
#include "protocol/journal_delta.hpp"

namespace ratchet::engine {
namespace {

namespace pb = dispatch::sdk::v1;
using protocol::DispatchStatus;

std::string any_string(const std::string& value) {
  google::protobuf::StringValue s;
  s.set_value(value);
  google::protobuf::Any any;
  any.PackFrom(s);
  return any.SerializeAsString();
}

EndpointReply proto_reply(const pb::RunResponse& response) {
  EndpointReply reply;
  reply.responded = true;
  reply.http_status = 200;
  reply.content_type = "application/proto";
  reply.body = response.SerializeAsString();
  return reply;
}

CallRecord a_call() {
  CallRecord call;
  call.id = "id-1";
  call.function = "f";
  call.endpoint = "http://127.0.0.1:9";
  call.root_id = "id-1";
  call.input = any_string("in");
  call.started_at = 1'700'000'000'123'456;
  return call;
}

TEST(BuildRunRequest, CarriesIdentityInputAndCreationTime) {
  ClaimedCall claimed{a_call(), {}};
  pb::RunRequest request;
  ASSERT_TRUE(request.ParseFromString(build_run_request(claimed)));
  EXPECT_EQ(request.function(), "f");
  EXPECT_EQ(request.dispatch_id(), "id-1");
  EXPECT_EQ(request.root_dispatch_id(), "id-1");
  EXPECT_EQ(request.parent_dispatch_id(), "");
  EXPECT_EQ(request.input().SerializeAsString(), claimed.call.input) << "byte for byte";
  EXPECT_EQ(request.creation_time().seconds(), 1'700'000'000);
  EXPECT_EQ(request.creation_time().nanos(), 123'456'000);
}

TEST(BuildRunRequest, CarriesTheCallsExpirationOrTheLargestTimestampForNone) {
  ClaimedCall claimed{a_call(), {}};
  pb::RunRequest request;
  ASSERT_TRUE(request.ParseFromString(build_run_request(claimed)));
  // Unset, an SDK reads 1970-01-01: dispatch-py's Input.expiration_time would say
  // the call expired before it was made.
  ASSERT_TRUE(request.has_expiration_time());
  EXPECT_EQ(request.expiration_time().seconds(), 253402300799) << "9999-12-31T23:59:59Z";
  EXPECT_EQ(request.expiration_time().nanos(), 0);

  claimed.call.expires_at = 1'700'000'060'000'001;
  ASSERT_TRUE(request.ParseFromString(build_run_request(claimed)));
  EXPECT_EQ(request.expiration_time().seconds(), 1'700'000'060);
  EXPECT_EQ(request.expiration_time().nanos(), 1'000);
}

// An Error as dispatch-py sends one: a pickled exception, a traceback, and a field this
// server does not know (appended last, where protobuf writes unknown fields back).
// A pickle's first bytes, NUL included.
const std::string kPickled("\x80\x04\x95 pickled ValueError\x00.",
                           sizeof("\x80\x04\x95 pickled ValueError\x00.") - 1);

std::string python_error() {
  pb::Error error;
  error.set_type("ValueError");
  error.set_message("something went wrong!");
  error.set_value(kPickled);
  error.set_traceback("Traceback (most recent call last):\n  File \"app.py\", line 3\n");
  std::string bytes = error.SerializeAsString();
  bytes += std::string("\x4a\x03xyz", 5);  // field 9, length-delimited: "xyz"
  return bytes;
}

// The scheduler asks the store whether it refuses a Poll's delta only when the
// delta does not continue the journal its attempt carried (a round trip saved
// on every step of an honest process).
TEST(ContinuesCarriedJournal, OnlyADeltaOnTheRevisionTheAttemptCarried) {
  ratchet::sdk::v1::JournalDelta echoed;
  echoed.set_base_revision(3);
  echoed.mutable_changes()->set_revision(4);
  google::protobuf::Any any;
  any.PackFrom(echoed);
  CallRecord call = a_call();
  call.poll = PollState{};
  call.poll->state = any.SerializeAsString();
  PollState next;
  next.delta = true;
  next.base_revision = 4;
  next.revision = 5;
  EXPECT_TRUE(continues_carried_journal(call, next));
  next.base_revision = 3;
  EXPECT_FALSE(continues_carried_journal(call, next)) << "another base";
  next.base_revision = 4;
  next.revision = 7;
  EXPECT_FALSE(continues_carried_journal(call, next)) << "a revision that skips";
  next.revision = 5;
  call.poll->state = "not an any";
  EXPECT_FALSE(continues_carried_journal(call, next));
  call.poll.reset();
  EXPECT_FALSE(continues_carried_journal(call, next)) << "no journal carried: the input was";
}

TEST(InterpretReply, AnEndpointsErrorIsKeptWholeBesideItsTypeAndMessage) {
  pb::RunResponse response;
  response.set_status(pb::STATUS_PERMANENT_ERROR);
  ASSERT_TRUE(
      response.mutable_exit()->mutable_result()->mutable_error()->ParseFromString(python_error()));
  auto t = interpret_reply(a_call(), proto_reply(response), 0);
  ASSERT_EQ(t.kind, Transition::Kind::kFinish);
  EXPECT_EQ(t.end.error->type, "ValueError");
  EXPECT_EQ(t.end.error->message, "something went wrong!");
  EXPECT_EQ(t.end.error->encoded, python_error()) << "byte for byte, unknown field included";
}

TEST(InterpretReply, ErrorsTheServerMakesHaveATypeAndAMessageOnly) {
  pb::RunResponse response;
  response.set_status(pb::STATUS_PERMANENT_ERROR);  // and no error: the server names it
  auto no_error = interpret_reply(a_call(), proto_reply(response), 0);
  EXPECT_EQ(no_error.end.error->type, "STATUS_PERMANENT_ERROR");
  EXPECT_TRUE(no_error.end.error->encoded.empty());
  EndpointReply refused;
  refused.failure = DispatchStatus::kTcpError;
  refused.failure_message = "connection refused";
  EXPECT_TRUE(interpret_reply(a_call(), refused, 0).reason.encoded.empty());
}

// Only the first attempt after a Poll carries a delta back (the one its
// process sent): a JournalNotHeld to the state of a later attempt, even of
// the delta's type (a base stored so by an older server), is an ordinary
// temporary error, with its backoff and limit, not a resend at once.
TEST(InterpretReply, OnlyTheFirstAttemptAfterAPollCanBeResentWhole) {
  ratchet::sdk::v1::JournalDelta delta;
  delta.set_base_revision(1);
  google::protobuf::Any any;
  any.PackFrom(delta);
  CallRecord call = a_call();
  call.poll = PollState{};
  call.poll->state = any.SerializeAsString();
  pb::RunResponse response;
  response.set_status(pb::STATUS_TEMPORARY_ERROR);
  response.mutable_exit()->mutable_result()->mutable_error()->set_type(
      std::string(protocol::kJournalNotHeld));
  call.attempts = 1;
  EXPECT_EQ(interpret_reply(call, proto_reply(response), 0).kind, Transition::Kind::kResendWhole);
  call.attempts = 2;
  EXPECT_EQ(interpret_reply(call, proto_reply(response), 0).kind, Transition::Kind::kRetry);
}

TEST(BuildRunRequest, RelaysAChildsErrorAsItCame) {
  ClaimedCall claimed{a_call(), {}};
  claimed.call.poll = PollState{1, "state", 1, 10, 0};
  CallError endpoint_error{"ValueError", "something went wrong!", python_error()};
  claimed.results.push_back(ChildResult{"child-1", 7, std::nullopt, endpoint_error});
  claimed.results.push_back(ChildResult{"child-2", 8, std::nullopt, CallError{"TIMEOUT", "slow"}});
  pb::RunRequest request;
  ASSERT_TRUE(request.ParseFromString(build_run_request(claimed)));
  const auto& results = request.poll_result().results();
  ASSERT_EQ(results.size(), 2);
  EXPECT_EQ(results[0].error().SerializeAsString(), python_error());
  EXPECT_EQ(results[0].error().value(), kPickled);
  EXPECT_EQ(results[1].error().type(), "TIMEOUT");
  EXPECT_EQ(results[1].error().message(), "slow");
  EXPECT_TRUE(results[1].error().value().empty());
}

TEST(BuildCallResult, AnswersWaitWithTheErrorAsItCame) {
  CallRecord call = a_call();
  call.status = RunStatus::kFailed;
  call.correlation_id = 5;
  call.error = CallError{"ValueError", "something went wrong!", python_error()};
  pb::CallResult result;
  ASSERT_TRUE(result.ParseFromString(build_call_result(call)));
  EXPECT_EQ(result.dispatch_id(), "id-1");
  EXPECT_EQ(result.correlation_id(), 5u);
  EXPECT_EQ(result.error().SerializeAsString(), python_error());

  call.status = RunStatus::kSucceeded;
  call.error.reset();
  call.output = any_string("out");
  ASSERT_TRUE(result.ParseFromString(build_call_result(call)));
  EXPECT_FALSE(result.has_error());
  EXPECT_EQ(result.output().SerializeAsString(), any_string("out"));
}

TEST(BuildRunRequest, CarriesTheAttemptAsRatchetsExtension) {
  ClaimedCall claimed{a_call(), {}};
  claimed.call.attempts = 3;  // the claim counted this attempt
  pb::RunRequest request;
  ASSERT_TRUE(request.ParseFromString(build_run_request(claimed)));
  EXPECT_EQ(request.attempt(), 3u);
}

TEST(BuildRunRequest, ResumesACoroutineInTheSameOneofMember) {
  for (int member : {1, 6}) {
    ClaimedCall claimed{a_call(), {}};
    google::protobuf::Any typed;
    typed.set_type_url("type.googleapis.com/x.State");
    typed.set_value("abc");
    std::string state = member == 6 ? typed.SerializeAsString() : std::string("\x00raw", 4);
    claimed.call.poll = PollState{member, state, 1, 10, 0};
    claimed.results.push_back(ChildResult{"child-1", 42, any_string("r"), std::nullopt});
    claimed.results.push_back(ChildResult{"child-2", 43, std::nullopt, CallError{"E", "m"}});
    pb::RunRequest request;
    ASSERT_TRUE(request.ParseFromString(build_run_request(claimed)));
    ASSERT_TRUE(request.has_poll_result());
    const auto& poll = request.poll_result();
    if (member == 6) {
      ASSERT_TRUE(poll.has_typed_coroutine_state());
      EXPECT_EQ(poll.typed_coroutine_state().SerializeAsString(), state);
    } else {
      ASSERT_EQ(poll.state_case(), pb::PollResult::kCoroutineState);
      EXPECT_EQ(poll.coroutine_state(), state);
    }
    ASSERT_EQ(poll.results_size(), 2);
    EXPECT_EQ(poll.results(0).correlation_id(), 42u);
    EXPECT_EQ(poll.results(0).dispatch_id(), "child-1");
    EXPECT_EQ(poll.results(1).error().type(), "E");
    EXPECT_EQ(delivered_results(claimed), (std::vector<std::string>{"child-1", "child-2"}));
  }
}

TEST(InterpretReply, OkExitFinishesWithTheOutput) {
  pb::RunResponse response;
  response.set_status(pb::STATUS_OK);
  response.mutable_exit()->mutable_result()->mutable_output()->ParseFromString(any_string("out"));
  auto t = interpret_reply(a_call(), proto_reply(response), 0);
  EXPECT_EQ(t.kind, Transition::Kind::kFinish);
  EXPECT_TRUE(t.end.succeeded);
  EXPECT_EQ(t.end.output, any_string("out"));
}

TEST(InterpretReply, ProtoWithMediaTypeParametersIsARunResponse) {
  pb::RunResponse response;
  response.set_status(pb::STATUS_OK);
  response.mutable_exit()->mutable_result()->mutable_output()->ParseFromString(any_string("out"));
  EndpointReply reply = proto_reply(response);
  reply.content_type = "application/proto; charset=utf-8";
  auto t = interpret_reply(a_call(), reply, 0);
  EXPECT_EQ(t.kind, Transition::Kind::kFinish);
  EXPECT_TRUE(t.end.succeeded);
}

TEST(InterpretReply, IncompatibleStateWithHoldHoldsTheCallWithTheReport) {
  pb::RunResponse response;
  response.set_status(pb::STATUS_INCOMPATIBLE_STATE);
  response.mutable_exit()->set_hold(true);
  auto* error = response.mutable_exit()->mutable_result()->mutable_error();
  error->set_type("IncompatibleStateError");
  error->set_message("step 5 diverged");
  auto t = interpret_reply(a_call(), proto_reply(response), 0);
  EXPECT_EQ(t.kind, Transition::Kind::kHold);
  EXPECT_EQ(t.reason.type, "IncompatibleStateError");
  EXPECT_EQ(t.reason.message, "step 5 diverged");
  // Hold means nothing with another status: an error is an error.
  response.set_status(pb::STATUS_PERMANENT_ERROR);
  EXPECT_EQ(interpret_reply(a_call(), proto_reply(response), 0).kind, Transition::Kind::kFinish);
}

TEST(InterpretReply, TemporaryStatusesRetryAndPermanentOnesFail) {
  for (auto [status, kind] : {std::pair{pb::STATUS_TEMPORARY_ERROR, Transition::Kind::kRetry},
                              std::pair{pb::STATUS_THROTTLED, Transition::Kind::kRetry},
                              std::pair{pb::STATUS_TIMEOUT, Transition::Kind::kRetry},
                              std::pair{pb::STATUS_INCOMPATIBLE_STATE, Transition::Kind::kRestart},
                              std::pair{pb::STATUS_PERMANENT_ERROR, Transition::Kind::kFinish},
                              std::pair{pb::STATUS_INVALID_ARGUMENT, Transition::Kind::kFinish},
                              std::pair{pb::STATUS_UNSPECIFIED, Transition::Kind::kFinish}}) {
    pb::RunResponse response;
    response.set_status(status);
    auto* error = response.mutable_exit()->mutable_result()->mutable_error();
    error->set_type("ValueError");
    error->set_message("bad");
    auto t = interpret_reply(a_call(), proto_reply(response), 0);
    EXPECT_EQ(t.kind, kind) << status;
    if (kind == Transition::Kind::kFinish) {
      EXPECT_FALSE(t.end.succeeded);
      EXPECT_EQ(t.end.error->type, "ValueError");
      EXPECT_EQ(t.end.call_status, status);
    }
  }
}

TEST(InterpretReply, KeepsAPythonErrorWholeWhetherItEndsTheCallOrIsRetried) {
  for (auto status : {pb::STATUS_PERMANENT_ERROR, pb::STATUS_TEMPORARY_ERROR}) {
    pb::RunResponse response;
    response.set_status(status);
    auto* error = response.mutable_exit()->mutable_result()->mutable_error();
    error->set_type("KeyError");
    error->set_message("'x'");
    error->set_traceback("Traceback (most recent call last):\n  File \"app.py\", line 3\n");
    auto t = interpret_reply(a_call(), proto_reply(response), 0);
    const CallError& kept = t.kind == Transition::Kind::kFinish ? *t.end.error : t.reason;
    EXPECT_EQ(kept.encoded, error->SerializeAsString()) << status;
  }
}

TEST(InterpretReply, TailCallWinsWhateverTheStatus) {
  pb::RunResponse response;
  response.set_status(pb::STATUS_TEMPORARY_ERROR);
  auto* tail = response.mutable_exit()->mutable_tail_call();
  tail->set_function("next");
  tail->mutable_input()->ParseFromString(any_string("x"));
  auto t = interpret_reply(a_call(), proto_reply(response), 0);
  EXPECT_EQ(t.kind, Transition::Kind::kTailCall);
  EXPECT_EQ(t.function, "next");
  EXPECT_EQ(t.input, any_string("x"));
}

TEST(InterpretReply, PollDefaultsAndClampsWhatSdksLeaveOut) {
  pb::RunResponse response;
  auto* poll = response.mutable_poll();
  poll->set_coroutine_state("state");
  poll->set_min_results(0);
  poll->set_max_results(5000);
  auto* child = poll->add_calls();
  child->set_function("child");
  child->set_correlation_id(7);
  auto t = interpret_reply(a_call(), proto_reply(response), 1000);
  ASSERT_EQ(t.kind, Transition::Kind::kSuspend);
  EXPECT_EQ(t.poll.member, 1);
  EXPECT_EQ(t.poll.min_results, 1);
  EXPECT_EQ(t.poll.max_results, 1000);
  EXPECT_EQ(t.poll.deadline, 1000 + 5 * 60 * kMicrosPerSecond);
  ASSERT_EQ(t.children.size(), 1u);
  EXPECT_EQ(t.children[0].endpoint, "http://127.0.0.1:9") << "inherits the parent's endpoint";
  EXPECT_EQ(t.children[0].correlation_id, 7u);
}

// Found by the protocol review: a Poll had no bound on its calls, and each cost
// the server about 400 bytes before its transaction: a 64 MiB answer of 5-byte
// calls (13 million) made it allocate some 5 GB, and one that killed it came
// back after the restart, the same. Over the bound, the calls are not even
// parsed, and the caller is re-run with poll_result.error (PROTOCOL.md: calls
// that cannot be dispatched), its state kept.
TEST(InterpretReply, APollOverTheBoundOnCallsRerunsTheCallerWithAnErrorAndDispatchesNone) {
  pb::RunResponse response;
  response.set_status(pb::STATUS_OK);
  auto* poll = response.mutable_poll();
  poll->set_coroutine_state("state");
  poll->set_min_results(3);
  for (int i = 0; i < kMaxCallsPerPoll; ++i) poll->add_calls()->set_function("leaf");
  auto at_the_bound = interpret_reply(a_call(), proto_reply(response), 1000);
  ASSERT_EQ(at_the_bound.kind, Transition::Kind::kSuspend) << at_the_bound.reason.message;
  EXPECT_EQ(at_the_bound.children.size(), static_cast<std::size_t>(kMaxCallsPerPoll));

  poll->add_calls()->set_function("leaf");
  auto over = interpret_reply(a_call(), proto_reply(response), 1000);
  ASSERT_EQ(over.kind, Transition::Kind::kRejectChildren);
  EXPECT_TRUE(over.children.empty());
  EXPECT_EQ(over.reason.type, "InvalidArgument");
  EXPECT_NE(over.reason.message.find(std::to_string(kMaxCallsPerPoll + 1)), std::string::npos)
      << over.reason.message;
  EXPECT_EQ(over.poll.state, "state");
  EXPECT_EQ(over.poll.member, pb::Poll::kCoroutineStateFieldNumber);
  EXPECT_EQ(over.poll.min_results, 3);
}

// ratchet::sleep: a Poll with no calls and a max_wait suspends until then.
TEST(InterpretReply, APollWithNoCallsIsADurableSleepUntilItsMaxWait) {
  pb::RunResponse response;
  auto* poll = response.mutable_poll();
  poll->mutable_typed_coroutine_state()->set_type_url("type.googleapis.com/x.State");
  poll->mutable_max_wait()->set_seconds(3600);
  poll->set_min_results(1);
  auto t = interpret_reply(a_call(), proto_reply(response), 1000);
  ASSERT_EQ(t.kind, Transition::Kind::kSuspend);
  EXPECT_TRUE(t.children.empty());
  EXPECT_EQ(t.poll.deadline, 1000 + 3600 * kMicrosPerSecond);
  // A max_wait no clock can reach is clamped, not overflowed into the past.
  poll->mutable_max_wait()->set_seconds(std::numeric_limits<std::int64_t>::max());
  t = interpret_reply(a_call(), proto_reply(response), 1000);
  EXPECT_EQ(t.poll.deadline, 1000 + protocol::kMaxDurationMicros);
  // A sleep shorter than the clock's microsecond is due at once, not the
  // default five minutes that an unset max_wait gets.
  poll->mutable_max_wait()->set_seconds(0);
  poll->mutable_max_wait()->set_nanos(1);
  t = interpret_reply(a_call(), proto_reply(response), 1000);
  EXPECT_EQ(t.poll.deadline, 1001);
}

TEST(InterpretReply, AChildKeepsItsMaxAttemptsAndExpiration) {
  pb::RunResponse response;
  auto* poll = response.mutable_poll();
  poll->set_coroutine_state("state");
  auto* child = poll->add_calls();
  child->set_function("child");
  child->set_max_attempts(3);
  child->mutable_expiration()->set_seconds(60);
  auto t = interpret_reply(a_call(), proto_reply(response), 1000);
  ASSERT_EQ(t.children.size(), 1u);
  EXPECT_EQ(t.children[0].max_attempts, 3);
  EXPECT_EQ(t.children[0].expires_at, 1000 + 60 * kMicrosPerSecond);
}

TEST(InterpretReply, AnInvalidChildRejectsThePollWhole) {
  pb::RunResponse response;
  auto* poll = response.mutable_poll();
  poll->set_coroutine_state("state");
  poll->add_calls()->set_function("ok");
  poll->add_calls()->set_function("not a name!");
  auto t = interpret_reply(a_call(), proto_reply(response), 0);
  EXPECT_EQ(t.kind, Transition::Kind::kRejectChildren);
  EXPECT_TRUE(t.children.empty());
  EXPECT_FALSE(t.reason.message.empty());
}

TEST(InterpretReply, HttpFailuresAreClassified) {
  auto reply_with = [](int status, std::string content_type) {
    EndpointReply reply;
    reply.responded = true;
    reply.http_status = status;
    reply.content_type = std::move(content_type);
    return reply;
  };
  EXPECT_EQ(interpret_reply(a_call(), reply_with(503, "text/plain"), 0).kind,
            Transition::Kind::kRetry);
  EXPECT_EQ(interpret_reply(a_call(), reply_with(429, "text/plain"), 0).kind,
            Transition::Kind::kRetry);
  EXPECT_EQ(interpret_reply(a_call(), reply_with(404, "application/json"), 0).kind,
            Transition::Kind::kFinish);
  EXPECT_EQ(interpret_reply(a_call(), reply_with(501, "text/plain"), 0).kind,
            Transition::Kind::kFinish);
  auto wrong_type = interpret_reply(a_call(), reply_with(200, "text/html"), 0);
  EXPECT_EQ(wrong_type.kind, Transition::Kind::kFinish);
  EXPECT_EQ(wrong_type.end.call_status, pb::STATUS_INVALID_RESPONSE);
  auto garbage = reply_with(200, "application/proto");
  garbage.body = "\xff\xff\xff";
  EXPECT_EQ(interpret_reply(a_call(), garbage, 0).end.call_status, pb::STATUS_INVALID_RESPONSE);
  EndpointReply refused;
  refused.failure = DispatchStatus::kTcpError;
  EXPECT_EQ(interpret_reply(a_call(), refused, 0).kind, Transition::Kind::kRetry);
}

TEST(InterpretReply, AnEndpointsErrorTextKeepsItsLinesAndSaysHttp500Once) {
  EndpointReply reply;
  reply.responded = true;
  reply.http_status = 500;
  reply.content_type = "text/plain; charset=utf-8";
  reply.body = "500 Internal Server Error\r\n\r\nServer got itself in trouble: caf\xc3\xa9\n";
  auto t = interpret_reply(a_call(), reply, 0);
  ASSERT_EQ(t.kind, Transition::Kind::kRetry);
  EXPECT_EQ(t.reason.message,
            "the endpoint answered HTTP 500: 500 Internal Server Error\n\nServer got itself in "
            "trouble: caf\xc3\xa9");

  reply.http_status = 400;
  reply.content_type = "application/json";
  reply.body = R"({"code":"invalid_argument","message":"line one\nline two"})";
  t = interpret_reply(a_call(), reply, 0);
  ASSERT_EQ(t.kind, Transition::Kind::kFinish);
  EXPECT_EQ(t.end.error->message, "the endpoint answered HTTP 400: line one\nline two");
}

TEST(InterpretReply, ChildrenWithoutAnExpirationGetTheDefaultOne) {
  pb::RunResponse response;
  auto* poll = response.mutable_poll();
  poll->set_coroutine_state("state");
  poll->add_calls()->set_function("plain");
  auto* bounded = poll->add_calls();
  bounded->set_function("bounded");
  bounded->mutable_expiration()->set_seconds(10);
  auto t = interpret_reply(a_call(), proto_reply(response), 1000);
  ASSERT_EQ(t.children.size(), 2u);
  EXPECT_FALSE(t.children[0].expires_at) << "no default: no expiration";
  EXPECT_EQ(t.children[1].expires_at, 1000 + 10 * kMicrosPerSecond);

  PollDefaults defaults;
  defaults.expiration = 60 * kMicrosPerSecond;
  t = interpret_reply(a_call(), proto_reply(response), 1000, defaults);
  EXPECT_EQ(t.children[0].expires_at, 1000 + 60 * kMicrosPerSecond);
  EXPECT_EQ(t.children[1].expires_at, 1000 + 10 * kMicrosPerSecond);
}

}  // namespace
}  // namespace ratchet::engine
