// The store tests run against both backends: a fixture parameterized by the
// backend's name ("sqlite": a file in a temporary directory; "postgres": a
// fresh database on the test server, see pg_testing.hpp).
#pragma once

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "storage/migrations.hpp"
#include "storage/pg_testing.hpp"
#include "storage/store.hpp"
#include "storage/testing.hpp"

namespace ratchet {

// A job request as the store tests make them.
inline JobRequest test_job_request(const std::string& key, const std::string& log_dir) {
  JobRequest r;
  r.run_key = key;
  r.command = {"echo", "hello world"};
  r.cwd = "/tmp";
  r.env = {{"A", "1"}, {"B", "x=y"}};
  r.log_dir = log_dir;
  r.supervisor = {100, 5, "boot"};
  return r;
}

inline bool always_live(const JobRecord&, std::string*) { return true; }
inline bool never_live(const JobRecord&, std::string* reason) {
  *reason = "supervisor gone";
  return false;
}

// The migration tests of each backend: jobs recorded before lineage (two of
// key "a", out of order, one of "b", and a call of "a"), and what the
// migration must make of them: each key's jobs numbered in the order they
// started, each following the previous one.
inline constexpr const char* kJobsBeforeLineage =
    "INSERT INTO runs (id, kind, run_key, status, started_at, updated_at) VALUES "
    "('a2', 'job', 'a', 'SUCCEEDED', 20, 20), ('a1', 'job', 'a', 'FAILED', 10, 10), "
    "('b1', 'job', 'b', 'SUCCEEDED', 15, 15), ('c', 'call', 'a', 'SUCCEEDED', 30, 30);";

// How many of a backend's migrations come before the first one whose SQL holds
// `adds` (such as "ADD COLUMN attempt_no"): a store from before that migration
// has that many applied. Found by what it adds, not by its index: merges put
// other branches' migrations before or after it.
inline std::size_t migrations_before(const MigrationList& migrations, std::string_view adds) {
  for (std::size_t i = 0; i < migrations.steps.size(); ++i) {
    if (std::string_view(migrations.steps[i].sql).find(adds) != std::string_view::npos) return i;
  }
  ADD_FAILURE() << "no migration holds " << adds;
  return migrations.steps.size();
}

// SQL that makes an empty database a store as a ratchet from before names made
// it at version `version`: the first `version` migrations, and that number.
inline std::string numbered_store_sql(const MigrationList& migrations, std::size_t version,
                                      bool postgres) {
  std::string sql = postgres ? "CREATE TABLE ratchet_schema (version BIGINT NOT NULL);" : "";
  for (std::size_t i = 0; i < version; ++i) sql += migrations.steps[i].sql;
  return sql + (postgres ? "INSERT INTO ratchet_schema VALUES (" + std::to_string(version) + ");"
                         : "PRAGMA user_version=" + std::to_string(version) + ";");
}

// The same, for the store from before the first migration that holds `adds`.
inline std::string numbered_store_sql(const MigrationList& migrations, std::string_view adds,
                                      bool postgres) {
  return numbered_store_sql(migrations, migrations_before(migrations, adds), postgres);
}

inline void expect_jobs_numbered_by_key(Store& store) {
  auto a1 = **store.find_job("a1");
  auto a2 = **store.find_job("a2");
  EXPECT_EQ(a1.attempt_no, 1);
  EXPECT_FALSE(a1.rerun_of_job_id.has_value());
  EXPECT_EQ(a2.attempt_no, 2);
  EXPECT_EQ(a2.rerun_of_job_id, "a1");
  EXPECT_EQ((**store.find_job("b1")).attempt_no, 1);
  auto next = store.start_job(test_job_request("a", "/tmp"), always_live);
  ASSERT_TRUE(next.is_ok()) << next.status().message();
  EXPECT_EQ(next->job.attempt_no, 3);
}

// A fresh store of the backend in store_, on clock_.
class BackendTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/ratchet-store-XXXXXX";
    dir_ = mkdtemp(pattern);
    if (postgres()) {
      RATCHET_OPEN_PG_DATABASE(pg_);
      location_ = pg_->url();
    } else {
      location_ = dir_ + "/ratchet.db";
    }
    store_ = open(clock_);
    ASSERT_NE(store_, nullptr);
  }
  void TearDown() override {
    store_.reset();
    pg_.reset();
    std::filesystem::remove_all(dir_);
  }

  bool postgres() const { return GetParam() == "postgres"; }

  std::unique_ptr<Store> open(const Clock& clock, StoreOptions options = {}) {
    auto store = open_store(location_, clock, options);
    EXPECT_TRUE(store.is_ok()) << store.status().message();
    return store.is_ok() ? std::move(store).value() : nullptr;
  }

  // The first number a query gives, read through a connection of its own.
  long long number(const std::string& sql) {
    if (pg_) {
      auto n = pg_->number(sql);
      EXPECT_TRUE(n.is_ok()) << n.status().message();
      return n.is_ok() ? *n : -1;
    }
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open(location_.c_str(), &db), SQLITE_OK);
    sqlite3_stmt* query = nullptr;
    sqlite3_prepare_v2(db, sql.c_str(), -1, &query, nullptr);
    long long n = sqlite3_step(query) == SQLITE_ROW ? sqlite3_column_int64(query, 0) : -1;
    sqlite3_finalize(query);
    sqlite3_close(db);
    return n;
  }

  // Runs `sql` through a connection of its own, as another program would.
  void exec(const std::string& sql) {
    if (pg_) {
      Status status = pg_->exec(sql);
      ASSERT_TRUE(status.is_ok()) << status.message();
      return;
    }
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(location_.c_str(), &db), SQLITE_OK);
    char* error = nullptr;
    int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
    std::string message = error ? error : "";
    sqlite3_free(error);
    sqlite3_close(db);
    ASSERT_EQ(rc, SQLITE_OK) << message;
  }

  // Dispatches `c` in a transaction of its own; its id.
  std::string dispatch(const NewCall& c) {
    std::string id = testing::dispatch_call(*store_, c);
    EXPECT_FALSE(id.empty());
    return id;
  }

  // Claims up to `limit` due calls, as server-a with a lease of a second.
  std::vector<ClaimedCall> claim(int limit = 100) {
    std::vector<ClaimedCall> claimed;
    EXPECT_TRUE(store_
                    ->calls([&](CallTransaction& tx) -> Status {
                      ASSIGN_OR_RETURN(claimed,
                                       testing::claim_due(tx, "server-a",
                                                          clock_.now() + kMicrosPerSecond, limit));
                      return Status::ok();
                    })
                    .is_ok());
    return claimed;
  }

  // Runs one transition (`f(tx)`) in a transaction of its own; whether it applied.
  template <typename F>
  bool apply(F&& f) {
    bool applied = false;
    EXPECT_TRUE(store_
                    ->calls([&](CallTransaction& tx) -> Status {
                      ASSIGN_OR_RETURN(applied, f(tx));
                      return Status::ok();
                    })
                    .is_ok());
    return applied;
  }

  FakeClock clock_;
  std::string dir_;
  std::string location_;
  std::optional<testing::PgTestDatabase> pg_;
  std::unique_ptr<Store> store_;
};

// Names the instantiations after the backend: Backends/StoreTest.X/postgres.
inline std::string backend_name(const ::testing::TestParamInfo<std::string>& info) {
  return info.param;
}

#define RATCHET_ON_BOTH_BACKENDS(Fixture)                                              \
  INSTANTIATE_TEST_SUITE_P(Backends, Fixture, ::testing::Values("sqlite", "postgres"), \
                           ::ratchet::backend_name)

}  // namespace ratchet
