#include "protocol/journal_edit.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <vector>

#include "dispatch/sdk/v1/poll.pb.h"
#include "protocol/values.hpp"

namespace ratchet::protocol {
namespace {

namespace jv1 = ::ratchet::sdk::v1;

Result<jv1::Journal> read_journal(int member, const std::string& state) {
  google::protobuf::Any any;
  jv1::Journal journal;
  if (member != dispatch::sdk::v1::Poll::kTypedCoroutineStateFieldNumber ||
      !any.ParseFromString(state) || !any.Is<jv1::Journal>() || !any.UnpackTo(&journal)) {
    return invalid_argument(
        "the call's coroutine state is not a Ratchet C++ journal: only coroutines of the C++ "
        "SDK can be rewound or given results");
  }
  return journal;
}

std::string write_journal(const jv1::Journal& journal) {
  google::protobuf::Any any;
  any.PackFrom(journal);
  return any.SerializeAsString();
}

// "call work", "local step charge", "sleep", "patch x".
std::string describe(const jv1::Journal& journal, const jv1::Step& step) {
  const std::string name = step.function() < static_cast<std::uint32_t>(journal.names_size())
                               ? journal.names(static_cast<int>(step.function()))
                               : std::string("?");
  switch (step.kind()) {
    case jv1::STEP_KIND_LOCAL:
      return "local step " + name;
    case jv1::STEP_KIND_SLEEP:
      return "sleep";
    case jv1::STEP_KIND_PATCH:
      return "patch " + name;
    default:
      return "call " + name;
  }
}

// `text` as shown in an action's detail or an error: whole when short, else
// its start and its size (a detail is kept on the call and shown by `ratchet
// status`; an --output can be megabytes).
std::string abbreviated(const std::string& text, const char* what) {
  constexpr std::size_t kShown = 100;
  if (text.size() <= kShown) return text;
  return text.substr(0, kShown) + "... (" + std::to_string(text.size()) + " bytes of " + what + ")";
}

// What a value is, as the coroutine that awaits it reads it: "a string",
// "a number" (an integer or not: either reads as a double), "a Foo message".
std::string value_kind(const nlohmann::json& value) {
  if (is_message_marker(value)) {
    const nlohmann::json& parts = value[std::string(kMessageMarkerKey)];
    std::string url = parts.is_object() ? parts.value("type_url", "") : "";
    return "a " + url.substr(url.rfind('/') + 1) + " message";
  }
  switch (value.type()) {
    case nlohmann::json::value_t::null:
      return "null";
    case nlohmann::json::value_t::boolean:
      return "a boolean";
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
    case nlohmann::json::value_t::number_float:
      return "a number";
    case nlohmann::json::value_t::string:
      return "a string";
    case nlohmann::json::value_t::binary:
      return "bytes";
    case nlohmann::json::value_t::array:
      return "an array";
    default:
      return "an object";
  }
}

// Refuses `value` for a step whose recorded value is of another kind (a
// pending or failed step records none): the coroutine would fail to read it,
// for good, after the steps before it did their work.
Status check_kind(const jv1::Journal& journal, const jv1::Step& target, std::uint64_t step,
                  const nlohmann::json& value) {
  if (!target.has_output()) return Status::ok();
  google::protobuf::Any recorded;
  if (target.output().type() < static_cast<std::uint32_t>(journal.names_size())) {
    recorded.set_type_url(journal.names(static_cast<int>(target.output().type())));
  }
  recorded.set_value(target.output().value());
  auto old_value = unpack_to_json(recorded);
  if (!old_value.is_ok()) return Status::ok();  // nothing to compare with
  std::string was = value_kind(*old_value);
  std::string now = value_kind(value);
  if (was == now) return Status::ok();
  return invalid_argument("step " + std::to_string(step) + " recorded " + was + " (" +
                          abbreviated(old_value->dump(), "JSON") + "), --output is " + now +
                          ": the coroutine could not read it; add --any-type to set it anyway");
}

// "3 call work, 4 local step charge, ..." for steps [from, to], the first 10
// of them named: a rewind of a long journal would otherwise list every step.
std::string describe_steps(const jv1::Journal& journal, std::uint64_t from, std::uint64_t to) {
  constexpr std::uint64_t kNamed = 10;
  std::string listed;
  for (std::uint64_t n = from; n <= to && n < from + kNamed; ++n) {
    if (!listed.empty()) listed += ", ";
    listed += std::to_string(n) + " " + describe(journal, journal.steps(static_cast<int>(n - 1)));
  }
  if (to >= from + kNamed) listed += ", and " + std::to_string(to - from + 1 - kNamed) + " more";
  return listed;
}

// Numbers the completed steps' completions 1, 2, ... in their old order, so
// that the next result to arrive is completed + 1 again.
void renumber_completions(jv1::Journal& journal) {
  std::vector<jv1::Step*> done;
  for (auto& step : *journal.mutable_steps()) {
    if (step.completion() != 0) done.push_back(&step);
  }
  std::sort(done.begin(), done.end(), [](const jv1::Step* a, const jv1::Step* b) {
    return a->completion() < b->completion();
  });
  for (std::size_t i = 0; i < done.size(); ++i) done[i]->set_completion(i + 1);
  journal.set_completed(done.size());
}

}  // namespace

std::uint32_t intern_name(jv1::Journal& journal, std::string_view name) {
  for (int i = 0; i < journal.names_size(); ++i) {
    if (journal.names(i) == name) return static_cast<std::uint32_t>(i);
  }
  journal.add_names(std::string(name));
  return static_cast<std::uint32_t>(journal.names_size() - 1);
}

Result<JournalEdit> rewind_journal(int member, const std::string& state, std::uint64_t to_step) {
  ASSIGN_OR_RETURN(jv1::Journal journal, read_journal(member, state));
  const auto steps = static_cast<std::uint64_t>(journal.steps_size());
  if (to_step == 0 || to_step > steps + 1) {
    return invalid_argument("--to-step must be from 1 to " + std::to_string(steps + 1) +
                            ": the journal has " + std::to_string(steps) + " steps");
  }
  const std::string dropped = describe_steps(journal, to_step, steps);
  auto* kept = journal.mutable_steps();
  kept->DeleteSubrange(static_cast<int>(to_step - 1), kept->size() - static_cast<int>(to_step - 1));
  renumber_completions(journal);
  journal.set_last_poll_first_step(
      std::min<std::uint64_t>(journal.last_poll_first_step(), to_step));
  JournalEdit edit;
  edit.steps = steps;
  edit.state = write_journal(journal);
  edit.detail = "rewound to step " + std::to_string(to_step) + " of " + std::to_string(steps) +
                (dropped.empty() ? " (nothing dropped)" : " (dropped " + dropped + ")");
  return edit;
}

Result<JournalEdit> set_journal_result(int member, const std::string& state, std::uint64_t step,
                                       const StepResult& result) {
  ASSIGN_OR_RETURN(jv1::Journal journal, read_journal(member, state));
  const auto steps = static_cast<std::uint64_t>(journal.steps_size());
  if (step == 0 || step > steps) {
    return invalid_argument("--step must be from 1 to " + std::to_string(steps) +
                            ": the journal has " + std::to_string(steps) + " steps");
  }
  jv1::Step& target = *journal.mutable_steps(static_cast<int>(step - 1));
  if (target.kind() != jv1::STEP_KIND_CALL && target.kind() != jv1::STEP_KIND_LOCAL) {
    return invalid_argument("step " + std::to_string(step) + " is a " + describe(journal, target) +
                            ": only a call's or a local step's result can be set");
  }
  std::string what;
  if (result.output_json) {
    auto value = nlohmann::json::parse(*result.output_json, nullptr, false);
    if (value.is_discarded()) {
      return invalid_argument("--output is not JSON: " + abbreviated(*result.output_json, "it"));
    }
    if (!result.any_type) RETURN_IF_ERROR(check_kind(journal, target, step, value));
    ASSIGN_OR_RETURN(google::protobuf::Any packed, pack_json(value));
    target.mutable_output()->set_type(intern_name(journal, packed.type_url()));
    target.mutable_output()->set_value(packed.value());
    what = "output " + abbreviated(value.dump(), "JSON");
  } else {
    if (result.error_type.empty()) {
      return invalid_argument(
          "--error-type is empty: name the error's type (PermanentError, TemporaryError, or a "
          "type the service registered), by which the coroutine raises it");
    }
    target.mutable_error()->set_type(result.error_type);
    target.mutable_error()->set_message(result.error_message);
    target.mutable_error()->set_status(0);  // from the type, as for a call's error
    what = "error " + result.error_type + ": " + result.error_message;
  }
  if (target.completion() == 0) {
    journal.set_completed(journal.completed() + 1);
    target.set_completion(journal.completed());
  }
  JournalEdit edit;
  edit.steps = steps;
  edit.state = write_journal(journal);
  edit.detail = "set the result of step " + std::to_string(step) + " (" +
                describe(journal, target) + ") to " + what;
  return edit;
}

}  // namespace ratchet::protocol
