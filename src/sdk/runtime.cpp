#include "sdk/runtime.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <limits>
#include <optional>
#include <random>
#include <stdexcept>
#include <string_view>

#include "protocol/journal_delta.hpp"
#include "protocol/values.hpp"
#include "ratchet/errors.hpp"
#include "ratchet/steps.hpp"

namespace ratchet::detail {

namespace pb = ::dispatch::sdk::v1;

namespace {

thread_local Context* t_current = nullptr;
thread_local const CallInfo* t_call = nullptr;

// Makes `context` (for a coroutine) and `call` the current ones on this
// thread while it lives.
class CurrentRun {
 public:
  CurrentRun(Context* context, const CallInfo* call)
      : previous_(t_current), previous_call_(t_call) {
    t_current = context;
    t_call = call;
  }
  ~CurrentRun() {
    t_current = previous_;
    t_call = previous_call_;
  }
  CurrentRun(const CurrentRun&) = delete;
  CurrentRun& operator=(const CurrentRun&) = delete;

 private:
  Context* previous_;
  const CallInfo* previous_call_;
};

const sdk::jv1::Step& step_at(const Context& context, std::uint64_t step) {
  if (step == 0 || step > static_cast<std::uint64_t>(context.journal.steps_size())) {
    throw std::logic_error("ratchet: step " + std::to_string(step) + " is not in the journal");
  }
  return context.journal.steps(static_cast<int>(step - 1));
}

}  // namespace

Context* current_context() noexcept { return t_current; }

Context& require_context(std::string_view what) {
  if (t_current == nullptr) {
    throw std::logic_error(std::string(what) +
                           " outside a durable coroutine: durable calls can be awaited only in "
                           "a function registered with ratchet::Dispatch and run by it");
  }
  return *t_current;
}

pb::Call make_call(const CallSpec& spec, const std::string& endpoint, std::string_view what) {
  auto input = protocol::pack_json(spec.input);
  if (!input.is_ok()) {
    throw InvalidArgumentError("the arguments of " + std::string(what) +
                               " cannot be sent: " + input.status().message());
  }
  pb::Call call;
  call.set_endpoint(endpoint);
  call.set_function(spec.function);
  *call.mutable_input() = std::move(*input);
  if (auto expiration = spec.options.expiration()) {
    call.mutable_expiration()->set_seconds(expiration->count() / 1'000'000);
    call.mutable_expiration()->set_nanos(
        static_cast<std::int32_t>(expiration->count() % 1'000'000) * 1000);
  }
  call.set_max_attempts(static_cast<std::uint32_t>(spec.options.max_attempts()));
  return call;
}

const CallInfo& require_call(std::string_view what) {
  if (t_call == nullptr) {
    throw std::logic_error(std::string(what) +
                           " outside a durable function: only a function registered with "
                           "ratchet::Dispatch and run by it has a call");
  }
  return *t_call;
}

// Throws IncompatibleStateError (and remembers why, so that the coroutine
// cannot catch its way past it) when recorded step `step` is something else.
void check_recorded(Context& context, std::uint64_t step, sdk::jv1::StepKind kind,
                    std::string_view function, std::uint64_t hash) {
  Status same = sdk::check_step(context.journal, step, kind, function, hash);
  if (same.is_ok()) return;
  context.divergence = same.message();
  context.diverged_at = step;
  throw IncompatibleStateError(same.message());
}

// A coroutine that ended (returned, threw, made a tail call) before the steps
// its journal recorded is new code that skips them: a divergence, or a saga
// would leave what those steps did (a reservation, a charge) uncompensated.
void check_reached_all(Context& context) {
  if (context.divergence) return;
  Status reached = sdk::check_end(context.journal, context.next_step);
  if (reached.is_ok()) return;
  context.divergence = reached.message();
  context.diverged_at = context.next_step;
}

void stop_if_checking(Context& context) {
  if (context.divergence) throw IncompatibleStateError(*context.divergence);
  if (!context.check_only) return;
  context.checked_to_end = true;
  throw ReplayStop{};
}

std::uint64_t begin_steps(Context& context, const CallSpec* calls, std::size_t n) {
  if (context.divergence) throw IncompatibleStateError(*context.divergence);
  const auto recorded = static_cast<std::uint64_t>(context.journal.steps_size());
  const std::uint64_t first = context.next_step;
  // Check and pack everything before recording anything.
  std::vector<pb::Call> made;
  std::vector<std::uint64_t> hashes;
  for (std::size_t i = 0; i < n; ++i) {
    std::uint64_t step = first + i;
    std::uint64_t hash = sdk::argument_hash(calls[i].input);
    hashes.push_back(hash);
    if (step <= recorded) {
      check_recorded(context, step, sdk::jv1::STEP_KIND_CALL, calls[i].function, hash);
      continue;
    }
    stop_if_checking(context);
    std::string what = "step " + std::to_string(step) + " (" + calls[i].function + ")";
    if (!calls[i].options.run_key().empty()) {
      throw InvalidArgumentError(
          what +
          " has a run key: run keys dedupe dispatches (fn.dispatch); a call awaited in "
          "a coroutine is made once per step of its journal already");
    }
    pb::Call call = make_call(calls[i], context.endpoint, what);
    call.set_correlation_id(step);
    made.push_back(std::move(call));
  }
  for (auto& call : made) {
    sdk::add_step(context.journal, call.function(), hashes[call.correlation_id() - first],
                  sdk::jv1::STEP_KIND_CALL);
    context.new_calls.push_back(std::move(call));
  }
  context.next_step = first + n;
  return first;
}

namespace {

struct Tally {
  std::size_t done = 0;
  std::size_t failed = 0;
};

Tally tally(const Context& context, std::uint64_t first, std::size_t n) {
  Tally t;
  for (std::size_t i = 0; i < n; ++i) {
    const auto& step = step_at(context, first + i);
    if (sdk::is_pending(step)) continue;
    ++t.done;
    if (step.has_error()) ++t.failed;
  }
  return t;
}

}  // namespace

bool wait_satisfied(const Context& context, WaitMode mode, std::uint64_t first, std::size_t n) {
  Tally t = tally(context, first, n);
  switch (mode) {
    case WaitMode::kOne:
    case WaitMode::kRace:
      return t.done > 0;
    case WaitMode::kAll:
      return t.done == n || t.failed > 0;
    case WaitMode::kSettled:
      return t.done == n;
    case WaitMode::kAny:
      return t.done > t.failed || t.done == n;
  }
  return false;
}

void suspend_on(Context& context, std::coroutine_handle<> handle, WaitMode mode,
                std::uint64_t first, std::size_t n) {
  context.suspended = true;
  context.resume_at = handle;
  context.mode = mode;
  context.first = first;
  context.count = n;
}

std::uint64_t decisive_step(const Context& context, WaitMode mode, std::uint64_t first,
                            std::size_t n) {
  if (mode == WaitMode::kOne) return first;
  // The earliest result to arrive among those that qualify.
  auto earliest = [&](const std::function<bool(const sdk::jv1::Step&)>& qualifies) {
    std::uint64_t best = 0;
    std::uint64_t best_completion = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const auto& step = step_at(context, first + i);
      if (sdk::is_pending(step) || !qualifies(step)) continue;
      if (best == 0 || step.completion() < best_completion) {
        best = first + i;
        best_completion = step.completion();
      }
    }
    return best;
  };
  auto failed = [](const sdk::jv1::Step& s) { return s.has_error(); };
  auto succeeded = [](const sdk::jv1::Step& s) { return s.has_output(); };
  auto finished = [](const sdk::jv1::Step&) { return true; };
  switch (mode) {
    case WaitMode::kAll:
      return earliest(failed);
    case WaitMode::kAny: {
      std::uint64_t success = earliest(succeeded);
      return success != 0 ? success : earliest(failed);
    }
    default: {
      std::uint64_t first_result = earliest(finished);
      std::uint64_t completion = step_at(context, first_result).completion();
      for (std::size_t i = 0; i < n; ++i) {
        const auto& step = step_at(context, first + i);
        if (first + i != first_result && step.completion() == completion) {
          throw PermanentError(
              "ratchet::race cannot tell which of its calls finished first: the server "
              "delivered their results together and without their order (it ignores "
              "min_results, as dispatch-py's test server does; a Ratchet server delivers "
              "results as they arrive)");
        }
      }
      return first_result;
    }
  }
}

