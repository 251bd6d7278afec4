// The job runner's operations, as `ratchet start/rerun/status/wait/cancel/logs`
// use them. Each works on the shared store directly: there is no daemon.
#pragma once

#include <optional>
#include <string>

#include "common/status.hpp"
#include "storage/store.hpp"

namespace ratchet::jobs {

// Where and how the store is opened.
struct StoreLocation {
  std::string db_path;
  StoreOptions options;
};

// True when a STARTING or RUNNING job still has a live supervisor. Otherwise
// it explains why not, and kills whatever is left of the job's command, so a
// job recorded LOST has nothing left running.
bool check_job_alive(const JobRecord& job, std::string* lost_reason);

// The job as it stands now: a STARTING or RUNNING job whose supervisor is gone
// is recorded LOST first. A store that cannot take the write (read-only, or a
// full disk) does not stop a reader: the job is shown LOST, saying it is not
// recorded yet.
Result<JobRecord> refresh_job(Store& store, JobRecord job);

struct StartOutcome {
  JobRecord job;
  bool existing = false;  // nothing was started: the key's job is returned
  bool accepted = true;   // false: a strict start found its key used
};

// Forks the job's supervisor, which records the job unless its key has a live
// one (or, strict, has had one), runs it and reports back. Returns once the
// job is RUNNING or has ended (`sync`: once its last attempt has ended).
Result<StartOutcome> start_job(const StoreLocation& location, JobRequest request, bool sync);

// Blocks until the job is terminal, woken by the kernel when its command or
// its supervisor exits rather than by polling the store. `follow_retries`:
// then on through the attempts that `start --retries` makes after it.
// kDeadlineExceeded if `timeout` passes first.
Result<JobRecord> wait_for_job(Store& store, JobRecord job, std::optional<Micros> timeout,
                               bool follow_retries = false);

// SIGTERM to the job's process group through its supervisor, SIGKILL after
// `grace`; the job ends CANCELLED, with `reason`. kFailedPrecondition if it
// already ended.
Result<JobRecord> cancel_job(Store& store, JobRecord job, Micros grace,
                             const std::optional<std::string>& reason);

}  // namespace ratchet::jobs
