#include "storage/pg_store.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <set>
#include <thread>

#include "common/byte_text.hpp"
#include "common/ids.hpp"
#include "storage/job_rules.hpp"
#include "storage/pg_blobs.hpp"
#include "storage/pg_browse.hpp"
#include "storage/pg_calls.hpp"
#include "storage/pg_db.hpp"
#include "storage/pg_repair.hpp"
#include "storage/pg_schema.hpp"
#include "storage/records.hpp"

namespace ratchet {
namespace {

using pg::Connection;
using pg::Params;
using pg::Rows;
using records::read_job;
using records::read_summary;

#define JOB_COLUMNS RATCHET_JOB_COLUMNS
#define SUMMARY_COLUMNS RATCHET_SUMMARY_COLUMNS
#define TERMINAL_STATUSES RATCHET_TERMINAL_STATUSES

// The channel of "calls may be due" hints between the servers of a fleet.
constexpr const char* kChannel = "ratchet_calls";
// How often a server removes the rows of instances that died long ago.
constexpr Micros kInstanceCleanupEvery = 10 * 60 * kMicrosPerSecond;

// A run key as this backend keeps it. PostgreSQL's text must be UTF-8, and a
// job's run key is any bytes: it is kept in the lossless text form JSON shows
// (common/byte_text.hpp), the same as the bytes for every key that is UTF-8.
std::string stored_key(const std::string& run_key) { return bytes_to_text(run_key); }

// Free text (an error that quotes a command, a reason given on the command
// line) may hold bytes that are not UTF-8, which a text column refuses: the
// job's write would fail and leave it STARTING for good. Such text is kept
// as byte text, as `ratchet migrate` copies it.
std::optional<std::string> free_text(const std::optional<std::string>& text) {
  if (!text) return std::nullopt;
  return utf8_or_byte_text(*text);
}

pg::ConnectOptions connect_options(const StoreOptions& options) {
  pg::ConnectOptions connect;
  connect.lock_timeout = options.lock_timeout;
  connect.connect_timeout = options.lock_timeout;
  connect.durable = options.durable;
  connect.idle_in_transaction_timeout = options.instance_timeout;
  return connect;
}

// Waits for NOTIFYs on a connection of its own and turns those sent by other
// processes into calls of `news`; reconnects when the connection breaks.
class Listener {
 public:
  Listener(std::string url, pg::ConnectOptions options, const std::atomic<int>& own_pid,
           std::function<void()> news)
      : url_(std::move(url)),
        options_(options),
        own_pid_(own_pid),
        news_(std::move(news)),
        wake_fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    thread_ = std::thread([this] { run(); });
  }
  ~Listener() {
    std::uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof one);
    thread_.join();
    close(wake_fd_);
  }

 private:
  // Waits on the socket (or only the stop signal when `fd` is -1); false once stopped.
  bool wait(int fd, int timeout_ms) {
    pollfd fds[2] = {{wake_fd_, POLLIN, 0}, {fd, POLLIN, 0}};
    int n = ::poll(fds, fd >= 0 ? 2 : 1, timeout_ms);
    return !(n > 0 && (fds[0].revents & POLLIN));
  }

  void run() {
    int backoff_ms = 100;
    while (true) {
      auto connection = Connection::open(url_, options_);
      if (!connection.is_ok() || !(*connection)->exec(std::string("LISTEN ") + kChannel).is_ok()) {
        if (!wait(-1, backoff_ms)) return;
        backoff_ms = std::min(backoff_ms * 2, 5000);
        continue;
      }
      backoff_ms = 100;
      news_();  // anything sent while nobody listened
      if (!listen(**connection)) return;
    }
  }

  // Relays notifications until the connection breaks (true) or stop (false).
  bool listen(Connection& connection) {
    while (true) {
      if (!wait(connection.socket(), -1)) return false;
      auto senders = connection.take_notifications();
      if (!senders.is_ok()) return true;
      int own = own_pid_.load();
      for (int sender : *senders) {
        if (sender != own) {
          news_();
          break;
        }
      }
    }
  }

  std::string url_;
  pg::ConnectOptions options_;
  const std::atomic<int>& own_pid_;
  std::function<void()> news_;
  int wake_fd_;
  std::thread thread_;
};

class PgStore final : public Store, private job_rules::JobRows {
 public:
  PgStore(std::unique_ptr<Connection> db, const Clock& clock, const StoreOptions& options)
      : db_(std::move(db)), clock_(clock), options_(options) {
    own_pid_ = db_->backend_pid();
    timing_.heartbeat_every = options.instance_heartbeat;
    timing_.dead_after = options.instance_timeout;
  }
  ~PgStore() override;

