#include "storage/instance.hpp"

namespace ratchet {

std::vector<std::string> gone_on_this_host(const InstanceIdentity& self,
                                           const std::vector<HostInstance>& others,
                                           const ProcessProbe& process_alive) {
  std::vector<std::string> gone;
  if (!process_alive || self.host_id.empty()) return gone;
  for (const auto& other : others) {
    if (!process_alive(other.pid, other.pid_start)) gone.push_back(other.id);
  }
  return gone;
}

}  // namespace ratchet
