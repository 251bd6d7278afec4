#include "storage/sqlite_store.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>

namespace ratchet {
namespace {

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/ratchet-store-XXXXXX";
    dir_ = mkdtemp(pattern);
    path_ = dir_ + "/ratchet.db";
    store_ = open();
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::unique_ptr<Store> open(StoreOptions options = {}) {
    auto store = open_sqlite_store(path_, clock_, options);
    EXPECT_TRUE(store.is_ok()) << store.status().message();
    return store.is_ok() ? std::move(store).value() : nullptr;
  }

  JobRequest request(const std::string& key) {
    JobRequest r;
    r.run_key = key;
    r.command = {"echo", "hello world"};
    r.cwd = "/tmp";
    r.env = {{"A", "1"}, {"B", "x=y"}};
    r.log_dir = dir_ + "/logs";
    r.supervisor = {100, 5, "boot"};
    return r;
  }

  static bool always_live(const JobRecord&, std::string*) { return true; }
  static bool never_live(const JobRecord&, std::string* reason) {
    *reason = "supervisor gone";
    return false;
  }

  FakeClock clock_;
  std::string dir_;
  std::string path_;
  std::unique_ptr<Store> store_;
};

TEST_F(SqliteStoreTest, StartRecordsAStartingJobWithItsCommandEnvAndLogs) {
  auto started = store_->start_job(request("k"), always_live);
  ASSERT_TRUE(started.is_ok()) << started.status().message();
  EXPECT_FALSE(started->existing);
  auto found = store_->find_job(started->job.id);
  ASSERT_TRUE(found.is_ok() && found->has_value());
  const JobRecord& job = **found;
  EXPECT_EQ(job.status, RunStatus::kStarting);
  EXPECT_EQ(job.command, (std::vector<std::string>{"echo", "hello world"}));
  EXPECT_EQ(job.env.size(), 2u);
  EXPECT_EQ(job.env[1].second, "x=y");
  EXPECT_EQ(job.cwd, "/tmp");
  EXPECT_EQ(job.stdout_file, dir_ + "/logs/" + job.id + ".stdout");
  EXPECT_EQ(job.started_at, clock_.now());
  ASSERT_TRUE(job.supervisor.has_value());
  EXPECT_EQ(job.supervisor->pid, 100);
  EXPECT_EQ(job.supervisor->start_ticks, 5);
  EXPECT_EQ(job.supervisor->boot_id, "boot");
}

TEST_F(SqliteStoreTest, StartReturnsTheLiveJobOfTheKey) {
  auto first = store_->start_job(request("k"), always_live);
  auto second = store_->start_job(request("k"), always_live);
  ASSERT_TRUE(first.is_ok() && second.is_ok());
  EXPECT_TRUE(second->existing);
  EXPECT_EQ(second->job.id, first->job.id);
}

TEST_F(SqliteStoreTest, StartReplacesADeadJobAndRecordsItLost) {
  auto first = store_->start_job(request("k"), always_live);
  auto second = store_->start_job(request("k"), never_live);
  ASSERT_TRUE(first.is_ok() && second.is_ok());
  EXPECT_FALSE(second->existing);
  EXPECT_NE(second->job.id, first->job.id);
  auto old = store_->find_job(first->job.id);
  EXPECT_EQ((*old)->status, RunStatus::kLost);
  EXPECT_EQ((*old)->error, "supervisor gone");
}

TEST_F(SqliteStoreTest, StartAfterATerminalJobStartsANewOne) {
  auto first = store_->start_job(request("k"), always_live);
  ASSERT_TRUE(*store_->finish_job(first->job.id, {RunStatus::kFailed, 3, {}, {}}));
  clock_.advance(1);
  auto second = store_->start_job(request("k"), always_live);
  EXPECT_FALSE(second->existing);
  auto all = store_->runs_for_key("k", 100);
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].id, second->job.id);
  EXPECT_EQ((*all)[1].id, first->job.id);
  EXPECT_EQ((*store_->find_job(first->job.id))->exit_code, 3);
}

TEST_F(SqliteStoreTest, TransitionsAreGuardedByTheCurrentStatus) {
  auto job = store_->start_job(request("k"), always_live)->job;
  // A fast job finishes before its supervisor records RUNNING: the late RUNNING
  // must not overwrite SUCCEEDED.
  EXPECT_TRUE(*store_->finish_job(job.id, {RunStatus::kSucceeded, 0, {}, {}}));
  EXPECT_FALSE(*store_->mark_job_running(job.id, {200, 6, "boot"}));
  EXPECT_FALSE(*store_->finish_job(job.id, {RunStatus::kFailed, 1, {}, {}}));
  EXPECT_FALSE(*store_->mark_job_lost(job.id, RunStatus::kRunning, "late"));
  EXPECT_FALSE(*store_->request_cancel(job.id, kMicrosPerSecond));
  auto found = store_->find_job(job.id);
  EXPECT_EQ((*found)->status, RunStatus::kSucceeded);
  EXPECT_EQ((*found)->exit_code, 0);
}

