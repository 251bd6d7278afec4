// The supervisor: a small process, forked by `ratchet start` (or `rerun`)
// before anything is recorded, that records the job, runs its command and
// records how it ended, then the retries `start --retries` asked for.
//
// It detaches into its own session, records the job STARTING (naming itself,
// so that its death is visible), runs the command in a new process group with
// its output in the job's log files, records RUNNING with the command's pid
// and start time, heartbeats, stops the group on --timeout or on SIGTERM
// (which `ratchet cancel` sends it), and records the outcome; an outcome the
// store cannot take yet (a full disk) is kept and written once it can be. The
// command gets SIGKILL from the kernel if the supervisor dies (parent-death
// signal), so a job whose supervisor is gone has nothing left running.
//
// It reports to `start` once, over a pipe (report.hpp): the existing job, or
// the new job once RUNNING (or ended), or with `sync` once the last attempt
// has ended; or the error that stopped it.
#pragma once

#include <string>

#include "storage/run.hpp"
#include "storage/store.hpp"

namespace ratchet::jobs {

struct SupervisorTask {
  JobRequest request;
  std::string db_path;
  StoreOptions options;
  bool sync = false;
};

// Runs in the child right after fork(); never returns.
[[noreturn]] void run_supervisor(int report_fd, const SupervisorTask& task);

// The `error` of a job that `ratchet cancel` stopped, with its --reason.
std::string cancel_error(const std::optional<std::string>& reason);

// The delay before retry number `retry` (1, 2, ...) of a job whose
// --retry-delay is `base`: base doubled with each retry, capped at
// kMaxRetryDelay (or `base` if that is longer), then a random part of its
// second half taken off ("equal jitter"): `unit` in [0, 1) picks how much.
constexpr Micros kMaxRetryDelay = 5 * 60 * kMicrosPerSecond;
Micros retry_delay(Micros base, int retry, double unit);

}  // namespace ratchet::jobs
