// End-to-end tests of the job runner on a store it cannot write: a full disk
// (a real one: a small tmpfs) and a read-only state directory (a read-only
// bind mount, or permissions when not root). Mounting needs root; where the
// machine refuses it, the test says so and is skipped, never passed.
#include <sched.h>
#include <sys/mount.h>
#include <sys/syscall.h>

#include "support/jobs_cli.hpp"

namespace ratchet::jobs_test {
namespace {

// Why this process cannot have mounts of its own, or "" when it can: it then
// has its own mount namespace (so its mounts go away with it), with nothing
// propagated back to the machine's.
std::string private_mounts() {
  if (geteuid() != 0) return "mounting needs root";
  if (unshare(CLONE_NEWNS) != 0) {
    return std::string("unshare(CLONE_NEWNS) was refused: ") + std::strerror(errno);
  }
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    return std::string("cannot make / private: ") + std::strerror(errno);
  }
  return "";
}

// Fills the file system holding `dir` until it has no space left.
bool fill(const std::string& dir) {
  int fd = open((dir + "/filler").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  std::string block(4096, 'x');
  while (write(fd, block.data(), block.size()) > 0) {
  }
  bool full = errno == ENOSPC;
  close(fd);
  return full;
}

class JobsFaults : public JobsCli {
 protected:
  void TearDown() override {
    stop_leftover_jobs();
    for (const auto& point : mounted_) umount2(point.c_str(), MNT_DETACH);
    JobsCli::TearDown();
  }

  // Mounts a tmpfs of `size` at RATCHET_HOME; "" or why it could not.
  std::string mount_small_disk(const std::string& size) {
    std::string refused = private_mounts();
    if (!refused.empty()) return refused;
    fs::create_directories(home_);
    std::string options = "size=" + size + ",mode=0700";
    if (mount("tmpfs", home_.c_str(), "tmpfs", 0, options.c_str()) != 0) {
      return std::string("mounting a tmpfs was refused: ") + std::strerror(errno);
    }
    mounted_.push_back(home_);
    return "";
  }

  std::vector<std::string> mounted_;
};

// ---------------------------------------------------------------------------
// A full disk

TEST_F(JobsFaults, AJobThatEndsWhileTheDiskIsFullKeepsItsOutcome) {
  std::string refused = mount_small_disk("4m");
  if (!refused.empty()) GTEST_SKIP() << "no small disk to fill: " << refused;
  const std::string gate = dir_ + "/gate.fifo";  // outside the full disk
  ASSERT_EQ(mkfifo(gate.c_str(), 0600), 0);
  json job = start("full", {"sh", "-c", "echo started; read line < \"$0\"; exit 7", gate});
  ASSERT_EQ(job["status"], "RUNNING");
  const int command = job["pid"].get<int>();
  const int supervisor = supervisor_of(job);
  ASSERT_GT(supervisor, 1);

  // Its first line written before the disk fills (else the echo could meet
  // the full disk, and the log below be empty: a flake under load).
  ASSERT_TRUE(eventually([&] { return read_file(job["stdout_file"]) == "started\n"; }));

  // Empty the WAL, so that recording the outcome needs new space, then take
  // all of it.
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(db_path().c_str(), &db), SQLITE_OK);
    EXPECT_EQ(sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  ASSERT_TRUE(fill(home_)) << "the tmpfs did not fill up";

  // The command opens its gate for reading a moment after it starts: until it
  // does, opening the writing end without blocking fails with ENXIO.
  int writer = -1;
  ASSERT_TRUE(eventually([&] {
    writer = open(gate.c_str(), O_WRONLY | O_NONBLOCK);
    return writer >= 0;
  })) << "the job is not reading its gate: "
      << std::strerror(errno);
  ASSERT_EQ(write(writer, "go\n", 3), 3);
  close(writer);
  ASSERT_TRUE(eventually([&] { return !alive(command); }, 30s)) << "the command did not end";
  // The supervisor tried to record the end, could not, and waits to try again.
  ASSERT_TRUE(eventually([&] { return alive(supervisor) && sleeping(supervisor); }, 30s))
      << "the supervisor did not keep the outcome (alive: " << alive(supervisor) << ")";

  // Readers keep working while the disk is full.
  json shown = ratchet_json({"status", "--run-key", "full"});
  EXPECT_EQ(shown["status"], "RUNNING") << "its end is not recorded yet, and it is not LOST";
  EXPECT_EQ(ratchet_json({"list"}).size(), 1u);
  auto logs = ratchet({"logs", "--run-key", "full"});
  EXPECT_EQ(logs.exit_code, 0) << logs.err;
  EXPECT_EQ(logs.out, "started\n");
  auto waited = ratchet({"wait", "--run-key", "full", "--timeout", "200ms"});
  expect_error(waited, 1, "wait with a --timeout while the outcome waits for space");
  EXPECT_NE(waited.err.find("still RUNNING"), std::string::npos) << waited.err;

  Process waiter = spawn_ratchet({"wait", "--run-key", "full"});
  ASSERT_TRUE(fs::remove(home_ + "/filler"));  // space returns
  ProcessResult ended = waiter.finish(60s);
  ASSERT_FALSE(ended.timed_out) << "the outcome was not recorded once space returned";
  EXPECT_EQ(ended.exit_code, 6) << ended.err;
  json outcome = json::parse(ended.out, nullptr, false);
  EXPECT_EQ(outcome["status"], "FAILED");
  EXPECT_EQ(outcome["exit_code"], 7) << "the exit code survived the full disk";
  EXPECT_EQ(outcome["error"], "exited with code 7");
  EXPECT_TRUE(eventually([&] { return !alive(supervisor); })) << "the supervisor left";
}

// ---------------------------------------------------------------------------
// A read-only store

TEST_F(JobsFaults, ReadersWorkOnAReadOnlyStateDirectory) {
  json done = start_sync("done", {"echo", "hi"});
  json running = start("running", kLongCommand);
  json lost = start("lost", kGroupCommand);
  int lost_supervisor = supervisor_of(lost);
  ASSERT_GT(lost_supervisor, 1);
  ASSERT_EQ(kill(lost_supervisor, SIGKILL), 0);
  ASSERT_TRUE(eventually([&] { return !alive(lost_supervisor); }));

  // Root ignores permissions, so for root the directory is a read-only mount
  // (in a mount namespace of the reader's own); others lose write permission.
  bool as_root = geteuid() == 0;
  std::function<ProcessResult(std::vector<std::string>)> read_only;
  if (as_root) {
    auto probe = testing::run_process({"unshare", "-m", "true"});
    if (probe.exit_code != 0) GTEST_SKIP() << "unshare -m was refused: " << probe.err;
    read_only = [&](std::vector<std::string> args) {
      std::vector<std::string> argv = {
          "unshare", "-m", "sh", "-c", "mount --bind -o ro \"$0\" \"$0\" && exec \"$@\"",
          home_,     bin_};
      argv.insert(argv.end(), args.begin(), args.end());
      return testing::run_process(argv, env_with({}));
    };
  } else {
    for (const auto& entry : fs::recursive_directory_iterator(home_)) {
      fs::permissions(entry.path(), fs::perms::owner_write, fs::perm_options::remove);
    }
    fs::permissions(home_, fs::perms::owner_write, fs::perm_options::remove);
    read_only = [&](std::vector<std::string> args) { return ratchet(args); };
  }
  auto json_of = [&](std::vector<std::string> args, int expected_exit = 0) {
    auto result = read_only(args);
    EXPECT_EQ(result.exit_code, expected_exit) << args[0] << ": " << result.err;
    json parsed = json::parse(result.out, nullptr, false);
    return parsed.is_discarded() ? json::object() : parsed;
  };

  EXPECT_EQ(json_of({"status", "--run-key", "done"})["status"], "SUCCEEDED");
  EXPECT_EQ(json_of({"status", "--job-id", running["job_id"]})["status"], "RUNNING");
  EXPECT_EQ(json_of({"status", "--run-key", "done", "--all"}).size(), 1u);
  EXPECT_EQ(json_of({"list"}).size(), 3u);
  EXPECT_EQ(json_of({"wait", "--run-key", "done"})["status"], "SUCCEEDED");
  auto logs = read_only({"logs", "--run-key", "done"});
  EXPECT_EQ(logs.exit_code, 0) << logs.err;
  EXPECT_EQ(logs.out, "hi\n");
  // A job whose supervisor is gone is shown LOST, though that cannot be recorded.
  json shown_lost = json_of({"status", "--run-key", "lost"});
  EXPECT_EQ(shown_lost["status"], "LOST");
  EXPECT_NE(shown_lost["error"].get<std::string>().find("not recorded"), std::string::npos)
      << shown_lost["error"];
  // Writers fail with a message, not a crash.
  expect_error(read_only({"start", "--run-key", "new", "--", "true"}), 1, "start, read-only");

  if (!as_root) {
    fs::permissions(home_, fs::perms::owner_write, fs::perm_options::add);
    for (const auto& entry : fs::recursive_directory_iterator(home_)) {
      fs::permissions(entry.path(), fs::perms::owner_write, fs::perm_options::add);
    }
  }
  json recorded = status_of(lost["job_id"]);
  EXPECT_EQ(recorded["status"], "LOST");
  EXPECT_EQ(recorded["error"].get<std::string>().find("not recorded"), std::string::npos)
      << "recorded once the store can be written";
}

}  // namespace
}  // namespace ratchet::jobs_test
