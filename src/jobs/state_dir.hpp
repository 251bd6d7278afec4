// The state directory: $RATCHET_HOME, else /var/lib/ratchet for root, else
// $XDG_STATE_HOME/ratchet (~/.local/state/ratchet). It holds ratchet.db and
// logs/, and is created on first use with mode 0700.
#pragma once

#include <string>

#include "common/status.hpp"

namespace ratchet::jobs {

struct StatePaths {
  std::string home;
  std::string db;    // home/ratchet.db
  std::string logs;  // home/logs
};

// Resolves the directory and makes sure it (and logs/) exist and are usable.
Result<StatePaths> prepare_state_dir();

}  // namespace ratchet::jobs
