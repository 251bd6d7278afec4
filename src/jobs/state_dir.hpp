// The state directory: $RATCHET_HOME, else /var/lib/ratchet for root, else
// $XDG_STATE_HOME/ratchet (~/.local/state/ratchet). It holds ratchet.db and
// logs/, and is created on first use with mode 0700.
#pragma once

#include <sys/types.h>

#include <string>

#include "common/status.hpp"

namespace ratchet::jobs {

struct StatePaths {
  std::string home;
  std::string db;    // home/ratchet.db
  std::string logs;  // home/logs
};

// kRead: the command only reads (status, list, logs, wait), so a state
// directory it cannot write (a read-only mount, another user's) will do.
enum class StateAccess { kRead, kWrite };

// Resolves the directory and makes sure it (and logs/) exist and are usable.
Result<StatePaths> prepare_state_dir(StateAccess access = StateAccess::kWrite);

// The store and the logs can hold secrets (a job's --env, its output), so
// what the job commands create is private (0600 files, 0700 directories)
// whatever the caller's umask: this sets the umask to 077. The caller's own
// umask is kept for the jobs' commands (caller_umask()).
void use_private_file_modes();
mode_t caller_umask();

}  // namespace ratchet::jobs
