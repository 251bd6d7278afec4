// dashboard_bench [--quick]: the dashboard's runs list over a big history.
//
// Fills a SQLite store (and, when RATCHET_TEST_PG names a PostgreSQL server,
// a fresh database on it) with 1,000,000 runs (100,000 jobs; 300,000 root calls,
// each of which has two children: 600,000 child calls; 97 % succeeded, 2 %
// failed, 1 % running, a few lost), then times pages of 50 runs through
// Store::browse_runs with each filter, beside the baseline of a lookup by id
// (Store::find_call) in the same run. Goal: a page in <= 100 ms. --quick
// uses 100,000 runs. Then a call's page: the tree view of a fan-out of 1,000
// whose calls each have an attempt history (dashboard::tree_view), beside
// reading the tree's children alone and the timeline's histories alone; and
// the tree view of a root whose 5 children have 10,000 children each.
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "dashboard/views.hpp"
#include "storage/pg_db.hpp"
#include "storage/pg_testing.hpp"
#include "storage/store.hpp"

namespace {

using namespace ratchet;
using Steady = std::chrono::steady_clock;

// Every row in one statement; times one millisecond apart, newest last.
void fill(const std::string& path, long total) {
  sqlite3* db = nullptr;
  sqlite3_open(path.c_str(), &db);
  std::string sql = R"sql(
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < )sql" +
                    std::to_string(total - 1) + R"sql()
INSERT INTO runs (id, kind, run_key, status, started_at, updated_at, finished_at, attempts,
                  command, cwd, env, stdout_file, stderr_file, exit_code,
                  function, endpoint, input, output, error_type, error, parent_id, root_id,
                  correlation_id, phase, ready_at, lease_epoch)
SELECT printf('run-%08d', i),
       CASE WHEN i % 10 = 0 THEN 'job' ELSE 'call' END,
       CASE WHEN i % 10 = 0 THEN printf('key-%d', i / 10 % 5000) END,
       CASE WHEN i % 100000 = 7 THEN 'LOST' WHEN i % 100 = 1 THEN 'RUNNING'
            WHEN i % 50 = 4 THEN 'FAILED' ELSE 'SUCCEEDED' END,
       1700000000000000 + i * 1000, 1700000000000000 + i * 1000,
       CASE WHEN i % 100 = 1 THEN NULL ELSE 1700000000000000 + i * 1000 + 500 END,
       1,
       CASE WHEN i % 10 = 0 THEN printf('["/usr/bin/task-%d","--all"]', i % 7) END,
       CASE WHEN i % 10 = 0 THEN '/srv' END, CASE WHEN i % 10 = 0 THEN '[]' END,
       CASE WHEN i % 10 = 0 THEN '/logs/out' END, CASE WHEN i % 10 = 0 THEN '/logs/err' END,
       CASE WHEN i % 10 = 0 THEN 0 END,
       CASE WHEN i % 10 != 0 THEN printf('function_%d', i % 20) END,
       CASE WHEN i % 10 != 0 THEN 'http://127.0.0.1:8000' END,
       CASE WHEN i % 10 != 0 THEN x'0a2f747970652e676f6f676c65617069732e636f6d2f676f6f676c652e70726f746f6275662e496e74363456616c75651202082a' END,
       NULL,
       CASE WHEN i % 50 = 4 THEN 'ValueError' END, CASE WHEN i % 50 = 4 THEN 'it failed' END,
       -- calls i % 10 in 2..3 and 5..6, 8..9 are children of the root just before them
       CASE WHEN i % 10 IN (2, 3, 5, 6, 8, 9) THEN printf('run-%08d', i - i % 10 + (i % 10 - 1) / 3 * 3 + 1) END,
       CASE WHEN i % 10 = 0 THEN NULL
            ELSE printf('run-%08d', i - i % 10 + (i % 10 - 1) / 3 * 3 + 1) END,
       0,
       CASE WHEN i % 10 = 0 THEN NULL WHEN i % 100 = 1 THEN 'WAITING' ELSE 'DONE' END,
       1700000000000000 + i * 1000, 0
FROM n;
COMMIT;
)sql";
  char* error = nullptr;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
    std::fprintf(stderr, "fill: %s\n", error);
    std::exit(1);
  }
  sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", nullptr, nullptr, nullptr);
  sqlite3_close(db);
}

