#include "test_endpoint.hpp"

#include <google/protobuf/wrappers.pb.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>
#include <stdexcept>
#include <thread>

#include "dispatch/sdk/v1/function.pb.h"
#include "protocol/connect.hpp"
#include "protocol/values.hpp"

namespace ratchet::testing {
namespace {

namespace pb = dispatch::sdk::v1;
using Steady = std::chrono::steady_clock;
using nlohmann::json;

std::int64_t steady_micros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(Steady::now().time_since_epoch())
      .count();
}

http::Response connect_error(int http_status, protocol::ConnectCode code, std::string message) {
  return http::Response::with_body(http_status, std::string(protocol::kJsonContentType),
                                   protocol::connect_error_body(code, message));
}

http::Response proto_response(const pb::RunResponse& response) {
  return http::Response::with_body(200, std::string(protocol::kProtoContentType),
                                   response.SerializeAsString());
}

http::Response exit_ok(const google::protobuf::Any& output) {
  pb::RunResponse response;
  response.set_status(pb::STATUS_OK);
  *response.mutable_exit()->mutable_result()->mutable_output() = output;
  return proto_response(response);
}

http::Response exit_error(pb::Status status, const std::string& type, const std::string& message,
                          const std::string& traceback = "") {
  pb::RunResponse response;
  response.set_status(status);
  pb::Error* error = response.mutable_exit()->mutable_result()->mutable_error();
  error->set_type(type);
  error->set_message(message);
  error->set_traceback(traceback);
  return proto_response(response);
}

std::string text_of(const google::protobuf::Any& any) {
  auto value = protocol::unpack_to_json(any);
  if (!value.is_ok()) return "<" + std::string(protocol::type_name_of(any)) + ">";
  return value->is_string() ? value->get<std::string>() : value->dump();
}

pb::Call child_call(std::uint64_t correlation_id, const std::string& endpoint,
                    const std::string& function, const google::protobuf::Any& input) {
  pb::Call call;
  call.set_correlation_id(correlation_id);
  call.set_endpoint(endpoint);
  call.set_function(function);
  *call.mutable_input() = input;
  return call;
}

void set_max_wait(pb::Poll* poll, int seconds) { poll->mutable_max_wait()->set_seconds(seconds); }

// An answer, and when to send it.
struct Answer {
  http::Response response;
  std::chrono::milliseconds delay{0};
  bool hang = false;
  bool gated = false;  // held until open_gate()
};

// Runs callbacks at their due time on one thread of its own.
class Delayer {
 public:
  Delayer() : thread_([this] { loop(); }) {}
  ~Delayer() { stop(); }

  void post(Steady::time_point at, std::function<void()> fn) {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return;
      due_.emplace(at, std::move(fn));
    }
    wake_.notify_one();
  }

  void stop() {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return;
      stopping_ = true;
    }
    wake_.notify_one();
    if (thread_.joinable()) thread_.join();
    due_.clear();
  }

 private:
  void loop() {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
      if (due_.empty()) {
        wake_.wait(lock);
        continue;
      }
      auto first = due_.begin();
      if (first->first > Steady::now()) {
        wake_.wait_until(lock, first->first);
        continue;
      }
      auto fn = std::move(first->second);
      due_.erase(first);
      lock.unlock();
      fn();
      lock.lock();
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::multimap<Steady::time_point, std::function<void()>> due_;
  bool stopping_ = false;
  std::thread thread_;
};

// The state of a fanout coroutine, as JSON in its opaque coroutine state.
struct FanoutState {
  int k = 0;
  int min = 1;
  int max = 1;
  bool typed = false;
  std::int64_t sum = 0;
  std::string seen;  // one '0' or '1' per child

  int outstanding() const { return static_cast<int>(std::count(seen.begin(), seen.end(), '0')); }

  json to_json() const {
    return json{{"k", k},         {"min", min}, {"max", max},
                {"typed", typed}, {"sum", sum}, {"seen", seen}};
  }
  static std::optional<FanoutState> from_json(const json& j) {
    if (!j.is_object()) return std::nullopt;
    FanoutState s;
    s.k = j.value("k", 0);
    s.min = j.value("min", 1);
    s.max = j.value("max", s.k);
    s.typed = j.value("typed", false);
    s.sum = j.value("sum", std::int64_t{0});
    s.seen = j.value("seen", std::string(static_cast<std::size_t>(s.k), '0'));
    return s;
  }
};

}  // namespace

