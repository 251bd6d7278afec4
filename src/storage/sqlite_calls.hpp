// The SQLite implementation of CallTransaction; see call.hpp for the contract
// and docs/storage.md for the columns.
#pragma once

#include <memory>
#include <optional>

#include "common/clock.hpp"
#include "storage/call.hpp"
#include "storage/sqlite_db.hpp"

namespace ratchet::sqlite {

// The leases of instances silent for `instance_timeout` (or marked gone) are
// claimable at once.
std::unique_ptr<CallTransaction> make_call_transaction(Database& db, const Clock& clock,
                                                       Micros instance_timeout);
// The statements of a turn's claim of urgent calls (?1 now, ?2 the limit, ?3
// the heartbeat before which an instance is gone) and of its next due time,
// for their plans' test.
const char* claim_urgent_sql();
const char* next_due_sql();
Result<std::optional<CallRecord>> find_call(Database& db, const std::string& id);
// A call's latest `latest` history events, oldest first (Store::call_history):
// a read, for readers that cannot write too.
Result<std::vector<HistoryEvent>> call_history(Database& db, const std::string& id, int latest);
// For the dashboard (Store::child_calls, Store::child_calls_of, Store::coroutine_state).
Result<std::vector<CallRecord>> child_calls(Database& db, const std::string& parent_id, int limit);
// child_calls_of's statement (?1 per parent, ?2 in all, ?3... the parents),
// for its plan's test.
const std::string& child_calls_of_sql();
Result<std::vector<CallRecord>> child_calls_of(Database& db,
                                               const std::vector<std::string>& parent_ids,
                                               int limit_per_parent, int limit_total);
Result<std::optional<std::string>> coroutine_state(Database& db, const std::string& call_id);

}  // namespace ratchet::sqlite