// The same rows in PostgreSQL.
void fill_postgres(const std::string& url, long total) {
  auto db = pg::Connection::open(url, {});
  if (!db.is_ok()) {
    std::fprintf(stderr, "fill: %s\n", db.status().message().c_str());
    std::exit(1);
  }
  std::string sql = R"sql(
INSERT INTO runs (id, kind, run_key, status, started_at, updated_at, finished_at, attempts,
                  command, cwd, env, stdout_file, stderr_file, exit_code,
                  function, endpoint, input, output, error_type, error, parent_id, root_id,
                  correlation_id, phase, ready_at, lease_epoch)
SELECT 'run-' || lpad(i::text, 8, '0'),
       CASE WHEN i % 10 = 0 THEN 'job' ELSE 'call' END,
       CASE WHEN i % 10 = 0 THEN 'key-' || (i / 10 % 5000) END,
       CASE WHEN i % 100000 = 7 THEN 'LOST' WHEN i % 100 = 1 THEN 'RUNNING'
            WHEN i % 50 = 4 THEN 'FAILED' ELSE 'SUCCEEDED' END,
       1700000000000000 + i * 1000, 1700000000000000 + i * 1000,
       CASE WHEN i % 100 = 1 THEN NULL ELSE 1700000000000000 + i * 1000 + 500 END,
       1,
       CASE WHEN i % 10 = 0 THEN '["/usr/bin/task-' || (i % 7) || '","--all"]' END,
       CASE WHEN i % 10 = 0 THEN '/srv' END, CASE WHEN i % 10 = 0 THEN '[]' END,
       CASE WHEN i % 10 = 0 THEN '/logs/out' END, CASE WHEN i % 10 = 0 THEN '/logs/err' END,
       CASE WHEN i % 10 = 0 THEN 0 END,
       CASE WHEN i % 10 != 0 THEN 'function_' || (i % 20) END,
       CASE WHEN i % 10 != 0 THEN 'http://127.0.0.1:8000' END,
       CASE WHEN i % 10 != 0 THEN '\x0a2f747970652e676f6f676c65617069732e636f6d2f676f6f676c652e70726f746f6275662e496e74363456616c75651202082a'::bytea END,
       NULL,
       CASE WHEN i % 50 = 4 THEN 'ValueError' END, CASE WHEN i % 50 = 4 THEN 'it failed' END,
       CASE WHEN i % 10 IN (2, 3, 5, 6, 8, 9) THEN 'run-' || lpad((i - i % 10 + (i % 10 - 1) / 3 * 3 + 1)::text, 8, '0') END,
       CASE WHEN i % 10 = 0 THEN NULL
            ELSE 'run-' || lpad((i - i % 10 + (i % 10 - 1) / 3 * 3 + 1)::text, 8, '0') END,
       0,
       CASE WHEN i % 10 = 0 THEN NULL WHEN i % 100 = 1 THEN 'WAITING' ELSE 'DONE' END,
       1700000000000000 + i * 1000, 0
FROM generate_series(0, )sql" +
                    std::to_string(total - 1) + R"sql() AS i;
ANALYZE runs;
)sql";
  Status filled = (*db)->exec(sql);
  if (!filled.is_ok()) {
    std::fprintf(stderr, "fill: %s\n", filled.message().c_str());
    std::exit(1);
  }
}

struct Figures {
  double median_ms = 0;
  double max_ms = 0;
};

Figures measure(int rounds, const std::function<void()>& body) {
  std::vector<double> times;
  body();  // warm the page cache and the prepared statement
  for (int i = 0; i < rounds; ++i) {
    auto start = Steady::now();
    body();
    times.push_back(std::chrono::duration<double, std::milli>(Steady::now() - start).count());
  }
  std::sort(times.begin(), times.end());
  return {times[times.size() / 2], times.back()};
}

void page(Store& store, const RunFilter& filter, const std::string& cursor, std::size_t expect) {
  RunQuery query{filter, cursor, 50};
  auto result = store.browse_runs(query);
  if (!result.is_ok() || result->runs.size() < std::min<std::size_t>(expect, 50)) {
    std::fprintf(stderr, "browse_runs: %s (%zu runs)\n", result.status().message().c_str(),
                 result.is_ok() ? result->runs.size() : 0);
    std::exit(1);
  }
}

