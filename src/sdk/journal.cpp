#include "sdk/journal.hpp"

#include <cinttypes>
#include <cstdio>

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

Result<jv1::Journal> decode_journal(const google::protobuf::Any& state) {
  jv1::Journal journal;
  if (!state.Is<jv1::Journal>()) {
    return invalid_argument("the coroutine state is a " + std::string(state.type_url()) +
                            ", not a Ratchet C++ journal");
  }
  if (!state.UnpackTo(&journal)) return invalid_argument("the coroutine journal does not parse");
  if (journal.version() > kJournalVersion) {
    return invalid_argument("the coroutine journal has version " +
                            std::to_string(journal.version()) + "; this SDK reads up to " +
                            std::to_string(kJournalVersion));
  }
  for (int i = 0; i < journal.steps_size(); ++i) {
    if (journal.steps(i).step() != static_cast<std::uint64_t>(i) + 1) {
      return invalid_argument("the coroutine journal's steps are out of order");
    }
  }
  return journal;
}

namespace {

void complete(jv1::Journal& journal, jv1::Step& step) {
  journal.set_completed(journal.completed() + 1);
  step.set_completion(journal.completed());
}

}  // namespace

int record_results(jv1::Journal& journal, const pb::PollResult& poll_result) {
  int ignored = 0;
  for (const pb::CallResult& result : poll_result.results()) {
    std::uint64_t n = result.correlation_id();
    if (n == 0 || n > static_cast<std::uint64_t>(journal.steps_size()) ||
        !is_pending(journal.steps(static_cast<int>(n - 1)))) {
      ++ignored;
      continue;
    }
    jv1::Step& step = *journal.mutable_steps(static_cast<int>(n - 1));
    if (result.has_error()) {
      step.mutable_error()->set_type(result.error().type());
      step.mutable_error()->set_message(result.error().message());
    } else if (result.has_output()) {
      *step.mutable_output() = result.output();
    } else {
      *step.mutable_output() = protocol::pack_null();  // a result with neither: null
    }
    step.set_dispatch_id(result.dispatch_id());
    complete(journal, step);
  }
  if (poll_result.has_error()) {
    // The latest Poll's calls could not be dispatched: none of them runs.
    for (auto n = std::max<std::uint64_t>(journal.last_poll_first_step(), 1);
         n <= static_cast<std::uint64_t>(journal.steps_size()); ++n) {
      jv1::Step& step = *journal.mutable_steps(static_cast<int>(n - 1));
      if (!is_pending(step)) continue;
      step.mutable_error()->set_type(
          poll_result.error().type().empty() ? "TemporaryError" : poll_result.error().type());
      step.mutable_error()->set_message("the call could not be dispatched: " +
                                        poll_result.error().message());
      complete(journal, step);
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

Status check_step(const jv1::Step& recorded, std::string_view function, std::uint64_t hash) {
  if (recorded.function() == function && recorded.argument_hash() == hash) return Status::ok();
  std::string what = recorded.function() != function
                         ? "the code now calls " + std::string(function) +
                               " where the journal "
                               "recorded a call to " +
                               recorded.function()
                         : "the code now calls " + std::string(function) +
                               " with other arguments (hash " + hex(hash) + ", recorded " +
                               hex(recorded.argument_hash()) + ")";
  return Status(Code::kFailedPrecondition,
                "step " + std::to_string(recorded.step()) + " diverged: " + what +
                    "; the coroutine's code changed under a running call, so it restarts "
                    "from its input");
}

std::string describe_journal(const jv1::Journal& journal, std::string_view dispatch_id) {
  std::string text = "ratchet: journal of " + journal.function() + " (dispatch id " +
                     std::string(dispatch_id) + "), " + std::to_string(journal.steps_size()) +
                     " steps, " + std::to_string(journal.completed()) + " completed\n";
  for (const jv1::Step& step : journal.steps()) {
    text += "  #" + std::to_string(step.step()) + " " + step.function() + " args " +
            hex(step.argument_hash()) + ": ";
    if (is_pending(step)) {
      text += "pending";
    } else if (step.has_error()) {
      text += "error " + step.error().type() + ": " + step.error().message();
    } else {
      auto value = protocol::unpack_to_json(step.output());
      std::string shown =
          value.is_ok() ? value->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
                        : "<" + std::string(step.output().type_url()) + ">";
      if (shown.size() > 200) shown = shown.substr(0, 200) + "...";
      text += "ok " + shown;
    }
    if (step.completion() != 0) text += " (result #" + std::to_string(step.completion()) + ")";
    text += "\n";
  }
  return text;
}

}  // namespace ratchet::sdk
