// Processes as the job runner sees them: identified by pid, kernel start time
// and boot id (a pid alone is reused), watched through pidfds, and stopped as
// whole process groups.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.hpp"
#include "storage/run.hpp"

namespace ratchet::jobs {

// This machine's boot id (/proc/sys/kernel/random/boot_id), read once.
const std::string& current_boot_id();

// The identity of a running process, or nullopt if there is none or it is a
// zombie (it can no longer do anything) unless `include_zombies`.
std::optional<ProcessIdentity> identify_process(int pid, bool include_zombies = false);

// True when the process that `identity` names still exists and is not a zombie.
bool is_alive(const ProcessIdentity& identity);

// Opens a pidfd on the process that `identity` names; -1 if it is gone.
int open_pidfd(const ProcessIdentity& identity);

// Waits until `fd` is readable (a pidfd: the process ended) or `timeout` passes
// (negative: forever). True when readable.
bool wait_readable(int fd, Micros timeout);

// SIGKILLs what is left of the process group a job's command led, if it is
// still that job's group. A group's id cannot
// be reused while any member lives, so a group that exists while its leader's
// pid is free (or still names the leader) is the job's.
void kill_leftover_group(const ProcessIdentity& leader);

// A process that has a file open.
struct FileUser {
  int pid = 0;
  std::string command;  // its command line, arguments separated by spaces
};
// The other processes (not this one) that have `path` open: scans /proc, so it
// sees the processes of this machine that this user may inspect.
std::vector<FileUser> processes_using(const std::string& path);

// "SIGKILL" for 9; "SIG<n>" for a number without a name.
std::string signal_name(int signal);

// The signals this process ignores (SIG_IGN survives exec; handlers do not),
// from /proc/self/status; every signal if that cannot be read.
std::vector<int> ignored_signals();

// Reads `fd` until its end (or an error): a pipe whose writers are gone.
std::string read_to_end(int fd);
// Writes all of `data`, unless the descriptor fails first.
void write_fully(int fd, std::string_view data);

// A test-only fault point: RATCHET_TEST_FAULT=<name> SIGKILLs the process here.
void fault_point(const char* name);

}  // namespace ratchet::jobs
