#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <set>

#include "storage/pg_browse.hpp"
#include "storage/pg_db.hpp"
#include "storage/pg_plan_testing.hpp"
#include "storage/sqlite_browse.hpp"
#include "storage/sqlite_calls.hpp"
#include "storage/store_test_support.hpp"
#include "storage/testing.hpp"

namespace ratchet {
namespace {

// The dashboard's reads, on both backends.
class BrowseTest : public BackendTest {
 protected:
  std::string job(const std::string& key, std::vector<std::string> command) {
    JobRequest r;
    r.run_key = key;
    r.command = std::move(command);
    r.log_dir = dir_;
    r.supervisor = {100, 5, "boot"};
    auto started = store_->start_job(r, [](const JobRecord&, std::string*) { return true; });
    EXPECT_TRUE(started.is_ok());
    return started->job.id;
  }

  std::string call(const std::string& function, const std::string& parent = "",
                   const std::string& run_key = "") {
    NewCall c;
    c.function = function;
    c.endpoint = "http://127.0.0.1:1";
    c.input = std::string(1000, 'i');
    c.parent_id = parent;
    c.root_id = parent;
    c.run_key = run_key;
    c.max_attempts = 3;
    std::string id = testing::dispatch_call(*store_, c);
    EXPECT_FALSE(id.empty());
    return id;
  }

  std::vector<std::string> ids(const RunFilter& filter, int limit = 50) {
    RunQuery query{filter, "", limit};
    auto page = store_->browse_runs(query);
    EXPECT_TRUE(page.is_ok()) << page.status().message();
    std::vector<std::string> result;
    if (page.is_ok()) {
      for (const auto& run : page->runs) result.push_back(run.id);
    }
    return result;
  }

  // What the backend's planner does with a query of this filter, read
  // through a connection of its own.
  std::string plan(const RunFilter& filter);
  std::string sqlite_plan(const RunFilter& filter);
  std::string postgres_plan(const RunFilter& filter);
};

TEST_P(BrowseTest, ListsJobsAndRootCallsNewestFirstWithoutChildren) {
  std::string a = job("nightly", {"make", "all"});
  clock_.advance(kMicrosPerSecond);
  std::string b = call("fanout");
  clock_.advance(kMicrosPerSecond);
  std::string child = call("square", b);
  clock_.advance(kMicrosPerSecond);
  std::string c = call("greet");

  EXPECT_EQ(ids({}), (std::vector<std::string>{c, b, a}));
  RunFilter all;
  all.roots_only = false;
  EXPECT_EQ(ids(all), (std::vector<std::string>{c, child, b, a}));

  RunQuery query;
  auto page = store_->browse_runs(query);
  ASSERT_TRUE(page.is_ok());
  const RunRow& job_row = page->runs[2];
  EXPECT_EQ(job_row.kind, RunKind::kJob);
  EXPECT_EQ(job_row.run_key, "nightly");
  EXPECT_EQ(job_row.command, (std::vector<std::string>{"make", "all"}));
  EXPECT_EQ(page->runs[1].function, "fanout");
  EXPECT_EQ(page->runs[1].root_id, b);
}

TEST_P(BrowseTest, CursorPagesVisitEveryRunOnceEvenWhenTimesTie) {
  std::vector<std::string> made;
  for (int i = 0; i < 23; ++i) {
    made.push_back(call("f"));
    if (i % 5 == 0) clock_.advance(1);  // most share their started_at with a neighbour
  }
  std::vector<std::string> seen;
  RunQuery query;
  query.limit = 4;
  int pages = 0;
  do {
    auto page = store_->browse_runs(query);
    ASSERT_TRUE(page.is_ok()) << page.status().message();
    for (const auto& run : page->runs) seen.push_back(run.id);
    query.cursor = page->next_cursor;
    ++pages;
  } while (!query.cursor.empty() && pages < 100);
  EXPECT_EQ(pages, 6);
  std::vector<std::string> newest_first(made.rbegin(), made.rend());
  EXPECT_EQ(seen, newest_first);
}

TEST_P(BrowseTest, TheLastFullPageHasNoCursor) {
  call("f");
  call("f");
  RunQuery query;
  query.limit = 2;
  auto page = store_->browse_runs(query);
  ASSERT_TRUE(page.is_ok());
  EXPECT_EQ(page->runs.size(), 2u);
  EXPECT_EQ(page->next_cursor, "");
}

TEST_P(BrowseTest, FiltersByStatusKindNameKeyAndTime) {
  std::string early = job("backup", {"/usr/bin/rsync", "-a"});
  clock_.advance(10 * kMicrosPerSecond);
  Micros middle = clock_.now();
  std::string keyed = call("greet", "", "greet-1");
  std::string other = call("fanout");
  ASSERT_TRUE(store_->finish_job(early, {RunStatus::kFailed, 1, {}, "exit 1"}).value());

  RunFilter failed;
  failed.status = RunStatus::kFailed;
  EXPECT_EQ(ids(failed), std::vector<std::string>{early});
  RunFilter calls;
  calls.kind = RunKind::kCall;
  EXPECT_EQ(ids(calls), (std::vector<std::string>{other, keyed}));
  RunFilter by_function;
  by_function.name = "greet";
  EXPECT_EQ(ids(by_function), std::vector<std::string>{keyed});
  RunFilter by_program;
  by_program.name = "/usr/bin/rsync";
  EXPECT_EQ(ids(by_program), std::vector<std::string>{early});
  RunFilter by_key;
  by_key.run_key = "greet-1";
  EXPECT_EQ(ids(by_key), std::vector<std::string>{keyed});
  RunFilter before;
  before.started_before = middle;
  EXPECT_EQ(ids(before), std::vector<std::string>{early});
  RunFilter from;
  from.started_from = middle;
  from.name = "fanout";
  EXPECT_EQ(ids(from), std::vector<std::string>{other});
  RunFilter none;
  none.status = RunStatus::kFailed;
  none.kind = RunKind::kCall;
  EXPECT_TRUE(ids(none).empty());
}

TEST_P(BrowseTest, ACursorItDidNotGiveIsAnInvalidArgument) {
  for (std::string bad : {"x", "12", "1.", ".1", "-1.2", "1.2.3", "99999999999999999999.1"}) {
    RunQuery query;
    query.cursor = bad;
    auto page = store_->browse_runs(query);
    ASSERT_FALSE(page.is_ok()) << bad;
    EXPECT_EQ(page.status().code(), Code::kInvalidArgument) << bad;
  }
}

std::string BrowseTest::plan(const RunFilter& filter) {
  return postgres() ? postgres_plan(filter) : sqlite_plan(filter);
}

std::string BrowseTest::sqlite_plan(const RunFilter& filter) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open(location_.c_str(), &db), SQLITE_OK);
  std::string sql = std::string("EXPLAIN QUERY PLAN ") + sqlite::browse_sql(filter);
  sqlite3_stmt* query = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &query, nullptr), SQLITE_OK)
      << sqlite3_errmsg(db);
  std::string steps;
  while (sqlite3_step(query) == SQLITE_ROW) {
    steps += reinterpret_cast<const char*>(sqlite3_column_text(query, 3));
    steps += "\n";
  }
  sqlite3_finalize(query);
  sqlite3_close(db);
  return steps;
}

