#include "storage/sqlite_store.hpp"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <limits>

#include "common/ids.hpp"
#include "storage/disk_reserve.hpp"
#include "storage/job_rules.hpp"
#include "storage/records.hpp"
#include "storage/schema.hpp"
#include "storage/sqlite_blobs.hpp"
#include "storage/sqlite_browse.hpp"
#include "storage/sqlite_calls.hpp"
#include "storage/sqlite_db.hpp"
#include "storage/sqlite_repair.hpp"

namespace ratchet {
namespace {

using sqlite::Database;
using sqlite::Statement;

using records::read_job;
using records::read_summary;

#define JOB_COLUMNS RATCHET_JOB_COLUMNS
#define SUMMARY_COLUMNS RATCHET_SUMMARY_COLUMNS
#define TERMINAL_STATUSES RATCHET_TERMINAL_STATUSES

// Serialises first-time set-up (WAL mode and migrations) between processes:
// switching a fresh file to WAL must not race with another process doing it.
class SetupLock {
 public:
  explicit SetupLock(const std::string& db_path) {
    fd_ = ::open((db_path + ".setup-lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ >= 0) ::flock(fd_, LOCK_EX);
  }
  ~SetupLock() {
    if (fd_ >= 0) ::close(fd_);
  }

 private:
  int fd_ = -1;
};

class SqliteStore final : public Store, private job_rules::JobRows {
 public:
  SqliteStore(std::unique_ptr<Database> db, const Clock& clock, const StoreOptions& options)
      : db_(std::move(db)),
        clock_(clock),
        options_(options),
        reserve_(db_->path() + ".reserve", options.disk_reserve_bytes) {}
  ~SqliteStore() override;

  Status initialize(const StoreOptions& options);
  // With defer_sync, once the store is in WAL mode: opens the WAL for sync(),
  // or, should that fail, goes back to a sync in each commit.
  Status open_wal_for_sync();
  bool defers_sync() const override { return wal_fd_ >= 0; }
  Status sync() override;

  Result<StartedJob> start_job(const JobRequest& request, const LivenessCheck& is_live) override;
  Result<std::optional<JobRecord>> find_job(const std::string& id) override;
  Result<std::optional<JobRecord>> newest_job_for_key(const std::string& run_key) override;
  Result<bool> mark_job_running(const std::string& id, const ProcessIdentity& process) override;
  Result<bool> finish_job(const std::string& id, const JobOutcome& outcome) override;
  Result<bool> mark_job_lost(const std::string& id, RunStatus expected,
                             const std::string& reason) override;
  Result<std::optional<JobRecord>> retry_job(const std::string& id, const JobOutcome& outcome,
                                             const JobRequest& next) override;
  Result<std::optional<JobRecord>> find_retry_of(const std::string& id) override;
  Result<bool> request_cancel(const std::string& id, Micros grace,
                              const std::optional<std::string>& reason) override;
  Result<KeyUnlock> unlock_key(const std::string& run_key, const std::optional<std::string>& reason,
                               std::optional<Micros> ttl, const LivenessCheck& is_live) override;
  Result<int> import_jobs(const std::vector<JobRecord>& jobs) override;
  Result<bool> heartbeat(const std::string& id, Micros lease_until) override;
  Status checkpoint_if_due() override { return db_->checkpoint_if_due(); }
  Result<std::vector<RunSummary>> list_runs(std::optional<RunStatus> status, int limit) override;
  Result<std::vector<RunSummary>> runs_for_key(const std::string& run_key, int limit) override;
  Status calls(const std::function<Status(CallTransaction&)>& body) override;
  Result<std::optional<CallRecord>> find_call(const std::string& id) override {
    return sqlite::find_call(*db_, id);
  }
  Result<std::vector<HistoryEvent>> call_history(const std::string& id, int latest) override {
    return sqlite::call_history(*db_, id, latest);
  }
  Result<std::vector<RunSummary>> terminal_runs_before(Micros cutoff) override;
  Result<int> delete_terminal_runs(const std::vector<std::string>& ids) override;
  Result<RunPage> browse_runs(const RunQuery& query) override {
    return sqlite::browse_runs(*db_, query);
  }
  Result<std::vector<CallRecord>> child_calls(const std::string& parent_id, int limit) override {
    return sqlite::child_calls(*db_, parent_id, limit);
  }
  Result<std::vector<CallRecord>> child_calls_of(const std::vector<std::string>& parent_ids,
                                                 int limit_per_parent, int limit_total) override {
    return sqlite::child_calls_of(*db_, parent_ids, limit_per_parent, limit_total);
  }
  Result<std::optional<std::string>> coroutine_state(const std::string& call_id) override {
    return sqlite::coroutine_state(*db_, call_id);
  }
  Result<HealthCounts> health_counts(Micros since) override {
    return sqlite::health_counts(*db_, clock_.now(), since);
  }
  Result<std::vector<OpenCoroutine>> open_coroutines(const std::vector<std::string>& functions,
                                                     const std::string& endpoint,
                                                     const std::string& after, int limit) override {
    return sqlite::open_coroutines(*db_, functions, endpoint, after, limit);
  }
  Result<CallRecord> repair_coroutine(const CoroutineRepair& repair) override {
    return sqlite::repair_coroutine(*db_, clock_.now(), repair);
  }
  Result<CallActions> call_actions(const std::string& call_id, int latest) override {
    return sqlite::call_actions(*db_, call_id, latest);
  }
  Result<std::string> change_stamp() override { return sqlite::data_version(*db_); }

 private:
  Status check_integrity();
  void make_room();
  void keep_reserve();
  Status beat(Micros now);
  Result<std::vector<JobRecord>> read_jobs(Statement* statement);
  Result<std::vector<RunSummary>> read_summaries(Statement* statement);
  Result<std::optional<JobRecord>> read_one_job(Statement* statement);

  // job_rules::JobRows, in the caller's transaction.
  Micros now() override { return clock_.now(); }
  std::string new_id() override { return new_uuid(); }
  Result<std::optional<JobRecord>> live_job_of_key(const std::string& run_key) override;
  Result<int> insert_job(const JobRecord& job, bool ignore_existing) override;
  Result<std::optional<job_rules::TakenUnlock>> take_unlock(const std::string& run_key) override;
  Status put_unlock(const KeyUnlock& unlock) override;

  std::unique_ptr<Database> db_;
  const Clock& clock_;
  StoreOptions options_;
  // With defer_sync: the WAL, opened for sync() (fdatasync needs no write access).
  // SQLite keeps the file while the store is open (SQLITE_FCNTL_PERSIST_WAL,
  // and this connection is open), so the descriptor stays the WAL's.
  int wal_fd_ = -1;
  sqlite::DiskReserve reserve_;
  Micros next_reserve_try_ = 0;
  std::optional<Micros> last_beat_;
  Micros last_cleanup_ = 0;
};

// How often a server removes the rows of instances that died long ago.
constexpr Micros kInstanceCleanupEvery = 10 * 60 * kMicrosPerSecond;

SqliteStore::~SqliteStore() {
  if (wal_fd_ >= 0) {
    // What the scheduler left unsynced goes to disk before the store closes.
    (void)::fdatasync(wal_fd_);
    ::close(wal_fd_);
  }
  if (options_.instance.empty() || !last_beat_) return;
  // Gone: the leases this instance still holds are taken over at once rather
  // than when they expire.
  auto gone = db_->prepare("UPDATE instances SET heartbeat_at = 0 WHERE id = ?1");
  if (gone.is_ok()) (void)(*gone)->bind(1, options_.instance).run();
}

Status SqliteStore::calls(const std::function<Status(CallTransaction&)>& body) {
  Micros now = clock_.now();
  bool beating = !options_.instance.empty() &&
                 (!last_beat_ || now - *last_beat_ >= options_.instance_heartbeat);
  Status status = db_->write_transaction([&] {
    if (beating) RETURN_IF_ERROR(beat(now));
    auto transaction = sqlite::make_call_transaction(*db_, clock_, options_.instance_timeout);
    return body(*transaction);
  });
  if (!status.is_ok() && db_->last_error() == SQLITE_FULL) make_room();
  if (status.is_ok()) {
    if (beating) last_beat_ = now;
    keep_reserve();
  }
  return status;
}

// The instance's sign of life, in the scheduler's transactions (at least one
// a second). Instances of this host whose process is gone are marked gone, so
// that the claim that follows takes their leases: a restart after a crash runs
// them again at once.
Status SqliteStore::beat(Micros now) {
  const InstanceIdentity& self = options_.identity;
  ASSIGN_OR_RETURN(Statement * upsert,
                   db_->prepare("INSERT INTO instances (id, started_at, heartbeat_at, host_id, "
                                "pid, pid_start) VALUES (?1, ?2, ?2, ?3, ?4, ?5) ON CONFLICT (id) "
                                "DO UPDATE SET heartbeat_at = excluded.heartbeat_at"));
  upsert->bind(1, options_.instance).bind(2, now).bind(3, self.host_id).bind(4, self.pid);
  upsert->bind(5, self.pid_start);
  RETURN_IF_ERROR(upsert->run().status());
  if (options_.process_alive && !self.host_id.empty()) {
    ASSIGN_OR_RETURN(Statement * neighbours,
                     db_->prepare("SELECT id, pid, pid_start FROM instances WHERE host_id = ?1 "
                                  "AND id != ?2 AND heartbeat_at > 0"));
    neighbours->bind(1, self.host_id).bind(2, options_.instance);
    std::vector<HostInstance> others;
    while (true) {
      ASSIGN_OR_RETURN(bool row, neighbours->step());
      if (!row) break;
      others.push_back(HostInstance{neighbours->text(0), static_cast<int>(neighbours->int64(1)),
                                    neighbours->int64(2)});
    }
    ASSIGN_OR_RETURN(Statement * gone,
                     db_->prepare("UPDATE instances SET heartbeat_at = 0 WHERE id = ?1"));
    for (const auto& id : gone_on_this_host(self, others, options_.process_alive)) {
      gone->reset();
      gone->bind(1, id);
      RETURN_IF_ERROR(gone->run().status());
    }
  }
  if (now - last_cleanup_ < kInstanceCleanupEvery) return Status::ok();
  last_cleanup_ = now;
  ASSIGN_OR_RETURN(Statement * cleanup,
                   db_->prepare("DELETE FROM instances WHERE heartbeat_at < ?1 AND NOT EXISTS "
                                "(SELECT 1 FROM runs WHERE phase = 'LEASED' AND lease_owner = "
                                "instances.id)"));
  cleanup->bind(1, now - kInstanceCleanupEvery);
  return cleanup->run().status();
}

Status SqliteStore::initialize(const StoreOptions& options) {
  bool sync_each_commit = options.durable && !options.defer_sync;
  RETURN_IF_ERROR(
      db_->exec(sync_each_commit ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL"));
  if (options.check_integrity) RETURN_IF_ERROR(check_integrity());
  if (options.disk_reserve_bytes > 0) {
    std::string limit = "PRAGMA journal_size_limit=" + std::to_string(options.disk_reserve_bytes);
    RETURN_IF_ERROR(db_->exec(limit.c_str()));
    keep_reserve();  // on a disk already full, it is taken later
  }
  auto target = sqlite::migration_target(*db_);
  ASSIGN_OR_RETURN(bool complete, migrations_complete(*target, sqlite::migrations()));
  if (complete) return Status::ok();
  SetupLock lock(db_->path());
  RETURN_IF_ERROR(db_->exec("PRAGMA journal_mode=WAL"));
  return apply_migrations(*target, sqlite::migrations());
}

Status SqliteStore::open_wal_for_sync() {
  // The connection has read the store in WAL mode, so SQLite has the WAL open,
  // under the name SQLite resolved (a symlinked store's WAL is beside its
  // target). Its directory is synced once, as SQLite would when it first
  // syncs a new WAL, so that the file's name is on disk too.
  std::string wal = db_->wal_path();
  wal_fd_ = wal.empty() ? -1 : ::open(wal.c_str(), O_RDONLY | O_CLOEXEC);
  if (wal_fd_ < 0) return db_->exec("PRAGMA synchronous=FULL");
  std::string dir = std::filesystem::path(wal).parent_path().string();
  int dir_fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    (void)::fsync(dir_fd);
    ::close(dir_fd);
  }
  return Status::ok();
}

// Every commit written before this call reached the WAL with pwrite(); what a
// checkpoint moved from the WAL into the database, SQLite synced first
// (synchronous=NORMAL syncs the WAL before a checkpoint and the database
// after). An error means the disk may have dropped written pages: nothing
// after it may be acknowledged, and only a restart (which reads what is on
// disk) can tell what survived.
Status SqliteStore::sync() {
  if (wal_fd_ < 0) return Status::ok();
  if (::fdatasync(wal_fd_) == 0) return Status::ok();
  return Status(Code::kUnavailable, "the store's WAL could not be flushed to disk (" +
                                        std::string(std::strerror(errno)) +
                                        "): restart the server");
}

Status SqliteStore::check_integrity() {
  // quick_check reads every page but skips the costly cross-checks of
  // integrity_check (index contents against their tables).
  ASSIGN_OR_RETURN(Statement * check, db_->prepare("PRAGMA quick_check(3)"));
  std::string problems;
  while (true) {
    auto row = check->step();
    if (!row.is_ok()) {
      problems = row.status().message();
      break;
    }
    if (!*row) break;
    std::string line = check->text(0);
    if (line != "ok") problems += (problems.empty() ? "" : "; ") + line;
  }
  check->reset();
  if (problems.empty()) return Status::ok();
  return Status(Code::kUnavailable, "the store " + db_->path() + " is damaged (" + problems +
                                        "): restore it from a backup, or move it away to "
                                        "start with an empty one");
}

// A commit failed for want of space. The WAL may hold most of what space the
// store has: move it into the database and truncate it. That can need new
// pages in the database, which is what the reserve is for.
void SqliteStore::make_room() {
  if (db_->exec("PRAGMA wal_checkpoint(TRUNCATE)").is_ok()) return;
  if (reserve_.release()) (void)db_->exec("PRAGMA wal_checkpoint(TRUNCATE)");
  next_reserve_try_ = clock_.now() + 10 * kMicrosPerSecond;
}

// Takes the reserve back once commits succeed, trying at most every 10 s
// while the disk stays short of room.
void SqliteStore::keep_reserve() {
  if (reserve_.held() || clock_.now() < next_reserve_try_) return;
  if (!reserve_.take()) next_reserve_try_ = clock_.now() + 10 * kMicrosPerSecond;
}

#define INSERT_JOB                                                                               \
  "INSERT INTO runs (id, kind, run_key, status, started_at, updated_at, finished_at, boot_id, "  \
  "supervisor_pid, supervisor_start, pid, pid_start, command, cwd, env, timeout_us, "            \
  "stdout_file, stderr_file, exit_code, signal, error, cancel_requested_at, cancel_grace_us, "   \
  "attempt_no, rerun_of_job_id, rerun_reason, started_by, strict, strict_override_used, "        \
  "retries, retry_delay_us, cancel_reason, host_id, lease_expires_at) VALUES (?1, 'job', ?2, "   \
  "?3, ?4, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, " \
  "?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31, ?32)"

Result<int> SqliteStore::insert_job(const JobRecord& job, bool ignore_existing) {
  // A new job's id must be new: only an import skips the ids it finds.
  ASSIGN_OR_RETURN(
      Statement * insert,
      db_->prepare(ignore_existing ? INSERT_JOB " ON CONFLICT (id) DO NOTHING" : INSERT_JOB));
  insert->bind(1, job.id)
      .bind(2, job.run_key)
      .bind(3, status_name(job.status))
      .bind(4, job.started_at)
      .bind(5, job.finished_at)
      .bind(6, job_rules::boot_id_of(job))
      .bind(7, records::pid_of(job.supervisor))
      .bind(8, records::start_of(job.supervisor))
      .bind(9, records::pid_of(job.process))
      .bind(10, records::start_of(job.process))
      .bind(11, records::command_to_json(job.command))
      .bind(12, bytes_to_text(job.cwd))
      .bind(13, records::env_to_json(job.env))
      .bind(14, job.timeout)
      .bind(15, job.stdout_file)
      .bind(16, job.stderr_file)
      .bind(17, job.exit_code)
      .bind(18, job.signal)
      .bind(19, job.error)
      .bind(20, job.cancel_requested_at)
      .bind(21, job.cancel_grace)
      .bind(22, job.attempt_no)
      .bind(23, job.rerun_of_job_id)
      .bind(24, job.rerun_reason)
      .bind(25, trigger_name(job.trigger))
      .bind(26, job.strict ? 1 : 0)
      .bind(27, job.strict_override_used ? 1 : 0)
      .bind(28, job.retries)
      .bind(29, job.retry_delay)
      .bind(30, job.cancel_reason)
      .bind(31, job.host_id)
      .bind(32, job.lease_expires_at);
  return insert->run();
}

Result<std::optional<JobRecord>> SqliteStore::live_job_of_key(const std::string& run_key) {
  ASSIGN_OR_RETURN(Statement * live,
                   db_->prepare("SELECT " JOB_COLUMNS " FROM runs WHERE kind = 'job' AND "
                                "run_key = ?1 AND status IN ('STARTING', 'RUNNING')"));
  live->bind(1, run_key);
  return read_one_job(live);
}

Result<std::optional<job_rules::TakenUnlock>> SqliteStore::take_unlock(const std::string& run_key) {
  ASSIGN_OR_RETURN(Statement * take, db_->prepare("DELETE FROM job_unlocks WHERE run_key = ?1 "
                                                  "RETURNING reason, expires_at"));
  take->bind(1, run_key);
  ASSIGN_OR_RETURN(bool found, take->step());
  std::optional<job_rules::TakenUnlock> taken;
  if (found) taken = job_rules::TakenUnlock{take->optional_text(0), take->optional_int64(1)};
  while (found) {  // runs the statement to its end
    ASSIGN_OR_RETURN(found, take->step());
  }
  take->reset();
  return taken;
}

Result<StartedJob> SqliteStore::start_job(const JobRequest& request, const LivenessCheck& is_live) {
  StartedJob started;
  Status status = db_->write_transaction([&]() -> Status {
    ASSIGN_OR_RETURN(started, job_rules::start(*this, request, is_live));
    return Status::ok();
  });
  if (!status.is_ok()) return status;
  return started;
}

Result<std::optional<JobRecord>> SqliteStore::read_one_job(Statement* statement) {
  ASSIGN_OR_RETURN(auto jobs, read_jobs(statement));
  if (jobs.empty()) return std::optional<JobRecord>();
  return std::optional<JobRecord>(std::move(jobs.front()));
}

Result<std::vector<JobRecord>> SqliteStore::read_jobs(Statement* statement) {
  std::vector<JobRecord> jobs;
  while (true) {
    ASSIGN_OR_RETURN(bool has_row, statement->step());
    if (!has_row) break;
    jobs.push_back(read_job(*statement));
  }
  statement->reset();
  return jobs;
}

Result<std::optional<JobRecord>> SqliteStore::find_job(const std::string& id) {
  ASSIGN_OR_RETURN(Statement * query,
                   db_->prepare("SELECT " JOB_COLUMNS " FROM runs WHERE id = ?1 AND kind = 'job'"));
  query->bind(1, id);
  return read_one_job(query);
}

Result<std::optional<JobRecord>> SqliteStore::newest_job_for_key(const std::string& run_key) {
  ASSIGN_OR_RETURN(Statement * query,
                   db_->prepare("SELECT " JOB_COLUMNS " FROM runs WHERE run_key = ?1 AND "
                                "kind = 'job' ORDER BY attempt_no DESC, rowid DESC LIMIT 1"));
  query->bind(1, run_key);
  return read_one_job(query);
}

Result<std::vector<RunSummary>> SqliteStore::read_summaries(Statement* statement) {
  std::vector<RunSummary> runs;
  while (true) {
    ASSIGN_OR_RETURN(bool has_row, statement->step());
    if (!has_row) break;
    runs.push_back(read_summary(*statement));
  }
  statement->reset();
  return runs;
}

Result<std::vector<RunSummary>> SqliteStore::list_runs(std::optional<RunStatus> status, int limit) {
  Statement* query = nullptr;
  if (status) {
    ASSIGN_OR_RETURN(query, db_->prepare("SELECT " SUMMARY_COLUMNS " FROM runs WHERE status = ?2 "
                                         "ORDER BY started_at DESC, rowid DESC LIMIT ?1"));
    query->bind(2, status_name(*status));
  } else {
    ASSIGN_OR_RETURN(query, db_->prepare("SELECT " SUMMARY_COLUMNS " FROM runs "
                                         "ORDER BY started_at DESC, rowid DESC LIMIT ?1"));
  }
  query->bind(1, limit);
  return read_summaries(query);
}

Result<std::vector<RunSummary>> SqliteStore::runs_for_key(const std::string& run_key, int limit) {
  ASSIGN_OR_RETURN(Statement * query,
                   db_->prepare("SELECT " SUMMARY_COLUMNS " FROM runs WHERE run_key = ?1 "
                                "ORDER BY attempt_no DESC, rowid DESC LIMIT ?2"));
  query->bind(1, run_key).bind(2, limit);
  return read_summaries(query);
}

Result<bool> SqliteStore::mark_job_running(const std::string& id, const ProcessIdentity& process) {
  ASSIGN_OR_RETURN(Statement * update,
                   db_->prepare("UPDATE runs SET status = 'RUNNING', pid = ?2, pid_start = ?3, "
                                "heartbeat_at = ?4, updated_at = ?4 "
                                "WHERE id = ?1 AND status = 'STARTING'"));
  update->bind(1, id).bind(2, process.pid).bind(3, process.start_ticks).bind(4, clock_.now());
  ASSIGN_OR_RETURN(int changed, update->run());
  return changed == 1;
}

Result<bool> SqliteStore::finish_job(const std::string& id, const JobOutcome& outcome) {
  ASSIGN_OR_RETURN(Statement * update,
                   db_->prepare("UPDATE runs SET status = ?2, exit_code = ?3, signal = ?4, "
                                "error = ?5, finished_at = ?6, updated_at = ?6 "
                                "WHERE id = ?1 AND status IN ('STARTING', 'RUNNING')"));
  update->bind(1, id)
      .bind(2, status_name(outcome.status))
      .bind(3, outcome.exit_code)
      .bind(4, outcome.signal)
      .bind(5, outcome.error)
      .bind(6, clock_.now());
  ASSIGN_OR_RETURN(int changed, update->run());
  return changed == 1;
}

Result<bool> SqliteStore::mark_job_lost(const std::string& id, RunStatus expected,
                                        const std::string& reason) {
  ASSIGN_OR_RETURN(Statement * update,
                   db_->prepare("UPDATE runs SET status = 'LOST', error = ?3, finished_at = ?4, "
                                "updated_at = ?4 WHERE id = ?1 AND status = ?2"));
  update->bind(1, id).bind(2, status_name(expected)).bind(3, reason).bind(4, clock_.now());
  ASSIGN_OR_RETURN(int changed, update->run());
  return changed == 1;
}

Result<bool> SqliteStore::request_cancel(const std::string& id, Micros grace,
                                         const std::optional<std::string>& reason) {
  ASSIGN_OR_RETURN(Statement * update,
                   db_->prepare("UPDATE runs SET cancel_requested_at = ?2, cancel_grace_us = ?3, "
                                "cancel_reason = ?4, updated_at = ?2 "
                                "WHERE id = ?1 AND status IN ('STARTING', 'RUNNING')"));
  update->bind(1, id).bind(2, clock_.now()).bind(3, grace).bind(4, reason);
  ASSIGN_OR_RETURN(int changed, update->run());
  return changed == 1;
}

Result<std::optional<JobRecord>> SqliteStore::retry_job(const std::string& id,
                                                        const JobOutcome& outcome,
                                                        const JobRequest& next) {
  std::optional<JobRecord> retry;
  Status status = db_->write_transaction([&]() -> Status {
    ASSIGN_OR_RETURN(retry, job_rules::retry(*this, id, outcome, next));
    return Status::ok();
  });
  if (!status.is_ok()) return status;
  return retry;
}

Result<std::optional<JobRecord>> SqliteStore::find_retry_of(const std::string& id) {
  ASSIGN_OR_RETURN(Statement * query,
                   db_->prepare("SELECT " JOB_COLUMNS " FROM runs WHERE rerun_of_job_id = ?1 "
                                "AND kind = 'job' AND started_by = 'retry'"));
  query->bind(1, id);
  return read_one_job(query);
}

Result<KeyUnlock> SqliteStore::unlock_key(const std::string& run_key,
                                          const std::optional<std::string>& reason,
                                          std::optional<Micros> ttl, const LivenessCheck& is_live) {
  KeyUnlock unlock;
  Status status = db_->write_transaction([&]() -> Status {
    ASSIGN_OR_RETURN(unlock, job_rules::unlock(*this, run_key, reason, ttl, is_live));
    return Status::ok();
  });
  if (!status.is_ok()) return status;
  return unlock;
}

Status SqliteStore::put_unlock(const KeyUnlock& unlock) {
  ASSIGN_OR_RETURN(Statement * upsert,
                   db_->prepare("INSERT OR REPLACE INTO job_unlocks (run_key, reason, "
                                "created_at, expires_at) VALUES (?1, ?2, ?3, ?4)"));
  upsert->bind(1, unlock.run_key)
      .bind(2, unlock.reason)
      .bind(3, unlock.created_at)
      .bind(4, unlock.expires_at);
  return upsert->run().status();
}

Result<int> SqliteStore::import_jobs(const std::vector<JobRecord>& jobs) {
  int inserted = 0;
  Status status = db_->write_transaction([&]() -> Status {
    ASSIGN_OR_RETURN(inserted, job_rules::import(*this, jobs));
    return Status::ok();
  });
  if (!status.is_ok()) return status;
  return inserted;
}

Result<bool> SqliteStore::heartbeat(const std::string& id, Micros lease_until) {
  ASSIGN_OR_RETURN(Statement * update,
                   db_->prepare("UPDATE runs SET heartbeat_at = ?2, lease_expires_at = ?3 "
                                "WHERE id = ?1 AND status IN ('STARTING', 'RUNNING')"));
  update->bind(1, id).bind(2, clock_.now()).bind(3, lease_until);
  ASSIGN_OR_RETURN(int changed, update->run());
  return changed == 1;
}

Result<std::vector<RunSummary>> SqliteStore::terminal_runs_before(Micros cutoff) {
  ASSIGN_OR_RETURN(Statement * query,
                   db_->prepare("SELECT " SUMMARY_COLUMNS " FROM runs "
                                "WHERE status IN " TERMINAL_STATUSES " AND finished_at < ?1 "
                                "ORDER BY finished_at"));
  query->bind(1, cutoff);
  return read_summaries(query);
}

Result<int> SqliteStore::delete_terminal_runs(const std::vector<std::string>& ids) {
  int deleted = 0;
  Status status = db_->write_transaction([&]() -> Status {
    ASSIGN_OR_RETURN(
        Statement * remove,
        db_->prepare("DELETE FROM runs WHERE id = ?1 AND status IN " TERMINAL_STATUSES));
    ASSIGN_OR_RETURN(Statement * remove_results,
                     db_->prepare("DELETE FROM call_results WHERE parent_id = ?1"));
    ASSIGN_OR_RETURN(Statement * remove_history,
                     db_->prepare("DELETE FROM call_history WHERE call_id = ?1"));
    ASSIGN_OR_RETURN(Statement * remove_actions,
                     db_->prepare("DELETE FROM call_actions WHERE call_id = ?1"));
    for (const auto& id : ids) {
      remove->reset();
      remove->bind(1, id);
      ASSIGN_OR_RETURN(int changed, remove->run());
      deleted += changed;
      remove_results->reset();
      remove_results->bind(1, id);
      RETURN_IF_ERROR(remove_results->run().status());
      // The history and actions of a call deleted (a live one's stay).
      if (changed == 0) continue;
      for (Statement* remove_rows : {remove_history, remove_actions}) {
        remove_rows->reset();
        remove_rows->bind(1, id);
        RETURN_IF_ERROR(remove_rows->run().status());
      }
    }
    // The blobs of the values deleted, and any other no row refers to (a
    // tail call's former input).
    return sweep_all_blobs(*db_).status();
  });
  if (!status.is_ok()) return status;
  return deleted;
}

}  // namespace

Result<std::unique_ptr<Store>> open_sqlite_store(const std::string& path, const Clock& clock,
                                                 const StoreOptions& options) {
  // SQLite's busy timeout is an int of milliseconds (24 days at most).
  int busy_ms = static_cast<int>(std::clamp<Micros>(options.lock_timeout / kMicrosPerMilli, 1,
                                                    std::numeric_limits<int>::max()));
  ASSIGN_OR_RETURN(auto db, Database::open(path, busy_ms, options.wal_checkpoint_pages,
                                           options.defer_checkpoints));
  auto store = std::make_unique<SqliteStore>(std::move(db), clock, options);
  RETURN_IF_ERROR(store->initialize(options));
  if (options.durable && options.defer_sync) RETURN_IF_ERROR(store->open_wal_for_sync());
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace ratchet
