// Migrations by name (storage/migrations.hpp) on both backends: stores from
// before names at every version, two branches' migrations merged in either
// order, a newer store's names, a migration that cannot apply, and first opens
// at once.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <set>
#include <thread>
#include <vector>

#include "storage/pg_db.hpp"
#include "storage/pg_schema.hpp"
#include "storage/schema.hpp"
#include "storage/sqlite_db.hpp"
#include "storage/store_test_support.hpp"

namespace ratchet {
namespace {

class MigrationTest : public BackendTest {
 protected:
  MigrationList all() const { return postgres() ? pg::migrations() : sqlite::migrations(); }

  // Makes location_ an empty database (a new SQLite file, or an emptied
  // PostgreSQL database).
  void start_empty(const std::string& name) {
    store_.reset();
    if (postgres()) {
      exec("DROP SCHEMA public CASCADE; CREATE SCHEMA public;");
    } else {
      location_ = dir_ + "/" + name + ".db";
    }
  }

  // The tables, columns, indexes and functions of the store, one per line.
  std::string schema() {
    if (postgres()) {
      return text(
          "SELECT string_agg(x, E'\\n' ORDER BY x) FROM ("
          "SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' ' || "
          "is_nullable || ' ' || coalesce(column_default, '') AS x FROM information_schema.columns "
          "WHERE table_schema = 'public' UNION ALL SELECT 'index ' || indexdef FROM pg_indexes "
          "WHERE schemaname = 'public' UNION ALL SELECT 'function ' || p.proname || ' ' || "
          "p.prosrc FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname "
          "= 'public') AS s");
    }
    return text(
        "SELECT group_concat(x, char(10)) FROM (SELECT type || ' ' || name || ' ' || "
        "coalesce(sql, '') AS x FROM sqlite_master ORDER BY name)");
  }

  std::set<std::string> recorded_names() {
    std::set<std::string> names;
    std::string all_names = text("SELECT " + concat_names() + " FROM ratchet_migrations");
    for (std::size_t at = 0; at < all_names.size();) {
      std::size_t end = all_names.find(',', at);
      if (end == std::string::npos) end = all_names.size();
      names.insert(all_names.substr(at, end - at));
      at = end + 1;
    }
    return names;
  }

  static std::set<std::string> names_of(const MigrationList& list) {
    std::set<std::string> names;
    for (const Migration& step : list.steps) names.insert(step.name);
    return names;
  }

  // The count of migrations the store keeps for ratchets from before names.
  long long version_number() {
    return number(postgres() ? "SELECT version FROM ratchet_schema" : "PRAGMA user_version");
  }

  // Applies `list` to the store through a connection of its own.
  Status migrate_with(const MigrationList& list) {
    if (postgres()) {
      ASSIGN_OR_RETURN(auto db, pg::Connection::open(location_, {}));
      return apply_migrations(*pg::migration_target(*db), list);
    }
    ASSIGN_OR_RETURN(auto db, sqlite::Database::open(location_, 10000, 1000));
    return apply_migrations(*sqlite::migration_target(*db), list);
  }

  // The first column of the first row of a query, as text ("" for none or NULL).
  std::string text(const std::string& sql) {
    if (postgres()) {
      auto db = pg::Connection::open(location_, {});
      EXPECT_TRUE(db.is_ok()) << db.status().message();
      if (!db.is_ok()) return "";
      auto rows = (*db)->query(sql.c_str());
      EXPECT_TRUE(rows.is_ok()) << rows.status().message();
      return rows.is_ok() && !rows->empty() ? (*rows)[0].text(0) : "";
    }
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open(location_.c_str(), &db), SQLITE_OK);
    sqlite3_stmt* query = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &query, nullptr), SQLITE_OK)
        << sqlite3_errmsg(db);
    std::string value;
    if (query && sqlite3_step(query) == SQLITE_ROW && sqlite3_column_text(query, 0)) {
      value = reinterpret_cast<const char*>(sqlite3_column_text(query, 0));
    }
    sqlite3_finalize(query);
    sqlite3_close(db);
    return value;
  }

  // The outcome of opening the store with the real list.
  Status open_status() {
    auto store = open_store(location_, clock_, {});
    return store.status();
  }

 private:
  std::string concat_names() const {
    return postgres() ? "string_agg(name, ',')" : "group_concat(name, ',')";
  }
};

TEST_P(MigrationTest, EveryMigrationHasANameOfItsOwn) {
  EXPECT_EQ(names_of(all()).size(), all().steps.size());
  EXPECT_LE(all().numbered, all().steps.size());
}

// A store from before names, at every version a ratchet could have left it,
// ends with every name recorded and the schema of a new store.
TEST_P(MigrationTest, AStoreFromBeforeNamesAtEveryVersionEndsAsANewStore) {
  const std::string expected = schema();
  ASSERT_NE(expected.find("ratchet_migrations"), std::string::npos) << expected;
  EXPECT_EQ(recorded_names(), names_of(all()));
  EXPECT_EQ(version_number(), static_cast<long long>(all().steps.size()));
  for (std::size_t version = 0; version <= all().numbered; ++version) {
    SCOPED_TRACE("version " + std::to_string(version));
    start_empty("v" + std::to_string(version));
    exec(numbered_store_sql(all(), version, postgres()));
    Status opened = open_status();
    ASSERT_TRUE(opened.is_ok()) << opened.message();
    EXPECT_EQ(recorded_names(), names_of(all()));
    EXPECT_EQ(version_number(), static_cast<long long>(all().steps.size()));
    EXPECT_EQ(schema(), expected);
  }
}

