#include "storage/sqlite_store.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>

#include "storage/schema.hpp"

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
  EXPECT_FALSE(*store_->request_cancel(job.id, kMicrosPerSecond, "late"));
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

// --- run-once keys, unlocks, lineage, retries --------------------------------

TEST_F(SqliteStoreTest, JobsAreNumberedWithinTheirKeyEachFollowingThePrevious) {
  auto first = store_->start_job(request("k"), never_live)->job;
  auto other = store_->start_job(request("other"), never_live)->job;
  auto second = store_->start_job(request("k"), never_live)->job;
  EXPECT_EQ(first.attempt_no, 1);
  EXPECT_FALSE(first.rerun_of_job_id.has_value());
  EXPECT_EQ(other.attempt_no, 1);
  EXPECT_EQ(second.attempt_no, 2);
  EXPECT_EQ(second.rerun_of_job_id, first.id);
  auto stored = **store_->find_job(second.id);
  EXPECT_EQ(stored.attempt_no, 2);
  EXPECT_EQ(stored.rerun_of_job_id, first.id);
  EXPECT_EQ(stored.trigger, JobTrigger::kStart);
}

TEST_F(SqliteStoreTest, StrictStartOfAUsedKeyReturnsItsNewestJobUnaccepted) {
  JobRequest strict = request("k");
  strict.strict = true;
  auto first = store_->start_job(strict, always_live);
  ASSERT_TRUE(first.is_ok());
  EXPECT_FALSE(first->existing);
  EXPECT_TRUE(first->accepted);
  EXPECT_TRUE(first->job.strict);
  ASSERT_TRUE(*store_->finish_job(first->job.id, {RunStatus::kFailed, 1, {}, {}}));

  auto again = store_->start_job(strict, always_live);
  ASSERT_TRUE(again.is_ok());
  EXPECT_TRUE(again->existing);
  EXPECT_FALSE(again->accepted);
  EXPECT_EQ(again->job.id, first->job.id);
  EXPECT_EQ(again->job.status, RunStatus::kFailed);
  // Without --strict the key runs again.
  auto plain = store_->start_job(request("k"), always_live);
  EXPECT_FALSE(plain->existing);
  EXPECT_EQ(plain->job.attempt_no, 2);
}

TEST_F(SqliteStoreTest, UnlockLetsOneStrictStartRunWithItsReason) {
  JobRequest strict = request("k");
  strict.strict = true;
  auto first = store_->start_job(strict, always_live)->job;
  ASSERT_TRUE(*store_->finish_job(first.id, {RunStatus::kSucceeded, 0, {}, {}}));
  auto unlocked = store_->unlock_key("k", "bad data upstream", std::nullopt, always_live);
  ASSERT_TRUE(unlocked.is_ok()) << unlocked.status().message();
  EXPECT_EQ(unlocked->newest.id, first.id);
  EXPECT_FALSE(unlocked->expires_at.has_value());

  auto rerun = store_->start_job(strict, always_live);
  ASSERT_TRUE(rerun.is_ok());
  EXPECT_FALSE(rerun->existing);
  EXPECT_TRUE(rerun->job.strict_override_used);
  EXPECT_EQ(rerun->job.rerun_reason, "bad data upstream");
  EXPECT_EQ(rerun->job.rerun_of_job_id, first.id);
  EXPECT_EQ(rerun->job.attempt_no, 2);
  auto stored = **store_->find_job(rerun->job.id);
  EXPECT_TRUE(stored.strict_override_used);
  EXPECT_EQ(stored.rerun_reason, "bad data upstream");

  ASSERT_TRUE(*store_->finish_job(rerun->job.id, {RunStatus::kSucceeded, 0, {}, {}}));
  auto locked_again = store_->start_job(strict, always_live);
  EXPECT_TRUE(locked_again->existing);
  EXPECT_FALSE(locked_again->accepted);
  EXPECT_EQ(locked_again->job.id, rerun->job.id);
}

