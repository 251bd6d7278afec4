// The state directory: $RATCHET_HOME, else /var/lib/ratchet for root, else
// $XDG_STATE_HOME/ratchet, else $HOME/.local/state/ratchet (each only when
// absolute). It holds ratchet.db and logs/, and is created on first use with
// mode 0700.
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

// The id of this host as jobs record it: a UUID kept in the state directory's
// `host-id` file, made on first use. A job whose supervisor ran under another
// host id (another machine sharing a PostgreSQL store) cannot be checked by
// its pid here: its heartbeat lease says whether it lives. "" when the file
// cannot be read or made (the job is then treated as this host's).
const std::string& current_host_id();

}  // namespace ratchet::jobs