TEST_F(SqliteStoreTest, NewestFirstIsByInstantAndThenByInsertion) {
  auto a = store_->start_job(request("k"), never_live)->job;
  auto b = store_->start_job(request("k"), never_live)->job;  // same instant
  clock_.advance(-kMicrosPerSecond);  // a clock step back must not reorder by text
  auto c = store_->start_job(request("k"), never_live)->job;
  auto all = *store_->runs_for_key("k", 100);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].id, b.id);
  EXPECT_EQ(all[1].id, a.id);
  EXPECT_EQ(all[2].id, c.id);
  EXPECT_EQ((*store_->newest_job_for_key("k"))->id, b.id);
}

TEST_F(SqliteStoreTest, CleanSelectsOnlyTerminalRunsBeforeTheCutoff) {
  auto old_done = store_->start_job(request("a"), always_live)->job;
  auto old_running = store_->start_job(request("b"), always_live)->job;
  ASSERT_TRUE(*store_->finish_job(old_done.id, {RunStatus::kSucceeded, 0, {}, {}}));
  clock_.advance(10 * kMicrosPerSecond);
  Micros cutoff = clock_.now();
  clock_.advance(1);
  auto new_done = store_->start_job(request("c"), always_live)->job;
  ASSERT_TRUE(*store_->finish_job(new_done.id, {RunStatus::kFailed, 1, {}, {}}));

  auto candidates = store_->terminal_runs_before(cutoff);
  ASSERT_TRUE(candidates.is_ok());
  ASSERT_EQ(candidates->size(), 1u);
  EXPECT_EQ((*candidates)[0].id, old_done.id);
  EXPECT_EQ(*store_->delete_terminal_runs({old_done.id, old_running.id}), 1);
  EXPECT_FALSE(store_->find_job(old_done.id)->has_value());
  EXPECT_TRUE(store_->find_job(old_running.id)->has_value());
}

TEST_F(SqliteStoreTest, ALockedStoreGivesBusyNotARawSqliteError) {
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  StoreOptions options;
  options.lock_timeout = 50 * kMicrosPerMilli;
  auto store = open(options);
  auto started = store->start_job(request("k"), always_live);
  EXPECT_FALSE(started.is_ok());
  EXPECT_EQ(started.status().code(), Code::kBusy);
  EXPECT_NE(started.status().message().find("locked"), std::string::npos);
  sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(other);
  EXPECT_TRUE(store->start_job(request("k"), always_live).is_ok());
}

TEST_F(SqliteStoreTest, ReopeningKeepsTheHistoryAndWalMode) {
  auto job = store_->start_job(request("k"), always_live)->job;
  store_.reset();
  store_ = open();
  EXPECT_TRUE(store_->find_job(job.id)->has_value());
  sqlite3* raw = nullptr;
  sqlite3_open(path_.c_str(), &raw);
  sqlite3_stmt* stmt = nullptr;
  sqlite3_prepare_v2(raw, "PRAGMA journal_mode", -1, &stmt, nullptr);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)), "wal");
  sqlite3_finalize(stmt);
  sqlite3_close(raw);
}

TEST_F(SqliteStoreTest, RefusesASchemaNewerThanItKnows) {
  store_.reset();
  sqlite3* raw = nullptr;
  sqlite3_open(path_.c_str(), &raw);
  sqlite3_exec(raw, "PRAGMA user_version=999", nullptr, nullptr, nullptr);
  sqlite3_close(raw);
  auto store = open_sqlite_store(path_, clock_, {});
  ASSERT_FALSE(store.is_ok());
  EXPECT_EQ(store.status().code(), Code::kFailedPrecondition);
}

TEST_F(SqliteStoreTest, AFileThatIsNotADatabaseIsAClearError) {
  std::string bogus = dir_ + "/not-a-db";
  FILE* f = fopen(bogus.c_str(), "w");
  fputs("this is not sqlite, it is a long enough line of text to look like a header......\n", f);
  fclose(f);
  auto store = open_sqlite_store(bogus, clock_, {});
  ASSERT_FALSE(store.is_ok());
  EXPECT_EQ(store.status().code(), Code::kUnavailable);
}

}  // namespace
}  // namespace ratchet
