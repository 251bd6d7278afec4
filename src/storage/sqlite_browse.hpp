// The SQLite implementation of the dashboard's reads (storage/browse.hpp).
#pragma once

#include <string>
#include <vector>

#include "storage/browse.hpp"
#include "storage/sqlite_db.hpp"

namespace ratchet::sqlite {

Result<RunPage> browse_runs(Database& db, const RunQuery& query);
Result<HealthCounts> health_counts(Database& db, Micros now, Micros since);

// The columns every list of runs starts with, in this order: id, kind,
// run_key, status, started_at, finished_at (RunSummary and RunRow alike).
template <typename Run>
void read_run_head(const Statement& row, Run& run) {
  run.id = row.text(0);
  run.kind = row.text(1) == "call" ? RunKind::kCall : RunKind::kJob;
  run.run_key = row.text(2);
  run.status = parse_status(row.text(3)).value_or(RunStatus::kLost);
  run.started_at = row.int64(4);
  run.finished_at = row.optional_int64(5);
}

// The statement browse_runs runs for `filter` (for tests of its query plan).
const char* browse_sql(const RunFilter& filter);

}  // namespace ratchet::sqlite