TEST_F(SqliteStoreTest, AnUnlockNotUsedWithinItsTtlLapses) {
  JobRequest strict = request("k");
  strict.strict = true;
  auto first = store_->start_job(strict, always_live)->job;
  ASSERT_TRUE(*store_->finish_job(first.id, {RunStatus::kSucceeded, 0, {}, {}}));
  auto unlocked = store_->unlock_key("k", std::nullopt, 60 * kMicrosPerSecond, always_live);
  ASSERT_TRUE(unlocked.is_ok());
  EXPECT_EQ(unlocked->expires_at, clock_.now() + 60 * kMicrosPerSecond);

  clock_.advance(60 * kMicrosPerSecond);  // the instant it expires
  auto lapsed = store_->start_job(strict, always_live);
  EXPECT_TRUE(lapsed->existing);
  EXPECT_FALSE(lapsed->accepted);

  // Just inside the TTL, the unlock is used.
  ASSERT_TRUE(store_->unlock_key("k", std::nullopt, 60 * kMicrosPerSecond, always_live).is_ok());
  clock_.advance(60 * kMicrosPerSecond - 1);
  auto used = store_->start_job(strict, always_live);
  EXPECT_FALSE(used->existing);
  EXPECT_TRUE(used->job.strict_override_used);
}

TEST_F(SqliteStoreTest, AnUnlockDoesNotOutliveTheHistoryOfItsKey) {
  JobRequest strict = request("k");
  strict.strict = true;
  auto first = store_->start_job(strict, always_live)->job;
  ASSERT_TRUE(*store_->finish_job(first.id, {RunStatus::kSucceeded, 0, {}, {}}));
  ASSERT_TRUE(store_->unlock_key("k", "once more", std::nullopt, always_live).is_ok());
  ASSERT_EQ(*store_->delete_terminal_runs({first.id}), 1);  // `ratchet clean`
  // The key has no job: a strict start runs, and uses the unlock up.
  auto fresh = store_->start_job(strict, always_live)->job;
  EXPECT_FALSE(fresh.strict_override_used);
  ASSERT_TRUE(*store_->finish_job(fresh.id, {RunStatus::kSucceeded, 0, {}, {}}));
  auto after = store_->start_job(strict, always_live);
  EXPECT_TRUE(after->existing) << "the unlock from before the clean was not kept";
  EXPECT_FALSE(after->accepted);
}

TEST_F(SqliteStoreTest, UnlockRefusesALiveJobAndAKeyWithoutJobs) {
  auto live = store_->start_job(request("k"), always_live)->job;
  auto refused = store_->unlock_key("k", std::nullopt, std::nullopt, always_live);
  ASSERT_FALSE(refused.is_ok());
  EXPECT_EQ(refused.status().code(), Code::kFailedPrecondition);
  EXPECT_TRUE(refused.status().message().starts_with("Cannot unlock active job"))
      << refused.status().message();
  auto none = store_->unlock_key("nothing", std::nullopt, std::nullopt, always_live);
  ASSERT_FALSE(none.is_ok());
  EXPECT_EQ(none.status().code(), Code::kNotFound);
  // A job that only looks live is recorded LOST, and the key is unlocked.
  EXPECT_TRUE(store_->unlock_key("k", std::nullopt, std::nullopt, never_live).is_ok());
  EXPECT_EQ((**store_->find_job(live.id)).status, RunStatus::kLost);
}

TEST_F(SqliteStoreTest, ARetryEndsTheAttemptAndStartsTheNextInOneTransaction) {
  JobRequest with_retries = request("k");
  with_retries.retries = 2;
  with_retries.retry_delay = kMicrosPerSecond;
  auto first = store_->start_job(with_retries, always_live)->job;
  EXPECT_EQ(first.retries, 2);
  auto next =
      store_->retry_job(first.id, {RunStatus::kFailed, 3, {}, "exited with code 3"}, with_retries);
  ASSERT_TRUE(next.is_ok()) << next.status().message();
  ASSERT_TRUE(next->has_value());
  const JobRecord& second = **next;
  EXPECT_EQ(second.status, RunStatus::kStarting);
  EXPECT_EQ(second.trigger, JobTrigger::kRetry);
  EXPECT_EQ(second.attempt_no, 2);
  EXPECT_EQ(second.rerun_of_job_id, first.id);
  EXPECT_NE(second.stdout_file, first.stdout_file);
  EXPECT_EQ((**store_->find_job(first.id)).exit_code, 3);
  // The key never had a moment without a live job: a start finds the retry.
  auto start = store_->start_job(request("k"), always_live);
  EXPECT_TRUE(start->existing);
  EXPECT_EQ(start->job.id, second.id);
  EXPECT_EQ((**store_->find_retry_of(first.id)).id, second.id);
  EXPECT_FALSE(store_->find_retry_of(second.id)->has_value());
  // An attempt that had already ended starts nothing.
  auto late = store_->retry_job(first.id, {RunStatus::kFailed, 1, {}, {}}, with_retries);
  ASSERT_TRUE(late.is_ok());
  EXPECT_FALSE(late->has_value());
}