std::optional<std::int64_t> int64_of(const google::protobuf::Any& any) {
  google::protobuf::Int64Value value;
  if (!any.UnpackTo(&value)) return std::nullopt;
  return value.value();
}

std::string python_error_bytes() {
  pb::Error error;
  error.set_type("ValueError");
  error.set_message("something went wrong!");
  static constexpr char kPickle[] =
      "\x80\x04\x95\x2c\x00"
      "builtins\nValueError\x94.";
  error.set_value(std::string(kPickle, sizeof(kPickle) - 1));
  error.set_traceback("Traceback (most recent call last):\n  File \"app.py\", line 1\n");
  return error.SerializeAsString() + std::string("\x4a\x03xyz", 5);  // field 9: "xyz"
}

struct TestEndpoint::Impl {
  EndpointOptions options;
  std::unique_ptr<http::Server> server;
  Delayer delayer;

  mutable std::mutex mutex;
  mutable std::condition_variable arrived;
  std::optional<protocol::VerificationKey> key;
  std::vector<RecordedRequest> records;
  std::vector<std::string> violations;
  std::map<std::string, int> runs;  // "<dispatch id>/<what>" -> count
  std::vector<http::Responder> held;
  bool gate_open = false;
  std::vector<std::pair<http::Responder, http::Response>> gated;
  int rejected = 0;
  int verified = 0;
  std::mt19937 random{std::random_device{}()};

  // Set before the server starts when the port is given, so that a request in
  // the first instants finds it.
  std::atomic<std::uint16_t> port{0};

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port.load()); }

  int count_run(const std::string& id, const std::string& what) {
    std::lock_guard lock(mutex);
    return ++runs[id + "/" + what];
  }

  void violation(std::string what) {
    std::lock_guard lock(mutex);
    violations.push_back(std::move(what));
  }

  std::chrono::milliseconds random_delay() {
    if (options.max_delay <= options.min_delay) return options.min_delay;
    std::lock_guard lock(mutex);
    std::uniform_int_distribution<long> pick(options.min_delay.count(), options.max_delay.count());
    return std::chrono::milliseconds(pick(random));
  }

  void handle(http::Request request, http::Responder responder);
  std::optional<http::Response> check_signature(const http::Request& request);
  Answer run(const pb::RunRequest& request);
  Answer start_fanout(const pb::RunRequest& request, const json& spec);
  Answer resume_fanout(const pb::RunRequest& request);
  Answer incompatible(const pb::RunRequest& request);
  Answer abandon_children(const pb::RunRequest& request);
  Answer second_generation(const pb::RunRequest& request);
  Answer bad_children(const pb::RunRequest& request);
  Answer child_fails(const pb::RunRequest& request);
  Answer relay_error(const pb::RunRequest& request);
  http::Response poll_fanout(const FanoutState& state, std::vector<pb::Call> calls);
};

std::optional<http::Response> TestEndpoint::Impl::check_signature(const http::Request& request) {
  std::optional<protocol::VerificationKey> current;
  {
    std::lock_guard lock(mutex);
    current = key;
  }
  if (!current) return std::nullopt;
  protocol::HeaderLookup lookup = [&](std::string_view name) -> std::optional<std::string> {
    std::optional<std::string> value;
    for (const auto& header : request.headers) {
      if (!http::iequals(header.name, name)) continue;
      value = value ? *value + ", " + header.value : header.value;
    }
    return value;
  };
  Status verified_status = protocol::verify_request(*current, request.method, request.target,
                                                    request.header("Host").value_or(""), lookup,
                                                    request.body, SystemClock::instance().now());
  std::lock_guard lock(mutex);
  if (verified_status.is_ok()) {
    ++verified;
    return std::nullopt;
  }
  ++rejected;
  int status = http_status_for(verified_status.code());
  return connect_error(status, protocol::connect_code_for(verified_status.code()),
                       verified_status.message());
}

