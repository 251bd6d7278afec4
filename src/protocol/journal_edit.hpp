// Operator repair of a C++ coroutine's journal (proto/ratchet/sdk/v1/journal.proto),
// as stored by the server: the bytes of the google.protobuf.Any that Poll's
// typed_coroutine_state carried. `ratchet rewind` and `ratchet set-result`
// edit it through the store (Store::repair_coroutine); the SDK then resumes
// the coroutine from the edited journal by replay. docs/sdk.md, "Operator repair".
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/status.hpp"
#include "ratchet/sdk/v1/journal.pb.h"

namespace ratchet::protocol {

// An edited journal and what changed, for the call's action record.
struct JournalEdit {
  std::string state;        // the new bytes
  std::string detail;       // e.g. "rewound to step 3 (dropped 2 steps: 3 call work, 4 call work)"
  std::uint64_t steps = 0;  // the journal's steps before the edit
};

// Keeps steps 1 .. to_step - 1, so that the coroutine makes step `to_step`
// (and every one after) again. to_step may be one past the last step (nothing
// dropped: the call simply resumes). kInvalidArgument when the state is not a
// C++ journal or the step is out of range.
Result<JournalEdit> rewind_journal(int member, const std::string& state, std::uint64_t to_step);

// The recorded result of a step, as an operator sets it.
struct StepResult {
  std::optional<std::string> output_json;  // a JSON value, packed as the SDK packs values
  std::string error_type;                  // without output: the step fails with this error
  std::string error_message;
  bool any_type = false;  // an output of another type than the recorded one is allowed
};

// Gives step `step` (a durable call or a local step, pending or completed)
// the result `result`. An output of another kind than the step's recorded
// value (null, boolean, number, string, bytes, array, object, or a message of
// another type) is refused unless `any_type`: the coroutine could not read it.
Result<JournalEdit> set_journal_result(int member, const std::string& state, std::uint64_t step,
                                       const StepResult& result);

// The index of `name` in the journal's names, added when new (the SDK's
// journal and these edits share it). A coroutine uses a handful of functions
// and result types, so a scan is enough.
std::uint32_t intern_name(::ratchet::sdk::v1::Journal& journal, std::string_view name);

}  // namespace ratchet::protocol
