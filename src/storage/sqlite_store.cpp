#include "storage/sqlite_store.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "common/ids.hpp"
#include "storage/schema.hpp"
#include "storage/sqlite_calls.hpp"
#include "storage/sqlite_db.hpp"

namespace ratchet {
namespace {

using sqlite::Database;
using sqlite::Statement;

// The columns of a job, in the order read_job() expects them.
#define JOB_COLUMNS                                                                         \
  "id, run_key, status, command, cwd, env, timeout_us, stdout_file, stderr_file, "          \
  "started_at, finished_at, boot_id, supervisor_pid, supervisor_start, "                    \
  "pid, pid_start, heartbeat_at, cancel_requested_at, cancel_grace_us, exit_code, signal, " \
  "error, attempt_no, rerun_of_job_id, rerun_reason, started_by, strict, "                  \
  "strict_override_used, retries, retry_delay_us, cancel_reason"

#define TERMINAL_STATUSES "('SUCCEEDED', 'FAILED', 'LOST', 'CANCELLED')"

std::string env_to_json(const std::vector<std::pair<std::string, std::string>>& env) {
  nlohmann::json array = nlohmann::json::array();
  for (const auto& [name, value] : env) array.push_back({name, value});
  return array.dump();
}

std::vector<std::pair<std::string, std::string>> env_from_json(const std::string& text) {
  std::vector<std::pair<std::string, std::string>> env;
  auto array = nlohmann::json::parse(text, nullptr, false);
  if (!array.is_array()) return env;
  for (const auto& pair : array) {
    if (pair.is_array() && pair.size() == 2 && pair[0].is_string() && pair[1].is_string()) {
      env.emplace_back(pair[0].get<std::string>(), pair[1].get<std::string>());
    }
  }
  return env;
}

std::vector<std::string> command_from_json(const std::string& text) {
  auto array = nlohmann::json::parse(text, nullptr, false);
  std::vector<std::string> command;
  if (!array.is_array()) return command;
  for (const auto& arg : array) {
    if (arg.is_string()) command.push_back(arg.get<std::string>());
  }
  return command;
}

std::optional<ProcessIdentity> identity_at(const Statement& row, int pid_column, int start_column,
                                           const std::string& boot_id) {
  if (row.is_null(pid_column)) return std::nullopt;
  return ProcessIdentity{static_cast<int>(row.int64(pid_column)), row.int64(start_column), boot_id};
}

JobRecord read_job(const Statement& row) {
  JobRecord job;
  job.id = row.text(0);
  job.run_key = row.text(1);
  job.status = parse_status(row.text(2)).value_or(RunStatus::kLost);
  job.command = command_from_json(row.text(3));
  job.cwd = row.text(4);
  job.env = env_from_json(row.text(5));
  job.timeout = row.optional_int64(6);
  job.stdout_file = row.text(7);
  job.stderr_file = row.text(8);
  job.started_at = row.int64(9);
  job.finished_at = row.optional_int64(10);
  std::string boot_id = row.text(11);
  job.supervisor = identity_at(row, 12, 13, boot_id);
  job.process = identity_at(row, 14, 15, boot_id);
  job.heartbeat_at = row.optional_int64(16);
  job.cancel_requested_at = row.optional_int64(17);
  job.cancel_grace = row.optional_int64(18).value_or(0);
  if (auto code = row.optional_int64(19)) job.exit_code = static_cast<int>(*code);
  job.signal = row.optional_text(20);
  job.error = row.optional_text(21);
  job.attempt_no = static_cast<int>(row.optional_int64(22).value_or(1));
  job.rerun_of_job_id = row.optional_text(23);
  job.rerun_reason = row.optional_text(24);
  job.trigger = parse_trigger(row.text(25)).value_or(JobTrigger::kStart);
  job.strict = row.int64(26) != 0;
  job.strict_override_used = row.int64(27) != 0;
  job.retries = static_cast<int>(row.int64(28));
  job.retry_delay = row.optional_int64(29);
  job.cancel_reason = row.optional_text(30);
  return job;
}

RunSummary read_summary(const Statement& row) {
  RunSummary run;
  run.id = row.text(0);
  run.kind = row.text(1) == "call" ? RunKind::kCall : RunKind::kJob;
  run.run_key = row.text(2);
  run.status = parse_status(row.text(3)).value_or(RunStatus::kLost);
  run.started_at = row.int64(4);
  run.finished_at = row.optional_int64(5);
  run.stdout_file = row.text(6);
  run.stderr_file = row.text(7);
  return run;
}

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

class SqliteStore final : public Store {
 public:
  SqliteStore(std::unique_ptr<Database> db, const Clock& clock)
      : db_(std::move(db)), clock_(clock) {}