void TestEndpoint::Impl::handle(http::Request request, http::Responder responder) {
  if (request.path() != protocol::kRunPath) {
    responder.send(connect_error(404, protocol::ConnectCode::kNotFound, "no such path"));
    return;
  }
  if (request.body.empty() || request.body.size() > protocol::kMaxRequestBodyBytes) {
    responder.send(connect_error(400, protocol::ConnectCode::kInvalidArgument, "bad body size"));
    return;
  }
  RecordedRequest record;
  record.received_us = steady_micros();
  pb::RunRequest run_request;
  bool parsed = run_request.ParseFromString(request.body);
  if (parsed) {
    record.function = run_request.function();
    record.dispatch_id = run_request.dispatch_id();
    record.parent_id = run_request.parent_dispatch_id();
    record.root_id = run_request.root_dispatch_id();
    record.creation_time_us = run_request.creation_time().seconds() * 1'000'000 +
                              run_request.creation_time().nanos() / 1000;
    record.expiration_time_us = run_request.expiration_time().seconds() * 1'000'000 +
                                run_request.expiration_time().nanos() / 1000;
    if (run_request.has_poll_result()) {
      const pb::PollResult& poll = run_request.poll_result();
      record.resumed = true;
      record.state_member = static_cast<int>(poll.state_case());
      record.state = poll.has_typed_coroutine_state()
                         ? poll.typed_coroutine_state().SerializeAsString()
                         : poll.coroutine_state();
      record.poll_error = poll.has_error();
      record.poll_error_message = poll.error().message();
      for (const auto& result : poll.results()) {
        record.results.emplace_back(result.correlation_id(), result.dispatch_id());
      }
    } else {
      record.input = run_request.input().SerializeAsString();
    }
  }
  Answer answer;
  if (auto refused = check_signature(request)) {
    answer.response = std::move(*refused);
  } else if (!parsed) {
    answer.response =
        connect_error(400, protocol::ConnectCode::kInvalidArgument, "not a RunRequest");
  } else {
    if (run_request.dispatch_id().empty() || run_request.root_dispatch_id().empty()) {
      violation("RunRequest for " + run_request.function() + " without dispatch or root id");
    }
    answer = run(run_request);
  }
  record.http_status = answer.hang ? 0 : answer.response.status;
  if (options.on_request) options.on_request(record);
  bool hold = answer.hang;
  {
    std::lock_guard lock(mutex);
    if (answer.hang) held.push_back(responder);
    if (answer.gated && !gate_open) {
      gated.emplace_back(responder, std::move(answer.response));
      hold = true;
    }
    records.push_back(std::move(record));
  }
  arrived.notify_all();
  if (hold) return;
  auto delay = answer.delay + random_delay();
  if (delay.count() <= 0) {
    responder.send(std::move(answer.response));
    return;
  }
  delayer.post(Steady::now() + delay, [responder, response = std::move(answer.response)]() mutable {
    responder.send(std::move(response));
  });
}

