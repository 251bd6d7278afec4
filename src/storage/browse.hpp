// Read-only views of the history, for the dashboard (docs/dashboard.md): pages
// of runs (jobs and calls) newest first under a keyset cursor, and counts for
// the health view. Every backend answers them from indexes (docs/storage.md,
// "Indexes for reading"), so a page costs the same with a million runs as
// with a hundred.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.hpp"
#include "common/status.hpp"
#include "storage/run.hpp"

namespace ratchet {

// Which runs a page lists. Unset fields match everything.
struct RunFilter {
  std::optional<RunStatus> status;
  std::optional<RunKind> kind;
  // A call's function, or a job's program (the first word of its command); exact.
  std::string name;
  std::string run_key;                   // exact
  std::optional<Micros> started_from;    // inclusive
  std::optional<Micros> started_before;  // exclusive
  // Jobs and root calls only (the default): a call's children are shown in
  // its tree. Off, child calls are listed too, without the promise of the
  // indexes above for selective filters.
  bool roots_only = true;
};

struct RunQuery {
  RunFilter filter;
  // Empty for the first page, else the `next_cursor` of the previous page.
  // Opaque: its content is the backend's business.
  std::string cursor;
  int limit = 50;  // clamped to 1..500
};

// One line of the runs list.
struct RunRow {
  std::string id;
  RunKind kind = RunKind::kJob;
  RunStatus status = RunStatus::kStarting;
  std::string run_key;
  std::string function;              // calls
  std::vector<std::string> command;  // jobs
  Micros started_at = 0;
  std::optional<Micros> finished_at;
  int attempts = 0;
  std::string error_type;
  std::optional<std::string> error;
  std::optional<int> exit_code;  // jobs
  std::string parent_id;         // calls: empty for a root
  std::string root_id;
};

struct RunPage {
  std::vector<RunRow> runs;
  std::string next_cursor;  // empty: this was the last page
};

// What the health view shows, all read from the store.
struct HealthCounts {
  struct Count {
    std::string name;
    long long count = 0;
  };
  long long jobs_running = 0;             // STARTING or RUNNING
  long long calls_running = 0;            // STARTING or RUNNING
  long long calls_waiting = 0;            // suspended coroutines
  std::vector<Count> finished_since;      // terminal runs since `since`, by status
  std::vector<Count> ready_by_function;   // calls due now, by function (the queue)
  std::vector<Count> leased_by_endpoint;  // calls sent and not yet answered
};

// Where a page starts, for the backends, which order runs by started_at and
// then an insertion counter (SQLite's rowid, PostgreSQL's seq): a page shows
// runs started from `from` to `newest`, and of those started exactly at
// `newest`, the ones whose counter is below `below`. One upper bound, so that
// an index range starts there instead of skipping the pages before it.
struct PageBounds {
  Micros from = 0;
  Micros newest = 0;
  std::int64_t below = 0;
};
// The bounds of `query`'s page: its time range and its cursor, which must be
// one cursor_after() made ("<started_at>.<counter>").
Result<PageBounds> page_bounds(const RunQuery& query);
std::string cursor_after(Micros started_at, std::int64_t counter);
// The sum of the counts named `name` (all of them when empty).
long long count_of(const std::vector<HealthCounts::Count>& counts, std::string_view name);

}  // namespace ratchet
