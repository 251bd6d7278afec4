// The replay journal of a durable coroutine (proto/ratchet/sdk/v1/journal.proto;
// its format is documented there): encoding it as the
// Poll's typed_coroutine_state, recording the results a PollResult brings, and
// the checks and printing around it.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.hpp"
#include "dispatch/sdk/v1/poll.pb.h"
#include "ratchet/sdk/v1/journal.pb.h"

namespace ratchet::sdk {

namespace jv1 = ::ratchet::sdk::v1;

inline constexpr std::uint32_t kJournalVersion = 2;

// 64-bit FNV-1a of the arguments' canonical JSON text (nlohmann::json keeps
// object keys sorted, so equal values give equal text).
std::uint64_t argument_hash(const nlohmann::json& arguments);

jv1::Journal new_journal(std::string_view function, const google::protobuf::Any& input);

// The state for a Poll. The bytes are what the server echoes back.
google::protobuf::Any encode_journal(const jv1::Journal& journal);
// The journal in a PollResult's typed_coroutine_state; kInvalidArgument with a
// reason when it is not one this SDK can resume.
Result<jv1::Journal> decode_journal(const google::protobuf::Any& state);

// What the server holds of a journal, as the SDK last sent it or got it: the
// base a delta is computed on (protocol/journal_delta.hpp). Every change to a
// journal appends a step or completes a pending one, so a delta is the steps
// past `steps` and those of `pending` that completed since.
struct JournalMark {
  std::uint64_t revision = 0;  // the server's; 0: it takes no delta (send whole journals)
  std::size_t steps = 0;
  int names = 0;
  std::vector<std::uint64_t> pending;  // step numbers
};

// The mark of `journal` as a whole: the server holds revision `revision` of it.
JournalMark mark_journal(const jv1::Journal& journal, std::uint64_t revision);
// The state for a Poll of revision journal.revision(): a JournalDelta on `mark`
// when mark.revision is set, else the whole journal. Advances `mark` to it.
google::protobuf::Any encode_state(const jv1::Journal& journal, JournalMark& mark);
// True when `state` is a delta (which only the process that sent it can resume).
bool is_delta(const google::protobuf::Any& state);

inline bool is_pending(const jv1::Step& step) {
  return step.outcome_case() == jv1::Step::OUTCOME_NOT_SET;
}

// Appends a pending step of `kind`: a call of `function` with arguments of
// hash `hash`, a local step named `function` (hash 0), or a sleep.
jv1::Step& add_step(jv1::Journal& journal, std::string_view function, std::uint64_t hash,
                    jv1::StepKind kind = jv1::STEP_KIND_CALL);
// Completes a pending step with `output` (an Any), or with an error.
void complete_with_output(jv1::Journal& journal, jv1::Step& step,
                          const google::protobuf::Any& output);
void complete_with_error(jv1::Journal& journal, jv1::Step& step, std::string_view type,
                         std::string_view message, int status = 0);
// The function that step `step` (1-based) called.
const std::string& step_function(const jv1::Journal& journal, std::uint64_t step);
// The output of a step that succeeded, as the Any it arrived as.
google::protobuf::Any step_output(const jv1::Journal& journal, const jv1::Step& step);

// Records the results (and a dispatch error) a PollResult carries. A result
// for an unknown or already completed step is ignored: each result is recorded
// once. Returns how many were ignored.
int record_results(jv1::Journal& journal, const dispatch::sdk::v1::PollResult& poll_result);

// OK when the code's step `step` (1-based, recorded) is what the journal
// recorded (its kind, function or name, and argument hash); otherwise what
// differs, naming the step ("step 5 diverged: ..."), for the INCOMPATIBLE_STATE
// error and for `--ratchet-check`.
Status check_step(const jv1::Journal& journal, std::uint64_t step, jv1::StepKind kind,
                  std::string_view function, std::uint64_t hash);

// OK when code that ended (returned, threw or made a tail call) before step
// `next_step` reached every recorded step; otherwise the divergence at the
// first it did not reach ("step 3 diverged: the code now finishes where ...").
Status check_end(const jv1::Journal& journal, std::uint64_t next_step);

// A human-readable rendering, one line per step, for DISPATCH_TRACE.
std::string describe_journal(const jv1::Journal& journal, std::string_view dispatch_id);

}  // namespace ratchet::sdk
