// Helpers for tests that fill a Store (storage, dashboard).
#pragma once

#include <string>

#include "storage/store.hpp"

namespace ratchet::testing {

// Records `call` in a transaction of its own; its id, or "" when that failed.
inline std::string dispatch_call(Store& store, const NewCall& call) {
  std::string id;
  Status status = store.calls([&](CallTransaction& tx) -> Status {
    ASSIGN_OR_RETURN(id, tx.dispatch(call));
    return Status::ok();
  });
  return status.is_ok() ? id : std::string();
}

// Leases up to `limit` due calls to `owner` as the scheduler claims them: the
// urgent ones first, then queue by queue (CallTransaction's fair claims).
inline Result<std::vector<ClaimedCall>> claim_due(CallTransaction& tx, const std::string& owner,
                                                  Micros lease_until, int limit) {
  ASSIGN_OR_RETURN(auto claimed, tx.claim_urgent(owner, lease_until, limit));
  ASSIGN_OR_RETURN(auto queues, tx.due_queues({}, 1000));
  for (const auto& queue : queues) {
    int left = limit - static_cast<int>(claimed.size());
    if (left <= 0) break;
    ASSIGN_OR_RETURN(auto ready, tx.claim_queue(queue, owner, lease_until, left));
    for (auto& call : ready) claimed.push_back(std::move(call));
  }
  return claimed;
}

}  // namespace ratchet::testing