TEST_F(SqliteStoreTest, CancelRecordsItsReasonAndWhen) {
  auto job = store_->start_job(request("k"), always_live)->job;
  ASSERT_TRUE(*store_->request_cancel(job.id, 5 * kMicrosPerSecond, "wrong input"));
  auto stored = **store_->find_job(job.id);
  EXPECT_EQ(stored.cancel_reason, "wrong input");
  EXPECT_EQ(stored.cancel_requested_at, clock_.now());
  EXPECT_EQ(stored.cancel_grace, 5 * kMicrosPerSecond);
}

TEST_F(SqliteStoreTest, ImportAddsEachJobOnceWithItsFields) {
  JobRecord imported;
  imported.id = "orches-1";
  imported.run_key = "nightly";
  imported.status = RunStatus::kFailed;
  imported.command = {"sh", "-c", "exit 2"};
  imported.exit_code = 2;
  imported.started_at = 1'000'000;
  imported.finished_at = 2'000'000;
  imported.stdout_file = "/logs/orches-1.stdout";
  imported.trigger = JobTrigger::kImport;
  imported.attempt_no = 4;
  imported.rerun_of_job_id = "orches-0";
  EXPECT_EQ(*store_->import_jobs({imported}), 1);
  EXPECT_EQ(*store_->import_jobs({imported}), 0) << "an id already there is left alone";
  auto stored = **store_->find_job("orches-1");
  EXPECT_EQ(stored.status, RunStatus::kFailed);
  EXPECT_EQ(stored.command, imported.command);
  EXPECT_EQ(stored.exit_code, 2);
  EXPECT_EQ(stored.started_at, 1'000'000);
  EXPECT_EQ(stored.finished_at, 2'000'000);
  EXPECT_EQ(stored.trigger, JobTrigger::kImport);
  EXPECT_EQ(stored.attempt_no, 4);
  EXPECT_EQ(stored.rerun_of_job_id, "orches-0");
  EXPECT_FALSE(stored.supervisor.has_value());
  // The next job of the key follows the imported history.
  auto next = store_->start_job(request("nightly"), always_live)->job;
  EXPECT_EQ(next.attempt_no, 5);
  EXPECT_EQ(next.rerun_of_job_id, "orches-1");
}

TEST_F(SqliteStoreTest, MigratingAVersion2StoreNumbersItsJobsByKey) {
  store_.reset();
  std::filesystem::remove(path_);
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &raw), SQLITE_OK);
  for (int i = 0; i < 2; ++i) {
    ASSERT_EQ(sqlite3_exec(raw, sqlite::migrations()[i], nullptr, nullptr, nullptr), SQLITE_OK);
  }
  const char* jobs =
      "INSERT INTO runs (id, kind, run_key, status, started_at, updated_at) VALUES "
      "('a2', 'job', 'a', 'SUCCEEDED', 20, 20), ('a1', 'job', 'a', 'FAILED', 10, 10), "
      "('b1', 'job', 'b', 'SUCCEEDED', 15, 15), ('c', 'call', 'a', 'SUCCEEDED', 30, 30);"
      "PRAGMA user_version=2;";
  ASSERT_EQ(sqlite3_exec(raw, jobs, nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(raw);
  store_ = open();
  ASSERT_NE(store_, nullptr);
  auto a1 = **store_->find_job("a1");
  auto a2 = **store_->find_job("a2");
  auto b1 = **store_->find_job("b1");
  EXPECT_EQ(a1.attempt_no, 1);
  EXPECT_FALSE(a1.rerun_of_job_id.has_value());
  EXPECT_EQ(a2.attempt_no, 2);
  EXPECT_EQ(a2.rerun_of_job_id, "a1");
  EXPECT_EQ(b1.attempt_no, 1);
  EXPECT_EQ(store_->start_job(request("a"), always_live)->job.attempt_no, 3);
}

}  // namespace
}  // namespace ratchet
