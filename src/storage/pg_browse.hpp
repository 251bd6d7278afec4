// The PostgreSQL implementation of the dashboard's reads (storage/browse.hpp).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "storage/browse.hpp"
#include "storage/call.hpp"
#include "storage/pg_db.hpp"

namespace ratchet::pg {

Result<RunPage> browse_runs(Connection& db, const RunQuery& query);
Result<std::vector<CallRecord>> child_calls(Connection& db, const std::string& parent_id,
                                            int limit);
// child_calls_of's statement ($1 the parents, $2 per parent, $3 in all), for
// its plan's test.
const char* child_calls_of_sql();
Result<std::vector<CallRecord>> child_calls_of(Connection& db,
                                               const std::vector<std::string>& parent_ids,
                                               int limit_per_parent, int limit_total);
Result<std::optional<std::string>> coroutine_state(Connection& db, const std::string& call_id);
Result<HealthCounts> health_counts(Connection& db, Micros now, Micros since);
// The server's current snapshot (the transactions in progress and the next
// id): it changes when any transaction that wrote commits or starts. Of the
// whole server, not only this database: a change elsewhere only costs the
// caller a needless read.
Result<std::string> change_stamp(Connection& db);

// The statement browse_runs runs for `filter` (for tests of its query plan).
const std::string& browse_sql(const RunFilter& filter);

}  // namespace ratchet::pg
