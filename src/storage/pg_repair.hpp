// The PostgreSQL side of storage/repair.hpp (Store::open_coroutines,
// repair_coroutine, call_actions); docs/storage.md describes call_actions.
#pragma once

#include <string>
#include <vector>

#include "storage/pg_db.hpp"
#include "storage/repair.hpp"

namespace ratchet::pg {

// Its statement, for the test of its plan: $1 the functions joined by \x1f,
// $2 the limit, $3 the endpoint, $4 the id the page comes after.
const char* open_coroutines_sql();
Result<std::vector<OpenCoroutine>> open_coroutines(Connection& db,
                                                   const std::vector<std::string>& functions,
                                                   const std::string& endpoint,
                                                   const std::string& after, int limit);
// Runs its own transaction; `notify` (SQL, may be empty) goes out with its
// COMMIT, so that the fleet's servers look for the call now READY.
Result<CallRecord> repair_coroutine(Connection& db, Micros now, const CoroutineRepair& repair,
                                    const std::string& notify);
Result<CallActions> call_actions(Connection& db, const std::string& call_id, int latest);
// Inserts the action at `now`, in the caller's transaction.
Status record_action(Connection& db, Micros now, const CallAction& action);

}  // namespace ratchet::pg
