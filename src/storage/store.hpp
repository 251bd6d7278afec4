// Store: the durable history behind every job and every durable call.
//
// Two backends implement it: SQLite (the embedded default, one file) and, for a
// fleet of servers, PostgreSQL. Every state transition is a single transaction
// guarded by the current status (compare-and-set): a method that moves a run
// from one status to another returns false, not an error, when the run was no
// longer in the expected status, so a late writer can never overwrite newer
// progress. Errors are typed (common/status.hpp): kBusy when the store stayed
// locked past its timeout, kUnavailable when it cannot be reached, kInternal
// for anything else.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.hpp"
#include "common/status.hpp"
#include "storage/browse.hpp"
#include "storage/call.hpp"
#include "storage/instance.hpp"
#include "storage/repair.hpp"
#include "storage/run.hpp"

namespace ratchet {

struct StartedJob {
  JobRecord job;
  // Nothing was started: the key has a live job, or (strict) has had a job.
  bool existing = false;
  // False when a strict start found its key already used (`existing` too).
  bool accepted = true;
};

struct StoreOptions {
  // How long a writer waits for a lock held by another process before kBusy.
  Micros lock_timeout = 10 * kMicrosPerSecond;
  // fsync every commit (SQLite synchronous=FULL). Off keeps commits safe from a
  // crash of any process, but not from a power loss.
  bool durable = true;
  // Checkpoint the WAL every this many pages. A process that lives for one
  // command wants it small (the first to open the store re-reads the WAL); a
  // server wants it large (each checkpoint costs an fsync of the database).
  int wal_checkpoint_pages = 1000;
  // Checkpoint only in checkpoint_if_due(), never inside a commit: for a
  // process whose caller waits on its commits (the job supervisor, which
  // `ratchet start` waits on), so the checkpoint's fsyncs come after the answer.
  bool defer_checkpoints = false;
  // With `durable`: a call transaction's commit returns once written, before
  // the disk has it, and sync() puts every commit so far on disk. For the
  // scheduler, which sends calls before their commit is on disk and
  // acknowledges nothing until sync() returns (docs/server.md, "Commits").
  // Without it every commit is on disk when it returns. SQLite only.
  bool defer_sync = false;
  // The server's name on the leases it takes. A store shared by a fleet
  // records it with a heartbeat every `instance_heartbeat` (in the server's
  // own transactions), and the calls leased by an instance silent for
  // `instance_timeout`, or marked gone, are taken over by the others at their
  // next claim. An instance is marked gone when its store is closed (a clean
  // stop), and when a server of the same host (same `identity.host_id`) finds
  // its process no longer running (`process_alive`): after a crash and a
  // restart, its calls run again at once (storage/instance.hpp). Empty: a
  // process that takes no leases.
  std::string instance;
  InstanceIdentity identity;
  ProcessProbe process_alive;  // empty: the heartbeat alone tells
  Micros instance_heartbeat = 2 * kMicrosPerSecond;
  Micros instance_timeout = 8 * kMicrosPerSecond;
  // A server's store: keeps this many bytes of disk in a file beside it
  // (<path>.reserve), given back when the disk fills so that the WAL can still
  // be moved into the database and truncated; the WAL is also truncated to
  // this size after checkpoints. 0: none. (SQLite.)
  std::int64_t disk_reserve_bytes = 0;
  // Checks the file at open (SQLite's quick_check) and refuses a damaged store.
  bool check_integrity = false;
};

class Store {
 public:
  virtual ~Store() = default;

  // --- jobs -------------------------------------------------------------------

  // Starts a job (STARTING, supervised by `request.supervisor`) unless the key
  // has a STARTING or RUNNING job that `is_live` confirms. A job that `is_live`
  // declares dead is recorded LOST (with the reason it gives) in the same
  // transaction, and the new job is started. A strict request starts nothing
  // on a key that has had any job, unless the key holds an unexpired unlock,
  // which it then uses up. The new job is numbered after the key's newest.
  using LivenessCheck = std::function<bool(const JobRecord&, std::string* lost_reason)>;
  virtual Result<StartedJob> start_job(const JobRequest& request, const LivenessCheck& is_live) = 0;