// Times a page of each filter on `store`, filled with `total` runs.
void run_cases(Store& store, long total, int rounds) {
  Figures lookup = measure(rounds, [&] {
    if (!store.find_call("run-00000501").is_ok()) std::exit(1);
  });
  std::printf("%-52s %8s %8s\n", "what", "median", "max");
  std::printf("%-52s %6.3f ms %6.3f ms\n", "baseline: find_call (a lookup by id)", lookup.median_ms,
              lookup.max_ms);

  // The cursor 200 pages deep, to show a page costs the same anywhere.
  std::string deep;
  {
    RunQuery query;
    for (int i = 0; i < 200; ++i) query.cursor = store.browse_runs(query)->next_cursor;
    deep = query.cursor;
  }
  struct Case {
    const char* name;
    RunFilter filter;
    std::string cursor;
    std::size_t expect;
  };
  std::vector<Case> cases(10);
  cases[0] = {"runs list, first page (jobs and root calls)", {}, "", 50};
  cases[1] = {"runs list, 200 pages deep (cursor)", {}, deep, 50};
  cases[2] = {"status FAILED", {}, "", 50};
  cases[2].filter.status = RunStatus::kFailed;
  cases[3] = {"status LOST (a handful in the whole store)", {}, "", 1};
  cases[3].filter.status = RunStatus::kLost;
  cases[4] = {"function function_4", {}, "", 50};
  cases[4].filter.name = "function_4";
  cases[5] = {"jobs only", {}, "", 50};
  cases[5].filter.kind = RunKind::kJob;
  cases[6] = {"run key key-42", {}, "", 1};
  cases[6].filter.run_key = "key-42";
  cases[7] = {"time range: an hour in the middle", {}, "", 50};
  cases[7].filter.started_from = 1700000000000000 + total / 2 * 1000;
  cases[7].filter.started_before = *cases[7].filter.started_from + 3600LL * 1000000;
  cases[8] = {"status FAILED and function function_14", {}, "", 50};
  cases[8].filter.status = RunStatus::kFailed;
  cases[8].filter.name = "function_14";
  cases[9] = {"with children (scope=all), first page", {}, "", 50};
  cases[9].filter.roots_only = false;
  double worst = 0;
  for (const auto& c : cases) {
    Figures f = measure(rounds, [&] { page(store, c.filter, c.cursor, c.expect); });
    worst = std::max(worst, f.median_ms);
    std::printf("%-52s %6.3f ms %6.3f ms  (%.0f x the lookup)\n", c.name, f.median_ms, f.max_ms,
                f.median_ms / std::max(lookup.median_ms, 1e-6));
  }
  std::printf("goal: a page in <= 100 ms with 1,000,000 runs: the slowest median is %.3f ms\n",
              worst);
}

// Dispatches a root call and runs `body` with a call under it to dispatch, in
// one transaction; the root's id. `what` names the tree if it fails.
std::string with_root(Store& store, const char* what,
                      const std::function<Status(CallTransaction&, NewCall&)>& body) {
  std::string root;
  Status made = store.calls([&](CallTransaction& tx) -> Status {
    NewCall call;
    call.function = "fan";
    call.endpoint = "http://127.0.0.1:8000";
    ASSIGN_OR_RETURN(root, tx.dispatch(call));
    call.parent_id = root;
    call.root_id = root;
    return body(tx, call);
  });
  if (!made.is_ok()) {
    std::fprintf(stderr, "%s: %s\n", what, made.message().c_str());
    std::exit(1);
  }
  return root;
}

// A root call with `children` children, each call with a failed and a
// successful attempt in its history (the root also a poll), in one transaction.
std::string fan_out_with_history(Store& store, int children) {
  return with_root(store, "fan-out", [&](CallTransaction& tx, NewCall& call) -> Status {
    std::vector<std::string> ids{call.parent_id};
    call.function = "leaf";
    for (int i = 0; i < children; ++i) {
      ASSIGN_OR_RETURN(auto id, tx.dispatch(call));
      ids.push_back(id);
    }
    std::vector<HistoryEvent> events;
    for (const auto& id : ids) {
      events.push_back({id, "attempt", 0, 1, 500, 1, 6, "retry", "dispatched; Oops: once", 0, 0});
      events.push_back({id, "attempt", 0, 2, 500, 2, 1, "succeeded", "retry", 0, 0});
    }
    events.push_back({ids[0], "poll", 0, 3, std::nullopt, 0, 0, "waiting", "all", children, 0});
    return tx.record_history(events);
  });
}