Outcome step_outcome(const Context& context, std::uint64_t step) {
  const auto& recorded = step_at(context, step);
  Outcome outcome;
  if (recorded.has_error()) {
    outcome.error_type = recorded.error().type();
    outcome.error_message = recorded.error().message();
    outcome.error_status = recorded.error().status();
    return outcome;
  }
  if (!recorded.has_output()) {
    throw std::logic_error("ratchet: step " + std::to_string(step) + " has no result yet");
  }
  auto value = protocol::unpack_to_json(sdk::step_output(context.journal, recorded));
  if (!value.is_ok()) {
    outcome.error_type = "InvalidResponseError";
    outcome.error_message = "the result of step " + std::to_string(step) + " (" +
                            sdk::step_function(context.journal, step) +
                            ") cannot be read: " + value.status().message();
    return outcome;
  }
  outcome.ok = true;
  outcome.value = std::move(*value);
  return outcome;
}

void request_tail_call(Context& context, CallSpec call) { context.tail_call = std::move(call); }

bool tail_call_requested() noexcept { return t_current != nullptr && t_current->tail_call; }

void throw_step_error(const Outcome& outcome) {
  throw_remote_error(outcome.error_type, outcome.error_message,
                     static_cast<CallStatus>(outcome.error_status));
}

void throw_bad_result(std::uint64_t step, const std::exception& cause) {
  std::string what = step == 0 ? "the call's result" : "the result of step " + std::to_string(step);
  throw InvalidResponseError(what + " does not have the awaited type: " + cause.what());
}