// The page's generic plan (testing::postgres_generic_plan).
std::string BrowseTest::postgres_plan(const RunFilter& filter) {
  auto db = pg::Connection::open(location_, {});
  EXPECT_TRUE(db.is_ok()) << db.status().message();
  if (!db.is_ok()) return "";
  std::string arguments = "0, 0, 0";
  int text_parameters = (filter.run_key.empty() ? 0 : 1) + (filter.name.empty() ? 0 : 1) +
                        (filter.status ? 1 : 0) + (filter.kind ? 1 : 0);
  for (int i = 0; i < text_parameters; ++i) arguments += ", 'x'";
  return testing::postgres_generic_plan(**db, pg::browse_sql(filter), arguments + ", 51");
}

// A page must be an index range read in order: no scan of the table, no sort.
TEST_P(BrowseTest, EveryFilterReadsItsPageFromAnIndexInOrder) {
  struct Case {
    RunFilter filter;
    std::string index;
  };
  std::vector<Case> cases(6);
  cases[0].index = "runs_roots";
  cases[1].filter.status = RunStatus::kFailed;
  cases[1].index = "runs_roots_by_status";
  cases[2].filter.kind = RunKind::kJob;
  cases[2].index = "runs_roots_by_kind";
  cases[3].filter.name = "greet";
  cases[3].filter.status = RunStatus::kFailed;
  cases[3].index = "runs_roots_by_name";
  cases[4].filter.run_key = "k";
  cases[4].filter.status = RunStatus::kFailed;
  cases[4].index = "runs_by_key";
  cases[5].filter.roots_only = false;
  cases[5].index = "runs_by_start";
  for (const auto& c : cases) {
    std::string steps = plan(c.filter);
    if (postgres()) {
      // With a run key and a status, either index is a fine choice.
      std::string index = c.filter.run_key.empty() ? c.index + " on runs" : "";
      EXPECT_NE(steps.find("Index Scan Backward using " + index), std::string::npos) << steps;
      EXPECT_EQ(steps.find("Sort"), std::string::npos) << steps;
    } else {
      EXPECT_NE(steps.find("USING INDEX " + c.index + " "), std::string::npos) << steps;
      EXPECT_EQ(steps.find("TEMP B-TREE"), std::string::npos) << steps;
    }
  }
}