// A call's page: its tree with the timeline (dashboard::tree_view), beside
// its parts read alone: the tree's children, and the histories of the 200
// calls whose attempts the timeline draws.
void call_page_case(Store& store, int rounds) {
  constexpr int kChildren = 1000;
  std::string root = fan_out_with_history(store, kChildren);
  Figures children = measure(rounds, [&] {
    if (store.child_calls(root, kChildren + 1)->size() != kChildren) std::exit(1);
  });
  auto drawn = store.child_calls(root, dashboard::kTimelineCalls);
  Figures histories = measure(rounds, [&] {
    for (const auto& call : *drawn) {
      if (store.call_history(call.id, dashboard::kTimelineEvents)->size() != 2) std::exit(1);
    }
  });
  Figures tree = measure(rounds, [&] {
    auto view = dashboard::tree_view(store, root, 0);
    if (!view.is_ok() || (*view)["nodes"].size() != kChildren + 1) std::exit(1);
  });
  std::printf("%-52s %6.3f ms %6.3f ms\n", "baseline: the 1,000 children of a call",
              children.median_ms, children.max_ms);
  std::printf("%-52s %6.3f ms %6.3f ms\n", "the histories of 200 calls (the timeline's reads)",
              histories.median_ms, histories.max_ms);
  std::printf("%-52s %6.3f ms %6.3f ms  (%.1f x the children)\n",
              "a call's page: its tree of 1,001 with the timeline", tree.median_ms, tree.max_ms,
              tree.median_ms / std::max(children.median_ms, 1e-6));
}

// A wide tree: a root with 5 children of 10,000 children each. The tree shows
// 5,000 calls (the root, its 5 children, and 4,994 of the grandchildren);
// what it costs beside the tree of 1,001 is what it reads that it does not show.
void wide_tree_case(Store& store, int rounds) {
  constexpr int kChildren = 5;
  constexpr int kGrandchildren = 10'000;
  std::string root =
      with_root(store, "wide tree", [&](CallTransaction& tx, NewCall& call) -> Status {
        const std::string root_id = call.parent_id;
        for (int i = 0; i < kChildren; ++i) {
          call.parent_id = root_id;
          ASSIGN_OR_RETURN(auto child, tx.dispatch(call));
          call.parent_id = child;
          for (int j = 0; j < kGrandchildren; ++j) RETURN_IF_ERROR(tx.dispatch(call).status());
        }
        return Status::ok();
      });
  Figures tree = measure(rounds, [&] {
    auto view = dashboard::tree_view(store, root, 0);
    if (!view.is_ok() || (*view)["nodes"].size() != dashboard::kTreeNodes) std::exit(1);
  });
  std::printf("%-52s %6.3f ms %6.3f ms\n", "a tree of 5 x 10,000 grandchildren (5,000 shown)",
              tree.median_ms, tree.max_ms);
}

template <typename Fill>
void bench(const char* backend, const std::string& location, long total, int rounds, Fill fill) {
  { auto store = open_store(location, SystemClock::instance()); }  // the schema
  auto fill_start = Steady::now();
  fill(location, total);
  double fill_s = std::chrono::duration<double>(Steady::now() - fill_start).count();
  auto store = open_store(location, SystemClock::instance());
  if (!store.is_ok()) {
    std::fprintf(stderr, "%s: %s\n", backend, store.status().message().c_str());
    std::exit(1);
  }
  std::printf(
      "dashboard_bench, %s: %ld runs (%ld jobs, %ld root calls, %ld child calls), filled in "
      "%.1f s\n",
      backend, total, total / 10, total * 3 / 10, total * 6 / 10, fill_s);
  run_cases(**store, total, rounds);
  call_page_case(**store, rounds);
  wide_tree_case(**store, rounds);
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  long total = quick ? 100'000 : 1'000'000;
  const int rounds = quick ? 20 : 50;
  char pattern[] = "/tmp/ratchet-dashboard-bench-XXXXXX";
  std::string dir = mkdtemp(pattern);
  bench("SQLite", dir + "/ratchet.db", total, rounds, fill);
  std::filesystem::remove_all(dir);
  if (!ratchet::testing::test_pg_url()) {
    std::printf("PostgreSQL: skipped (set RATCHET_TEST_PG to a server's URL to measure it)\n");
    return 0;
  }
  auto database = ratchet::testing::PgTestDatabase::create();
  if (!database.is_ok()) {
    std::fprintf(stderr, "PostgreSQL: %s\n", database.status().message().c_str());
    return 1;
  }
  bench("PostgreSQL", database->url(), total, rounds, fill_postgres);
  return 0;
}
