// The SDK's local steps and durable sleeps (include/ratchet/steps.hpp): how
// each becomes a step of the coroutine's journal, and when it completes.
#include "ratchet/steps.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <string_view>

#include "protocol/values.hpp"
#include "ratchet/errors.hpp"
#include "sdk/runtime.hpp"

namespace ratchet::detail {

namespace {

constexpr std::string_view kSleepName = "ratchet.sleep";

}  // namespace

std::int64_t wall_clock_us(const Context& context) {
  return std::chrono::duration_cast<std::chrono::microseconds>(context.clock().time_since_epoch())
      .count();
}

std::int64_t DrawRandom::operator()() const {
  std::random_device device;
  std::uint64_t bits = (static_cast<std::uint64_t>(device()) << 32) ^ device();
  return static_cast<std::int64_t>(bits);
}

namespace {

bool is_recorded(const Context& context, std::uint64_t step) {
  return step <= static_cast<std::uint64_t>(context.journal.steps_size());
}

sdk::jv1::Step& mutable_step(Context& context, std::uint64_t step) {
  return *context.journal.mutable_steps(static_cast<int>(step - 1));
}

// Records what `run` gives (or throws) as step `step`'s outcome.
void record_local_outcome(Context& context, std::uint64_t step, std::string_view name,
                          const std::function<nlohmann::json()>& run) {
  std::optional<ErrorInfo> error;
  Result<google::protobuf::Any> packed = google::protobuf::Any();
  try {
    packed = protocol::pack_json(run());
    if (!packed.is_ok()) {
      error = ErrorInfo{CallStatus::kInvalidArgument, "InvalidArgumentError",
                        "the value of step " + std::to_string(step) + " (" + std::string(name) +
                            ") cannot be recorded: " + packed.status().message()};
    }
  } catch (...) {
    error = classify_exception(std::current_exception());
  }
  auto& recorded = mutable_step(context, step);  // looked up again: run() ran user code
  if (error) {
    sdk::complete_with_error(context.journal, recorded, error->type, error->message,
                             static_cast<int>(error->status));
  } else {
    sdk::complete_with_output(context.journal, recorded, *packed);
  }
}

}  // namespace

void settle_sleep(Context& context, std::uint64_t step) {
  auto& recorded = mutable_step(context, step);
  if (recorded.kind() != sdk::jv1::STEP_KIND_SLEEP || !sdk::is_pending(recorded)) return;
  if (wall_clock_us(context) < recorded.wake_at_us()) return;
  sdk::complete_with_output(context.journal, recorded, protocol::pack_null());
}

std::uint64_t local_step(Context& context, std::string_view name,
                         const std::function<nlohmann::json()>& run) {
  if (context.divergence) throw IncompatibleStateError(*context.divergence);
  const std::uint64_t step = context.next_step;
  if (is_recorded(context, step)) {
    check_recorded(context, step, sdk::jv1::STEP_KIND_LOCAL, name, 0);
    // Recorded with its outcome, always; a journal that says otherwise runs it.
    if (!sdk::is_pending(context.journal.steps(static_cast<int>(step - 1)))) {
      context.next_step = step + 1;
      return step;
    }
    stop_if_checking(context);  // a check runs no step
  } else {
    stop_if_checking(context);
    sdk::add_step(context.journal, name, 0, sdk::jv1::STEP_KIND_LOCAL);
  }
  context.next_step = step + 1;
  record_local_outcome(context, step, name, run);
  return step;
}

bool patched(Context& context, std::string_view name) {
  if (context.divergence) throw IncompatibleStateError(*context.divergence);
  const std::uint64_t step = context.next_step;
  if (is_recorded(context, step)) {
    const auto& recorded = context.journal.steps(static_cast<int>(step - 1));
    if (recorded.kind() != sdk::jv1::STEP_KIND_PATCH ||
        sdk::step_function(context.journal, step) != name) {
      return false;  // a run recorded before the patch: it keeps the old path
    }
    context.next_step = step + 1;
    return true;
  }
  stop_if_checking(context);
  auto& marker = sdk::add_step(context.journal, name, 0, sdk::jv1::STEP_KIND_PATCH);
  sdk::complete_with_output(context.journal, marker, protocol::pack_null());
  context.next_step = step + 1;
  return true;
}

std::uint64_t begin_sleep(Context& context, bool absolute, std::int64_t micros) {
  if (context.divergence) throw IncompatibleStateError(*context.divergence);
  const std::uint64_t step = context.next_step;
  if (is_recorded(context, step)) {
    check_recorded(context, step, sdk::jv1::STEP_KIND_SLEEP, kSleepName, 0);
    context.next_step = step + 1;
    settle_sleep(context, step);
    return step;
  }
  stop_if_checking(context);
  std::int64_t wake_at = micros;
  if (!absolute) {
    std::int64_t now = wall_clock_us(context);
    constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
    wake_at = micros > kMax - now ? kMax : now + std::max<std::int64_t>(micros, 0);
  }
  sdk::add_step(context.journal, kSleepName, 0, sdk::jv1::STEP_KIND_SLEEP).set_wake_at_us(wake_at);
  context.next_step = step + 1;
  return step;
}

}  // namespace ratchet::detail
