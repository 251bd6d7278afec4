#include "storage/sqlite_browse.hpp"

#include <algorithm>
#include <array>
#include <nlohmann/json.hpp>

#include "storage/records.hpp"

namespace ratchet::sqlite {
namespace {

// A run's name: a call's function, a job's program. Written exactly as in the
// runs_roots_by_name index (schema.cpp), or SQLite does not use the index.
#define NAME_EXPR \
  "coalesce(function, CASE WHEN json_valid(command) THEN json_extract(command, '$[0]') END)"

#define BROWSE_SELECT "SELECT " RATCHET_RUN_ROW_COLUMNS ", rowid FROM runs WHERE "

// Every filter is also a residual condition with a NULL meaning "any"; the
// first term of each query names the one that drives the index.
#define BROWSE_REST                                                       \
  " AND (?1 IS NULL OR run_key = ?1) AND (?2 IS NULL OR " NAME_EXPR       \
  " = ?2)"                                                                \
  " AND (?3 IS NULL OR status = ?3) AND (?4 IS NULL OR kind = ?4)"        \
  " AND started_at BETWEEN ?5 AND ?6 AND (started_at < ?6 OR rowid < ?7)" \
  " ORDER BY started_at DESC, rowid DESC LIMIT ?8"

// One statement per driving index. ?6 is the newest started_at a page may
// show (the cursor's or the time range's) and ?7 the rowid below which rows of
// exactly that time are shown: one upper bound, so that SQLite starts the index
// range there instead of skipping the pages before it.
constexpr std::array<const char*, 7> kBrowse{
    BROWSE_SELECT "run_key = ?1 AND parent_id IS NULL" BROWSE_REST,     // runs_by_key
    BROWSE_SELECT "run_key = ?1" BROWSE_REST,                           // runs_by_key
    BROWSE_SELECT NAME_EXPR " = ?2 AND parent_id IS NULL" BROWSE_REST,  // runs_roots_by_name
    BROWSE_SELECT "status = ?3 AND parent_id IS NULL" BROWSE_REST,      // runs_roots_by_status
    BROWSE_SELECT "kind = ?4 AND parent_id IS NULL" BROWSE_REST,        // runs_roots_by_kind
    BROWSE_SELECT "parent_id IS NULL" BROWSE_REST,                      // runs_roots
    BROWSE_SELECT "1" BROWSE_REST,                                      // runs_by_start
};

void bind_filter(Statement& query, const RunFilter& filter, const PageBounds& bounds, int limit) {
  if (!filter.run_key.empty()) query.bind(1, filter.run_key);
  if (!filter.name.empty()) query.bind(2, filter.name);
  if (filter.status) query.bind(3, status_name(*filter.status));
  if (filter.kind) query.bind(4, kind_name(*filter.kind));
  query.bind(5, bounds.from).bind(6, bounds.newest).bind(7, bounds.below).bind(8, limit);
}

// Runs `sql` (one ?1 parameter, or none when `bound` is null) and collects
// (name, count) rows.
Result<std::vector<HealthCounts::Count>> counts(Database& db, const char* sql,
                                                std::optional<Micros> bound) {
  ASSIGN_OR_RETURN(Statement * query, db.prepare(sql));
  if (bound) query->bind(1, *bound);
  std::vector<HealthCounts::Count> result;
  while (true) {
    ASSIGN_OR_RETURN(bool row, query->step());
    if (!row) break;
    result.push_back({query->text(0), query->int64(1)});
  }
  query->reset();
  return result;
}

}  // namespace

const char* browse_sql(const RunFilter& filter) {
  if (!filter.run_key.empty()) return kBrowse[filter.roots_only ? 0 : 1];
  if (!filter.roots_only) return kBrowse[6];
  if (!filter.name.empty()) return kBrowse[2];
  if (filter.status) return kBrowse[3];
  if (filter.kind) return kBrowse[4];
  return kBrowse[5];
}

Result<RunPage> browse_runs(Database& db, const RunQuery& request) {
  ASSIGN_OR_RETURN(PageBounds bounds, page_bounds(request));
  int limit = std::clamp(request.limit, 1, 500);
  ASSIGN_OR_RETURN(Statement * query, db.prepare(browse_sql(request.filter)));
  // One row more than asked says whether there is a next page.
  bind_filter(*query, request.filter, bounds, limit + 1);
  RunPage page;
  std::int64_t last_rowid = 0;
  while (true) {
    ASSIGN_OR_RETURN(bool row, query->step());
    if (!row) break;
    if (static_cast<int>(page.runs.size()) == limit) {
      page.next_cursor = cursor_after(page.runs.back().started_at, last_rowid);
      break;
    }
    page.runs.push_back(records::read_run_row(*query));
    last_rowid = query->int64(14);
  }
  query->reset();
  return page;
}

Result<HealthCounts> health_counts(Database& db, Micros now, Micros since) {
  HealthCounts health;
  ASSIGN_OR_RETURN(auto live, counts(db,
                                     "SELECT kind, COUNT(*) FROM runs WHERE status IN "
                                     "('STARTING', 'RUNNING') GROUP BY kind",
                                     std::nullopt));
  health.jobs_running = count_of(live, "job");
  health.calls_running = count_of(live, "call");
  ASSIGN_OR_RETURN(auto waiting, counts(db,
                                        "SELECT 'waiting', COUNT(*) FROM runs "
                                        "WHERE phase = 'WAITING'",
                                        std::nullopt));
  health.calls_waiting = count_of(waiting, "");
  // One range of runs_by_status (status, finished_at) per terminal status.
  ASSIGN_OR_RETURN(health.finished_since,
                   counts(db,
                          "SELECT status, COUNT(*) FROM runs WHERE status IN ('SUCCEEDED', "
                          "'FAILED', 'LOST', 'CANCELLED') AND finished_at >= ?1 GROUP BY status",
                          since));
  ASSIGN_OR_RETURN(health.ready_by_function,
                   counts(db,
                          "SELECT function, COUNT(*) AS n FROM runs WHERE phase = 'READY' AND "
                          "ready_at <= ?1 GROUP BY function ORDER BY n DESC LIMIT 20",
                          now));
  ASSIGN_OR_RETURN(health.leased_by_endpoint,
                   counts(db,
                          "SELECT endpoint, COUNT(*) AS n FROM runs WHERE phase = 'LEASED' "
                          "GROUP BY endpoint ORDER BY n DESC LIMIT 20",
                          std::nullopt));
  return health;
}

Result<std::string> data_version(Database& db) {
  ASSIGN_OR_RETURN(Statement * query, db.prepare("PRAGMA data_version"));
  ASSIGN_OR_RETURN(bool row, query->step());
  std::string version = row ? std::to_string(query->int64(0)) : "";
  query->reset();
  return version;
}

}  // namespace ratchet::sqlite
