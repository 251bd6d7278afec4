#include "sdk/journal.hpp"

#include <cinttypes>
#include <cstdio>

#include "protocol/journal_delta.hpp"
#include "protocol/journal_edit.hpp"
#include "protocol/values.hpp"

namespace ratchet::sdk {

namespace pb = ::dispatch::sdk::v1;

std::uint64_t argument_hash(const nlohmann::json& arguments) {
  std::string text = arguments.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::uint64_t hash = 14695981039346656037ull;
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  return hash;
}

namespace {

std::uint32_t intern(jv1::Journal& journal, std::string_view name) {
  return protocol::intern_name(journal, name);
}

const std::string& name_at(const jv1::Journal& journal, std::uint32_t index) {
  static const std::string unknown;
  return index < static_cast<std::uint32_t>(journal.names_size())
             ? journal.names(static_cast<int>(index))
             : unknown;
}

}  // namespace

jv1::Step& add_step(jv1::Journal& journal, std::string_view function, std::uint64_t hash,
                    jv1::StepKind kind) {
  jv1::Step* step = journal.add_steps();
  step->set_function(intern(journal, function));
  step->set_argument_hash(hash);
  step->set_kind(kind);
  return *step;
}

const std::string& step_function(const jv1::Journal& journal, std::uint64_t step) {
  return name_at(journal, journal.steps(static_cast<int>(step - 1)).function());
}

google::protobuf::Any step_output(const jv1::Journal& journal, const jv1::Step& step) {
  google::protobuf::Any any;
  any.set_type_url(name_at(journal, step.output().type()));
  any.set_value(step.output().value());
  return any;
}

jv1::Journal new_journal(std::string_view function, const google::protobuf::Any& input) {
  jv1::Journal journal;
  journal.set_version(kJournalVersion);
  journal.set_function(std::string(function));
  *journal.mutable_input() = input;
  return journal;
}

google::protobuf::Any encode_journal(const jv1::Journal& journal) {
  google::protobuf::Any state;
  state.PackFrom(journal);
  return state;
}

namespace {

std::vector<std::uint64_t> pending_steps(const jv1::Journal& journal, std::uint64_t from,
                                         const std::vector<std::uint64_t>& before) {
  std::vector<std::uint64_t> pending;
  for (std::uint64_t n : before) {
    if (is_pending(journal.steps(static_cast<int>(n - 1)))) pending.push_back(n);
  }
  for (auto n = from; n <= static_cast<std::uint64_t>(journal.steps_size()); ++n) {
    if (is_pending(journal.steps(static_cast<int>(n - 1)))) pending.push_back(n);
  }
  return pending;
}

jv1::JournalDelta make_delta(const jv1::Journal& journal, const JournalMark& mark) {
  jv1::JournalDelta delta;
  delta.set_base_revision(mark.revision);
  jv1::Journal& changes = *delta.mutable_changes();
  changes.set_revision(journal.revision());
  changes.set_completed(journal.completed());
  changes.set_last_poll_first_step(journal.last_poll_first_step());
  for (int i = mark.names; i < journal.names_size(); ++i) changes.add_names(journal.names(i));
  auto& updates = *changes.mutable_step_updates();
  for (std::uint64_t n : mark.pending) {
    const jv1::Step& step = journal.steps(static_cast<int>(n - 1));
    if (!is_pending(step)) updates[n] = step;
  }
  for (auto n = mark.steps + 1; n <= static_cast<std::uint64_t>(journal.steps_size()); ++n) {
    updates[n] = journal.steps(static_cast<int>(n - 1));
  }
  return delta;
}

}  // namespace

JournalMark mark_journal(const jv1::Journal& journal, std::uint64_t revision) {
  return JournalMark{revision, static_cast<std::size_t>(journal.steps_size()), journal.names_size(),
                     pending_steps(journal, 1, {})};
}

google::protobuf::Any encode_state(const jv1::Journal& journal, JournalMark& mark) {
  google::protobuf::Any state;
  if (mark.revision == 0) {
    state.PackFrom(journal);
  } else {
    state.PackFrom(make_delta(journal, mark));
  }
  mark.pending = pending_steps(journal, mark.steps + 1, mark.pending);
  mark.steps = static_cast<std::size_t>(journal.steps_size());
  mark.names = journal.names_size();
  mark.revision = journal.revision();
  return state;
}

bool is_delta(const google::protobuf::Any& state) {
  return state.type_url() == protocol::kJournalDeltaType;
}

Result<jv1::Journal> decode_journal(const google::protobuf::Any& state) {
  jv1::Journal journal;
  if (state.type_url() == protocol::kBrokenJournalType) {
    return invalid_argument("the server could not assemble the coroutine journal: " +
                            std::string(state.value()));
  }
  if (!state.Is<jv1::Journal>()) {
    return invalid_argument("the coroutine state is a " + std::string(state.type_url()) +
                            ", not a Ratchet C++ journal");
  }
  if (!state.UnpackTo(&journal)) return invalid_argument("the coroutine journal does not parse");
  RETURN_IF_ERROR(protocol::normalize_journal(journal));
  if (journal.version() != kJournalVersion) {
    return invalid_argument("the coroutine journal has version " +
                            std::to_string(journal.version()) + "; this SDK reads version " +
                            std::to_string(kJournalVersion));
  }
  const auto names = static_cast<std::uint32_t>(journal.names_size());
  for (const jv1::Step& step : journal.steps()) {
    if (step.function() >= names || (step.has_output() && step.output().type() >= names)) {
      return invalid_argument("the coroutine journal refers to a name it does not have");
    }
  }
  return journal;
}

namespace {

// Numbers the step's result in the order results arrived. Results a server lists
// without their order (see PollResult.arrival_order) share one number, `batch`:
// nothing says which of them came first.
void complete(jv1::Journal& journal, jv1::Step& step, bool ordered = true,
              std::uint64_t batch = 0) {
  if (ordered) journal.set_completed(journal.completed() + 1);
  step.set_completion(ordered ? journal.completed() : batch);
}

void set_output(jv1::Journal& journal, jv1::Step& step, const google::protobuf::Any& output) {
  step.mutable_output()->set_type(intern(journal, output.type_url()));
  step.mutable_output()->set_value(output.value());
}

void set_error(jv1::Step& step, std::string_view type, std::string_view message, int status) {
  step.mutable_error()->set_type(std::string(type));
  step.mutable_error()->set_message(std::string(message));
  step.mutable_error()->set_status(status);
}

bool is_pending_call(const jv1::Step& step) {
  return is_pending(step) && step.kind() == jv1::STEP_KIND_CALL;
}

}  // namespace

void complete_with_output(jv1::Journal& journal, jv1::Step& step,
                          const google::protobuf::Any& output) {
  set_output(journal, step, output);
  complete(journal, step);
}

void complete_with_error(jv1::Journal& journal, jv1::Step& step, std::string_view type,
                         std::string_view message, int status) {
  set_error(step, type, message, status);
  complete(journal, step);
}

int record_results(jv1::Journal& journal, const pb::PollResult& poll_result) {
  int ignored = 0;
  bool ordered = poll_result.arrival_order() || poll_result.results_size() < 2;
  const std::uint64_t batch = journal.completed() + 1;
  if (!ordered) journal.set_completed(batch);
  for (const pb::CallResult& result : poll_result.results()) {
    std::uint64_t n = result.correlation_id();
    // Only a pending call takes a result: never a local step or a sleep.
    if (n == 0 || n > static_cast<std::uint64_t>(journal.steps_size()) ||
        !is_pending_call(journal.steps(static_cast<int>(n - 1)))) {
      ++ignored;
      continue;
    }
    jv1::Step& step = *journal.mutable_steps(static_cast<int>(n - 1));
    if (result.has_error()) {
      set_error(step, result.error().type(), result.error().message(), 0);
    } else {
      // A result with neither output nor error is null.
      static const google::protobuf::Any null = protocol::pack_null();
      set_output(journal, step, result.has_output() ? result.output() : null);
    }
    complete(journal, step, ordered, batch);
  }
  if (poll_result.has_error()) {
    // The latest Poll's calls could not be dispatched: none of them runs.
    for (auto n = std::max<std::uint64_t>(journal.last_poll_first_step(), 1);
         n <= static_cast<std::uint64_t>(journal.steps_size()); ++n) {
      jv1::Step& step = *journal.mutable_steps(static_cast<int>(n - 1));
      if (!is_pending_call(step)) continue;
      complete_with_error(
          journal, step,
          poll_result.error().type().empty() ? "TemporaryError" : poll_result.error().type(),
          "the call could not be dispatched: " + poll_result.error().message());
    }
  }
  return ignored;
}

namespace {

std::string hex(std::uint64_t value) {
  char text[19];
  std::snprintf(text, sizeof text, "%016" PRIx64, value);
  return text;
}

}  // namespace

namespace {

// "a call to work", "local step charge", "a sleep", for divergence messages.
std::string describe_step(jv1::StepKind kind, std::string_view function) {
  switch (kind) {
    case jv1::STEP_KIND_LOCAL:
      return "local step " + std::string(function);
    case jv1::STEP_KIND_SLEEP:
      return "a sleep";
    case jv1::STEP_KIND_PATCH:
      return "patch " + std::string(function);
    default:
      return "a call to " + std::string(function);
  }
}

}  // namespace

Status check_step(const jv1::Journal& journal, std::uint64_t step, jv1::StepKind kind,
                  std::string_view function, std::uint64_t hash) {
  const jv1::Step& recorded = journal.steps(static_cast<int>(step - 1));
  const std::string& recorded_function = name_at(journal, recorded.function());
  if (recorded.kind() == kind && recorded_function == function &&
      recorded.argument_hash() == hash) {
    return Status::ok();
  }
  std::string what =
      recorded.kind() != kind || recorded_function != function
          ? "the code now runs " + describe_step(kind, function) + " where the journal recorded " +
                describe_step(recorded.kind(), recorded_function)
          : "the code now calls " + std::string(function) + " with other arguments (hash " +
                hex(hash) + ", recorded " + hex(recorded.argument_hash()) + ")";
  return Status(Code::kFailedPrecondition, "step " + std::to_string(step) + " diverged: " + what);
}

Status check_end(const jv1::Journal& journal, std::uint64_t next_step) {
  const auto recorded = static_cast<std::uint64_t>(journal.steps_size());
  if (next_step > recorded) return Status::ok();
  const jv1::Step& first = journal.steps(static_cast<int>(next_step - 1));
  std::string what = "the code now finishes where the journal recorded " +
                     describe_step(first.kind(), name_at(journal, first.function()));
  if (next_step < recorded) {
    what += " and " + std::to_string(recorded - next_step) + " more steps";
  }
  return Status(Code::kFailedPrecondition,
                "step " + std::to_string(next_step) + " diverged: " + what);
}

std::string describe_journal(const jv1::Journal& journal, std::string_view dispatch_id) {
  std::string text = "ratchet: journal of " + journal.function() + " (dispatch id " +
                     std::string(dispatch_id) + "), " + std::to_string(journal.steps_size()) +
                     " steps, " + std::to_string(journal.completed()) + " completed\n";
  std::uint64_t number = 0;
  for (const jv1::Step& step : journal.steps()) {
    ++number;
    text += "  #" + std::to_string(number) + " ";
    if (step.kind() == jv1::STEP_KIND_SLEEP) {
      text += "sleep until " + std::to_string(step.wake_at_us()) + " us: ";
    } else if (step.kind() == jv1::STEP_KIND_PATCH) {
      text += "patch " + name_at(journal, step.function()) + ": ";
    } else {
      text += (step.kind() == jv1::STEP_KIND_LOCAL ? "local " : "") +
              name_at(journal, step.function()) + " args " + hex(step.argument_hash()) + ": ";
    }
    if (is_pending(step)) {
      text += "pending";
    } else if (step.has_error()) {
      text += "error " + step.error().type() + ": " + step.error().message();
    } else {
      auto output = step_output(journal, step);
      auto value = protocol::unpack_to_json(output);
      std::string shown =
          value.is_ok() ? value->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
                        : "<" + output.type_url() + ">";
      if (shown.size() > 200) shown = shown.substr(0, 200) + "...";
      text += "ok " + shown;
    }
    if (step.completion() != 0) text += " (result #" + std::to_string(step.completion()) + ")";
    text += "\n";
  }
  return text;
}

}  // namespace ratchet::sdk