Answer TestEndpoint::Impl::run(const pb::RunRequest& request) {
  const std::string& function = request.function();
  const std::string& id = request.dispatch_id();
  const auto& input = request.input();
  if (function == "fanout" || function == "tree" || function == "mid") {
    if (request.has_poll_result()) return resume_fanout(request);
    if (function == "tree") {
      return start_fanout(
          request,
          json{{"k", 2}, {"min", 2}, {"max", 2}, {"child", "mid"}, {"inherit_endpoint", true}});
    }
    if (function == "mid") {
      return start_fanout(request, json{{"k", 2},
                                        {"min", 2},
                                        {"max", 2},
                                        {"child", "echo"},
                                        {"base", int64_of(input).value_or(0)},
                                        {"inherit_endpoint", true}});
    }
    auto spec = protocol::unpack_to_json(input);
    if (!spec.is_ok() || !spec->is_object()) {
      return {exit_error(pb::STATUS_INVALID_ARGUMENT, "TypeError", "fanout takes an object")};
    }
    return start_fanout(request, *spec);
  }
  if (function == "incompatible") return incompatible(request);
  if (function == "restart_outstanding" || function == "tail_outstanding") {
    return abandon_children(request);
  }
  if (function == "second_generation") return second_generation(request);
  if (function == "bad_children") return bad_children(request);
  if (function == "child_fails") return child_fails(request);
  if (function == "relay_error") return relay_error(request);
  if (request.has_poll_result()) {
    violation(function + " " + id + " resumed, but it never polled");
    return {exit_error(pb::STATUS_PERMANENT_ERROR, "Unexpected", "not a coroutine")};
  }
  if (function == "echo") return {exit_ok(input)};
  if (function == "slow") {
    return {exit_ok(input), std::chrono::milliseconds(int64_of(input).value_or(0))};
  }
  if (function == "fail_then_ok") {
    int attempt = count_run(id, function);
    if (attempt <= int64_of(input).value_or(0)) {
      return {exit_error(pb::STATUS_TEMPORARY_ERROR, "Transient",
                         "attempt " + std::to_string(attempt) + " fails on purpose")};
    }
    return {exit_ok(input)};
  }
  if (function == "throttle" || function == "http500") {
    int attempt = count_run(id, function);
    if (attempt <= int64_of(input).value_or(1 << 30)) {
      return {function == "throttle"
                  ? connect_error(429, protocol::ConnectCode::kResourceExhausted, "slow down")
                  : connect_error(500, protocol::ConnectCode::kInternal, "it broke")};
    }
    return {exit_ok(input)};
  }
  if (function == "permanent") {
    return {exit_error(pb::STATUS_PERMANENT_ERROR, "ValueError",
                       "permanent failure for " + text_of(input),
                       "Traceback (most recent call last):\n  File \"app.py\", line 7, in "
                       "permanent\nValueError: permanent failure for " +
                           text_of(input) + "\n")};
  }
  if (function == "python_error") {
    pb::RunResponse response;
    response.set_status(pb::STATUS_PERMANENT_ERROR);
    response.mutable_exit()->mutable_result()->mutable_error()->ParseFromString(
        python_error_bytes());
    return {proto_response(response)};
  }
  if (function == "text500") {
    return {http::Response::with_body(500, "text/plain; charset=utf-8", std::string(kText500))};
  }
  if (function == "hang") return {http::Response{}, {}, true};
  if (function == "gated") return {exit_ok(input), {}, false, true};
  if (function == "garbage") {
    return {http::Response::with_body(200, std::string(protocol::kProtoContentType),
                                      std::string("not a protobuf \xff\xff\xff", 18))};
  }
  if (function == "wrong_type") return {http::Response::with_body(200, "text/plain", "hello")};
  if (function == "tail") {
    pb::RunResponse response;
    response.set_status(pb::STATUS_TEMPORARY_ERROR);
    *response.mutable_exit()->mutable_tail_call() = child_call(0, url(), "echo", input);
    return {proto_response(response)};
  }
  return {connect_error(404, protocol::ConnectCode::kNotFound, "no function " + function)};
}

http::Response TestEndpoint::Impl::poll_fanout(const FanoutState& state,
                                               std::vector<pb::Call> calls) {
  pb::RunResponse response;
  response.set_status(pb::STATUS_OK);
  pb::Poll* poll = response.mutable_poll();
  std::string bytes = state.to_json().dump();
  if (state.typed) {
    *poll->mutable_typed_coroutine_state() = protocol::pack_string(bytes);
  } else {
    poll->set_coroutine_state(bytes);
  }
  for (auto& call : calls) *poll->add_calls() = std::move(call);
  poll->set_min_results(std::min(state.min, state.outstanding()));
  poll->set_max_results(state.max);
  set_max_wait(poll, 60);
  return proto_response(response);
}

Answer TestEndpoint::Impl::start_fanout(const pb::RunRequest& request, const json& spec) {
  FanoutState state = *FanoutState::from_json(spec);
  std::string child = spec.value("child", "echo");
  std::int64_t base = spec.value("base", std::int64_t{0});
  std::string endpoint = spec.value("inherit_endpoint", false) ? "" : url();
  std::vector<pb::Call> calls;
  for (int j = 1; j <= state.k; ++j) {
    calls.push_back(
        child_call(kCorrelationBase + j, endpoint, child, protocol::pack_int64(base * 10 + j)));
  }
  return {poll_fanout(state, std::move(calls))};
}

