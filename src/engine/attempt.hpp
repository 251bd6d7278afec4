// One attempt of a call, as pure functions: the RunRequest a claimed call is
// sent as, and what the endpoint's reply means for the call (PROTOCOL.md, "The
// life of a call" and "Status classes and retries"). No I/O, no clock reads:
// the scheduler applies the result.
#pragma once

#include <string>
#include <vector>

#include "engine/endpoint_client.hpp"
#include "protocol/status_class.hpp"
#include "storage/call.hpp"

namespace ratchet::engine {

// Defaults for what real SDKs leave out of a Poll.
// The most calls one Poll may make: each costs the server some 400 bytes until its
// turn commits, and a reply may be 64 MiB. A Poll with more re-runs its caller with
// poll_result.error and dispatches none (a gather that large must be split).
inline constexpr int kMaxCallsPerPoll = 100'000;

struct PollDefaults {
  Micros max_wait = 5 * 60 * kMicrosPerSecond;
  // For the calls a Poll makes without an expiration of their own (none: they have none).
  std::optional<Micros> expiration;
};

// The expiration_time a RunRequest carries for a call without one (no expiration, no
// server default): 9999-12-31T23:59:59Z, the largest google.protobuf.Timestamp. The SDKs
// read an unset Timestamp as 1970-01-01, which would say the call expired long ago;
// dispatch-py reads this one as datetime(9999, 12, 31, 23, 59, 59). See docs/dispatch-py.md.
inline constexpr Micros kNeverExpires = 253402300799LL * kMicrosPerSecond;

// The serialized dispatch.sdk.v1.RunRequest for a claimed call.
std::string build_run_request(const ClaimedCall& claimed);

// The serialized dispatch.sdk.v1.CallResult of a finished call, as Wait answers it: an
// error from the endpoint goes on with every field it came with.
std::string build_call_result(const CallRecord& call);

// The ids of the child results a RunRequest built from `claimed` carried.
std::vector<std::string> delivered_results(const ClaimedCall& claimed);

struct Transition {
  enum class Kind {
    kFinish,          // the call is done (end)
    kRetry,           // a temporary failure: run it again later (reason)
    kRestart,         // INCOMPATIBLE_STATE: run it again from its input (reason)
    kTailCall,        // replace function and input (function, input)
    kSuspend,         // a coroutine waits for children (poll, children)
    kRejectChildren,  // the poll's children cannot be dispatched (poll, reason)
    kHold,            // INCOMPATIBLE_STATE with Exit.hold: keep it for an operator (reason)
    kResendWhole,     // JournalNotHeld to a delta: send the whole journal now, same attempt
  };
  Kind kind = Kind::kFinish;
  protocol::DispatchStatus status = protocol::DispatchStatus::kOk;
  CallEnd end;
  CallError reason;
  std::string function;
  std::string input;
  PollState poll;
  std::vector<NewCall> children;
};

// Whether a Poll's delta continues the journal the attempt of `call` carried,
// whose revision is the latest the store holds while the lease holds: such a
// delta is stored. Any other may be refused (CallTransaction::refused_delta).
bool continues_carried_journal(const CallRecord& call, const PollState& poll);

// What the reply to an attempt of `call` means, at time `now`.
Transition interpret_reply(const CallRecord& call, const EndpointReply& reply, Micros now,
                           const PollDefaults& defaults = {});

// A final failure with `status` and `message` (type: the status name).
CallEnd failure_end(protocol::DispatchStatus status, std::string message);

}  // namespace ratchet::engine