  Status initialize(const StoreOptions& options);

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
  Status heartbeat(const std::string& id) override;
  Status checkpoint_if_due() override { return db_->checkpoint_if_due(); }
  Result<std::vector<RunSummary>> list_runs(std::optional<RunStatus> status, int limit) override;
  Result<std::vector<RunSummary>> runs_for_key(const std::string& run_key, int limit) override;
  Status calls(const std::function<Status(CallTransaction&)>& body) override {
    return db_->write_transaction([&] {
      auto transaction = sqlite::make_call_transaction(*db_, clock_);
      return body(*transaction);
    });
  }
  Result<std::optional<CallRecord>> find_call(const std::string& id) override {
    return sqlite::find_call(*db_, id);
  }
  Result<std::vector<RunSummary>> terminal_runs_before(Micros cutoff) override;
  Result<int> delete_terminal_runs(const std::vector<std::string>& ids) override;

 private:
  Result<int> schema_version();
  Status migrate();
  Result<std::vector<JobRecord>> read_jobs(Statement* statement);
  Result<std::vector<RunSummary>> read_summaries(Statement* statement);
  Result<std::optional<JobRecord>> read_one_job(Statement* statement);
  // The key's live job, after recording LOST a live-looking one that is not.
  Result<std::optional<JobRecord>> live_job_of_key(const std::string& run_key,
                                                   const LivenessCheck& is_live);
  // Uses up the key's unlock if it has one that has not expired; its reason.
  Result<std::optional<std::optional<std::string>>> take_unlock(const std::string& run_key);
  // Records `job` (filled from `request`) as the next job of its key after `previous`.
  Status insert_job(const JobRequest& request, const std::optional<JobRecord>& previous,
                    bool override_used, JobRecord* job);
  Status insert_record(const JobRecord& job, const std::optional<std::string>& boot_id,
                       bool ignore_existing, int* inserted);

