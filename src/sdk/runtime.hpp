// The runtime of durable functions: runs a RunRequest's function and answers
// its RunResponse. Plain functions run once and Exit. Coroutines run against
// their replay journal (journal.hpp):
//
// - A first run starts the coroutine from its input with an empty journal.
// - Each co_await of durable calls is a group of steps (detail::begin_steps).
//   A step already in the journal is checked against it (function and argument
//   hash: a mismatch is INCOMPATIBLE_STATE naming the step); a new one becomes a
//   Call of the Poll, with correlation_id = its step number.
// - When the coroutine suspends, the answer is a Poll with the journal as its
//   typed_coroutine_state, and the live frame goes into the FrameCache.
// - A resume (PollResult) records the results in the journal. If the cache
//   holds this call's frame, saved with exactly the state the server echoes,
//   that frame continues where it stopped; otherwise the coroutine runs again
//   from its input and every recorded step returns at once (replay).
// - To a server that takes journal deltas (PollResult.journal_deltas: Ratchet's),
//   a Poll carries only what changed since the revision the server holds; the
//   server echoes that delta on the next resume, which the cache's frame
//   continues. A delta without its frame (another process, or evicted) is
//   answered with a temporary error: the server's retry carries the whole journal.
#pragma once

#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "dispatch/sdk/v1/function.pb.h"
#include "ratchet/function.hpp"
#include "sdk/journal.hpp"

namespace ratchet::sdk {
// The clock of sleeps and now() (Options::clock).
using WallClock = std::function<std::chrono::system_clock::time_point()>;
}  // namespace ratchet::sdk

namespace ratchet::detail {

// One run of a durable coroutine; see detail/runtime.hpp.
class Context {
 public:
  Context(CallInfo info, std::string endpoint, sdk::jv1::Journal journal,
          const sdk::WallClock& clock)
      : dispatch_id(info.dispatch_id),
        info(std::move(info)),
        endpoint(std::move(endpoint)),
        journal(std::move(journal)),
        clock(clock) {}

  std::string dispatch_id;
  CallInfo info;         // ratchet::current() while it runs
  std::string endpoint;  // where the calls it makes run (this service)
  sdk::jv1::Journal journal;
  sdk::JournalMark sent;  // what the server holds of it, for a delta
  std::uint64_t next_step = 1;
  std::vector<dispatch::sdk::v1::Call> new_calls;  // made since the last Poll

  // Where it is suspended, and on what.
  bool suspended = false;
  std::coroutine_handle<> resume_at;
  WaitMode mode = WaitMode::kOne;
  std::uint64_t first = 0;
  std::size_t count = 0;

  const sdk::WallClock& clock;

  std::optional<CallSpec> tail_call;
  std::optional<std::string> divergence;  // what differs at the step that diverged
  std::uint64_t diverged_at = 0;          // that step
  // What the function chose for a divergence (FunctionOptions::on_divergence).
  bool hold_on_divergence = false;
  std::optional<Task<nlohmann::json>> root;

  // A replay for `--ratchet-check` (Runtime::check): the coroutine stops at the
  // first step the journal has no result for, and no step's code runs.
  bool check_only = false;
  bool checked_to_end = false;  // it stopped there (ReplayStop)
};

// Thrown (not a std::exception, so that a coroutine's handlers for errors do
// not take it) where a `check_only` replay reaches a step the journal has no
// result for: the check has seen all it needs.
struct ReplayStop {};
// Throws ReplayStop when `context` is a check's replay; the divergence, if any, first.
void stop_if_checking(Context& context);

// Completes step `step` if it is a pending sleep whose time has come.
void settle_sleep(Context& context, std::uint64_t step);

// Throws IncompatibleStateError (and remembers why, so that the coroutine
// cannot catch its way past it) when recorded step `step` is not of `kind`,
// `function` and `hash`.
void check_recorded(Context& context, std::uint64_t step, sdk::jv1::StepKind kind,
                    std::string_view function, std::uint64_t hash);

// Records a divergence when the coroutine, now ended, did not reach every
// step its journal recorded.
void check_reached_all(Context& context);

// The wire Call for `spec` at `endpoint` (input, expiration, max_attempts; no
// run key: dispatches add it). InvalidArgumentError naming `what` when the
// input cannot be sent.
dispatch::sdk::v1::Call make_call(const CallSpec& spec, const std::string& endpoint,
                                  std::string_view what);

}  // namespace ratchet::detail

namespace ratchet::sdk {

// Suspended coroutine frames, by dispatch id, least recently used evicted
// first. An entry is only handed out for the exact state it saved (a digest of
// the journal bytes): a retried or stale RunRequest replays instead.
class FrameCache {
 public:
  explicit FrameCache(std::size_t capacity) : capacity_(capacity) {}
  ~FrameCache();

  void put(const std::string& dispatch_id, std::size_t state_digest,
           std::unique_ptr<detail::Context> context);
  std::unique_ptr<detail::Context> take(const std::string& dispatch_id, std::size_t state_digest);
  void erase(const std::string& dispatch_id);

  std::size_t size() const;
  std::size_t capacity() const { return capacity_; }
  std::uint64_t hits() const;

 private:
  struct Entry {
    std::string dispatch_id;
    std::size_t digest;
    std::unique_ptr<detail::Context> context;
  };
  const std::size_t capacity_;
  mutable std::mutex mutex_;
  std::list<Entry> entries_;  // most recently used first
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;
  std::uint64_t hits_ = 0;
};

// What `--ratchet-check` found for one open coroutine (ratchet::CheckResult).
struct CheckOutcome {
  bool resumes = true;
  std::uint64_t step = 0;  // where it diverges
  std::string message;     // what differs there, or how it resumes
};

struct RuntimeOptions {
  std::size_t frame_cache_size = 1024;
  bool trace = false;
  WallClock clock;  // empty: the system clock
};

class Runtime {
 public:
  explicit Runtime(RuntimeOptions options);

  // Runs `request` with `entry` (the function it names). `endpoint` is this
  // service's URL, for the calls a coroutine makes. Never throws.
  dispatch::sdk::v1::RunResponse run(const detail::FunctionEntry& entry,
                                     const dispatch::sdk::v1::RunRequest& request,
                                     const std::string& endpoint);

  // Replays `state` (a journal) against `entry`'s code without running any
  // step: does the coroutine resume, or diverge at which step? Never throws.
  CheckOutcome check(const detail::FunctionEntry& entry, const std::string& function,
                     const google::protobuf::Any& state);

  FrameCache& cache() { return cache_; }

 private:
  dispatch::sdk::v1::RunResponse run_plain(const detail::FunctionEntry& entry,
                                           const dispatch::sdk::v1::RunRequest& request);
  dispatch::sdk::v1::RunResponse run_coroutine(const detail::FunctionEntry& entry,
                                               const dispatch::sdk::v1::RunRequest& request,
                                               const std::string& endpoint);
  // What to answer once the coroutine stopped running.
  dispatch::sdk::v1::RunResponse conclude(std::unique_ptr<detail::Context> context);
  dispatch::sdk::v1::RunResponse suspend(std::unique_ptr<detail::Context> context);

  RuntimeOptions options_;
  FrameCache cache_;
};

// Digest of a journal's bytes, the FrameCache's check that a frame and a state agree.
std::size_t state_digest(const google::protobuf::Any& state);

}  // namespace ratchet::sdk
