#include "engine/fair_queue.hpp"

#include <algorithm>

namespace ratchet::engine {

Result<int> DeficitRoundRobin::serve(const std::vector<QueueKey>& due, int slots,
                                     std::map<std::string, int>& room, const Take& take) {
  std::map<std::string, int> queues_of;
  for (const auto& q : due) ++queues_of[q.endpoint];
  std::vector<QueueKey> active = due;
  int taken = 0;
  while (slots > taken && !active.empty()) {
    std::vector<QueueKey> still;
    for (std::size_t i = 0; i < active.size(); ++i) {
      const QueueKey& q = active[i];
      if (slots == taken) {
        // The turn is full: the rest keep their place (and what they are owed).
        still.insert(still.end(), active.begin() + static_cast<std::ptrdiff_t>(i), active.end());
        break;
      }
      int& left = room[q.endpoint];
      if (left <= 0) {
        deficit_.erase(q);  // not ready to send: owed nothing, as an empty queue
        continue;
      }
      // A queue alone takes what there is room for: the rounds would come to that.
      int share = active.size() == 1 ? slots : std::max(1, quantum_ / queues_of[q.endpoint]);
      int& deficit = deficit_[q];
      // Owed at most one round more: a turn cut short does not build up credit.
      deficit = std::min(deficit + share, 2 * share);
      int want = std::min({deficit, slots - taken, left});
      ASSIGN_OR_RETURN(int got, take(q, want));
      got = std::clamp(got, 0, want);
      deficit -= got;
      taken += got;
      left -= got;
      cursor_ = q;
      if (got < want) {
        deficit_.erase(q);  // empty for now
        continue;
      }
      still.push_back(q);
    }
    active = std::move(still);
    if (slots == taken) break;
  }
  return taken;
}

}  // namespace ratchet::engine
