// Jobs across hosts: two "hosts" (two RATCHET_HOME directories, each with its
// own host id) share one PostgreSQL store. One run key is one running job
// fleet-wide, and a supervisor of another host is alive while it renews its
// heartbeat lease. The real `ratchet` binary runs as child processes.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "storage/pg_testing.hpp"
#include "support/run_process.hpp"

namespace ratchet {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::Env;
using testing::Process;
using testing::ProcessResult;
using Steady = std::chrono::steady_clock;

std::string ratchet_bin() {
  const char* bin = std::getenv("RATCHET_BIN");
  return bin ? bin : "ratchet";
}

// The parent pid of a process (field 4 of /proc/<pid>/stat); 0 if gone.
int parent_of(int pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), {});
  auto close = text.rfind(')');
  if (close == std::string::npos) return 0;
  char state = 0;
  int ppid = 0;
  std::sscanf(text.c_str() + close + 2, "%c %d", &state, &ppid);
  return ppid;
}

bool process_exists(int pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), {});
  auto close = text.rfind(')');
  return close != std::string::npos && text[close + 2] != 'Z';
}

class JobsFleet : public ::testing::Test {
 protected:
  void SetUp() override {
    RATCHET_OPEN_PG_DATABASE(db_);
    char pattern[] = "/tmp/ratchet-hosts-XXXXXX";
    dir_ = mkdtemp(pattern);
  }
  void TearDown() override {
    if (!db_) return;  // skipped: nothing ran
    for (const auto& host : {"a", "b"}) {
      // Whatever is still running is stopped before its database goes.
      run(host, {"cancel", "--run-key", "k", "--grace", "1s"});
    }
    std::error_code ignored;  // a supervisor may still be removing its files: not a failure
    std::filesystem::remove_all(dir_, ignored);
  }

  Env host_env(const std::string& host) {
    return {{"RATCHET_HOME", dir_ + "/" + host},
            {"RATCHET_DB", db_->url()},
            {"RATCHET_JOB_LEASE", "2s"}};
  }

  ProcessResult run(const std::string& host, std::vector<std::string> args) {
    args.insert(args.begin(), ratchet_bin());
    return testing::run_process(args, host_env(host), 60s);
  }

  json run_json(const std::string& host, std::vector<std::string> args) {
    auto result = run(host, std::move(args));
    EXPECT_EQ(result.exit_code, 0) << result.err;
    auto parsed = json::parse(result.out, nullptr, false);
    EXPECT_TRUE(parsed.is_object()) << result.out << result.err;
    return parsed.is_object() ? parsed : json::object();
  }

  std::string dir_;
  std::optional<testing::PgTestDatabase> db_;
};

TEST_F(JobsFleet, TwoHostsRacingStartOnOneKeyMakeOneJob) {
  std::vector<Process> starts;
  for (int i = 0; i < 8; ++i) {
    starts.push_back(Process::spawn({ratchet_bin(), "start", "--run-key", "k", "--", "sleep", "30"},
                                    host_env(i % 2 ? "a" : "b")));
  }
  std::set<std::string> ids;
  int started = 0;
  for (auto& start : starts) {
    auto result = start.finish(60s);
    ASSERT_EQ(result.exit_code, 0) << result.err;
    auto shown = json::parse(result.out, nullptr, false);
    ASSERT_TRUE(shown.is_object()) << result.out;
    ids.insert(shown.value("job_id", ""));
    if (!shown.value("existing", true)) ++started;
    std::string status = shown.value("status", "");
    EXPECT_TRUE(status == "RUNNING" || status == "STARTING") << status;  // existing: as found
  }
  EXPECT_EQ(started, 1);
  EXPECT_EQ(ids.size(), 1u);
  EXPECT_EQ(*db_->number("SELECT count(*) FROM runs WHERE kind = 'job'"), 1);
}

TEST_F(JobsFleet, APausedSupervisorIsLostFromTheOtherHostAndStopsItsCommandOnResuming) {
  json first = run_json("a", {"start", "--run-key", "k", "--", "sleep", "60"});
  ASSERT_EQ(first.value("status", ""), "RUNNING");
  int command = first.value("pid", 0);
  int supervisor = parent_of(command);
  ASSERT_GT(supervisor, 1);
  ASSERT_EQ(kill(supervisor, SIGSTOP), 0);

  // Host b cannot see a's pids: it waits for the lease (2 s) to lapse.
  EXPECT_EQ(run_json("b", {"status", "--run-key", "k"}).value("status", ""), "RUNNING");
  std::string seen;
  auto deadline = Steady::now() + 30s;
  while (Steady::now() < deadline) {
    seen = run_json("b", {"status", "--run-key", "k"}).value("status", "");
    if (seen == "LOST") break;
    std::this_thread::sleep_for(100ms);  // until the lease lapses; bounded above
  }
  ASSERT_EQ(seen, "LOST");
  json second = run_json("b", {"start", "--run-key", "k", "--", "sleep", "60"});
  EXPECT_FALSE(second.value("existing", true));
  EXPECT_NE(second.value("job_id", ""), first.value("job_id", ""));
  EXPECT_TRUE(process_exists(command)) << "a's command ran on while its supervisor was paused";

  ASSERT_EQ(kill(supervisor, SIGCONT), 0);
  // Its next heartbeat finds the job taken: it stops its command, records nothing.
  deadline = Steady::now() + 30s;
  while (process_exists(command) && Steady::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_FALSE(process_exists(command)) << "the resumed supervisor left its command running";
  json old = run_json("b", {"status", "--job-id", first.value("job_id", "")});
  EXPECT_EQ(old.value("status", ""), "LOST");
  EXPECT_EQ(run_json("a", {"status", "--run-key", "k"}).value("status", ""), "RUNNING")
      << "the key's job is b's, and a sees it live";
}

}  // namespace
}  // namespace ratchet
