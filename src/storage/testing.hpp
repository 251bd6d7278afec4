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

}  // namespace ratchet::testing