// Two branches each add a migration at the end; merged, the list has both, in
// either order. A store made by either branch's build upgrades to the merged
// list whichever order the merge chose, applying only what it lacks.
TEST_P(MigrationTest, TwoBranchesMigrationsMergedInEitherOrderUpgradeEitherStore) {
  const Migration a{"test_branch_a", "CREATE TABLE branch_a (x BIGINT);"};
  const Migration b{"test_branch_b", "CREATE TABLE branch_b (x BIGINT);"};
  auto with = [&](std::vector<Migration> added) {
    std::vector<Migration> steps(all().steps.begin(), all().steps.end());
    steps.insert(steps.end(), added.begin(), added.end());
    return steps;
  };
  struct Case {
    std::vector<Migration> branch, merged;
  };
  for (const Case& c : {Case{with({a}), with({b, a})}, Case{with({b}), with({a, b})},
                        Case{with({a}), with({a, b})}, Case{with({b}), with({b, a})}}) {
    SCOPED_TRACE(std::string("branch ") + c.branch.back().name + ", merged " +
                 c.merged[c.merged.size() - 2].name + " then " + c.merged.back().name);
    start_empty(std::string(c.branch.back().name) + c.merged.back().name);
    ASSERT_TRUE(open_status().is_ok());
    Status branch = migrate_with({c.branch, all().numbered});
    ASSERT_TRUE(branch.is_ok()) << branch.message();
    Status merged = migrate_with({c.merged, all().numbered});
    ASSERT_TRUE(merged.is_ok()) << merged.message();
    EXPECT_EQ(recorded_names(), names_of({c.merged, all().numbered}));
    EXPECT_EQ(version_number(), static_cast<long long>(c.merged.size()));
    EXPECT_EQ(number("SELECT count(*) FROM branch_a"), 0);
    EXPECT_EQ(number("SELECT count(*) FROM branch_b"), 0);
  }
}

// A name this build does not know is a newer ratchet's migration: refused in
// one line that names it, before anything is changed.
TEST_P(MigrationTest, AStoreWithAMigrationThisBuildDoesNotKnowIsRefusedInOneLine) {
  store_.reset();
  exec("INSERT INTO ratchet_migrations (name) VALUES ('from_a_newer_ratchet')");
  const std::string before = schema();
  Status opened = open_status();
  ASSERT_FALSE(opened.is_ok());
  EXPECT_EQ(opened.code(), Code::kFailedPrecondition);
  EXPECT_NE(opened.message().find("'from_a_newer_ratchet'"), std::string::npos) << opened.message();
  EXPECT_NE(opened.message().find("upgrade ratchet"), std::string::npos) << opened.message();
  EXPECT_EQ(opened.message().find('\n'), std::string::npos) << opened.message();
  EXPECT_EQ(schema(), before);
}

// A store from before names whose version is past the ones this build
// numbered was made by a newer ratchet too.
TEST_P(MigrationTest, AStoreFromBeforeNamesWithAVersionPastTheNumberedIsRefused) {
  start_empty("past");
  exec(numbered_store_sql(all(), 1, postgres()) +
       (postgres() ? "UPDATE ratchet_schema SET version = 999;" : "PRAGMA user_version=999;"));
  Status opened = open_status();
  ASSERT_FALSE(opened.is_ok());
  EXPECT_EQ(opened.code(), Code::kFailedPrecondition);
  EXPECT_NE(opened.message().find("schema version 999"), std::string::npos) << opened.message();
  EXPECT_NE(opened.message().find("upgrade ratchet"), std::string::npos) << opened.message();
}

// A store whose schema a migration cannot apply to (a development build's, a
// hand-edited one) fails with one line naming the migration, not its SQL.
TEST_P(MigrationTest, AMigrationThatFailsNamesItselfInOneLine) {
  start_empty("conflicting");
  exec("CREATE TABLE runs (id TEXT);");
  Status opened = open_status();
  ASSERT_FALSE(opened.is_ok());
  const std::string& message = opened.message();
  EXPECT_NE(message.find("upgrading its schema (migration runs)"), std::string::npos) << message;
  EXPECT_EQ(message.find("CREATE"), std::string::npos) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
}

// Servers starting together on a new store, or on one from before names:
// each migration applied once, each name recorded once.
TEST_P(MigrationTest, FirstOpensAtOnceMigrateOnce) {
  for (std::size_t version : {std::size_t{0}, all().numbered / 2}) {
    SCOPED_TRACE("version " + std::to_string(version));
    start_empty("at-once-" + std::to_string(version));
    if (version > 0) exec(numbered_store_sql(all(), version, postgres()));
    std::vector<std::thread> openers;
    std::atomic<int> opened{0};
    for (int i = 0; i < 6; ++i) {
      openers.emplace_back([&] {
        auto store = open_store(location_, clock_, {});
        if (store.is_ok()) {
          ++opened;
        } else {
          ADD_FAILURE() << store.status().message();
        }
      });
    }
    for (auto& t : openers) t.join();
    EXPECT_EQ(opened, 6);
    EXPECT_EQ(recorded_names(), names_of(all()));
    EXPECT_EQ(number("SELECT count(*) FROM ratchet_migrations"),
              static_cast<long long>(all().steps.size()));
    EXPECT_EQ(version_number(), static_cast<long long>(all().steps.size()));
  }
}

RATCHET_ON_BOTH_BACKENDS(MigrationTest);

}  // namespace
}  // namespace ratchet