TEST_P(BrowseTest, ChildCallsComeOldestFirstAndStatesAreReadBack) {
  std::string parent = call("fanout");
  std::string first = call("square", parent);
  clock_.advance(1);
  std::string second = call("square", parent);
  auto children = store_->child_calls(parent, 10);
  ASSERT_TRUE(children.is_ok());
  ASSERT_EQ(children->size(), 2u);
  EXPECT_EQ((*children)[0].id, first);
  EXPECT_EQ((*children)[1].id, second);
  EXPECT_EQ((*children)[0].function, "square");
  EXPECT_EQ((*children)[0].max_attempts, 3) << "every column of a call but its values";
  EXPECT_TRUE((*children)[0].input.empty()) << "a tree does not read the children's inputs";
  EXPECT_EQ((*store_->find_call(first))->input.size(), 1000u);
  EXPECT_EQ(store_->child_calls(parent, 1)->size(), 1u);
  auto none = store_->coroutine_state(parent);
  ASSERT_TRUE(none.is_ok());
  EXPECT_FALSE(none->has_value());
}

// The children of a level of a tree in one read: by parent in the order
// asked, oldest first under each, bounded per parent and in all.
TEST_P(BrowseTest, ChildCallsOfManyParentsComeByParentThenOldestFirstWithinBothLimits) {
  std::string a = call("fanout");
  std::string none = call("fanout");
  std::string b = call("fanout");
  std::string other = call("fanout");
  // Dispatched interleaved, b's first: the order is the parents', not the rows'.
  std::vector<std::string> a_children, b_children;
  for (int i = 0; i < 3; ++i) {
    b_children.push_back(call("square", b));
    clock_.advance(1);
    a_children.push_back(call("square", a));
    clock_.advance(1);
  }
  call("square", other);
  auto ids_of = [&](const std::vector<std::string>& parents, int per_parent, int total) {
    auto children = store_->child_calls_of(parents, per_parent, total);
    EXPECT_TRUE(children.is_ok()) << children.status().message();
    std::vector<std::string> result;
    for (const auto& child : children.is_ok() ? *children : std::vector<CallRecord>()) {
      result.push_back(child.id);
    }
    return result;
  };
  using Ids = std::vector<std::string>;
  EXPECT_EQ(ids_of({a, none, b}, 10, 100), (Ids{a_children[0], a_children[1], a_children[2],
                                                b_children[0], b_children[1], b_children[2]}));
  EXPECT_EQ(ids_of({b, a}, 10, 100), (Ids{b_children[0], b_children[1], b_children[2],
                                          a_children[0], a_children[1], a_children[2]}));
  EXPECT_EQ(ids_of({a, b}, 2, 100),
            (Ids{a_children[0], a_children[1], b_children[0], b_children[1]}));
  EXPECT_EQ(ids_of({a, b}, 2, 3), (Ids{a_children[0], a_children[1], b_children[0]}));
  EXPECT_EQ(ids_of({none}, 10, 100), Ids{});
  EXPECT_EQ(ids_of({}, 10, 100), Ids{});

  auto children = store_->child_calls_of({a}, 1, 1);
  ASSERT_TRUE(children.is_ok());
  ASSERT_EQ(children->size(), 1u);
  EXPECT_EQ((*children)[0].parent_id, a);
  EXPECT_EQ((*children)[0].max_attempts, 3) << "every column of a call but its values";
  EXPECT_TRUE((*children)[0].input.empty()) << "a tree does not read the children's inputs";
}

// SQLite reads the parents in chunks: a level of more parents than one chunk
// holds keeps its order and its limit in all across them.
TEST_P(BrowseTest, ChildCallsOfAWideLevelKeepOrderAndTotalAcrossParentChunks) {
  std::vector<std::string> parents, children;
  for (int i = 0; i < 250; ++i) parents.push_back(call("fanout"));
  for (int i = 249; i >= 0; --i) {
    if (i % 3 == 0) continue;  // a third have no children
    children.insert(children.begin(), call("square", parents[i]));
  }
  auto all = store_->child_calls_of(parents, 5, 1000);
  ASSERT_TRUE(all.is_ok()) << all.status().message();
  std::vector<std::string> read;
  for (const auto& child : *all) read.push_back(child.id);
  EXPECT_EQ(read, children);
  auto some = store_->child_calls_of(parents, 5, 120);
  ASSERT_TRUE(some.is_ok());
  ASSERT_EQ(some->size(), 120u);
  EXPECT_EQ(some->back().id, children[119]);
}

