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
#include <string>

#include "storage/pg_testing.hpp"
#include "storage/store.hpp"

namespace ratchet {

class BackendTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/ratchet-store-XXXXXX";
    dir_ = mkdtemp(pattern);
    if (postgres()) {
      RATCHET_REQUIRE_PG();
      auto database = testing::PgTestDatabase::create();
      ASSERT_TRUE(database.is_ok()) << database.status().message();
      pg_.emplace(std::move(*database));
      location_ = pg_->url();
    } else {
      location_ = dir_ + "/ratchet.db";
    }
  }
  void TearDown() override {
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

  std::string dir_;
  std::string location_;
  std::optional<testing::PgTestDatabase> pg_;
};

// Names the instantiations after the backend: Backends/StoreTest.X/postgres.
inline std::string backend_name(const ::testing::TestParamInfo<std::string>& info) {
  return info.param;
}

#define RATCHET_ON_BOTH_BACKENDS(Fixture)                                              \
  INSTANTIATE_TEST_SUITE_P(Backends, Fixture, ::testing::Values("sqlite", "postgres"), \
                           ::ratchet::backend_name)

}  // namespace ratchet
