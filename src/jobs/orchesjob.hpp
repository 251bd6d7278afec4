// The history of orchesjob 1.0, the tool `ratchet` replaces, read from its
// state directory to be copied into Ratchet's store (`ratchet import`).
//
// orchesjob keeps `orchesjob.db` (SQLite, WAL) with a table `jobs(job_id,
// run_key, worker_pid, target_pid, command -- a JSON array, status,
// exit_code, stdout_file, stderr_file, started_at, finished_at -- ISO 8601
// with an offset)`, a table `run_keys(run_key, job_id, created_at)` naming
// each key's latest job, and `logs/<job_id>.stdout` and `.stderr`. A failed
// launch has exit_code -1; a negative exit code -N is Python's way of saying
// that signal N ended the command.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "common/status.hpp"
#include "storage/run.hpp"

namespace ratchet::jobs {

struct OrchesjobHistory {
  std::vector<JobRecord> jobs;  // as Ratchet records them, their logs in Ratchet's log dir
  int lost = 0;  // left STARTING or RUNNING by an orchesjob that is gone: imported LOST
};

// Reads `dir`'s history, its jobs in the order they started (the store numbers
// each key's jobs in that order: Store::import_jobs).
// kNotFound without `dir`/orchesjob.db; kFailedPrecondition while one of its
// jobs still runs (its worker or command process is alive); kDataLoss for a
// row orchesjob would not have written (an id that cannot name a file, no run
// key, an unknown status, a missing or malformed time, a command that is not
// a JSON array of strings, a non-integer exit code or pid), naming the row.
// Any of these refuses the whole history: nothing is imported.
Result<OrchesjobHistory> read_orchesjob_history(const std::string& dir, const std::string& log_dir,
                                                Micros now);

// Copies `job`'s two logs from orchesjob's `dir`/logs to the files the record
// names; a log orchesjob does not have is not an error. How many it copied.
Result<int> copy_orchesjob_logs(const std::string& dir, const JobRecord& job);

}  // namespace ratchet::jobs