  std::unique_ptr<Database> db_;
  const Clock& clock_;
};

Result<int> SqliteStore::schema_version() {
  ASSIGN_OR_RETURN(Statement * query, db_->prepare("PRAGMA user_version"));
  ASSIGN_OR_RETURN(bool has_row, query->step());
  int version = has_row ? static_cast<int>(query->int64(0)) : 0;
  query->reset();  // an unfinished SELECT would hold its read transaction open
  return version;
}

Status SqliteStore::initialize(const StoreOptions& options) {
  RETURN_IF_ERROR(
      db_->exec(options.durable ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL"));
  ASSIGN_OR_RETURN(int version, schema_version());
  const int latest = static_cast<int>(sqlite::migrations().size());
  if (version == latest) return Status::ok();
  if (version > latest) {
    return Status(Code::kFailedPrecondition, "the store " + db_->path() + " has schema version " +
                                                 std::to_string(version) +
                                                 ", newer than this ratchet understands (" +
                                                 std::to_string(latest) + "); upgrade ratchet");
  }
  SetupLock lock(db_->path());
  RETURN_IF_ERROR(db_->exec("PRAGMA journal_mode=WAL"));
  return migrate();
}

Status SqliteStore::migrate() {
  return db_->write_transaction([&]() -> Status {
    ASSIGN_OR_RETURN(int version, schema_version());
    auto steps = sqlite::migrations();
    for (auto i = static_cast<std::size_t>(version); i < steps.size(); ++i) {
      RETURN_IF_ERROR(db_->exec(steps[i]));
    }
    std::string set_version = "PRAGMA user_version=" + std::to_string(steps.size());
    return db_->exec(set_version.c_str());
  });
}

Status SqliteStore::insert_job(const JobRequest& request, const std::optional<JobRecord>& previous,
                               bool override_used, JobRecord* job) {
  job->id = new_uuid();
  job->run_key = request.run_key;
  job->status = RunStatus::kStarting;
  job->command = request.command;
  job->cwd = request.cwd;
  job->env = request.env;
  job->timeout = request.timeout;
  job->stdout_file = request.log_dir + "/" + job->id + ".stdout";
  job->stderr_file = request.log_dir + "/" + job->id + ".stderr";
  job->started_at = clock_.now();
  job->supervisor = request.supervisor;
  job->attempt_no = previous ? previous->attempt_no + 1 : 1;
  job->rerun_of_job_id = request.rerun_of_job_id;
  if (!job->rerun_of_job_id && previous) job->rerun_of_job_id = previous->id;
  job->rerun_reason = request.rerun_reason;
  job->trigger = request.trigger;
  job->strict = request.strict;
  job->strict_override_used = override_used;
  job->retries = request.retries;
  job->retry_delay = request.retry_delay;
  return insert_record(*job, request.supervisor.boot_id, /*ignore_existing=*/false, nullptr);
}

#define INSERT_JOB                                                                              \
  "INSERT INTO runs (id, kind, run_key, status, started_at, updated_at, finished_at, boot_id, " \
  "supervisor_pid, supervisor_start, pid, pid_start, command, cwd, env, timeout_us, "           \
  "stdout_file, stderr_file, exit_code, signal, error, cancel_requested_at, cancel_grace_us, "  \
  "attempt_no, rerun_of_job_id, rerun_reason, started_by, strict, strict_override_used, "       \
  "retries, retry_delay_us, cancel_reason) VALUES (?1, 'job', ?2, ?3, ?4, ?4, ?5, ?6, ?7, ?8, " \
  "?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, "   \
  "?27, ?28, ?29, ?30)"

Status SqliteStore::insert_record(const JobRecord& job, const std::optional<std::string>& boot_id,
                                  bool ignore_existing, int* inserted) {
  // A new job's id must be new: only an import skips the ids it finds.
  ASSIGN_OR_RETURN(
      Statement * insert,
      db_->prepare(ignore_existing ? INSERT_JOB " ON CONFLICT (id) DO NOTHING" : INSERT_JOB));
  auto optional_pid = [](const std::optional<ProcessIdentity>& p) {
    return p ? std::optional<std::int64_t>(p->pid) : std::nullopt;
  };
  auto optional_start = [](const std::optional<ProcessIdentity>& p) {
    return p ? std::optional<std::int64_t>(p->start_ticks) : std::nullopt;
  };
  nlohmann::json command = job.command;
  insert->bind(1, job.id)
      .bind(2, job.run_key)
      .bind(3, status_name(job.status))
      .bind(4, job.started_at)
      .bind(5, job.finished_at)
      .bind(6, boot_id)
      .bind(7, optional_pid(job.supervisor))
      .bind(8, optional_start(job.supervisor))
      .bind(9, optional_pid(job.process))
      .bind(10, optional_start(job.process))
      .bind(11, command.dump())
      .bind(12, job.cwd)
      .bind(13, env_to_json(job.env))
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
      .bind(30, job.cancel_reason);
  ASSIGN_OR_RETURN(int changed, insert->run());
  if (inserted) *inserted += changed;
  return Status::ok();
}

Result<std::optional<JobRecord>> SqliteStore::live_job_of_key(const std::string& run_key,
                                                              const LivenessCheck& is_live) {
  ASSIGN_OR_RETURN(Statement * live,
                   db_->prepare("SELECT " JOB_COLUMNS " FROM runs WHERE kind = 'job' AND "
                                "run_key = ?1 AND status IN ('STARTING', 'RUNNING')"));
  live->bind(1, run_key);
  ASSIGN_OR_RETURN(auto current, read_one_job(live));
  if (!current) return current;
  std::string reason;
  if (is_live(*current, &reason)) return current;
  ASSIGN_OR_RETURN(bool lost, mark_job_lost(current->id, current->status, reason));
  (void)lost;
  return std::optional<JobRecord>();
}

Result<std::optional<std::optional<std::string>>> SqliteStore::take_unlock(
    const std::string& run_key) {
  using Taken = std::optional<std::optional<std::string>>;
  ASSIGN_OR_RETURN(Statement * take, db_->prepare("DELETE FROM job_unlocks WHERE run_key = ?1 "
                                                  "RETURNING reason, expires_at"));
  take->bind(1, run_key);
  ASSIGN_OR_RETURN(bool found, take->step());
  if (!found) return Taken();
  std::optional<std::string> reason = take->optional_text(0);
  std::optional<Micros> expires_at = take->optional_int64(1);
  ASSIGN_OR_RETURN(bool more, take->step());  // runs the statement to its end
  (void)more;
  take->reset();
  // A lapsed unlock is deleted all the same: it will never be good again.
  if (expires_at && *expires_at <= clock_.now()) return Taken();
  return Taken(std::move(reason));
}

Result<StartedJob> SqliteStore::start_job(const JobRequest& request, const LivenessCheck& is_live) {
  StartedJob started;
  Status status = db_->write_transaction([&]() -> Status {
    ASSIGN_OR_RETURN(auto live, live_job_of_key(request.run_key, is_live));
    if (live) {
      started.job = std::move(*live);
      started.existing = true;
      started.accepted = !request.strict;
      return Status::ok();
    }
    ASSIGN_OR_RETURN(auto previous, newest_job_for_key(request.run_key));
    if (!request.strict) return insert_job(request, previous, false, &started.job);
    ASSIGN_OR_RETURN(auto unlock, take_unlock(request.run_key));
    // A key whose jobs were all cleaned runs anyway; an unlock left from before
    // is used up by it rather than kept for a later start.
    if (!previous) return insert_job(request, previous, false, &started.job);
    if (!unlock) {
      started.job = std::move(*previous);
      started.existing = true;
      started.accepted = false;
      return Status::ok();
    }
    JobRequest unlocked = request;
    unlocked.rerun_reason = std::move(*unlock);
    return insert_job(unlocked, previous, /*override_used=*/true, &started.job);
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
  ASSIGN_OR_RETURN(auto jobs, read_jobs(query));
  if (jobs.empty()) return std::optional<JobRecord>();
  return std::optional<JobRecord>(std::move(jobs.front()));
}

Result<std::optional<JobRecord>> SqliteStore::newest_job_for_key(const std::string& run_key) {
  ASSIGN_OR_RETURN(Statement * query,
                   db_->prepare("SELECT " JOB_COLUMNS " FROM runs WHERE run_key = ?1 AND "
                                "kind = 'job' ORDER BY started_at DESC, rowid DESC LIMIT 1"));
  query->bind(1, run_key);
  ASSIGN_OR_RETURN(auto jobs, read_jobs(query));
  if (jobs.empty()) return std::optional<JobRecord>();
  return std::optional<JobRecord>(std::move(jobs.front()));
}

#define SUMMARY_COLUMNS \
  "id, kind, run_key, status, started_at, finished_at, stdout_file, stderr_file"

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
                                "ORDER BY started_at DESC, rowid DESC LIMIT ?2"));
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
    ASSIGN_OR_RETURN(auto failed, find_job(id));
    ASSIGN_OR_RETURN(bool finished, finish_job(id, outcome));
    if (!finished || !failed) return Status::ok();
    JobRequest attempt = next;
    attempt.trigger = JobTrigger::kRetry;
    attempt.rerun_of_job_id = id;
    retry.emplace();
    return insert_job(attempt, failed, false, &*retry);
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
  KeyUnlock unlock{run_key, reason, clock_.now(), std::nullopt, {}};
  if (ttl) unlock.expires_at = unlock.created_at + *ttl;
  Status status = db_->write_transaction([&]() -> Status {
    ASSIGN_OR_RETURN(auto live, live_job_of_key(run_key, is_live));
    if (live) {
      return failed_precondition("Cannot unlock active job " + live->id + " (it is " +
                                 std::string(status_name(live->status)) +
                                 "); wait for it or cancel it first");
    }
    ASSIGN_OR_RETURN(auto newest, newest_job_for_key(run_key));
    if (!newest) return not_found("there is no job to unlock");
    unlock.newest = std::move(*newest);
    ASSIGN_OR_RETURN(Statement * upsert,
                     db_->prepare("INSERT OR REPLACE INTO job_unlocks (run_key, reason, "
                                  "created_at, expires_at) VALUES (?1, ?2, ?3, ?4)"));
    upsert->bind(1, run_key).bind(2, reason).bind(3, unlock.created_at).bind(4, unlock.expires_at);
    return upsert->run().status();
  });
  if (!status.is_ok()) return status;
  return unlock;
}

Result<int> SqliteStore::import_jobs(const std::vector<JobRecord>& jobs) {
  int inserted = 0;
  Status status = db_->write_transaction([&]() -> Status {
    for (const auto& job : jobs) {
      std::optional<std::string> boot_id;
      if (job.supervisor) boot_id = job.supervisor->boot_id;
      if (job.process) boot_id = job.process->boot_id;
      RETURN_IF_ERROR(insert_record(job, boot_id, /*ignore_existing=*/true, &inserted));
    }
    return Status::ok();
  });
  if (!status.is_ok()) return status;
  return inserted;
}

Status SqliteStore::heartbeat(const std::string& id) {
  ASSIGN_OR_RETURN(Statement * update,
                   db_->prepare("UPDATE runs SET heartbeat_at = ?2 "
                                "WHERE id = ?1 AND status IN ('STARTING', 'RUNNING')"));
  update->bind(1, id).bind(2, clock_.now());
  return update->run().status();
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
    for (const auto& id : ids) {
      remove->reset();
      remove->bind(1, id);
      ASSIGN_OR_RETURN(int changed, remove->run());
      deleted += changed;
      remove_results->reset();
      remove_results->bind(1, id);
      RETURN_IF_ERROR(remove_results->run().status());
    }
    return Status::ok();
  });
  if (!status.is_ok()) return status;
  return deleted;
}

}  // namespace

Result<std::unique_ptr<Store>> open_sqlite_store(const std::string& path, const Clock& clock,
                                                 const StoreOptions& options) {
  int busy_ms = static_cast<int>(std::max<Micros>(options.lock_timeout / kMicrosPerMilli, 1));
  ASSIGN_OR_RETURN(auto db, Database::open(path, busy_ms, options.wal_checkpoint_pages,
                                           options.defer_checkpoints));
  auto store = std::make_unique<SqliteStore>(std::move(db), clock);
  RETURN_IF_ERROR(store->initialize(options));
  return std::unique_ptr<Store>(std::move(store));
}

Result<std::unique_ptr<Store>> open_store(const std::string& location, const Clock& clock,
                                          const StoreOptions& options) {
  if (location.starts_with("postgres://") || location.starts_with("postgresql://")) {
    return invalid_argument("PostgreSQL stores are not supported by this build yet: " +
                            std::string("use a SQLite file path"));
  }
  return open_sqlite_store(location, clock, options);
}

}  // namespace ratchet
