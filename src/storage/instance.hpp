// Server instances: every running scheduler records itself in the store and
// beats, so that another server can tell when it is gone and take over its
// leases at once instead of waiting for them to expire (docs/storage.md,
// "instances"; docs/server.md, "Deploys and crashes").
//
// Liveness is judged in two ways, because a store may be shared by servers on
// many hosts (the PostgreSQL fleet): an instance of the same host (same
// host_id) is gone when its process no longer runs (its pid with its start
// time); an instance of another host is gone when its heartbeat is older than
// a timeout. Fencing does not depend on either judgement being right: a
// takeover only makes the leases claimable, and each claim takes a new epoch
// that every later write of the old holder fails to match.
#pragma once

#include <cstdint>
#include <string>

#include "common/clock.hpp"

namespace ratchet {

struct InstanceRecord {
  std::string id;       // the name on its leases (runs.lease_owner); unique per start
  std::string host_id;  // where its pid means something: hostname, boot id, pid namespace
  int pid = 0;
  std::int64_t pid_start = 0;  // clock ticks after boot (/proc/<pid>/stat field 22)
  Micros started_at = 0;       // set by the store when it registers
  Micros heartbeat_at = 0;     // set by the store at every beat
};

}  // namespace ratchet
