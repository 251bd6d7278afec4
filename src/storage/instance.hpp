// Server instances: every running server records itself in the store with a
// heartbeat, so that another server can tell when it is gone and take over
// its leases at once instead of waiting for them to expire (docs/storage.md,
// "Server instances"; docs/server.md, "Deploys, crashes and full disks").
//
// Liveness is judged in two ways, because a store may be shared by servers on
// many hosts (PostgreSQL): an instance of the same host (same host_id) is gone
// as soon as its process no longer runs (its pid with its start time); an
// instance of another host, once its heartbeat is older than a timeout. An
// instance that stops cleanly marks itself gone. Fencing does not depend on
// any of these judgements being right: a takeover only makes the leases
// claimable, and each claim takes a new epoch that every later write of the
// old holder fails to match.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace ratchet {

// Who runs an instance.
struct InstanceIdentity {
  std::string host_id;  // where its pid means something: hostname, boot id, pid namespace
  int pid = 0;
  std::int64_t pid_start = 0;  // clock ticks after boot (/proc/<pid>/stat field 22)
};

// Whether the process `pid`, started at `pid_start`, still runs on this host.
using ProcessProbe = std::function<bool(int pid, std::int64_t pid_start)>;

// An instance of the same host, as a backend reads it to probe its process.
struct HostInstance {
  std::string id;
  int pid = 0;
  std::int64_t pid_start = 0;
};

// The ids of `others` (instances of `self`'s host, not `self`) whose process
// no longer runs; none when there is no probe or no host id to compare.
std::vector<std::string> gone_on_this_host(const InstanceIdentity& self,
                                           const std::vector<HostInstance>& others,
                                           const ProcessProbe& process_alive);

}  // namespace ratchet
