// The records of Ratchet's one history: jobs (shell commands) and durable calls
// live in the same table and share ids, run keys, statuses and timestamps.
// The schema is documented in docs/storage.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/clock.hpp"

namespace ratchet {

enum class RunKind { kJob, kCall };

enum class RunStatus { kStarting, kRunning, kSucceeded, kFailed, kLost, kCancelled };

std::string_view status_name(RunStatus status);
std::optional<RunStatus> parse_status(std::string_view name);
std::string_view kind_name(RunKind kind);
inline bool is_terminal(RunStatus s) {
  return s != RunStatus::kStarting && s != RunStatus::kRunning;
}

// A process as Ratchet identifies it: a pid alone can be reused, so the kernel's
// start time of the process (clock ticks since boot) and the boot id come with it.
struct ProcessIdentity {
  int pid = 0;
  std::int64_t start_ticks = 0;
  std::string boot_id;
};

// Why a job was started: a plain `start`, `ratchet rerun`, a retry of
// `start --retries`, or a record copied by `ratchet import`.
enum class JobTrigger { kStart, kRerun, kRetry, kImport };

std::string_view trigger_name(JobTrigger trigger);
std::optional<JobTrigger> parse_trigger(std::string_view name);

// What `ratchet start` (or `rerun`, or a retry) asks for.
struct JobRequest {
  std::string run_key;
  std::vector<std::string> command;
  std::string cwd;
  std::vector<std::pair<std::string, std::string>> env;  // the --env overrides, in order
  std::optional<Micros> timeout;
  std::string log_dir;  // where <job-id>.stdout and .stderr go
  // The process that will run the job; it exists before the job is recorded, so
  // a STARTING job always names a supervisor whose death can be detected.
  ProcessIdentity supervisor;
  // --strict: a key that has had any job is not run again, unless `ratchet
  // unlock` allowed one more start.
  bool strict = false;
  JobTrigger trigger = JobTrigger::kStart;
  std::optional<std::string> rerun_of_job_id;  // rerun: the job whose command it runs again
  std::optional<std::string> rerun_reason;
  int retries = 0;  // --retries: how many times a FAILED attempt is run again
  std::optional<Micros> retry_delay;
  // The host the supervisor runs on (jobs/state_dir.hpp), and how long its
  // heartbeat lease lasts: another host sees the job LOST once it lapses.
  std::string host_id;
  Micros lease = 30 * kMicrosPerSecond;
};

struct JobRecord {
  std::string id;
  std::string run_key;
  RunStatus status = RunStatus::kStarting;
  std::vector<std::string> command;
  std::string cwd;
  std::vector<std::pair<std::string, std::string>> env;
  std::optional<Micros> timeout;
  std::string stdout_file;
  std::string stderr_file;
  Micros started_at = 0;
  std::optional<Micros> finished_at;
  std::optional<ProcessIdentity> supervisor;
  std::optional<ProcessIdentity> process;  // the command itself (its pid is the pgid)
  std::optional<Micros> heartbeat_at;
  std::optional<Micros> cancel_requested_at;
  Micros cancel_grace = 0;
  std::optional<int> exit_code;
  std::optional<std::string> signal;       // "SIGKILL" when a signal ended the command
  std::optional<std::string> error;        // why it failed, was lost or cancelled
  std::string host_id;                     // where the supervisor runs ("" before host ids)
  std::optional<Micros> lease_expires_at;  // the supervisor's heartbeat lease
  // Lineage: the job's number within its key (1, 2, ...) and the job it follows.
  int attempt_no = 1;
  std::optional<std::string> rerun_of_job_id;
  std::optional<std::string> rerun_reason;  // rerun --reason, or the reason of the unlock used
  JobTrigger trigger = JobTrigger::kStart;
  bool strict = false;
  bool strict_override_used = false;  // a strict start that used an unlock
  int retries = 0;
  std::optional<Micros> retry_delay;
  std::optional<std::string> cancel_reason;
};

// What `ratchet unlock` recorded: the next strict start of the key may run once.
struct KeyUnlock {
  std::string run_key;
  std::optional<std::string> reason;
  Micros created_at = 0;
  std::optional<Micros> expires_at;  // unset: until it is used
  JobRecord newest;                  // the key's newest job when it was unlocked
};

// How a job ended, as its supervisor (or the one who found it lost) records it.
struct JobOutcome {
  RunStatus status = RunStatus::kSucceeded;
  std::optional<int> exit_code;
  std::optional<std::string> signal;
  std::optional<std::string> error;
};

// The compact view of any run (job or call) that `list` and `clean` need.
struct RunSummary {
  std::string id;
  RunKind kind = RunKind::kJob;
  std::string run_key;
  RunStatus status = RunStatus::kStarting;
  Micros started_at = 0;
  std::optional<Micros> finished_at;
  std::string stdout_file;
  std::string stderr_file;
};

}  // namespace ratchet
