// The supervisor: a small process, forked by `ratchet start` before the job is
// recorded, that runs one job's command and records how it ended.
//
// It detaches into its own session, runs the command in a new process group
// with its output in the job's log files, records RUNNING with the command's
// pid and start time, heartbeats, stops the group on --timeout or on SIGTERM
// (which `ratchet cancel` sends it), and records the outcome. The command gets
// SIGKILL from the kernel if the supervisor dies (parent-death signal), so a
// job whose supervisor is gone has nothing left running.
#pragma once

#include <string>

#include "storage/run.hpp"
#include "storage/store.hpp"

namespace ratchet::jobs {

// How `ratchet start` and its supervisor talk, before and after the job exists.
struct SupervisorPipes {
  int go_read = -1;      // the job id arrives here once recorded; EOF: do nothing
  int ready_write = -1;  // one byte once RUNNING (or FAILED to launch) is recorded
};

// Runs in the child right after fork(); never returns.
[[noreturn]] void run_supervisor(SupervisorPipes pipes, const JobRequest& request,
                                 const std::string& db_path, const StoreOptions& options);

}  // namespace ratchet::jobs