Answer TestEndpoint::Impl::resume_fanout(const pb::RunRequest& request) {
  const pb::PollResult& poll = request.poll_result();
  const std::string where = request.function() + " " + request.dispatch_id() + ": ";
  std::string bytes;
  if (poll.has_typed_coroutine_state()) {
    google::protobuf::StringValue text;
    if (!poll.typed_coroutine_state().UnpackTo(&text)) violation(where + "typed state changed");
    bytes = text.value();
  } else {
    bytes = poll.coroutine_state();
  }
  auto state = FanoutState::from_json(json::parse(bytes, nullptr, false));
  if (!state) {
    violation(where + "the coroutine state did not come back: '" + bytes + "'");
    return {exit_error(pb::STATUS_PERMANENT_ERROR, "BadState", "unreadable state")};
  }
  if (state->typed != poll.has_typed_coroutine_state()) {
    violation(where + "the state came back in the other member of the oneof");
  }
  int results = poll.results_size();
  if (results > state->max) {
    violation(where + std::to_string(results) + " results, max_results was " +
              std::to_string(state->max));
  }
  if (results < std::min(state->min, state->outstanding())) {
    violation(where + "resumed with " + std::to_string(results) + " results before min_results");
  }
  for (const auto& result : poll.results()) {
    std::uint64_t index = result.correlation_id() - kCorrelationBase;
    if (result.correlation_id() <= kCorrelationBase || index > state->seen.size()) {
      violation(where + "unknown correlation id " + std::to_string(result.correlation_id()));
      continue;
    }
    if (state->seen[index - 1] == '1') {
      violation(where + "correlation id " + std::to_string(result.correlation_id()) +
                " delivered twice");
      continue;
    }
    state->seen[index - 1] = '1';
    if (result.dispatch_id().empty()) violation(where + "a result without its dispatch id");
    if (result.has_error()) {
      violation(where + "child failed: " + result.error().message());
    } else {
      state->sum += int64_of(result.output()).value_or(0);
    }
  }
  if (state->outstanding() == 0) return {exit_ok(protocol::pack_int64(state->sum))};
  return {poll_fanout(*state, {})};
}

Answer TestEndpoint::Impl::incompatible(const pb::RunRequest& request) {
  const std::string& id = request.dispatch_id();
  if (!request.has_poll_result()) {
    int generation = count_run(id, "incompatible");
    pb::RunResponse response;
    response.set_status(pb::STATUS_OK);
    pb::Poll* poll = response.mutable_poll();
    poll->set_coroutine_state("generation-" + std::to_string(generation));
    *poll->add_calls() = child_call(7, url(), "echo", protocol::pack_int64(7));
    poll->set_min_results(1);
    poll->set_max_results(1);
    set_max_wait(poll, 60);
    return {proto_response(response)};
  }
  const pb::PollResult& poll = request.poll_result();
  if (!poll.has_coroutine_state() || poll.results_size() != 1) {
    violation("incompatible " + id + ": resumed without its state or its child's result");
  }
  if (poll.coroutine_state() == "generation-1") {
    return {exit_error(pb::STATUS_INCOMPATIBLE_STATE, "IncompatibleStateError",
                       "the code changed under generation-1")};
  }
  std::lock_guard lock(mutex);
  return {exit_ok(protocol::pack_int64(runs[id + "/incompatible"]))};
}

// Polls [echo, a 300 ms slow call] and, resumed with the first result while the
// second is outstanding, abandons that child: restart_outstanding answers
// INCOMPATIBLE_STATE (its next run from input is a second generation),
// tail_outstanding tail-calls second_generation.
Answer TestEndpoint::Impl::abandon_children(const pb::RunRequest& request) {
  const std::string& id = request.dispatch_id();
  if (!request.has_poll_result()) {
    if (count_run(id, "generation") > 1) return second_generation(request);
    pb::RunResponse response;
    response.set_status(pb::STATUS_OK);
    pb::Poll* poll = response.mutable_poll();
    poll->set_coroutine_state("first-generation");
    *poll->add_calls() = child_call(1, url(), "echo", protocol::pack_int64(1));
    *poll->add_calls() = child_call(2, url(), "slow", protocol::pack_int64(300));
    poll->set_min_results(1);
    poll->set_max_results(1);
    set_max_wait(poll, 60);
    return {proto_response(response)};
  }
  if (request.poll_result().coroutine_state() != "first-generation") {
    return second_generation(request);
  }
  if (request.function() == "restart_outstanding") {
    return {exit_error(pb::STATUS_INCOMPATIBLE_STATE, "IncompatibleStateError",
                       "the first generation cannot be resumed")};
  }
  pb::RunResponse response;
  response.set_status(pb::STATUS_TEMPORARY_ERROR);
  *response.mutable_exit()->mutable_tail_call() =
      child_call(0, url(), "second_generation", protocol::pack_null());
  return {proto_response(response)};
}