void throw_bad_input(const std::exception& cause) {
  throw InvalidArgumentError(std::string("the input does not match the function's parameters: ") +
                             cause.what());
}

}  // namespace ratchet::detail

namespace ratchet::sdk {

namespace pb = ::dispatch::sdk::v1;
using detail::Context;

std::size_t state_digest(const google::protobuf::Any& state) {
  return std::hash<std::string_view>{}(state.value()) ^
         (state.value().size() * 0x9e3779b97f4a7c15ull);
}

// ---- FrameCache ----

FrameCache::~FrameCache() = default;

void FrameCache::put(const std::string& dispatch_id, std::size_t digest,
                     std::unique_ptr<Context> context) {
  if (capacity_ == 0) return;  // `context` is destroyed here, outside the lock
  std::unique_ptr<Context> evicted;
  std::unique_ptr<Context> replaced;
  {
    std::lock_guard lock(mutex_);
    if (auto it = index_.find(dispatch_id); it != index_.end()) {
      replaced = std::move(it->second->context);
      entries_.erase(it->second);
      index_.erase(it);
    }
    entries_.push_front(Entry{dispatch_id, digest, std::move(context)});
    index_[dispatch_id] = entries_.begin();
    if (entries_.size() > capacity_) {
      evicted = std::move(entries_.back().context);
      index_.erase(entries_.back().dispatch_id);
      entries_.pop_back();
    }
  }
}

std::unique_ptr<Context> FrameCache::take(const std::string& dispatch_id, std::size_t digest) {
  std::unique_ptr<Context> stale;
  std::lock_guard lock(mutex_);
  auto it = index_.find(dispatch_id);
  if (it == index_.end()) return nullptr;
  std::unique_ptr<Context> context = std::move(it->second->context);
  bool same = it->second->digest == digest;
  entries_.erase(it->second);
  index_.erase(it);
  if (!same) {
    stale = std::move(context);  // another state: the frame cannot serve it
    return nullptr;
  }
  ++hits_;
  return context;
}

void FrameCache::erase(const std::string& dispatch_id) {
  std::unique_ptr<Context> stale;
  std::lock_guard lock(mutex_);
  auto it = index_.find(dispatch_id);
  if (it == index_.end()) return;
  stale = std::move(it->second->context);
  entries_.erase(it->second);
  index_.erase(it);
}

std::size_t FrameCache::size() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

std::uint64_t FrameCache::hits() const {
  std::lock_guard lock(mutex_);
  return hits_;
}

// ---- Runtime ----

namespace {

pb::RunResponse exit_with_error(const ErrorInfo& error) {
  pb::RunResponse response;
  response.set_status(static_cast<pb::Status>(error.status));
  pb::Error* wire = response.mutable_exit()->mutable_result()->mutable_error();
  wire->set_type(error.type);
  wire->set_message(error.message);
  return response;
}

pb::RunResponse exit_with_exception(std::exception_ptr error) {
  return exit_with_error(classify_exception(std::move(error)));
}

pb::RunResponse exit_with_output(const nlohmann::json& output) {
  auto packed = protocol::pack_json(output);
  if (!packed.is_ok()) {
    return exit_with_error({CallStatus::kPermanentError, "PermanentError",
                            "the function's result cannot be sent: " + packed.status().message()});
  }
  pb::RunResponse response;
  response.set_status(pb::STATUS_OK);
  *response.mutable_exit()->mutable_result()->mutable_output() = std::move(*packed);
  return response;
}

// A delta whose frame this process does not hold (it restarted, or another
// process sent it, or the cache evicted it): only the whole journal can resume
// the coroutine, and the server sends it with its next attempt.
pb::RunResponse frame_not_held(const pb::RunRequest& request) {
  return exit_with_error({CallStatus::kTemporaryError, std::string(protocol::kJournalNotHeld),
                          "this process does not hold the coroutine " + request.dispatch_id() +
                              " that the journal delta continues; the server's next attempt "
                              "carries the whole journal"});
}

pb::RunResponse incompatible(std::string message) {
  return exit_with_error(
      {CallStatus::kIncompatibleState, "IncompatibleStateError", std::move(message)});
}

// A replay that diverged: restarted from its input (the protocol's way), or
// held for an operator (Exit.hold, Ratchet's extension).
pb::RunResponse diverged(const Context& context) {
  if (!context.hold_on_divergence) {
    return incompatible(*context.divergence +
                        "; the coroutine's code changed under a running call, so it restarts "
                        "from its input");
  }
  pb::RunResponse response = incompatible(
      *context.divergence +
      "; the coroutine's code changed under a running call, and it is held for an operator "
      "(ratchet rewind or ratchet set-result resume it)");
  response.mutable_exit()->set_hold(true);
  return response;
}

Result<nlohmann::json> input_of(const google::protobuf::Any& input) {
  if (input.type_url().empty() && input.value().empty()) return nlohmann::json();
  return protocol::unpack_to_json(input);
}

CallInfo call_info(const pb::RunRequest& request) {
  CallInfo info;
  info.dispatch_id = request.dispatch_id();
  info.root_dispatch_id = request.root_dispatch_id();
  info.parent_dispatch_id = request.parent_dispatch_id();
  info.function = request.function();
  info.attempt = static_cast<int>(request.attempt());
  return info;
}

// The wake time of the sleep the coroutine is suspended on, if that is what it waits for.
std::optional<std::int64_t> sleeping_until(const Context& context) {
  if (context.count != 1 || context.first == 0) return std::nullopt;
  const auto& step = context.journal.steps(static_cast<int>(context.first - 1));
  if (step.kind() != jv1::STEP_KIND_SLEEP || !is_pending(step)) return std::nullopt;
  return step.wake_at_us();
}

// Resumes the coroutine at `handle` with `context` current on this thread,
// until it suspends or finishes.
void resume(Context& context, std::coroutine_handle<> handle) {
  detail::CurrentRun current(&context, &context.info);
  context.suspended = false;
  handle.resume();
}

}  // namespace

Runtime::Runtime(RuntimeOptions options) : options_(options), cache_(options.frame_cache_size) {}

pb::RunResponse Runtime::run(const detail::FunctionEntry& entry, const pb::RunRequest& request,
                             const std::string& endpoint) {
  try {
    return entry.start ? run_coroutine(entry, request, endpoint) : run_plain(entry, request);
  } catch (...) {
    return exit_with_exception(std::current_exception());
  }
}

pb::RunResponse Runtime::run_plain(const detail::FunctionEntry& entry,
                                   const pb::RunRequest& request) {
  if (!request.has_input()) {
    return exit_with_error({CallStatus::kInvalidArgument, "InvalidArgumentError",
                            "function " + request.function() +
                                " is not a coroutine: it cannot be resumed with a poll result"});
  }
  auto input = input_of(request.input());
  if (!input.is_ok()) {
    return exit_with_error({CallStatus::kInvalidArgument, "InvalidArgumentError",
                            "the input cannot be read: " + input.status().message()});
  }
  CallInfo info = call_info(request);
  detail::CurrentRun current(nullptr, &info);
  try {
    return exit_with_output(entry.plain(*input));
  } catch (...) {
    return exit_with_exception(std::current_exception());
  }
}

pb::RunResponse Runtime::run_coroutine(const detail::FunctionEntry& entry,
                                       const pb::RunRequest& request, const std::string& endpoint) {
  std::unique_ptr<Context> context;
  if (request.has_poll_result()) {
    const pb::PollResult& poll_result = request.poll_result();
    if (!poll_result.has_typed_coroutine_state()) {
      return incompatible("the coroutine state did not come back as typed_coroutine_state");
    }
    const auto& state = poll_result.typed_coroutine_state();
    context = cache_.take(request.dispatch_id(), state_digest(state));
    if (context) {
      context->info.attempt = static_cast<int>(request.attempt());
      if (!poll_result.journal_deltas()) context->sent.revision = 0;
      record_results(context->journal, poll_result);
      for (std::size_t i = 0; i < context->count; ++i) {
        detail::settle_sleep(*context, context->first + i);
      }
      context->new_calls.clear();
      if (!detail::wait_satisfied(*context, context->mode, context->first, context->count)) {
        return suspend(std::move(context));  // still waiting: poll again
      }
      resume(*context, context->resume_at);
      return conclude(std::move(context));
    }
    if (is_delta(state)) return frame_not_held(request);
    auto journal = decode_journal(state);
    if (!journal.is_ok()) return incompatible(journal.status().message());
    if (journal->function() != request.function()) {
      return incompatible("the coroutine journal belongs to " + journal->function() + ", not " +
                          request.function());
    }
    JournalMark sent =
        mark_journal(*journal, poll_result.journal_deltas() ? journal->revision() : 0);
    record_results(*journal, poll_result);
    context = std::make_unique<Context>(call_info(request), endpoint, std::move(*journal),
                                        options_.clock);
    context->sent = std::move(sent);
  } else {
    cache_.erase(request.dispatch_id());  // a restart from the input
    context =
        std::make_unique<Context>(call_info(request), endpoint,
                                  new_journal(request.function(), request.input()), options_.clock);
  }
  context->hold_on_divergence = entry.on_divergence == OnDivergence::kHold;
  auto input = input_of(context->journal.input());
  if (!input.is_ok()) {
    return exit_with_error({CallStatus::kInvalidArgument, "InvalidArgumentError",
                            "the input cannot be read: " + input.status().message()});
  }
  context->root.emplace(entry.start(*input));
  resume(*context, detail::TaskAccess::handle(*context->root));
  return conclude(std::move(context));
}

CheckOutcome Runtime::check(const detail::FunctionEntry& entry, const std::string& function,
                            const google::protobuf::Any& state) {
  auto diverges = [](std::uint64_t step, std::string message) {
    return CheckOutcome{false, step, std::move(message)};
  };
  if (!entry.start) return diverges(0, function + " is not a coroutine in this build");
  auto journal = decode_journal(state);
  if (!journal.is_ok()) return diverges(0, journal.status().message());
  if (journal->function() != function) {
    return diverges(0, "the journal belongs to " + journal->function() + ", not " + function);
  }
  const auto recorded = static_cast<std::uint64_t>(journal->steps_size());
  CallInfo info;
  info.dispatch_id = "ratchet-check";
  info.function = function;
  Context context(info, "", std::move(*journal), options_.clock);
  context.check_only = true;
  try {
    auto input = input_of(context.journal.input());
    if (!input.is_ok()) return diverges(0, "the input cannot be read: " + input.status().message());
    context.root.emplace(entry.start(*input));
    resume(context, detail::TaskAccess::handle(*context.root));
  } catch (const std::exception& e) {
    return diverges(0, std::string("the coroutine cannot start from its input: ") + e.what());
  }
  if (!context.checked_to_end && !context.suspended) detail::check_reached_all(context);
  if (context.divergence) return diverges(context.diverged_at, *context.divergence);
  std::string replayed = "its " + std::to_string(recorded) + " recorded steps replay";
  // Suspended: on a recorded step that has no result yet; checked to the end:
  // at a step that the journal does not have.
  if (context.suspended) {
    return CheckOutcome{
        true, 0, replayed + "; it waits for the result of step " + std::to_string(context.first)};
  }
  if (context.checked_to_end) {
    return CheckOutcome{
        true, 0, replayed + "; its next step, " + std::to_string(context.next_step) + ", is new"};
  }
  return CheckOutcome{true, 0, replayed + " and it finishes"};
}

pb::RunResponse Runtime::conclude(std::unique_ptr<Context> context) {
  auto handle = detail::TaskAccess::handle(*context->root);
  if (context->tail_call || handle.done()) detail::check_reached_all(*context);
  if (context->divergence) return diverged(*context);
  if (context->tail_call) {
    auto input = protocol::pack_json(context->tail_call->input);
    if (!input.is_ok()) {
      return exit_with_error(
          {CallStatus::kInvalidArgument, "InvalidArgumentError",
           "the tail call's arguments cannot be sent: " + input.status().message()});
    }
    pb::RunResponse response;
    response.set_status(pb::STATUS_OK);
    pb::Call* call = response.mutable_exit()->mutable_tail_call();
    call->set_endpoint(context->endpoint);
    call->set_function(context->tail_call->function);
    *call->mutable_input() = std::move(*input);
    return response;
  }
  if (handle.done()) {
    try {
      return exit_with_output(handle.promise().take());
    } catch (...) {
      return exit_with_exception(std::current_exception());
    }
  }
  if (!context->suspended) {
    return exit_with_error({CallStatus::kPermanentError, "PermanentError",
                            "the coroutine suspended on something that is not a durable call "
                            "(only ratchet Calls, gather/any/race and Tasks can be awaited)"});
  }
  return suspend(std::move(context));
}

pb::RunResponse Runtime::suspend(std::unique_ptr<Context> context) {
  auto& journal = context->journal;
  if (!context->new_calls.empty()) {
    journal.set_last_poll_first_step(context->new_calls.front().correlation_id());
  }
  pb::RunResponse response;
  response.set_status(pb::STATUS_OK);
  pb::Poll* poll = response.mutable_poll();
  journal.set_revision(journal.revision() + 1);
  // Without a cache, no frame could continue from a delta.
  if (cache_.capacity() == 0) context->sent.revision = 0;
  *poll->mutable_typed_coroutine_state() = encode_state(journal, context->sent);
  for (auto& call : context->new_calls) *poll->add_calls() = std::move(call);
  context->new_calls.clear();
  // Wake on the first result, except for gather (settled or not), which needs them all.
  std::int32_t wanted = 1;
  if (context->mode == detail::WaitMode::kAll || context->mode == detail::WaitMode::kSettled) {
    std::size_t pending = 0;
    for (std::size_t i = 0; i < context->count; ++i) {
      if (is_pending(journal.steps(static_cast<int>(context->first + i - 1)))) ++pending;
    }
    wanted = static_cast<std::int32_t>(std::clamp<std::size_t>(pending, 1, 1000));
  }
  poll->set_min_results(wanted);
  poll->set_max_results(1000);
  if (auto wake_at = sleeping_until(*context)) {
    // At least 1 µs: a max_wait of 0 means "the server's default".
    std::int64_t left = std::max<std::int64_t>(*wake_at - detail::wall_clock_us(*context), 1);
    poll->mutable_max_wait()->set_seconds(left / 1'000'000);
    poll->mutable_max_wait()->set_nanos(static_cast<std::int32_t>(left % 1'000'000) * 1000);
  }
  if (options_.trace) {
    std::string text = describe_journal(journal, context->dispatch_id);
    std::fwrite(text.data(), 1, text.size(), stderr);
  }
  std::size_t digest = state_digest(poll->typed_coroutine_state());
  std::string id = context->dispatch_id;
  cache_.put(id, digest, std::move(context));
  return response;
}

}  // namespace ratchet::sdk