  Status initialize();

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
  Result<std::vector<RunSummary>> list_runs(std::optional<RunStatus> status, int limit) override;
  Result<std::vector<RunSummary>> runs_for_key(const std::string& run_key, int limit) override;
  Status calls(const std::function<Status(CallTransaction&)>& body) override;
  Result<std::optional<CallRecord>> find_call(const std::string& id) override {
    return pg::find_call(*db_, id);
  }
  Result<std::vector<HistoryEvent>> call_history(const std::string& id, int latest) override {
    return pg::call_history(*db_, id, latest);
  }
  Result<std::vector<RunSummary>> terminal_runs_before(Micros cutoff) override;
  Result<int> delete_terminal_runs(const std::vector<std::string>& ids) override;
  void watch_calls(std::function<void()> news) override;
  Result<std::vector<OpenCoroutine>> open_coroutines(const std::vector<std::string>& functions,
                                                     const std::string& endpoint,
                                                     const std::string& after, int limit) override {
    return pg::open_coroutines(*db_, functions, endpoint, after, limit);
  }
  Result<CallRecord> repair_coroutine(const CoroutineRepair& repair) override {
    return pg::repair_coroutine(*db_, clock_.now(), repair,
                                std::string("NOTIFY ") + kChannel + "; ");
  }
  Result<CallActions> call_actions(const std::string& call_id, int latest) override {
    return pg::call_actions(*db_, call_id, latest);
  }
  Result<RunPage> browse_runs(const RunQuery& query) override {
    return pg::browse_runs(*db_, query);
  }
  Result<std::vector<CallRecord>> child_calls(const std::string& parent_id, int limit) override {
    return pg::child_calls(*db_, parent_id, limit);
  }
  Result<std::vector<CallRecord>> child_calls_of(const std::vector<std::string>& parent_ids,
                                                 int limit_per_parent, int limit_total) override {
    return pg::child_calls_of(*db_, parent_ids, limit_per_parent, limit_total);
  }
  Result<std::optional<std::string>> coroutine_state(const std::string& call_id) override {
    return pg::coroutine_state(*db_, call_id);
  }
  Result<HealthCounts> health_counts(Micros since) override {
    return pg::health_counts(*db_, clock_.now(), since);
  }
  Result<std::string> change_stamp() override { return pg::change_stamp(*db_); }

 private:
  Result<std::vector<JobRecord>> read_jobs(const char* sql, const Params& params);
  Result<std::vector<RunSummary>> read_summaries(const char* sql, const Params& params);
  Result<std::optional<JobRecord>> read_one_job(const char* sql, const Params& params);
  // Runs `body` in a transaction that holds the key's lock: one start (or
  // retry, or unlock) of a key at a time, fleet-wide, so that the check of its
  // live job and the insert of a new one do not interleave with another host's.
  // The key's advisory lock, held until the transaction ends.
  Status lock_key(const std::string& run_key);
  Status with_key_locked(const std::string& run_key, const std::function<Status()>& body);
  Status beat(Micros now);
  Status mark_gone_on_this_host();

  // job_rules::JobRows, in the caller's transaction.
  Micros now() override { return clock_.now(); }
  std::string new_id() override { return new_uuid(); }
  Result<std::optional<JobRecord>> live_job_of_key(const std::string& run_key) override;
  Result<int> insert_job(const JobRecord& job, bool ignore_existing) override;
  Result<std::optional<job_rules::TakenUnlock>> take_unlock(const std::string& run_key) override;
  Status put_unlock(const KeyUnlock& unlock) override;

  std::unique_ptr<Connection> db_;
  const Clock& clock_;
  StoreOptions options_;
  pg::FleetTiming timing_;
  std::atomic<int> own_pid_{0};
  std::optional<Micros> last_beat_;
  Micros last_cleanup_ = 0;
  std::unique_ptr<Listener> listener_;
};

PgStore::~PgStore() {
  listener_.reset();
  if (!options_.instance.empty() && last_beat_) {
    // Gone: the leases this instance still holds are taken over at once
    // rather than when they expire.
    (void)db_->run("UPDATE instances SET heartbeat_at = 0 WHERE id = $1",
                   Params().add(options_.instance));
  }
}

