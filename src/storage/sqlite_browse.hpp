// The SQLite implementation of the dashboard's reads (storage/browse.hpp).
#pragma once

#include <string>
#include <vector>

#include "storage/browse.hpp"
#include "storage/sqlite_db.hpp"

namespace ratchet::sqlite {

Result<RunPage> browse_runs(Database& db, const RunQuery& query);
Result<HealthCounts> health_counts(Database& db, Micros now, Micros since);
// PRAGMA data_version: changes when another connection commits.
Result<std::string> data_version(Database& db);

// The statement browse_runs runs for `filter` (for tests of its query plan).
const char* browse_sql(const RunFilter& filter);

}  // namespace ratchet::sqlite
