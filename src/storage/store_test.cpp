#include <gtest/gtest.h>
#include <sqlite3.h>

#include "common/byte_text.hpp"
#include "storage/migrate.hpp"
#include "storage/store_test_support.hpp"

namespace ratchet {
namespace {

// The job and run operations of the Store, on each backend.
class StoreTest : public BackendTest {
 protected:
  JobRequest request(const std::string& key) { return test_job_request(key, dir_ + "/logs"); }
};

RATCHET_ON_BOTH_BACKENDS(StoreTest);

TEST_P(StoreTest, StartRecordsAStartingJobWithItsCommandEnvAndLogs) {
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

TEST_P(StoreTest, StartReturnsTheLiveJobOfTheKey) {
  auto first = store_->start_job(request("k"), always_live);
  auto second = store_->start_job(request("k"), always_live);
  ASSERT_TRUE(first.is_ok() && second.is_ok());
  EXPECT_TRUE(second->existing);
  EXPECT_EQ(second->job.id, first->job.id);
}

TEST_P(StoreTest, StartReplacesADeadJobAndRecordsItLost) {
  auto first = store_->start_job(request("k"), always_live);
  auto second = store_->start_job(request("k"), never_live);
  ASSERT_TRUE(first.is_ok() && second.is_ok());
  EXPECT_FALSE(second->existing);
  EXPECT_NE(second->job.id, first->job.id);
  auto old = store_->find_job(first->job.id);
  EXPECT_EQ((*old)->status, RunStatus::kLost);
  EXPECT_EQ((*old)->error, "supervisor gone");
}

TEST_P(StoreTest, StartAfterATerminalJobStartsANewOne) {
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

TEST_P(StoreTest, TransitionsAreGuardedByTheCurrentStatus) {
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

TEST_P(StoreTest, NewestFirstIsTheOrderJobsWereCreatedNotTheClock) {
  auto a = store_->start_job(request("k"), never_live)->job;
  auto b = store_->start_job(request("k"), never_live)->job;  // same instant
  clock_.advance(-kMicrosPerSecond);                          // the wall clock steps back
  auto c = store_->start_job(request("k"), never_live)->job;
  auto all = *store_->runs_for_key("k", 100);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].id, c.id);
  EXPECT_EQ(all[1].id, b.id);
  EXPECT_EQ(all[2].id, a.id);
  EXPECT_EQ((*store_->newest_job_for_key("k"))->id, c.id);
  auto d = store_->start_job(request("k"), never_live)->job;
  EXPECT_EQ(d.attempt_no, 4);
  EXPECT_EQ(d.rerun_of_job_id, c.id);
}

TEST_P(StoreTest, CleanSelectsOnlyTerminalRunsBeforeTheCutoff) {
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

// --- run-once keys, unlocks, lineage, retries --------------------------------

TEST_P(StoreTest, JobsAreNumberedWithinTheirKeyEachFollowingThePrevious) {
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

TEST_P(StoreTest, StrictStartOfAUsedKeyReturnsItsNewestJobUnaccepted) {
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

TEST_P(StoreTest, UnlockLetsOneStrictStartRunWithItsReason) {
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

TEST_P(StoreTest, AnUnlockNotUsedWithinItsTtlLapses) {
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

TEST_P(StoreTest, AnUnlockDoesNotOutliveTheHistoryOfItsKey) {
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

TEST_P(StoreTest, UnlockRefusesALiveJobAndAKeyWithoutJobs) {
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

TEST_P(StoreTest, ARetryEndsTheAttemptAndStartsTheNextInOneTransaction) {
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

TEST_P(StoreTest, CancelRecordsItsReasonAndWhen) {
  auto job = store_->start_job(request("k"), always_live)->job;
  ASSERT_TRUE(*store_->request_cancel(job.id, 5 * kMicrosPerSecond, "wrong input"));
  auto stored = **store_->find_job(job.id);
  EXPECT_EQ(stored.cancel_reason, "wrong input");
  EXPECT_EQ(stored.cancel_requested_at, clock_.now());
  EXPECT_EQ(stored.cancel_grace, 5 * kMicrosPerSecond);
}

// A job's free text may quote bytes that are not UTF-8 (a command that could
// not run, a reason typed on the command line): the job still ends, and its
// text reads back (as byte text on PostgreSQL, whose text columns refuse them).
TEST_P(StoreTest, AJobWhoseErrorOrReasonIsNotUtf8StillEnds) {
  const std::string error = "cannot run /nonexist\xe9: No such file or directory";
  const std::string reason = "wrong \xff input";
  auto failed = store_->start_job(request("k1"), always_live)->job;
  ASSERT_TRUE(*store_->request_cancel(failed.id, kMicrosPerSecond, reason));
  auto ended = store_->finish_job(failed.id, {RunStatus::kFailed, {}, {}, error});
  ASSERT_TRUE(ended.is_ok()) << ended.status().message();
  EXPECT_TRUE(*ended);
  auto stored = **store_->find_job(failed.id);
  EXPECT_EQ(stored.status, RunStatus::kFailed);
  EXPECT_EQ(text_to_bytes(stored.error.value_or("")), error);
  EXPECT_EQ(text_to_bytes(stored.cancel_reason.value_or("")), reason);
  auto lost = store_->start_job(request("k2"), always_live)->job;
  auto marked = store_->mark_job_lost(lost.id, RunStatus::kStarting, error);
  ASSERT_TRUE(marked.is_ok()) << marked.status().message();
  EXPECT_TRUE(*marked);
  EXPECT_EQ((**store_->find_job(lost.id)).status, RunStatus::kLost);
}

TEST_P(StoreTest, ImportAddsEachJobOnceWithItsFields) {
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
  EXPECT_EQ(*store_->import_jobs({imported}), 1);
  EXPECT_EQ(*store_->import_jobs({imported}), 0) << "an id already there is left alone";
  auto stored = **store_->find_job("orches-1");
  EXPECT_EQ(stored.status, RunStatus::kFailed);
  EXPECT_EQ(stored.command, imported.command);
  EXPECT_EQ(stored.exit_code, 2);
  EXPECT_EQ(stored.started_at, 1'000'000);
  EXPECT_EQ(stored.finished_at, 2'000'000);
  EXPECT_EQ(stored.trigger, JobTrigger::kImport);
  EXPECT_EQ(stored.attempt_no, 1);
  EXPECT_EQ(stored.rerun_of_job_id, std::nullopt);
  EXPECT_FALSE(stored.supervisor.has_value());
  // The next job of the key follows the imported history.
  auto next = store_->start_job(request("nightly"), always_live)->job;
  EXPECT_EQ(next.attempt_no, 2);
  EXPECT_EQ(next.rerun_of_job_id, "orches-1");
}

JobRecord orchesjob_job(const std::string& id, const std::string& key, Micros started_at) {
  JobRecord job;
  job.id = id;
  job.run_key = key;
  job.status = RunStatus::kSucceeded;
  job.command = {"true"};
  job.exit_code = 0;
  job.started_at = started_at;
  job.finished_at = started_at + 1;
  job.trigger = JobTrigger::kImport;
  return job;
}

// An import run again (orchesjob ran the key since, and its older rows were
// cleaned, so its history numbers the new job 1): the new job follows the
// key's newest, its number never repeated.
TEST_P(StoreTest, ImportNumbersEachJobAfterItsKeysNewestJob) {
  ASSERT_EQ(*store_->import_jobs({orchesjob_job("o-1", "k", 10), orchesjob_job("o-2", "k", 20)}),
            2);
  EXPECT_EQ((**store_->find_job("o-2")).attempt_no, 2);
  EXPECT_EQ((**store_->find_job("o-2")).rerun_of_job_id, "o-1");
  ASSERT_EQ(*store_->import_jobs({orchesjob_job("o-3", "k", 30)}), 1);
  JobRecord third = **store_->find_job("o-3");
  EXPECT_EQ(third.attempt_no, 3);
  EXPECT_EQ(third.rerun_of_job_id, "o-2");
  EXPECT_EQ((**store_->newest_job_for_key("k")).id, "o-3");
  EXPECT_EQ(store_->start_job(request("k"), always_live)->job.attempt_no, 4);
}

// Ratchet's jobs of a key are newer than its orchesjob history: importing
// that history would make an older job the key's newest (what status, wait
// and a strict start read), so the whole import is refused.
TEST_P(StoreTest, ImportRefusesAKeyThatRatchetHasRun) {
  auto ran = store_->start_job(request("k"), always_live)->job;
  ASSERT_TRUE(*store_->finish_job(ran.id, {RunStatus::kFailed, 1, {}, {}}));
  auto refused =
      store_->import_jobs({orchesjob_job("o-0", "other", 5), orchesjob_job("o-1", "k", 10)});
  ASSERT_FALSE(refused.is_ok());
  EXPECT_EQ(refused.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find(ran.id), std::string::npos)
      << refused.status().message();
  EXPECT_FALSE(store_->find_job("o-0")->has_value()) << "nothing is imported";
  EXPECT_FALSE(store_->find_job("o-1")->has_value());
  EXPECT_EQ((**store_->newest_job_for_key("k")).id, ran.id);
}

// `ratchet migrate` writes a job's bytes as the PostgreSQL store does (byte
// text): a run key, command, cwd and env that are not UTF-8, and a cwd an
// older ratchet kept raw, read back the same from either store; an error that
// quotes such bytes reads as their byte text.
TEST_P(StoreTest, MigrateCopiesAJobsBytesThatAreNotUtf8) {
  if (postgres()) GTEST_SKIP() << "migrate copies a SQLite store into PostgreSQL";
  std::optional<testing::PgTestDatabase> target;
  RATCHET_OPEN_PG_DATABASE(target);
  const std::string key = "nightly-\xff\xfe";
  JobRequest odd = request(key);
  odd.command = {"echo", "caf\xe9", "\xf4\x8f\xbd\xa9"};  // the last: an escape code point
  odd.cwd = "/tmp/d\xe9";
  odd.env = {{"N\xe9", "\xff"}};
  auto job = store_->start_job(odd, always_live)->job;
  ASSERT_TRUE(*store_->finish_job(job.id, {RunStatus::kFailed, 1, {}, "cannot run 'caf\xe9'"}));
  ASSERT_TRUE(store_->unlock_key(key, "r\xe9", std::nullopt, always_live).is_ok());
  auto legacy = store_->start_job(request("legacy"), always_live)->job;
  store_.reset();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(location_.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "UPDATE runs SET cwd = CAST(X'2F746D702FE9' AS TEXT) WHERE run_key = "
                         "'legacy'",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto source = open(clock_);
  const JobRecord before = **source->find_job(job.id);
  source.reset();

  auto counts =
      copy_sqlite_to_postgres(location_, target->url(), clock_, [](const MigrationProgress&) {});
  ASSERT_TRUE(counts.is_ok()) << counts.status().message();
  auto moved = open_store(target->url(), clock_, {});
  ASSERT_TRUE(moved.is_ok()) << moved.status().message();
  const JobRecord after = **(*moved)->find_job(job.id);
  EXPECT_EQ(after.run_key, key);
  EXPECT_EQ(after.command, odd.command);
  EXPECT_EQ(after.cwd, odd.cwd);
  EXPECT_EQ(after.env, odd.env);
  EXPECT_EQ(after.command, before.command);
  EXPECT_EQ(after.error, bytes_to_text(*before.error));
  EXPECT_EQ((**(*moved)->newest_job_for_key(key)).id, job.id);
  EXPECT_EQ((*(*moved)->runs_for_key(key, 10))[0].run_key, key);
  EXPECT_EQ((**(*moved)->find_job(legacy.id)).cwd, "/tmp/\xe9");
  JobRequest strict = request(key);
  strict.strict = true;
  auto unlocked = (*moved)->start_job(strict, always_live);
  ASSERT_TRUE(unlocked.is_ok()) << unlocked.status().message();
  EXPECT_TRUE(unlocked->job.strict_override_used) << "the key's unlock was copied under its key";
  EXPECT_EQ(unlocked->job.rerun_reason, bytes_to_text("r\xe9")) << "a reason, shown as text";
}

// A run key is bytes (a job's key comes from the command line): one that is
// not UTF-8 is kept and found again on both backends.
TEST_P(StoreTest, ARunKeyThatIsNotUtf8IsKeptAndFoundAgain) {
  const std::string key = "nightly-\xff\xfe-\xc3";
  JobRequest strict = request(key);
  strict.strict = true;
  auto started = store_->start_job(strict, always_live);
  ASSERT_TRUE(started.is_ok()) << started.status().message();
  EXPECT_EQ(started->job.run_key, key);
  auto newest = store_->newest_job_for_key(key);
  ASSERT_TRUE(newest.is_ok() && newest->has_value());
  EXPECT_EQ((*newest)->run_key, key);
  EXPECT_EQ((*store_->runs_for_key(key, 10))[0].run_key, key);
  EXPECT_EQ((*store_->list_runs(std::nullopt, 10))[0].run_key, key);
  EXPECT_TRUE(store_->start_job(strict, always_live)->existing);
  ASSERT_TRUE(*store_->finish_job(started->job.id, {RunStatus::kSucceeded, 0, {}, {}}));
  ASSERT_TRUE(store_->unlock_key(key, std::nullopt, std::nullopt, always_live).is_ok());
  EXPECT_TRUE(store_->start_job(strict, always_live)->job.strict_override_used);
}

}  // namespace
}  // namespace ratchet
