// What only the PostgreSQL backend does: typed errors from SQLSTATEs and the
// connection, reconnection, and sharing one database between many servers
// (claims that skip each other's rows, instance heartbeats, notifications).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "storage/pg_db.hpp"
#include "storage/pg_plan_testing.hpp"
#include "storage/pg_repair.hpp"
#include "storage/pg_schema.hpp"
#include "storage/pg_testing.hpp"
#include "storage/store.hpp"
#include "storage/store_test_support.hpp"

namespace ratchet {
namespace {

class PgStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { RATCHET_OPEN_PG_DATABASE(db_); }

  std::unique_ptr<Store> open(const std::string& instance = "", Micros lock_timeout = 0) {
    StoreOptions options;
    options.instance = instance;
    if (lock_timeout > 0) options.lock_timeout = lock_timeout;
    auto store = open_store(db_->url(), clock_, options);
    EXPECT_TRUE(store.is_ok()) << store.status().message();
    return store.is_ok() ? std::move(store).value() : nullptr;
  }

  Result<std::unique_ptr<pg::Connection>> raw_connection() {
    return pg::Connection::open(db_->url(), pg::ConnectOptions{});
  }

  static NewCall call(const std::string& function) {
    NewCall c;
    c.function = function;
    c.endpoint = "http://127.0.0.1:1";
    c.input = "in";
    return c;
  }

  static std::string dispatch(Store& store, const NewCall& c) {
    std::string id;
    EXPECT_TRUE(store
                    .calls([&](CallTransaction& tx) -> Status {
                      ASSIGN_OR_RETURN(id, tx.dispatch(c));
                      return Status::ok();
                    })
                    .is_ok());
    return id;
  }

  std::vector<ClaimedCall> claim(Store& store, const std::string& owner, int limit = 100) {
    std::vector<ClaimedCall> claimed;
    Status status = store.calls([&](CallTransaction& tx) -> Status {
      ASSIGN_OR_RETURN(claimed,
                       testing::claim_due(tx, owner, clock_.now() + 60 * kMicrosPerSecond, limit));
      return Status::ok();
    });
    EXPECT_TRUE(status.is_ok()) << status.message();
    return claimed;
  }

  JobRequest job_request(const std::string& key) { return test_job_request(key, "/tmp"); }

  FakeClock clock_;
  std::optional<testing::PgTestDatabase> db_;
};

TEST_F(PgStoreTest, ALockHeldPastTheTimeoutIsBusyWithAMessage) {
  auto store = open("", 50 * kMicrosPerMilli);
  auto other = raw_connection();
  ASSERT_TRUE(other.is_ok()) << other.status().message();
  ASSERT_TRUE((*other)->exec("BEGIN; LOCK TABLE runs IN ACCESS EXCLUSIVE MODE").is_ok());
  auto started = store->start_job(job_request("k"), always_live);
  ASSERT_FALSE(started.is_ok());
  EXPECT_EQ(started.status().code(), Code::kBusy);
  EXPECT_NE(started.status().message().find("busy"), std::string::npos)
      << started.status().message();
  ASSERT_TRUE((*other)->exec("ROLLBACK").is_ok());
  EXPECT_TRUE(store->start_job(job_request("k"), always_live).is_ok());
}

TEST_F(PgStoreTest, AServerThatIsNotThereIsBusyAndNamesTheStoreWithoutItsPassword) {
  StoreOptions options;
  options.lock_timeout = 2 * kMicrosPerSecond;
  auto store = open_store("postgres://ratchet:secret@127.0.0.1:1/ratchet", clock_, options);
  ASSERT_FALSE(store.is_ok());
  EXPECT_EQ(store.status().code(), Code::kBusy) << store.status().message();
  EXPECT_EQ(store.status().message().find("secret"), std::string::npos);
  EXPECT_NE(store.status().message().find("127.0.0.1:1"), std::string::npos);
  EXPECT_EQ(store.status().message().find('\n'), std::string::npos);
}

TEST_F(PgStoreTest, ADatabaseThatDoesNotExistIsUnavailable) {
  std::string url = db_->url();
  url = url.substr(0, url.rfind('/')) + "/no_such_database_here";
  auto store = open_store(url, clock_, {});
  ASSERT_FALSE(store.is_ok());
  EXPECT_EQ(store.status().code(), Code::kUnavailable) << store.status().message();
}

// A store from before the lineage migration has its jobs numbered by it
// (within their keys, in the order they started), and the migrations after
// lineage applied as well.
TEST_F(PgStoreTest, MigratingAStoreFromBeforeLineageNumbersItsJobsByKey) {
  ASSERT_TRUE(
      db_->exec(numbered_store_sql(pg::migrations(), "ADD COLUMN attempt_no", true)).is_ok());
  ASSERT_TRUE(db_->exec(kJobsBeforeLineage).is_ok());
  auto store = open();
  ASSERT_NE(store, nullptr);
  expect_jobs_numbered_by_key(*store);
}

// ListOpen's page (in byte order, COLLATE "C") reads along
// coroutine_states_in_byte_order and stops at its LIMIT: no sort of every open
// coroutine (the generic plan: testing::postgres_generic_plan).
TEST_F(PgStoreTest, AListOpenPageReadsAlongAnIndexInByteOrderWithoutASort) {
  ASSERT_NE(open(), nullptr);
  auto db = raw_connection();
  ASSERT_TRUE(db.is_ok()) << db.status().message();
  std::string steps =
      testing::postgres_generic_plan(**db, pg::open_coroutines_sql(), "'order', 100, '', 'after'");
  EXPECT_EQ(steps.rfind("Limit", 0), 0u) << steps;
  EXPECT_NE(steps.find("Index Scan using coroutine_states_in_byte_order on coroutine_states"),
            std::string::npos)
      << steps;
  EXPECT_EQ(steps.find("Sort"), std::string::npos) << steps;
}

TEST_F(PgStoreTest, ACommandAndCwdNotUtf8AreKeptAndANulIsRefused) {
  auto store = open();
  // A job's run key, command, cwd and env are bytes, kept in their lossless
  // text form (the run key: StoreTest.ARunKeyThatIsNotUtf8IsKeptAndFoundAgain).
  JobRequest odd = job_request("k");
  odd.cwd = "/tmp/bad\xff dir";
  odd.command = {"echo", "caf\xe9"};
  odd.env = {{"NAME\xfe", "value\xfd"}};
  auto started = store->start_job(odd, always_live);
  ASSERT_TRUE(started.is_ok()) << started.status().message();
  auto found = **store->find_job(started->job.id);
  EXPECT_EQ(found.cwd, odd.cwd);
  EXPECT_EQ(found.command, odd.command);
  EXPECT_EQ(found.env, odd.env);
  auto nul = call("f");
  nul.run_key = std::string("a\0b", 3);
  Status status = store->calls([&](CallTransaction& tx) { return tx.dispatch(nul).status(); });
  EXPECT_EQ(status.code(), Code::kInvalidArgument) << status.message();
}

TEST_F(PgStoreTest, ALostConnectionIsReplacedByTheNextOperation) {
  auto store = open();
  auto job = store->start_job(job_request("k"), always_live);
  ASSERT_TRUE(job.is_ok());
  // What a restart of PostgreSQL does to every session.
  ASSERT_TRUE(db_->exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                        "datname = current_database() AND pid <> pg_backend_pid()")
                  .is_ok());
  auto found = store->find_job(job->job.id);
  if (!found.is_ok()) {
    EXPECT_EQ(found.status().code(), Code::kBusy) << found.status().message();
    found = store->find_job(job->job.id);
  }
  ASSERT_TRUE(found.is_ok()) << found.status().message();
  EXPECT_TRUE(found->has_value());
}

