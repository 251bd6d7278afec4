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

}  // namespace ratchet::sqlite
