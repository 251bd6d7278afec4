#include "storage/sqlite_store.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>

#include "storage/schema.hpp"
#include "storage/sqlite_calls.hpp"
#include "storage/sqlite_db.hpp"
#include "storage/store_test_support.hpp"

namespace ratchet {
namespace {

// What only the SQLite backend does: file locks, WAL, the file's own checks.
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

  JobRequest request(const std::string& key) { return test_job_request(key, dir_ + "/logs"); }

  FakeClock clock_;
  std::string dir_;
  std::string path_;
  std::unique_ptr<Store> store_;
};

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

// Statements are cached by the address of their SQL and checked against its
// text: SQL built at run time may put other text at the same address.
TEST_F(SqliteStoreTest, AStatementIsFoundByItsTextNotOnlyByItsAddress) {
  auto db = sqlite::Database::open(dir_ + "/cache.db", 1000, 1000);
  ASSERT_TRUE(db.is_ok()) << db.status().message();
  std::string sql = "SELECT 1";
  for (const char* text : {"SELECT 1", "SELECT 2", "SELECT 1"}) {
    sql.replace(0, sql.size(), text);  // the same buffer, other text
    auto statement = (*db)->prepare(sql.c_str());
    ASSERT_TRUE(statement.is_ok()) << statement.status().message();
    ASSERT_TRUE(*(*statement)->step());
    EXPECT_EQ((*statement)->int64(0), text[7] - '0') << text;
    (*statement)->reset();
  }
}

// A turn's claim of urgent calls and its next due time are one statement
// each; every arm seeks its partial index, none scans the calls.
TEST_F(SqliteStoreTest, TheTurnsUrgentClaimAndNextDueTimeSeekTheirIndexes) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  auto plan = [&](const char* statement) {
    std::string sql = std::string("EXPLAIN QUERY PLAN ") + statement;
    sqlite3_stmt* query = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &query, nullptr), SQLITE_OK)
        << sqlite3_errmsg(db);
    std::string steps;
    while (query && sqlite3_step(query) == SQLITE_ROW) {
      steps += reinterpret_cast<const char*>(sqlite3_column_text(query, 3));
      steps += "\n";
    }
    sqlite3_finalize(query);
    return steps;
  };
  std::string urgent = plan(sqlite::claim_urgent_sql());
  for (const char* index :
       {"INDEX calls_leased (lease_expires_at<?)", "INDEX calls_leased_by (lease_owner=?)",
        "INDEX calls_waiting (poll_deadline<?)"}) {
    EXPECT_NE(urgent.find(index), std::string::npos) << index << " in\n" << urgent;
  }
  std::string due = plan(sqlite::next_due_sql());
  for (const char* index : {"INDEX calls_ready", "INDEX calls_waiting", "INDEX calls_leased"}) {
    EXPECT_NE(due.find(index), std::string::npos) << index << " in\n" << due;
  }
  for (const auto& steps : {urgent, due}) {
    EXPECT_EQ(steps.find("SCAN runs\n"), std::string::npos) << steps;
    EXPECT_EQ(steps.find("TEMP B-TREE"), std::string::npos) << steps;
  }
  sqlite3_close(db);
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

TEST_F(SqliteStoreTest, AFileThatIsNotADatabaseIsAClearError) {
  std::string bogus = dir_ + "/not-a-db";
  FILE* f = fopen(bogus.c_str(), "w");
  fputs("this is not sqlite, it is a long enough line of text to look like a header......\n", f);
  fclose(f);
  auto store = open_sqlite_store(bogus, clock_, {});
  ASSERT_FALSE(store.is_ok());
  EXPECT_EQ(store.status().code(), Code::kUnavailable);
}

TEST_F(SqliteStoreTest, DeferredCheckpointsWaitForCheckpointIfDue) {
  auto db_size = [&] { return std::filesystem::file_size(path_); };
  StoreOptions deferred;
  deferred.durable = false;
  deferred.wal_checkpoint_pages = 4;
  deferred.defer_checkpoints = true;
  store_.reset();
  store_ = open(deferred);
  const auto before = db_size();
  for (int i = 0; i < 20; ++i)
    ASSERT_TRUE(store_->start_job(request(std::to_string(i)), never_live).is_ok());
  EXPECT_EQ(db_size(), before) << "no commit checkpointed into the database file";
  ASSERT_TRUE(store_->checkpoint_if_due().is_ok());
  EXPECT_GT(db_size(), before) << "the checkpoint copied the WAL into the database file";

  // Without deferral, the commits themselves checkpoint.
  StoreOptions automatic = deferred;
  automatic.defer_checkpoints = false;
  store_.reset();
  store_ = open(automatic);
  const auto now = db_size();
  for (int i = 0; i < 40; ++i)
    ASSERT_TRUE(store_->start_job(request("a" + std::to_string(i)), never_live).is_ok());
  EXPECT_GT(db_size(), now);
}

// With defer_sync a durable store's commits leave the flush to sync(), which
// the scheduler calls before it acknowledges them; without durability there
// is nothing to defer, and by default each commit syncs itself.
TEST_F(SqliteStoreTest, DeferredSyncIsForDurableStoresThatAskForIt) {
  EXPECT_FALSE(store_->defers_sync()) << "by default each commit is on disk when it returns";
  StoreOptions deferred;
  deferred.defer_sync = true;
  store_.reset();
  store_ = open(deferred);
  EXPECT_TRUE(store_->defers_sync());
  ASSERT_TRUE(store_->start_job(request("a"), never_live).is_ok());
  EXPECT_TRUE(store_->sync().is_ok());
  store_.reset();
  store_ = open({});
  auto job = store_->newest_job_for_key("a");
  ASSERT_TRUE(job.is_ok() && *job) << "a commit made before sync() is in the store";

  // Through a symlink, SQLite keeps the WAL beside the link's target: that is
  // the file sync() must flush.
  std::filesystem::create_directories(dir_ + "/elsewhere");
  std::filesystem::create_symlink(dir_ + "/elsewhere/real.db", dir_ + "/link.db");
  auto linked = open_sqlite_store(dir_ + "/link.db", clock_, deferred);
  ASSERT_TRUE(linked.is_ok()) << linked.status().message();
  EXPECT_TRUE((*linked)->defers_sync()) << "the WAL beside the target was not found";
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/elsewhere/real.db-wal"));

  StoreOptions volatile_store = deferred;
  volatile_store.durable = false;
  store_.reset();
  store_ = open(volatile_store);
  EXPECT_FALSE(store_->defers_sync()) << "a store that never syncs has nothing to defer";
}

// A store from before the lineage migration has its jobs numbered by it (and
// the migrations after lineage applied as well).
TEST_F(SqliteStoreTest, MigratingAStoreFromBeforeLineageNumbersItsJobsByKey) {
  store_.reset();
  std::filesystem::remove(path_);
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &raw), SQLITE_OK);
  std::string before = numbered_store_sql(sqlite::migrations(), "ADD COLUMN attempt_no", false);
  ASSERT_EQ(sqlite3_exec(raw, before.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(raw, kJobsBeforeLineage, nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(raw);
  store_ = open();
  ASSERT_NE(store_, nullptr);
  expect_jobs_numbered_by_key(*store_);
}

}  // namespace
}  // namespace ratchet