// Polls two 800 ms slow calls with the correlation ids the first generation
// used, and exits with the sum of their outputs (1600) once both came back.
// A result of the first generation's children (output 300, or a correlation id
// twice) is a violation: a call that starts afresh must not receive them.
Answer TestEndpoint::Impl::second_generation(const pb::RunRequest& request) {
  const std::string where = request.function() + " " + request.dispatch_id() + ": ";
  pb::RunResponse response;
  response.set_status(pb::STATUS_OK);
  pb::Poll* poll = response.mutable_poll();
  if (!request.has_poll_result()) {
    poll->set_coroutine_state("second-generation:");
    *poll->add_calls() = child_call(1, url(), "slow", protocol::pack_int64(800));
    *poll->add_calls() = child_call(2, url(), "slow", protocol::pack_int64(800));
    poll->set_min_results(2);
    poll->set_max_results(10);
    set_max_wait(poll, 60);
    return {proto_response(response)};
  }
  // The state lists the correlation ids already received.
  std::string state = request.poll_result().coroutine_state();
  for (const auto& result : request.poll_result().results()) {
    std::string mark = std::to_string(result.correlation_id()) + ";";
    auto output = int64_of(result.output());
    if (output != 800 || state.find(mark) != std::string::npos) {
      violation(where + "a result of an abandoned child (correlation id " +
                std::to_string(result.correlation_id()) + ", output " +
                std::to_string(output.value_or(-1)) + ")");
      continue;
    }
    state += mark;
  }
  if (state.find("1;") != std::string::npos && state.find("2;") != std::string::npos) {
    return {exit_ok(protocol::pack_int64(1600))};
  }
  poll->set_coroutine_state(state);
  poll->set_min_results(1);
  poll->set_max_results(10);
  set_max_wait(poll, 60);
  return {proto_response(response)};
}

Answer TestEndpoint::Impl::bad_children(const pb::RunRequest& request) {
  const std::string& id = request.dispatch_id();
  if (!request.has_poll_result()) {
    pb::RunResponse response;
    response.set_status(pb::STATUS_OK);
    pb::Poll* poll = response.mutable_poll();
    poll->set_coroutine_state("bad-children");
    *poll->add_calls() = child_call(1, url(), "echo", protocol::pack_int64(1));
    *poll->add_calls() = child_call(2, url(), "not a function!", protocol::pack_int64(2));
    poll->set_min_results(1);
    poll->set_max_results(2);
    set_max_wait(poll, 60);
    return {proto_response(response)};
  }
  const pb::PollResult& poll = request.poll_result();
  if (poll.coroutine_state() != "bad-children") {
    violation("bad_children " + id + ": the state did not come back");
  }
  if (poll.results_size() != 0) violation("bad_children " + id + ": results for rejected calls");
  if (!poll.has_error()) {
    violation("bad_children " + id + ": re-run without poll_result.error");
    return {exit_error(pb::STATUS_PERMANENT_ERROR, "Unexpected", "no poll error")};
  }
  return {exit_ok(protocol::pack_string(poll.error().type() + ": " + poll.error().message()))};
}

Answer TestEndpoint::Impl::child_fails(const pb::RunRequest& request) {
  const std::string& id = request.dispatch_id();
  if (!request.has_poll_result()) {
    pb::RunResponse response;
    response.set_status(pb::STATUS_OK);
    pb::Poll* poll = response.mutable_poll();
    *poll->mutable_typed_coroutine_state() = protocol::pack_string("child-fails");
    *poll->add_calls() = child_call(9, url(), "permanent", protocol::pack_string("boom-" + id));
    poll->set_min_results(1);
    poll->set_max_results(1);
    set_max_wait(poll, 60);
    return {proto_response(response)};
  }
  const pb::PollResult& poll = request.poll_result();
  if (!poll.has_typed_coroutine_state()) {
    violation("child_fails " + id + ": the typed state came back in the other member");
  }
  if (poll.results_size() != 1 || !poll.results(0).has_error() ||
      poll.results(0).correlation_id() != 9) {
    violation("child_fails " + id + ": expected the child's error");
    return {exit_error(pb::STATUS_PERMANENT_ERROR, "Unexpected", "no child error")};
  }
  const pb::Error& error = poll.results(0).error();
  return {exit_error(pb::STATUS_PERMANENT_ERROR, "ChildFailed",
                     "child failed: " + error.type() + ": " + error.message())};
}