Status PgStore::initialize() {
  auto target = pg::migration_target(*db_);
  ASSIGN_OR_RETURN(bool complete, migrations_complete(*target, pg::migrations()));
  if (complete) return Status::ok();
  return apply_migrations(*target, pg::migrations());
}

#define INSERT_JOB                                                                               \
  "INSERT INTO runs (id, kind, run_key, status, started_at, updated_at, finished_at, boot_id, "  \
  "supervisor_pid, supervisor_start, pid, pid_start, command, cwd, env, timeout_us, "            \
  "stdout_file, stderr_file, exit_code, signal, error, cancel_requested_at, cancel_grace_us, "   \
  "attempt_no, rerun_of_job_id, rerun_reason, started_by, strict, strict_override_used, "        \
  "retries, retry_delay_us, cancel_reason, host_id, lease_expires_at) VALUES ($1, 'job', $2, "   \
  "$3, $4, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, " \
  "$22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32)"

Result<int> PgStore::insert_job(const JobRecord& job, bool ignore_existing) {
  // A new job's id must be new: only an import skips the ids it finds.
  return db_->run(ignore_existing ? INSERT_JOB " ON CONFLICT (id) DO NOTHING" : INSERT_JOB,
                  Params()
                      .add(job.id)
                      .add(stored_key(job.run_key))
                      .add(status_name(job.status))
                      .add(job.started_at)
                      .add(job.finished_at)
                      .add(job_rules::boot_id_of(job))
                      .add(records::pid_of(job.supervisor))
                      .add(records::start_of(job.supervisor))
                      .add(records::pid_of(job.process))
                      .add(records::start_of(job.process))
                      .add(records::command_to_json(job.command))
                      .add(bytes_to_text(job.cwd))
                      .add(records::env_to_json(job.env))
                      .add(job.timeout)
                      .add(job.stdout_file)
                      .add(job.stderr_file)
                      .add(job.exit_code)
                      .add(job.signal)
                      .add(free_text(job.error))
                      .add(job.cancel_requested_at)
                      .add(job.cancel_grace)
                      .add(job.attempt_no)
                      .add(job.rerun_of_job_id)
                      .add(free_text(job.rerun_reason))
                      .add(trigger_name(job.trigger))
                      .add(job.strict ? 1 : 0)
                      .add(job.strict_override_used ? 1 : 0)
                      .add(job.retries)
                      .add(job.retry_delay)
                      .add(free_text(job.cancel_reason))
                      .add(job.host_id)
                      .add(job.lease_expires_at));
}

