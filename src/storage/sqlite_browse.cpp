#include "storage/sqlite_browse.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <limits>
#include <nlohmann/json.hpp>

#include "storage/records.hpp"

namespace ratchet::sqlite {
namespace {

// A run's name: a call's function, a job's program. Written exactly as in the
// runs_roots_by_name index (schema.cpp), or SQLite does not use the index.
#define NAME_EXPR \
  "coalesce(function, CASE WHEN json_valid(command) THEN json_extract(command, '$[0]') END)"

#define BROWSE_SELECT                                                                        \
  "SELECT id, kind, run_key, status, started_at, finished_at, function, command, attempts, " \
  "error_type, error, exit_code, parent_id, root_id, rowid FROM runs WHERE "

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

struct Cursor {
  Micros started_at = std::numeric_limits<Micros>::max();
  std::int64_t rowid = std::numeric_limits<std::int64_t>::max();
};

bool parse_int(std::string_view text, std::int64_t* out) {
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return error == std::errc() && end == text.data() + text.size() && *out >= 0;
}

// "<started_at>.<rowid>", both decimal.
Result<Cursor> parse_cursor(const std::string& text) {
  Cursor cursor;
  if (text.empty()) return cursor;
  auto dot = text.find('.');
  if (dot == std::string::npos ||
      !parse_int(std::string_view(text).substr(0, dot), &cursor.started_at) ||
      !parse_int(std::string_view(text).substr(dot + 1), &cursor.rowid)) {
    return invalid_argument("the cursor '" + text.substr(0, 64) +
                            "' is not one this server gave; start from the first page");
  }
  return cursor;
}

RunRow read_row(const Statement& row) {
  RunRow run;
  read_run_head(row, run);
  run.function = row.text(6);
  run.command = records::command_from_json(row.text(7));
  run.attempts = static_cast<int>(row.int64(8));
  run.error_type = row.text(9);
  run.error = row.optional_text(10);
  if (auto code = row.optional_int64(11)) run.exit_code = static_cast<int>(*code);
  run.parent_id = row.text(12);
  run.root_id = row.text(13);
  return run;
}

void bind_filter(Statement& query, const RunFilter& filter, const Cursor& cursor, int limit) {
  if (!filter.run_key.empty()) query.bind(1, filter.run_key);
  if (!filter.name.empty()) query.bind(2, filter.name);
  if (filter.status) query.bind(3, status_name(*filter.status));
  if (filter.kind) query.bind(4, kind_name(*filter.kind));
  constexpr Micros kMax = std::numeric_limits<Micros>::max();
  constexpr Micros kMin = std::numeric_limits<Micros>::min();
  Micros newest = filter.started_before
                      ? (*filter.started_before == kMin ? kMin : *filter.started_before - 1)
                      : kMax;
  std::int64_t below_rowid = std::numeric_limits<std::int64_t>::max();
  if (cursor.started_at <= newest) {
    newest = cursor.started_at;
    below_rowid = cursor.rowid;
  }
  query.bind(5, filter.started_from.value_or(kMin));
  query.bind(6, newest).bind(7, below_rowid).bind(8, limit);
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

long long total(const std::vector<HealthCounts::Count>& rows, std::string_view name) {
  long long sum = 0;
  for (const auto& row : rows) {
    if (name.empty() || row.name == name) sum += row.count;
  }
  return sum;
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
  ASSIGN_OR_RETURN(Cursor cursor, parse_cursor(request.cursor));
  int limit = std::clamp(request.limit, 1, 500);
  ASSIGN_OR_RETURN(Statement * query, db.prepare(browse_sql(request.filter)));
  // One row more than asked says whether there is a next page.
  bind_filter(*query, request.filter, cursor, limit + 1);
  RunPage page;
  std::int64_t last_rowid = 0;
  while (true) {
    ASSIGN_OR_RETURN(bool row, query->step());
    if (!row) break;
    if (static_cast<int>(page.runs.size()) == limit) {
      const RunRow& last = page.runs.back();
      page.next_cursor = std::to_string(last.started_at) + "." + std::to_string(last_rowid);
      break;
    }
    page.runs.push_back(read_row(*query));
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
  health.jobs_running = total(live, "job");
  health.calls_running = total(live, "call");
  ASSIGN_OR_RETURN(auto waiting, counts(db,
                                        "SELECT 'waiting', COUNT(*) FROM runs "
                                        "WHERE phase = 'WAITING'",
                                        std::nullopt));
  health.calls_waiting = total(waiting, "");
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

}  // namespace ratchet::sqlite