  virtual Result<std::optional<JobRecord>> find_job(const std::string& id) = 0;
  virtual Result<std::optional<JobRecord>> newest_job_for_key(const std::string& run_key) = 0;

  // STARTING -> RUNNING, with the command's process.
  virtual Result<bool> mark_job_running(const std::string& id, const ProcessIdentity& process) = 0;
  // STARTING or RUNNING -> the outcome's terminal status.
  virtual Result<bool> finish_job(const std::string& id, const JobOutcome& outcome) = 0;
  // STARTING or RUNNING -> the outcome's status, and, in the same transaction,
  // the next attempt of a `start --retries` (STARTING, following `id`), so that
  // the key is never free between two attempts. nullopt if `id` had ended.
  virtual Result<std::optional<JobRecord>> retry_job(const std::string& id,
                                                     const JobOutcome& outcome,
                                                     const JobRequest& next) = 0;
  // The attempt a retry started after job `id`, if there is one.
  virtual Result<std::optional<JobRecord>> find_retry_of(const std::string& id) = 0;
  // `expected` -> LOST, with the reason.
  virtual Result<bool> mark_job_lost(const std::string& id, RunStatus expected,
                                     const std::string& reason) = 0;
  // Records that `ratchet cancel` asked the job to stop (STARTING or RUNNING only).
  virtual Result<bool> request_cancel(const std::string& id, Micros grace,
                                      const std::optional<std::string>& reason) = 0;
  // Lets the next strict start of the key run once, until `ttl` passes (no ttl:
  // until it is used); replaces an earlier unlock of the key. kNotFound when
  // the key has no job, kFailedPrecondition when its job is live.
  virtual Result<KeyUnlock> unlock_key(const std::string& run_key,
                                       const std::optional<std::string>& reason,
                                       std::optional<Micros> ttl, const LivenessCheck& is_live) = 0;
  // Adds jobs recorded elsewhere (`ratchet import`), all or none; a job whose
  // id is already in the store is left as it is. `jobs` come in the order they
  // started, and each is numbered after its key's newest job (attempt_no,
  // rerun_of_job_id). kFailedPrecondition, nothing added, when a key has a job
  // that was not imported. Returns how many were added.
  virtual Result<int> import_jobs(const std::vector<JobRecord>& jobs) = 0;
  // The supervisor's sign of life: renews its lease until `lease_until`. False
  // when the job is no longer STARTING or RUNNING: someone else ended it (it
  // was seen LOST from another host while this supervisor was paused), and
  // the supervisor must stop its command rather than finish it.
  virtual Result<bool> heartbeat(const std::string& id, Micros lease_until) = 0;

  // With StoreOptions::defer_checkpoints, the checkpoint the commits so far
  // made due, if they did; otherwise (and for stores without one) nothing.
  virtual Status checkpoint_if_due() { return Status::ok(); }

  // --- calls ------------------------------------------------------------------

  // True when call transactions' commits return before the disk has them
  // (StoreOptions::defer_sync); then sync() puts every commit that returned
  // before it was called on disk. It may run on any thread, also during a
  // transaction. Otherwise it does nothing.
  virtual bool defers_sync() const { return false; }
  virtual Status sync() { return Status::ok(); }

  // Runs `body` as one write transaction: the scheduler batches many call
  // transitions into one commit (group commit). On error nothing is written.
  virtual Status calls(const std::function<Status(CallTransaction&)>& body) = 0;
  virtual Result<std::optional<CallRecord>> find_call(const std::string& id) = 0;
  // Calls `news` (on another thread) when another process may have made calls
  // due: PostgreSQL's LISTEN/NOTIFY. A hint that can be lost (a connection
  // pooler drops LISTEN), so the caller polls as well. nullptr stops watching.
  virtual void watch_calls(std::function<void()> news) {}
  // A call's latest `latest` history events, oldest first.
  virtual Result<std::vector<HistoryEvent>> call_history(const std::string& id, int latest) = 0;

  // --- every run (jobs and calls) ------------------------------------------------