// A parent with more children than a tree shows: the read keeps the limit,
// the oldest, and the one more that says there are more.
TEST_P(BrowseTest, ChildCallsOfAParentWithMoreThanTheLimitReadOnlyTheLimit) {
  std::string wide = call("fanout");
  std::string narrow = call("fanout");
  std::vector<std::string> children;
  for (int i = 0; i < 30; ++i) {
    children.push_back(call("square", wide));
    clock_.advance(1);
  }
  std::string only = call("square", narrow);
  auto read = store_->child_calls_of({wide, narrow}, 11, 100);
  ASSERT_TRUE(read.is_ok()) << read.status().message();
  ASSERT_EQ(read->size(), 12u);
  for (int i = 0; i < 11; ++i) EXPECT_EQ((*read)[i].id, children[i]) << i;
  EXPECT_EQ((*read)[11].id, only);
}

// The per-parent limit is a bound on what is read, not a filter over all the
// children: each parent's children come from calls_by_parent_started in
// order (no window over them all, no sort of them), and on PostgreSQL the
// parents past the total are not visited (an incremental sort by parent).
TEST_P(BrowseTest, ChildCallsOfReadsEachParentAlongItsIndexInOrder) {
  std::string steps;
  if (postgres()) {
    auto db = pg::Connection::open(location_, {});
    ASSERT_TRUE(db.is_ok()) << db.status().message();
    steps = testing::postgres_generic_plan(**db, pg::child_calls_of_sql(), "'a,b', 1001, 5000",
                                           /*sorts_allowed=*/true);
    EXPECT_NE(steps.find("Index Scan using calls_by_parent_started on runs"), std::string::npos)
        << steps;
    EXPECT_NE(steps.find("Incremental Sort"), std::string::npos) << steps;
    EXPECT_EQ(steps.find("WindowAgg"), std::string::npos) << steps;
    EXPECT_EQ(steps.find("->  Sort"), std::string::npos) << steps;
  } else {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(location_.c_str(), &db), SQLITE_OK);
    std::string sql = "EXPLAIN QUERY PLAN " + sqlite::child_calls_of_sql();
    sqlite3_stmt* query = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &query, nullptr), SQLITE_OK)
        << sqlite3_errmsg(db);
    while (query && sqlite3_step(query) == SQLITE_ROW) {
      steps += reinterpret_cast<const char*>(sqlite3_column_text(query, 3));
      steps += "\n";
    }
    sqlite3_finalize(query);
    sqlite3_close(db);
    EXPECT_NE(steps.find("USING INDEX calls_by_parent_started (parent_id=?)"), std::string::npos)
        << steps;
    EXPECT_EQ(steps.find("TEMP B-TREE"), std::string::npos) << steps;
  }
}

TEST_P(BrowseTest, HealthCountsLiveAndRecentlyFinishedRuns) {
  std::string a = job("a", {"true"});
  job("b", {"true"});
  call("greet");
  call("greet");
  call("fanout");
  ASSERT_TRUE(store_->finish_job(a, {RunStatus::kSucceeded, 0, {}, {}}).value());
  auto health = store_->health_counts(clock_.now() - kMicrosPerSecond);
  ASSERT_TRUE(health.is_ok()) << health.status().message();
  EXPECT_EQ(health->jobs_running, 1);
  EXPECT_EQ(health->calls_running, 3);
  ASSERT_EQ(health->finished_since.size(), 1u);
  EXPECT_EQ(health->finished_since[0].name, "SUCCEEDED");
  ASSERT_EQ(health->ready_by_function.size(), 2u);
  EXPECT_EQ(health->ready_by_function[0].name, "greet");
  EXPECT_EQ(health->ready_by_function[0].count, 2);
  EXPECT_TRUE(health->leased_by_endpoint.empty());
  auto later = store_->health_counts(clock_.now() + kMicrosPerSecond);
  EXPECT_TRUE(later->finished_since.empty());
}

// The dashboard's live views poll it from a connection of their own.
TEST_P(BrowseTest, TheChangeStampMovesWhenAnotherConnectionCommits) {
  auto reader = open(clock_);
  ASSERT_NE(reader, nullptr);
  auto before = reader->change_stamp();
  ASSERT_TRUE(before.is_ok()) << before.status().message();
  if (!postgres()) {
    // PostgreSQL's may move with any write on the server; SQLite's only with this file's.
    EXPECT_EQ(*reader->change_stamp(), *before) << "nothing changed";
  }
  call("f");
  auto after = reader->change_stamp();
  ASSERT_TRUE(after.is_ok()) << after.status().message();
  EXPECT_NE(*after, *before);
}

RATCHET_ON_BOTH_BACKENDS(BrowseTest);

}  // namespace
}  // namespace ratchet
