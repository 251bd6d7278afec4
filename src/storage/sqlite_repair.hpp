// The SQLite side of storage/repair.hpp (Store::open_coroutines,
// repair_coroutine, call_actions); docs/storage.md describes call_actions.
#pragma once

#include <string>
#include <vector>

#include "storage/repair.hpp"
#include "storage/sqlite_db.hpp"

namespace ratchet::sqlite {

Result<std::vector<OpenCoroutine>> open_coroutines(Database& db,
                                                   const std::vector<std::string>& functions,
                                                   const std::string& endpoint,
                                                   const std::string& after, int limit);
// Runs its own write transaction.
Result<CallRecord> repair_coroutine(Database& db, Micros now, const CoroutineRepair& repair);
Result<CallActions> call_actions(Database& db, const std::string& call_id, int latest);
// Inserts the action at `now`, in the caller's transaction.
Status record_action(Database& db, Micros now, const CallAction& action);

}  // namespace ratchet::sqlite
