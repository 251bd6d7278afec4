#include "storage/sqlite_store.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>

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
