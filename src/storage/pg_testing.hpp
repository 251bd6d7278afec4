// PostgreSQL for tests: the server scripts/test.sh starts (its URL in
// RATCHET_TEST_PG), and a fresh database on it for each test.
//
// Without RATCHET_TEST_PG a PostgreSQL test fails with a message saying how to
// get one when CI is set (so CI can never pass without running it), and is
// skipped, with the same message, on a developer's machine.
#pragma once

#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "common/status.hpp"

namespace ratchet::testing {

// The server's URL, or nullopt when RATCHET_TEST_PG is not set.
std::optional<std::string> test_pg_url();
// Why there is no PostgreSQL, and what to do.
std::string missing_pg_message();
bool running_in_ci();

// A database of its own, dropped (with whoever is still connected) when done.
class PgTestDatabase {
 public:
  static Result<PgTestDatabase> create();
  PgTestDatabase(PgTestDatabase&& other) noexcept;
  ~PgTestDatabase();
  const std::string& url() const { return url_; }
  // Runs SQL on the database through a connection of its own.
  Status exec(const std::string& sql) const;
  // The first column of the first row of a query, as an integer (-1 if none).
  Result<long long> number(const std::string& sql) const;

 private:
  PgTestDatabase(std::string admin_url, std::string name, std::string url)
      : admin_url_(std::move(admin_url)), name_(std::move(name)), url_(std::move(url)) {}
  std::string admin_url_;
  std::string name_;
  std::string url_;
};

}  // namespace ratchet::testing

// In a test body or SetUp: skips (or, in CI, fails) the test when there is no
// PostgreSQL server to run it against.
#define RATCHET_REQUIRE_PG()                                      \
  do {                                                            \
    if (!::ratchet::testing::test_pg_url()) {                     \
      if (::ratchet::testing::running_in_ci()) {                  \
        FAIL() << ::ratchet::testing::missing_pg_message();       \
      } else {                                                    \
        GTEST_SKIP() << ::ratchet::testing::missing_pg_message(); \
      }                                                           \
    }                                                             \
  } while (0)

// In a test body or SetUp: RATCHET_REQUIRE_PG, then a fresh database in `db`
// (a std::optional<PgTestDatabase>). One statement, so that an `if` without
// braces takes all of it (two statements once ran every jobs test on
// PostgreSQL whenever RATCHET_TEST_PG was set, and failed JobsFaults).
#define RATCHET_OPEN_PG_DATABASE(db)                              \
  do {                                                            \
    RATCHET_REQUIRE_PG();                                         \
    auto created_ = ::ratchet::testing::PgTestDatabase::create(); \
    ASSERT_TRUE(created_.is_ok()) << created_.status().message(); \
    (db).emplace(std::move(*created_));                           \
  } while (0)
