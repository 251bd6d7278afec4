// The rules of jobs that both backends share (run-once keys and their unlocks,
// lineage, retries, imports), written once over the few row operations each
// backend writes in its own SQL. Each rule runs inside the caller's write
// transaction: the backend opens it (and, on PostgreSQL, takes the key's lock).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/status.hpp"
#include "storage/store.hpp"

namespace ratchet::job_rules {

// An unlock taken from the store: its reason, and when it lapses.
struct TakenUnlock {
  std::optional<std::string> reason;
  std::optional<Micros> expires_at;
};

// What a backend provides, in its transaction.
class JobRows {
 public:
  virtual ~JobRows() = default;
  virtual Micros now() = 0;
  virtual std::string new_id() = 0;
  // The key's STARTING or RUNNING job, if any.
  virtual Result<std::optional<JobRecord>> live_job_of_key(const std::string& run_key) = 0;
  virtual Result<std::optional<JobRecord>> newest_job_for_key(const std::string& run_key) = 0;
  virtual Result<std::optional<JobRecord>> find_job(const std::string& id) = 0;
  virtual Result<bool> mark_job_lost(const std::string& id, RunStatus expected,
                                     const std::string& reason) = 0;
  virtual Result<bool> finish_job(const std::string& id, const JobOutcome& outcome) = 0;
  // Inserts the whole record; with `ignore_existing`, a record whose id is
  // taken is skipped. How many rows it inserted (0 or 1).
  virtual Result<int> insert_job(const JobRecord& job, bool ignore_existing) = 0;
  // Deletes the key's unlock and returns it, if it had one.
  virtual Result<std::optional<TakenUnlock>> take_unlock(const std::string& run_key) = 0;
  // Records the unlock, replacing one the key had.
  virtual Status put_unlock(const KeyUnlock& unlock) = 0;
};

// Store::start_job.
Result<StartedJob> start(JobRows& rows, const JobRequest& request,
                         const Store::LivenessCheck& is_live);
// Store::retry_job.
Result<std::optional<JobRecord>> retry(JobRows& rows, const std::string& id,
                                       const JobOutcome& outcome, const JobRequest& next);
// Store::unlock_key.
Result<KeyUnlock> unlock(JobRows& rows, const std::string& run_key,
                         const std::optional<std::string>& reason, std::optional<Micros> ttl,
                         const Store::LivenessCheck& is_live);
// Store::import_jobs: `jobs` in the order they started; each is numbered after
// its key's newest job (the backend holds the keys' locks).
Result<int> import(JobRows& rows, const std::vector<JobRecord>& jobs);

// The boot id a job's pids belong to (the command's, else the supervisor's).
std::optional<std::string> boot_id_of(const JobRecord& job);

}  // namespace ratchet::job_rules
