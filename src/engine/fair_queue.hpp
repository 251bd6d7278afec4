// Fair claims: ready calls are served per queue (one function at one
// endpoint) in deficit round robin (Shreedhar and Varghese, 1995), so that a
// flood of one function cannot starve the others, and the queues of one
// endpoint share its turn, so that an endpoint with many functions does not
// starve an endpoint with few. The store lists the due queues and claims
// from one queue (CallTransaction::due_queues, claim_queue); this class says
// how many each takes, and remembers, across turns, where the rotation stopped
// and what each queue was still owed.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/status.hpp"
#include "storage/call.hpp"

namespace ratchet::engine {

class DeficitRoundRobin {
 public:
  // Each round, the queues of one endpoint share `quantum` calls (each at
  // least one).
  explicit DeficitRoundRobin(int quantum) : quantum_(quantum > 0 ? quantum : 1) {}

  // How many calls of a queue may be claimed; answers how many it got (fewer:
  // the queue is empty for now).
  using Take = std::function<Result<int>(const QueueKey& queue, int limit)>;

  // Serves `due` (in rotation order: as due_queues() lists them from
  // cursor()) until `slots` calls are taken or every queue is empty or at
  // the `room` of its endpoint (how many more calls it may have in flight;
  // lowered by what is taken). Returns how many were taken.
  Result<int> serve(const std::vector<QueueKey>& due, int slots, std::map<std::string, int>& room,
                    const Take& take);

  // The last queue served: the next turn starts after it.
  const QueueKey& cursor() const { return cursor_; }
  // The queues listed up to `queue` had no room: the next turn starts after
  // them, so that queues listed past them are not left unread turn after turn.
  void pass(const QueueKey& queue) { cursor_ = queue; }
  // Queues with a deficit carried over (for tests).
  std::size_t owed() const { return deficit_.size(); }

 private:
  int quantum_;
  std::map<QueueKey, int> deficit_;
  QueueKey cursor_;
};

}  // namespace ratchet::engine
