#include "storage/pg_browse.hpp"

#include <algorithm>
#include <array>

#include "storage/pg_states.hpp"
#include "storage/records.hpp"

namespace ratchet::pg {
namespace {

// $1..$3 are the page's bounds (storage/browse.hpp); the filters that are set
// follow, each an equality on the leading column of an index (pg_schema.cpp),
// so that a page is one range of it read backwards. Only the filters set are
// in the statement (rather than "$n IS NULL OR ..."), so that a prepared
// statement's generic plan still uses the right index.
constexpr const char* kBrowseSelect = "SELECT " RATCHET_RUN_ROW_COLUMNS
                                      ", seq FROM runs "
                                      "WHERE started_at >= $1 AND (started_at, seq) < ($2, $3)";

// A run's name: a call's function, a job's program; written as the index
// runs_roots_by_name is.
constexpr const char* kName = "ratchet_run_name(function, command)";

// The equality filters that are set, in the order browse_sql() numbers them
// (which is the order of its columns).
std::vector<std::pair<const char*, std::string>> equalities(const RunFilter& filter) {
  std::vector<std::pair<const char*, std::string>> terms;
  if (!filter.run_key.empty()) terms.emplace_back("run_key", filter.run_key);
  if (!filter.name.empty()) terms.emplace_back(kName, filter.name);
  if (filter.status) terms.emplace_back("status", std::string(status_name(*filter.status)));
  if (filter.kind) terms.emplace_back("kind", std::string(kind_name(*filter.kind)));
  return terms;
}

Result<std::vector<HealthCounts::Count>> counts(Connection& db, const char* sql,
                                                const Params& params = {}) {
  ASSIGN_OR_RETURN(Rows rows, db.query(sql, params));
  std::vector<HealthCounts::Count> result;
  for (int i = 0; i < rows.size(); ++i) result.push_back({rows[i].text(0), rows[i].int64(1)});
  return result;
}

// A child call's columns for the dashboard's tree: without input and output
// (NULL in their places), as a fan-out's children may carry megabytes each and
// a tree shows neither.
#define CHILD_CALL_COLUMNS                                                \
  "id, run_key, status, phase, function, endpoint, version, "             \
  "NULL::bytea, NULL::bytea, error_type, error, call_status, parent_id, " \
  "root_id, correlation_id, attempts, started_at, finished_at, "          \
  "expires_at, ready_at, lease_owner, lease_epoch, lease_expires_at, "    \
  "state_member, poll_min, poll_max, poll_deadline, poll_error, "         \
  "children_waiting, results_waiting, error_proto, max_attempts"

std::vector<CallRecord> read_calls(const Rows& rows) {
  std::vector<CallRecord> calls;
  for (int i = 0; i < rows.size(); ++i) calls.push_back(records::read_call(rows[i]));
  return calls;
}

}  // namespace

// The statement of each combination of filters (bit 0: roots only; bits 1-4:
// run key, name, status, kind), built once: Connection caches prepared
// statements by the address of their text, which must therefore outlive it.
const std::string& browse_sql(const RunFilter& filter) {
  static const std::array<std::string, 32> kStatements = [] {
    std::array<std::string, 32> statements;
    const char* columns[] = {"run_key", kName, "status", "kind"};
    for (int bits = 0; bits < 32; ++bits) {
      std::string sql = kBrowseSelect;
      int n = 3;
      for (int i = 0; i < 4; ++i) {
        if (bits & (2 << i))
          sql += std::string(" AND ") + columns[i] + " = $" + std::to_string(++n);
      }
      if (bits & 1) sql += " AND parent_id IS NULL";
      statements[bits] = sql + " ORDER BY started_at DESC, seq DESC LIMIT $" + std::to_string(++n);
    }
    return statements;
  }();
  int bits = (filter.roots_only ? 1 : 0) | (filter.run_key.empty() ? 0 : 2) |
             (filter.name.empty() ? 0 : 4) | (filter.status ? 8 : 0) | (filter.kind ? 16 : 0);
  return kStatements[bits];
}

Result<RunPage> browse_runs(Connection& db, const RunQuery& request) {
  ASSIGN_OR_RETURN(PageBounds bounds, page_bounds(request));
  int limit = std::clamp(request.limit, 1, 500);
  Params params;
  params.add(bounds.from).add(bounds.newest).add(bounds.below);
  for (const auto& term : equalities(request.filter)) params.add(term.second);
  params.add(limit + 1);  // one row more says whether there is a next page
  ASSIGN_OR_RETURN(Rows rows, db.query(browse_sql(request.filter).c_str(), params));
  RunPage page;
  int shown = std::min(rows.size(), limit);
  for (int i = 0; i < shown; ++i) page.runs.push_back(records::read_run_row(rows[i]));
  if (rows.size() > limit) {
    page.next_cursor = cursor_after(page.runs.back().started_at, rows[limit - 1].int64(14));
  }
  return page;
}

Result<std::vector<CallRecord>> child_calls(Connection& db, const std::string& parent_id,
                                            int limit) {
  ASSIGN_OR_RETURN(Rows rows, db.query("SELECT " CHILD_CALL_COLUMNS " FROM runs WHERE parent_id = "
                                       "$1 ORDER BY started_at, seq LIMIT $2",
                                       Params().add(parent_id).add(limit)));
  return read_calls(rows);
}

// The parents come as one comma-separated list (ids are UUIDs), numbered in
// their order. Each parent's children are a LATERAL read of the first $2 along
// calls_by_parent_started, and as the parents come out of unnest in their order
// the sort by parent is an incremental one: the parents past the one that
// fills $3 are never read.
const char* child_calls_of_sql() {
  return "SELECT c.* FROM unnest(string_to_array($1, ',')) WITH ORDINALITY AS p(id, ord) "
         "CROSS JOIN LATERAL (SELECT " CHILD_CALL_COLUMNS
         ", seq FROM runs WHERE parent_id = p.id ORDER BY started_at, seq LIMIT $2) c "
         "ORDER BY p.ord, c.started_at, c.seq LIMIT $3";
}

Result<std::vector<CallRecord>> child_calls_of(Connection& db,
                                               const std::vector<std::string>& parent_ids,
                                               int limit_per_parent, int limit_total) {
  if (parent_ids.empty()) return std::vector<CallRecord>();
  ASSIGN_OR_RETURN(Rows rows,
                   db.query(child_calls_of_sql(),
                            Params().add(join(parent_ids)).add(limit_per_parent).add(limit_total)));
  return read_calls(rows);
}

Result<std::optional<std::string>> coroutine_state(Connection& db, const std::string& call_id) {
  return load_state(db, call_id);
}

Result<HealthCounts> health_counts(Connection& db, Micros now, Micros since) {
  HealthCounts health;
  ASSIGN_OR_RETURN(auto live, counts(db,
                                     "SELECT kind, count(*) FROM runs WHERE status IN "
                                     "('STARTING', 'RUNNING') GROUP BY kind"));
  health.jobs_running = count_of(live, "job");
  health.calls_running = count_of(live, "call");
  ASSIGN_OR_RETURN(auto waiting,
                   counts(db, "SELECT 'waiting', count(*) FROM runs WHERE phase = 'WAITING'"));
  health.calls_waiting = count_of(waiting, "");
  ASSIGN_OR_RETURN(
      health.finished_since,
      counts(db,
             "SELECT status, count(*) FROM runs WHERE status IN " RATCHET_TERMINAL_STATUSES
             " AND finished_at >= $1 GROUP BY status",
             Params().add(since)));
  ASSIGN_OR_RETURN(health.ready_by_function,
                   counts(db,
                          "SELECT function, count(*) AS n FROM runs WHERE phase = 'READY' AND "
                          "ready_at <= $1 GROUP BY function ORDER BY n DESC LIMIT 20",
                          Params().add(now)));
  ASSIGN_OR_RETURN(health.leased_by_endpoint,
                   counts(db,
                          "SELECT endpoint, count(*) AS n FROM runs WHERE phase = 'LEASED' "
                          "GROUP BY endpoint ORDER BY n DESC LIMIT 20"));
  return health;
}

Result<std::string> change_stamp(Connection& db) {
  ASSIGN_OR_RETURN(Rows rows, db.query("SELECT pg_current_snapshot()::text"));
  return rows.empty() ? std::string() : rows[0].text(0);
}

}  // namespace ratchet::pg