TEST_F(PgStoreTest, ServersClaimingAtOnceTakeDifferentCallsWithoutWaiting) {
  auto a = open("a");
  auto b = open("b");
  for (int i = 0; i < 10; ++i) dispatch(*a, call("f"));
  std::vector<ClaimedCall> by_a, by_b;
  Status status = a->calls([&](CallTransaction& tx) -> Status {
    ASSIGN_OR_RETURN(by_a, testing::claim_due(tx, "a", clock_.now() + kMicrosPerSecond, 4));
    // b claims while a's transaction still holds its rows: it must skip them,
    // not wait for them (it would wait forever: this thread is a's).
    by_b = claim(*b, "b");
    return Status::ok();
  });
  ASSERT_TRUE(status.is_ok()) << status.message();
  EXPECT_EQ(by_a.size(), 4u);
  EXPECT_EQ(by_b.size(), 6u);
  for (const auto& x : by_a) {
    for (const auto& y : by_b) EXPECT_NE(x.call.id, y.call.id);
  }
}

// The instances' heartbeats and takeovers are tested on both backends
// (call_store_test.cpp, InstanceStoreTest).

TEST_F(PgStoreTest, ADispatchWakesTheOtherServersButNotItself) {
  auto a = open("a");
  auto b = open("b");
  std::mutex mutex;
  std::condition_variable changed;
  int woken_a = 0, woken_b = 0;
  auto counter = [&](int* count) {
    return [&, count] {
      std::lock_guard lock(mutex);
      ++*count;
      changed.notify_all();
    };
  };
  a->watch_calls(counter(&woken_a));
  b->watch_calls(counter(&woken_b));
  auto wait_for = [&](const int& count, int at_least) {
    std::unique_lock lock(mutex);
    return changed.wait_for(lock, std::chrono::seconds(10), [&] { return count >= at_least; });
  };
  // Each listener says so once when it starts listening (it may have missed news).
  ASSERT_TRUE(wait_for(woken_a, 1) && wait_for(woken_b, 1));
  dispatch(*a, call("f"));
  ASSERT_TRUE(wait_for(woken_b, 2)) << "b heard of a's dispatch";
  dispatch(*b, call("f"));
  ASSERT_TRUE(wait_for(woken_a, 2)) << "a heard of b's dispatch";
  std::lock_guard lock(mutex);
  // Notifications arrive in commit order: a's own came before b's, and was dropped.
  EXPECT_EQ(woken_a, 2);
  a->watch_calls(nullptr);
  b->watch_calls(nullptr);
}

}  // namespace
}  // namespace ratchet
