#include "jobs/runner.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "jobs/process.hpp"

namespace ratchet::jobs {
namespace {

bool always_live(const JobRecord&, std::string*) { return true; }

// A process standing in for a job's supervisor: it ignores the SIGTERM that
// `cancel` sends it and lives until the test lets it go.
class StandInSupervisor {
 public:
  StandInSupervisor() {
    if (pipe(release_) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      signal(SIGTERM, SIG_IGN);
      close(release_[1]);
      char byte;
      while (read(release_[0], &byte, 1) > 0) {
      }
      _exit(0);
    }
    close(release_[0]);
  }
  ~StandInSupervisor() {
    let_go();
    if (pid_ > 0) waitpid(pid_, nullptr, 0);
  }
  std::optional<ProcessIdentity> identity() const { return identify_process(pid_); }
  void let_go() {
    if (release_[1] >= 0) close(release_[1]);
    release_[1] = -1;
  }

 private:
  int release_[2] = {-1, -1};
  pid_t pid_ = -1;
};

class CancelJob : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/ratchet-runner-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    auto store = open_store(dir_ + "/ratchet.db", SystemClock::instance());
    ASSERT_TRUE(store.is_ok()) << store.status().message();
    store_ = std::move(*store);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(CancelJob, AJobThatEndsOnItsOwnBeforeTheCancelReachesItIsNotCancelled) {
  // `cancel` printed the job SUCCEEDED with exit 0, as if it had cancelled it.
  StandInSupervisor supervisor;
  auto identity = supervisor.identity();
  ASSERT_TRUE(identity.has_value());
  JobRequest request;
  request.run_key = "key";
  request.command = {"true"};
  request.cwd = "/";
  request.log_dir = dir_;
  request.supervisor = *identity;
  auto started = store_->start_job(request, always_live);
  ASSERT_TRUE(started.is_ok()) << started.status().message();
  const std::string id = started->job.id;
  ASSERT_TRUE(*store_->mark_job_running(id, *identity));

  // The supervisor records the command's own end once the cancel is asked
  // for, before it reads the cancel's SIGTERM, and exits.
  std::thread ends_on_its_own([&] {
    auto other = open_store(dir_ + "/ratchet.db", SystemClock::instance());
    ASSERT_TRUE(other.is_ok());
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      auto job = (*other)->find_job(id);
      if (job.is_ok() && *job && (*job)->cancel_requested_at) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    JobOutcome succeeded{RunStatus::kSucceeded, 0, {}, {}};
    EXPECT_TRUE(*(*other)->finish_job(id, succeeded));
    supervisor.let_go();
  });
  auto job = store_->find_job(id);
  ASSERT_TRUE(job.is_ok() && job->has_value());
  auto cancelled = cancel_job(*store_, **job, 30 * kMicrosPerSecond, std::nullopt);
  ends_on_its_own.join();
  ASSERT_FALSE(cancelled.is_ok()) << "cancel says it cancelled a job that ended SUCCEEDED";
  EXPECT_EQ(cancelled.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(cancelled.status().message().find("ended SUCCEEDED before the cancel"),
            std::string::npos)
      << cancelled.status().message();
}

}  // namespace
}  // namespace ratchet::jobs