Answer TestEndpoint::Impl::relay_error(const pb::RunRequest& request) {
  if (!request.has_poll_result()) {
    pb::RunResponse response;
    response.set_status(pb::STATUS_OK);
    pb::Poll* poll = response.mutable_poll();
    poll->set_coroutine_state("relay");
    *poll->add_calls() = child_call(3, url(), "python_error", protocol::pack_null());
    set_max_wait(poll, 60);
    return {proto_response(response)};
  }
  const pb::PollResult& poll = request.poll_result();
  if (poll.results_size() != 1 || !poll.results(0).has_error()) {
    violation("relay_error " + request.dispatch_id() + ": expected the child's error");
    return {exit_error(pb::STATUS_PERMANENT_ERROR, "Unexpected", "no child error")};
  }
  google::protobuf::BytesValue bytes;
  bytes.set_value(poll.results(0).error().SerializeAsString());
  google::protobuf::Any output;
  output.PackFrom(bytes);
  return {exit_ok(output)};
}

TestEndpoint::TestEndpoint(EndpointOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = options;
  impl_->key = options.verification_key;
  impl_->port = options.port;
  http::ServerOptions server_options;
  server_options.port = options.port;
  server_options.io_threads = 2;
  Impl* impl = impl_.get();
  auto server = http::Server::start(server_options, [impl](http::Request r, http::Responder s) {
    impl->handle(std::move(r), std::move(s));
  });
  if (!server.is_ok()) {
    throw std::runtime_error("the test endpoint cannot start: " + server.status().message());
  }
  impl_->server = std::move(server).value();
  impl_->port = impl_->server->port();
}

TestEndpoint::~TestEndpoint() { stop(); }

void TestEndpoint::open_gate() {
  std::vector<std::pair<http::Responder, http::Response>> waiting;
  {
    std::lock_guard lock(impl_->mutex);
    impl_->gate_open = true;
    waiting.swap(impl_->gated);
  }
  for (auto& [responder, response] : waiting) responder.send(std::move(response));
}

void TestEndpoint::stop() {
  if (!impl_->server) return;
  impl_->delayer.stop();
  impl_->server->stop(std::chrono::milliseconds(0));
  std::lock_guard lock(impl_->mutex);
  impl_->held.clear();
  impl_->gated.clear();
}

std::uint16_t TestEndpoint::port() const { return impl_->port.load(); }
std::string TestEndpoint::url() const { return impl_->url(); }

void TestEndpoint::set_verification_key(std::optional<protocol::VerificationKey> key) {
  std::lock_guard lock(impl_->mutex);
  impl_->key = std::move(key);
}

std::vector<RecordedRequest> TestEndpoint::requests() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->records;
}

std::vector<RecordedRequest> TestEndpoint::requests_for(const std::string& dispatch_id) const {
  std::vector<RecordedRequest> found;
  std::lock_guard lock(impl_->mutex);
  for (const auto& r : impl_->records) {
    if (r.dispatch_id == dispatch_id) found.push_back(r);
  }
  return found;
}

std::vector<RecordedRequest> TestEndpoint::requests_with_parent(const std::string& parent) const {
  std::vector<RecordedRequest> found;
  std::lock_guard lock(impl_->mutex);
  for (const auto& r : impl_->records) {
    if (r.parent_id == parent) found.push_back(r);
  }
  return found;
}

std::size_t TestEndpoint::request_count() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->records.size();
}

int TestEndpoint::rejected_signatures() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->rejected;
}

int TestEndpoint::verified_signatures() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->verified;
}

std::vector<std::string> TestEndpoint::violations() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->violations;
}

bool TestEndpoint::wait_for_requests(std::size_t n, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(impl_->mutex);
  return impl_->arrived.wait_for(lock, timeout, [&] { return impl_->records.size() >= n; });
}

}  // namespace ratchet::testing
