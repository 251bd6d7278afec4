// The records and transitions of durable calls (PROTOCOL.md, "The life of a call").
//
// A call's `phase` says what the scheduler may do with it: READY (runnable from
// `ready_at`), LEASED (sent to its endpoint by the lease owner until
// `lease_expires_at`), WAITING (a suspended coroutine waiting for children or
// for `poll_deadline`), DONE (terminal), HELD (a coroutine whose code diverged
// from its journal, kept for an operator: never claimed until repaired). Every write after a claim
// is fenced by the lease epoch: a server that lost its lease cannot overwrite newer progress.
#pragma once

#include <compare>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/clock.hpp"
#include "common/status.hpp"
#include "storage/run.hpp"

namespace ratchet {

enum class CallPhase { kReady, kLeased, kWaiting, kDone, kHeld };
std::string_view phase_name(CallPhase phase);

// A call as dispatched. `input` is a serialized google.protobuf.Any, kept byte
// for byte.
struct NewCall {
  std::string function;
  std::string endpoint;
  std::string version;
  std::string input;
  std::string run_key;  // empty: not idempotent
  // Ratchet's extension: the key dedupes against any call ever dispatched with
  // it (its newest), not only a live one.
  bool run_key_once = false;
  int max_attempts = 0;  // Ratchet's extension: 0 is the server's --max-attempts
  std::string parent_id;
  std::string root_id;  // empty for a root call: it is its own root
  std::uint64_t correlation_id = 0;
  std::optional<Micros> expires_at;
};

// An error as the protocol carries it: the type and message everyone shows, and,
// when it came from an endpoint, the serialized dispatch.sdk.v1.Error itself, kept
// opaque and handed on byte for byte (a Python exception's pickled value and traceback
// travel in it, and the dashboard reads a Python traceback from it: one source for
// both). Errors the server makes (timeouts, HTTP failures, giving up) have none.
// (The initializer lets CallError{type, message} stay free of
// -Wmissing-field-initializers.)
struct CallError {
  std::string type;
  std::string message;
  std::string encoded = {};  // empty: made by the server
};

// A child's final result, waiting in its parent's inbox.
struct ChildResult {
  std::string child_id;
  std::uint64_t correlation_id = 0;
  std::optional<std::string> output;  // serialized Any
  std::optional<CallError> error;
};

// The opaque coroutine state of a suspended call, and what it waits for.
struct PollState {
  int member = 0;     // the oneof field number it came in (Poll: 1 or 6)
  std::string state;  // the bytes, echoed back unchanged
  int min_results = 1;
  int max_results = 1;
  Micros deadline = 0;  // absolute: re-run by then whatever arrived
  // A C++ journal's revision, and whether `state` is a delta on base_revision
  // that the store appends (protocol/journal_delta.hpp): it then sends back
  // this delta on the first attempt after the Poll, the whole journal on others.
  bool delta = false;
  std::uint64_t revision = 0;
  std::uint64_t base_revision = 0;
};

struct CallRecord {
  std::string id;
  std::string run_key;
  RunStatus status = RunStatus::kStarting;
  CallPhase phase = CallPhase::kReady;
  std::string function;
  std::string endpoint;
  std::string version;
  std::string input;
  std::optional<std::string> output;
  std::optional<CallError> error;
  int call_status = 0;  // the final dispatch.sdk.v1.Status number, once terminal
  std::string parent_id;
  std::string root_id;
  std::uint64_t correlation_id = 0;
  int attempts = 0;
  int max_attempts = 0;   // this call's own limit (0: the server's)
  Micros started_at = 0;  // the creation time, kept across retries and tail calls
  std::optional<Micros> finished_at;
  std::optional<Micros> expires_at;
  Micros ready_at = 0;
  std::string lease_owner;
  std::int64_t lease_epoch = 0;
  std::optional<Micros> lease_expires_at;
  std::optional<PollState> poll;
  std::optional<CallError> poll_error;  // children could not be dispatched
  int children_waiting = 0;             // children whose results are not yet delivered
  int results_waiting = 0;              // of those, the ones whose results arrived
};

// A claimed call and what its RunRequest carries.
struct ClaimedCall {
  CallRecord call;
  std::vector<ChildResult> results;  // for a resumed coroutine, up to max_results
};

// How one attempt of a call ended, as the scheduler records it.
struct CallEnd {
  bool succeeded = true;
  int call_status = 1;  // dispatch.sdk.v1.Status
  std::optional<std::string> output;
  std::optional<CallError> error;
};

// One entry of a call's history (docs/storage.md, "call_history"): what the
// scheduler did with it: an attempt (recorded when it ends), a poll (a
// coroutine suspended), its expiry. What people did to it is in its actions
// (CallAction). Written in the transaction of the transition it describes.
struct HistoryEvent {
  std::string call_id;
  std::string kind;                // "attempt", "poll", "expired"
  std::int64_t number = 0;         // its place in the call's history, from 1 (set by the store)
  Micros at = 0;                   // an attempt's start; otherwise when it happened
  std::optional<Micros> duration;  // an attempt's
  int attempt = 0;
  int call_status = 0;  // an attempt's dispatch.sdk.v1.Status; 0 for none
  // attempt: "succeeded", "failed", "retry", "suspended", "tail_call", "held",
  // "restart", "rejected", "lost" (its reply was fenced off); poll: "waiting".
  std::string outcome;
  // attempt: the error ("Type: message") and why it started ("dispatched",
  // "retry", "results", "deadline", "lease expired"); poll: what it waits for;
  // expired: the error it ended with.
  std::string detail;
  int children = 0;  // poll: children dispatched
  int results = 0;   // attempt: child results its request delivered
};

// One operator's action on a call (docs/storage.md, "call_actions"): who did
// what, when. `ratchet rewind` and `set-result` (storage/repair.hpp), and
// cancel and retry now (below), from the CLI or the API. Written in the
// transaction of the action itself.
struct CallAction {
  std::string call_id;
  Micros at = 0;
  std::string actor;   // "alice@build-7" (the CLI), "api-key:1a2b3c4d" (the API)
  std::string action;  // "rewind", "set-result", "cancel", "retry-now"
  std::string detail;  // what changed, for people
};

// A call's latest actions (Store::call_actions), oldest first, and how many it
// has in all.
struct CallActions {
  std::vector<CallAction> latest;
  std::int64_t total = 0;
};

// A call's history keeps its first kHistoryHead and its last kHistoryTail
// events: a call retried or resumed 100,000 times keeps 220 rows, and the
// numbers of the rows kept say how many fell out between them.
inline constexpr int kHistoryHead = 20;
inline constexpr int kHistoryTail = 200;

// A queue of ready calls: the calls of one function at one endpoint.
struct QueueKey {
  std::string endpoint;
  std::string function;
  auto operator<=>(const QueueKey&) const = default;
};

struct QueueFigures {
  std::map<std::string, std::int64_t> ready;  // by function
  std::int64_t waiting = 0;
};

// The transitions of calls, inside one store transaction (see Store::calls).
class CallTransaction {
 public:
  virtual ~CallTransaction() = default;