Status PgStore::lock_key(const std::string& run_key) {
  return db_
      ->run("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            Params().add("ratchet job key " + stored_key(run_key)))
      .status();
}

Status PgStore::with_key_locked(const std::string& run_key, const std::function<Status()>& body) {
  return db_->transaction([&]() -> Status {
    RETURN_IF_ERROR(lock_key(run_key));
    return body();
  });
}

Result<StartedJob> PgStore::start_job(const JobRequest& request, const LivenessCheck& is_live) {
  StartedJob started;
  Status status = with_key_locked(request.run_key, [&]() -> Status {
    ASSIGN_OR_RETURN(started, job_rules::start(*this, request, is_live));
    return Status::ok();
  });
  if (!status.is_ok()) return status;
  return started;
}

Result<std::optional<JobRecord>> PgStore::retry_job(const std::string& id,
                                                    const JobOutcome& outcome,
                                                    const JobRequest& next) {
  std::optional<JobRecord> retry;
  Status status = with_key_locked(next.run_key, [&]() -> Status {
    ASSIGN_OR_RETURN(retry, job_rules::retry(*this, id, outcome, next));
    return Status::ok();
  });
  if (!status.is_ok()) return status;
  return retry;
}

Result<std::optional<JobRecord>> PgStore::find_retry_of(const std::string& id) {
  return read_one_job("SELECT " JOB_COLUMNS
                      " FROM runs WHERE rerun_of_job_id = $1 "
                      "AND kind = 'job' AND started_by = 'retry'",
                      Params().add(id));
}

Result<KeyUnlock> PgStore::unlock_key(const std::string& run_key,
                                      const std::optional<std::string>& reason,
                                      std::optional<Micros> ttl, const LivenessCheck& is_live) {
  KeyUnlock unlock;
  Status status = with_key_locked(run_key, [&]() -> Status {
    ASSIGN_OR_RETURN(unlock, job_rules::unlock(*this, run_key, reason, ttl, is_live));
    return Status::ok();
  });
  if (!status.is_ok()) return status;
  return unlock;
}

Status PgStore::put_unlock(const KeyUnlock& unlock) {
  return db_
      ->run(
          "INSERT INTO job_unlocks (run_key, reason, created_at, expires_at) VALUES ($1, $2, $3, "
          "$4) ON CONFLICT (run_key) DO UPDATE SET reason = excluded.reason, created_at = "
          "excluded.created_at, expires_at = excluded.expires_at",
          Params()
              .add(stored_key(unlock.run_key))
              .add(free_text(unlock.reason))
              .add(unlock.created_at)
              .add(unlock.expires_at))
      .status();
}

Result<std::optional<job_rules::TakenUnlock>> PgStore::take_unlock(const std::string& run_key) {
  ASSIGN_OR_RETURN(Rows rows, db_->query("DELETE FROM job_unlocks WHERE run_key = $1 "
                                         "RETURNING reason, expires_at",
                                         Params().add(stored_key(run_key))));
  if (rows.empty()) return std::optional<job_rules::TakenUnlock>();
  return std::optional<job_rules::TakenUnlock>(
      job_rules::TakenUnlock{rows[0].optional_text(0), rows[0].optional_int64(1)});
}

Result<int> PgStore::import_jobs(const std::vector<JobRecord>& jobs) {
  int inserted = 0;
  std::set<std::string> keys;
  for (const auto& job : jobs) keys.insert(job.run_key);
  Status status = db_->transaction([&]() -> Status {
    // Each key's numbers follow its newest job: no start of the key meanwhile.
    // In one order (a set's), so that two imports never wait on each other.
    for (const auto& key : keys) RETURN_IF_ERROR(lock_key(key));
    ASSIGN_OR_RETURN(inserted, job_rules::import(*this, jobs));
    return Status::ok();
  });
  if (!status.is_ok()) return status;
  return inserted;
}

Result<std::optional<JobRecord>> PgStore::live_job_of_key(const std::string& run_key) {
  return read_one_job("SELECT " JOB_COLUMNS
                      " FROM runs WHERE kind = 'job' AND run_key = $1 "
                      "AND status IN ('STARTING', 'RUNNING')",
                      Params().add(stored_key(run_key)));
}

Result<std::optional<JobRecord>> PgStore::read_one_job(const char* sql, const Params& params) {
  ASSIGN_OR_RETURN(auto jobs, read_jobs(sql, params));
  if (jobs.empty()) return std::optional<JobRecord>();
  return std::optional<JobRecord>(std::move(jobs.front()));
}

Result<std::vector<JobRecord>> PgStore::read_jobs(const char* sql, const Params& params) {
  ASSIGN_OR_RETURN(Rows rows, db_->query(sql, params));
  std::vector<JobRecord> jobs;
  for (int i = 0; i < rows.size(); ++i) {
    jobs.push_back(read_job(rows[i]));
    jobs.back().run_key = text_to_bytes(jobs.back().run_key);
  }
  return jobs;
}

Result<std::optional<JobRecord>> PgStore::find_job(const std::string& id) {
  return read_one_job("SELECT " JOB_COLUMNS " FROM runs WHERE id = $1 AND kind = 'job'",
                      Params().add(id));
}

Result<std::optional<JobRecord>> PgStore::newest_job_for_key(const std::string& run_key) {
  return read_one_job("SELECT " JOB_COLUMNS
                      " FROM runs WHERE run_key = $1 AND kind = 'job' "
                      "ORDER BY attempt_no DESC NULLS LAST, seq DESC LIMIT 1",
                      Params().add(stored_key(run_key)));
}

Result<std::vector<RunSummary>> PgStore::read_summaries(const char* sql, const Params& params) {
  ASSIGN_OR_RETURN(Rows rows, db_->query(sql, params));
  std::vector<RunSummary> runs;
  for (int i = 0; i < rows.size(); ++i) {
    runs.push_back(read_summary(rows[i]));
    runs.back().run_key = text_to_bytes(runs.back().run_key);
  }
  return runs;
}

Result<std::vector<RunSummary>> PgStore::list_runs(std::optional<RunStatus> status, int limit) {
  if (status) {
    return read_summaries("SELECT " SUMMARY_COLUMNS
                          " FROM runs WHERE status = $2 "
                          "ORDER BY started_at DESC, seq DESC LIMIT $1",
                          Params().add(limit).add(status_name(*status)));
  }
  return read_summaries("SELECT " SUMMARY_COLUMNS
                        " FROM runs "
                        "ORDER BY started_at DESC, seq DESC LIMIT $1",
                        Params().add(limit));
}

Result<std::vector<RunSummary>> PgStore::runs_for_key(const std::string& run_key, int limit) {
  return read_summaries("SELECT " SUMMARY_COLUMNS
                        " FROM runs WHERE run_key = $1 "
                        "ORDER BY attempt_no DESC NULLS LAST, seq DESC LIMIT $2",
                        Params().add(stored_key(run_key)).add(limit));
}

Result<bool> PgStore::mark_job_running(const std::string& id, const ProcessIdentity& process) {
  ASSIGN_OR_RETURN(
      int changed,
      db_->run("UPDATE runs SET status = 'RUNNING', pid = $2, pid_start = $3, "
               "heartbeat_at = $4, updated_at = $4 "
               "WHERE id = $1 AND status = 'STARTING'",
               Params().add(id).add(process.pid).add(process.start_ticks).add(clock_.now())));
  return changed == 1;
}

Result<bool> PgStore::finish_job(const std::string& id, const JobOutcome& outcome) {
  ASSIGN_OR_RETURN(int changed,
                   db_->run("UPDATE runs SET status = $2, exit_code = $3, signal = $4, "
                            "error = $5, finished_at = $6, updated_at = $6 "
                            "WHERE id = $1 AND status IN ('STARTING', 'RUNNING')",
                            Params()
                                .add(id)
                                .add(status_name(outcome.status))
                                .add(outcome.exit_code)
                                .add(outcome.signal)
                                .add(free_text(outcome.error))
                                .add(clock_.now())));
  return changed == 1;
}

Result<bool> PgStore::mark_job_lost(const std::string& id, RunStatus expected,
                                    const std::string& reason) {
  ASSIGN_OR_RETURN(int changed,
                   db_->run("UPDATE runs SET status = 'LOST', error = $3, finished_at = $4, "
                            "updated_at = $4 WHERE id = $1 AND status = $2",
                            Params()
                                .add(id)
                                .add(status_name(expected))
                                .add(utf8_or_byte_text(reason))
                                .add(clock_.now())));
  return changed == 1;
}

Result<bool> PgStore::request_cancel(const std::string& id, Micros grace,
                                     const std::optional<std::string>& reason) {
  ASSIGN_OR_RETURN(int changed,
                   db_->run("UPDATE runs SET cancel_requested_at = $2, cancel_grace_us = $3, "
                            "cancel_reason = $4, updated_at = $2 "
                            "WHERE id = $1 AND status IN ('STARTING', 'RUNNING')",
                            Params().add(id).add(clock_.now()).add(grace).add(free_text(reason))));
  return changed == 1;
}

Result<bool> PgStore::heartbeat(const std::string& id, Micros lease_until) {
  ASSIGN_OR_RETURN(int changed, db_->run("UPDATE runs SET heartbeat_at = $2, lease_expires_at = $3 "
                                         "WHERE id = $1 AND status IN ('STARTING', 'RUNNING')",
                                         Params().add(id).add(clock_.now()).add(lease_until)));
  return changed == 1;
}

Result<std::vector<RunSummary>> PgStore::terminal_runs_before(Micros cutoff) {
  return read_summaries("SELECT " SUMMARY_COLUMNS
                        " FROM runs "
                        "WHERE status IN " TERMINAL_STATUSES
                        " AND finished_at < $1 "
                        "ORDER BY finished_at",
                        Params().add(cutoff));
}

Result<int> PgStore::delete_terminal_runs(const std::vector<std::string>& ids) {
  int deleted = 0;
  Status status = db_->transaction([&]() -> Status {
    std::string joined = pg::join(ids);
    ASSIGN_OR_RETURN(deleted, db_->run("DELETE FROM runs WHERE id = ANY(string_to_array($1, ',')) "
                                       "AND status IN " TERMINAL_STATUSES,
                                       Params().add(joined)));
    RETURN_IF_ERROR(db_->run("DELETE FROM call_results WHERE parent_id = "
                             "ANY(string_to_array($1, ','))",
                             Params().add(joined))
                        .status());
    // The histories and actions of the calls deleted (a live one's stay).
    RETURN_IF_ERROR(
        db_->run("DELETE FROM call_actions WHERE call_id = ANY(string_to_array($1, ',')) AND NOT "
                 "EXISTS (SELECT 1 FROM runs WHERE runs.id = call_actions.call_id)",
                 Params().add(joined))
            .status());
    RETURN_IF_ERROR(
        db_->run("DELETE FROM call_history WHERE call_id = ANY(string_to_array($1, ',')) AND NOT "
                 "EXISTS (SELECT 1 FROM runs WHERE runs.id = call_history.call_id)",
                 Params().add(joined))
            .status());
    return Status::ok();
  });
  if (!status.is_ok()) return status;
  // The blobs of the values deleted, and any other no row refers to (a tail
  // call's former input), in transactions of their own (pg_blobs.hpp). A
  // blob a failure leaves is unreferenced still: the next clean deletes it.
  RETURN_IF_ERROR(sweep_all_blobs(*db_).status());
  return deleted;
}

// The instance's sign of life, in the scheduler's transactions (at least one
// a second): another server takes over its leases once it stops.
Status PgStore::beat(Micros now) {
  const InstanceIdentity& self = options_.identity;
  RETURN_IF_ERROR(db_->run("INSERT INTO instances (id, started_at, heartbeat_at, host_id, pid, "
                           "pid_start) VALUES ($1, $2, $2, $3, $4, $5) ON CONFLICT (id) DO "
                           "UPDATE SET heartbeat_at = excluded.heartbeat_at",
                           Params()
                               .add(options_.instance)
                               .add(now)
                               .add(self.host_id)
                               .add(static_cast<std::int64_t>(self.pid))
                               .add(self.pid_start))
                      .status());
  RETURN_IF_ERROR(mark_gone_on_this_host());
  if (now - last_cleanup_ < kInstanceCleanupEvery) return Status::ok();
  last_cleanup_ = now;
  return db_
      ->run(
          "DELETE FROM instances WHERE heartbeat_at < $1 AND NOT EXISTS (SELECT 1 FROM runs "
          "WHERE phase = 'LEASED' AND lease_owner = instances.id)",
          Params().add(now - kInstanceCleanupEvery))
      .status();
}

// Instances of this host whose process is gone: marked gone, so that the
// claim that follows takes their leases (a restart after a crash runs them
// again at once, not after the heartbeat timeout).
Status PgStore::mark_gone_on_this_host() {
  const InstanceIdentity& self = options_.identity;
  if (!options_.process_alive || self.host_id.empty()) return Status::ok();
  ASSIGN_OR_RETURN(Rows rows, db_->query("SELECT id, pid, pid_start FROM instances WHERE host_id "
                                         "= $1 AND id <> $2 AND heartbeat_at > 0",
                                         Params().add(self.host_id).add(options_.instance)));
  std::vector<HostInstance> others;
  for (int i = 0; i < rows.size(); ++i) {
    others.push_back(
        HostInstance{rows[i].text(0), static_cast<int>(rows[i].int64(1)), rows[i].int64(2)});
  }
  for (const auto& id : gone_on_this_host(self, others, options_.process_alive)) {
    RETURN_IF_ERROR(
        db_->run("UPDATE instances SET heartbeat_at = 0 WHERE id = $1", Params().add(id)).status());
  }
  return Status::ok();
}

Status PgStore::calls(const std::function<Status(CallTransaction&)>& body) {
  std::unique_ptr<pg::PgCallTransaction> transaction;
  Micros now = clock_.now();
  bool beating =
      !options_.instance.empty() && (!last_beat_ || now - *last_beat_ >= timing_.heartbeat_every);
  // The NOTIFY is decided once the body has run, and goes out with the COMMIT.
  std::string before_commit;
  Status status = db_->transaction(
      [&]() -> Status {
        own_pid_ = db_->backend_pid();
        if (beating) RETURN_IF_ERROR(beat(now));
        transaction = pg::make_call_transaction(*db_, clock_, timing_);
        RETURN_IF_ERROR(body(*transaction));
        if (transaction->made_work()) before_commit = std::string("NOTIFY ") + kChannel + "; ";
        return Status::ok();
      },
      before_commit);
  if (status.is_ok() && beating) last_beat_ = now;
  return status;
}

void PgStore::watch_calls(std::function<void()> news) {
  listener_.reset();
  if (news) {
    listener_ = std::make_unique<Listener>(db_->url(), connect_options(options_), own_pid_,
                                           std::move(news));
  }
}

}  // namespace

Result<std::unique_ptr<Store>> open_postgres_store(const std::string& url, const Clock& clock,
                                                   const StoreOptions& options) {
  ASSIGN_OR_RETURN(auto db, Connection::open(url, connect_options(options)));
  auto store = std::make_unique<PgStore>(std::move(db), clock, options);
  RETURN_IF_ERROR(store->initialize());
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace ratchet
