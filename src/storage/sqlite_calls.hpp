// The SQLite implementation of CallTransaction; see call.hpp for the contract
// and docs/storage.md for the columns.
#pragma once

#include <memory>
#include <optional>

#include "common/clock.hpp"
#include "storage/call.hpp"
#include "storage/sqlite_db.hpp"

namespace ratchet::sqlite {

std::unique_ptr<CallTransaction> make_call_transaction(Database& db, const Clock& clock);
Result<std::optional<CallRecord>> find_call(Database& db, const std::string& id);
// For the dashboard (Store::child_calls, Store::coroutine_state).
Result<std::vector<CallRecord>> child_calls(Database& db, const std::string& parent_id, int limit);
Result<std::optional<std::string>> coroutine_state(Database& db, const std::string& call_id);

}  // namespace ratchet::sqlite