  // Records a new call READY now; with a run key whose call is still live (or,
  // with run_key_once, that has any call), returns that call's id instead.
  // The id of the call.
  virtual Result<std::string> dispatch(const NewCall& call) = 0;

  // Each of the following applies to the call leased under `epoch` only; false
  // when the lease was lost. `delivered` are the child results the attempt's
  // RunRequest carried: they are now consumed.
  virtual Result<bool> finish(const std::string& id, std::int64_t epoch, const CallEnd& end,
                              const std::vector<std::string>& delivered) = 0;
  virtual Result<bool> retry(const std::string& id, std::int64_t epoch, Micros ready_at,
                             const CallError& reason) = 0;
  // The endpoint did not hold the frame the delta it was sent applies to
  // (JournalNotHeld): the call is READY now with its deltas folded into a
  // whole base, so that the next attempt carries the whole journal, and that
  // attempt is not counted (it is when the deltas do not assemble, or there
  // were none to fold).
  virtual Result<bool> resend_whole(const std::string& id, std::int64_t epoch) = 0;
  // Holds for an operator (HELD, error type MissingBlob, `why`) every live
  // call whose input, coroutine state or undelivered child result refers to a
  // blob that is gone (a store edited by hand), so that the calls a claim can
  // read go on and nothing runs on a wrong value. Their ids.
  virtual Result<std::vector<std::string>> hold_missing_blobs(const std::string& why) = 0;
  // Why a Poll's `state` cannot be stored: a delta on another revision than
  // the latest the store holds, or one that does not read; nullopt when it
  // can. The scheduler retries such an attempt as a failed one (backoff, the
  // call's limit of attempts), so a process that keeps sending them stops.
  virtual Result<std::optional<std::string>> refused_delta(const std::string& id,
                                                           const PollState& state) = 0;
  virtual Result<bool> tail_call(const std::string& id, std::int64_t epoch,
                                 const std::string& function, const std::string& input,
                                 const std::vector<std::string>& delivered) = 0;
  // Suspends the call with `state` and dispatches its `children`.
  virtual Result<bool> suspend(const std::string& id, std::int64_t epoch, const PollState& state,
                               const std::vector<NewCall>& children,
                               const std::vector<std::string>& delivered) = 0;
  // Re-runs the call at once with `state` and poll_result.error: its children
  // could not be dispatched.
  virtual Result<bool> reject_children(const std::string& id, std::int64_t epoch,
                                       const PollState& state, const CallError& error,
                                       const std::vector<std::string>& delivered) = 0;
  // INCOMPATIBLE_STATE: forget the coroutine state and run from the input
  // again; `reason` (the SDK's "step N diverged: ...") becomes the last error.
  virtual Result<bool> restart(const std::string& id, std::int64_t epoch, Micros ready_at,
                               const CallError& reason) = 0;
  // INCOMPATIBLE_STATE from a function that holds instead (Exit.hold): HELD
  // with its state, its inbox and `report` (as its error) kept, until an
  // operator repairs it (Store::repair_coroutine).
  virtual Result<bool> hold(const std::string& id, std::int64_t epoch, const CallError& report) = 0;

