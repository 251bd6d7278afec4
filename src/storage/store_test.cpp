#include <gtest/gtest.h>

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
  EXPECT_FALSE(*store_->request_cancel(job.id, kMicrosPerSecond));
  auto found = store_->find_job(job.id);
  EXPECT_EQ((*found)->status, RunStatus::kSucceeded);
  EXPECT_EQ((*found)->exit_code, 0);
}

TEST_P(StoreTest, NewestFirstIsByInstantAndThenByInsertion) {
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

}  // namespace
}  // namespace ratchet