  // The newest runs (jobs and calls) first, optionally of one status.
  virtual Result<std::vector<RunSummary>> list_runs(std::optional<RunStatus> status, int limit) = 0;
  // The runs (jobs and calls) of a run key, newest first.
  virtual Result<std::vector<RunSummary>> runs_for_key(const std::string& run_key, int limit) = 0;
  // Terminal runs whose finished_at is before `cutoff`.
  virtual Result<std::vector<RunSummary>> terminal_runs_before(Micros cutoff) = 0;
  // Deletes the runs by id (terminal ones only); returns how many went.
  virtual Result<int> delete_terminal_runs(const std::vector<std::string>& ids) = 0;

  // --- reading for the dashboard (storage/browse.hpp) ----------------------------
  // A backend without them answers kFailedPrecondition, so that it builds and
  // serves everything else until it has them.

  // One page of runs, newest first (started_at, then insertion order).
  virtual Result<RunPage> browse_runs(const RunQuery& query) { return no_browsing(); }
  // The calls `parent_id` dispatched, oldest first, at most `limit`, without
  // their input and output (empty).
  virtual Result<std::vector<CallRecord>> child_calls(const std::string& parent_id, int limit) {
    return no_browsing();
  }
  // The calls of many parents at once, as child_calls reads them: ordered by
  // parent (in the order of `parent_ids`), then oldest first; at most
  // `limit_per_parent` of each and `limit_total` in all.
  virtual Result<std::vector<CallRecord>> child_calls_of(const std::vector<std::string>& parent_ids,
                                                         int limit_per_parent, int limit_total) {
    return no_browsing();
  }
  // The state of a suspended coroutine's latest Poll (CallRecord::poll says
  // which member it came in); nullopt when it has none.
  virtual Result<std::optional<std::string>> coroutine_state(const std::string& call_id) {
    return no_browsing();
  }
  // What is live now, and the runs finished since `since`.
  virtual Result<HealthCounts> health_counts(Micros since) { return no_browsing(); }
  // A cheap token that differs from the one before whenever another
  // connection (another Store, another process) committed a change since; it
  // may differ without one. The dashboard's live views poll it, once for all
  // their clients, before they read again.
  virtual Result<std::string> change_stamp() { return no_browsing(); }

  // --- suspended coroutines, for --ratchet-check and operators (storage/repair.hpp) ---

  // The open coroutines of `functions`, and of any function at `endpoint` (a
  // Call's endpoint URL, exactly; empty: none), in dispatch id order (byte
  // order, on every backend), those whose id sorts after `after` (empty: from
  // the first), at most `limit`: ListOpen's pages.
  virtual Result<std::vector<OpenCoroutine>> open_coroutines(
      const std::vector<std::string>& functions, const std::string& endpoint,
      const std::string& after, int limit) {
    return no_repair();
  }
  // Applies `repair` to a WAITING, HELD or READY coroutine (kFailedPrecondition
  // for one that runs now, has finished or has no state; kNotFound), makes it
  // READY now and records its action, in one transaction. The call after it.
  virtual Result<CallRecord> repair_coroutine(const CoroutineRepair& repair) { return no_repair(); }
  // The latest `latest` actions recorded on a call, oldest first, and how many
  // it has in all.
  virtual Result<CallActions> call_actions(const std::string& call_id, int latest) {
    return no_repair();
  }

 private:
  static Status no_browsing() {
    return failed_precondition("this store does not serve the dashboard's reads yet");
  }
  static Status no_repair() {
    return failed_precondition("this store cannot list or repair coroutines");
  }
};

// Opens the store at `location`: a postgres:// (or postgresql://) URL, or else a
// SQLite file path; either is given its schema on first use.
Result<std::unique_ptr<Store>> open_store(const std::string& location, const Clock& clock,
                                          const StoreOptions& options = {});

// True when `location` names a PostgreSQL store.
bool is_postgres_location(std::string_view location);
// The location as messages and logs show it: a URL without its password.
std::string display_location(std::string_view location);
// Whether this executable has the PostgreSQL backend: the `ratchet` command
// does not (it stays a static binary that starts in a millisecond) and hands
// commands on a PostgreSQL store to `ratchet-server`, which does.
bool postgres_backend_linked();

}  // namespace ratchet