  // When the next call becomes due (nullopt: nothing is scheduled).
  virtual Result<std::optional<Micros>> next_due() = 0;
  // When the next call becomes due after `after` (nullopt: none): the calls
  // due by then that wait for room at their endpoints are left out, as the
  // replies that bring the room wake the scheduler.
  virtual Result<std::optional<Micros>> next_due_after(Micros after) = 0;

  // Gives the call back (a deploy): READY at once for any server. Fenced like
  // the transitions above; false when the lease was lost.
  virtual Result<bool> release(const std::string& id, std::int64_t epoch) = 0;

  // --- fair claims (issue 10) ------------------------------------------------
  //
  // The claim contract: claim_urgent() takes the urgent calls (expired leases,
  // coroutines past their poll deadline) in the order they fell due; ready
  // calls are taken queue by queue, a queue being the calls of one function
  // at one endpoint, so that the scheduler serves the queues in deficit round
  // robin (engine/fair_queue.hpp). due_queues() lists the queues with a READY
  // call due now, at most `limit`, in (endpoint, function) order from just
  // after `after` (wrapping around), so that a store with more queues than
  // `limit` still shows each in turn; claim_queue() leases up to `limit` of
  // one queue's due calls, oldest ready_at first. On PostgreSQL both take
  // rows FOR UPDATE SKIP LOCKED, so servers of a fleet claim different calls.
  virtual Result<std::vector<ClaimedCall>> claim_urgent(const std::string& owner,
                                                        Micros lease_until, int limit) = 0;
  virtual Result<std::vector<QueueKey>> due_queues(const QueueKey& after, int limit) = 0;
  virtual Result<std::vector<ClaimedCall>> claim_queue(const QueueKey& queue,
                                                       const std::string& owner, Micros lease_until,
                                                       int limit) = 0;

  // --- history and actions ---------------------------------------------------

  // Appends to the calls' histories (bounded: kHistoryHead, kHistoryTail).
  virtual Status record_history(const std::vector<HistoryEvent>& events) = 0;

  // Cancels the call and all its descendants that are not done: they end
  // CANCELLED (error type CancelledError, status PERMANENT_ERROR), their
  // leases are fenced (a reply still in flight is ignored), and the call's
  // waiting parent receives the error. Each is recorded as an action of
  // `actor` (call_actions).
  // The calls cancelled (the call first); empty when it was done already;
  // kNotFound for an unknown id.
  virtual Result<std::vector<std::string>> cancel(const std::string& id,
                                                  const std::string& actor) = 0;
  // A call waiting out a retry's backoff is due now (an action of `actor`,
  // recorded in call_actions). False when it was not
  // (running, waiting for children, done); kNotFound for an unknown id.
  virtual Result<bool> retry_now(const std::string& id, const std::string& actor) = 0;
  // Calls past their expiration that are not done end FAILED with TIMEOUT
  // now, whatever they were doing (a reply still in flight is ignored), and
  // their waiting parents receive the error. At most `limit`; their ids.
  virtual Result<std::vector<std::string>> expire(const CallEnd& end, int limit) = 0;
  // When the next live call expires.
  virtual Result<std::optional<Micros>> next_expiry() = 0;
  // READY calls due now per function, and suspended coroutines (metrics).
  virtual Result<QueueFigures> queue_figures() = 0;
};

// The error a cancelled call ends with, which its waiting parent receives.
// dispatch-py raises it as a RuntimeError (it knows no CancelledError type).
inline constexpr std::string_view kCancelledErrorType = "CancelledError";

}  // namespace ratchet
