// The job runner's end-to-end test fixture and helpers: the real `ratchet`
// binary (RATCHET_BIN) run as processes against a fresh state directory per
// test, checked through its JSON output, exit codes, log files and /proc.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "storage/pg_testing.hpp"
#include "support/run_process.hpp"

namespace ratchet::jobs_test {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::Env;
using testing::eventually;
using testing::Process;
using testing::ProcessResult;
using namespace std::chrono_literals;

// ---------------------------------------------------------------------------
// /proc helpers

struct ProcStat {
  char state = '?';
  int ppid = 0;
  int pgrp = 0;
  long long start_ticks = 0;
};

// The whole file, or what could be read of it: a /proc file whose process
// exits while it is read ends early (an ifstream would throw ESRCH).
inline std::string read_file(const std::string& path) {
  std::string text;
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return text;
  char buffer[4096];
  ssize_t n = 0;
  while ((n = read(fd, buffer, sizeof buffer)) > 0)
    text.append(buffer, static_cast<std::size_t>(n));
  close(fd);
  return text;
}

// Fields 3-5 and 22 of /proc/<pid>/stat, counted from the last ')' (the
// command name may hold spaces and parentheses).
inline std::optional<ProcStat> proc_stat(int pid) {
  std::string text = read_file("/proc/" + std::to_string(pid) + "/stat");
  auto close = text.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream fields(text.substr(close + 1));
  ProcStat stat;
  fields >> stat.state >> stat.ppid >> stat.pgrp;
  std::string skipped;
  for (int field = 6; field < 22; ++field) fields >> skipped;
  fields >> stat.start_ticks;
  if (!fields) return std::nullopt;
  return stat;
}

inline bool alive(int pid) {
  auto stat = proc_stat(pid);
  return stat && stat->state != 'Z' && stat->state != 'X';
}

// Processes of the group that can still run (zombies excluded: they are only
// waiting for a parent that may be PID 1 to reap them).
inline std::vector<int> live_group_members(int pgid, long long started_since = 0) {
  std::vector<int> members;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    int pid = std::stoi(name);
    auto stat = proc_stat(pid);
    if (stat && stat->pgrp == pgid && stat->state != 'Z' && stat->state != 'X' &&
        stat->start_ticks >= started_since) {
      members.push_back(pid);
    }
  }
  return members;
}

// Whether the group has ended: a group recorded LOST is SIGKILLed, and a
// process with SIGKILL pending never runs again, but on a loaded machine it
// may take a moment to be scheduled and exit.
inline bool group_ends(int pgid) {
  return eventually([&] { return live_group_members(pgid).empty(); });
}

// Whether the process has a pidfd open: how `start --sync` and `wait` wait on
// a supervisor.
inline bool holds_pidfd(int pid) {
  std::error_code error;
  for (const auto& fd : fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd", error)) {
    if (fs::read_symlink(fd.path(), error).string() == "anon_inode:[pidfd]") return true;
  }
  return false;
}

// True once `pid` is blocked in a sleep: how SQLite waits for a lock, and a
// supervisor between two tries of a write the store refused.
inline bool sleeping(int pid) {
  std::string syscall = read_file("/proc/" + std::to_string(pid) + "/syscall");
  long number = -1;
  std::sscanf(syscall.c_str(), "%ld", &number);
  return number == SYS_clock_nanosleep || number == SYS_nanosleep;
}

inline int count_lines(const std::string& text) {
  return static_cast<int>(std::count(text.begin(), text.end(), '\n'));
}

// The day after the date that starts an RFC 3339 time ("2026-05-01T..." ->
// "2026-05-02"), computed on the calendar alone.
inline std::string next_day(const std::string& rfc3339) {
  std::tm day{};
  day.tm_year = std::stoi(rfc3339.substr(0, 4)) - 1900;
  day.tm_mon = std::stoi(rfc3339.substr(5, 2)) - 1;
  day.tm_mday = std::stoi(rfc3339.substr(8, 2)) + 1;
  day.tm_hour = 12;
  std::time_t t = timegm(&day);
  std::tm normalized{};
  gmtime_r(&t, &normalized);
  char text[16];
  std::strftime(text, sizeof text, "%Y-%m-%d", &normalized);
  return text;
}

// Holds the store's write lock, as another process using it would.
class StoreLock {
 public:
  explicit StoreLock(const std::string& db_path) {
    if (sqlite3_open(db_path.c_str(), &db_) != SQLITE_OK) return;
    locked_ = sqlite3_exec(db_, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr) == SQLITE_OK;
  }
  ~StoreLock() {
    if (locked_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    sqlite3_close(db_);
  }
  bool locked() const { return locked_; }

 private:
  sqlite3* db_ = nullptr;
  bool locked_ = false;
};

// The supervisor pid recorded for a job, read straight from the store: the
// JSON does not show it, and a job killed before RUNNING has no command pid.
inline int recorded_supervisor_pid(const std::string& db_path, const std::string& job_id) {
  sqlite3* db = nullptr;
  int pid = 0;
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* query = nullptr;
    sqlite3_prepare_v2(db, "SELECT supervisor_pid FROM runs WHERE id = ?1", -1, &query, nullptr);
    sqlite3_bind_text(query, 1, job_id.c_str(), -1, SQLITE_TRANSIENT);
    if (sqlite3_step(query) == SQLITE_ROW) pid = sqlite3_column_int(query, 0);
    sqlite3_finalize(query);
  }
  sqlite3_close(db);
  return pid;
}

// ---------------------------------------------------------------------------
// The fixture: a fresh RATCHET_HOME per test, and nothing left running after.

// With RATCHET_JOBS_BACKEND=postgres (a second ctest registration of a suite),
// the jobs go to a fresh PostgreSQL database per test (RATCHET_DB) instead of
// the state directory's SQLite file.
class JobsCli : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* bin = std::getenv("RATCHET_BIN");
    ASSERT_TRUE(bin && *bin) << "RATCHET_BIN must name the ratchet executable";
    bin_ = bin;
    char pattern[] = "/tmp/ratchet-e2e-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = fs::canonical(pattern).string();
    home_ = dir_ + "/home";
    const char* backend = std::getenv("RATCHET_JOBS_BACKEND");
    if (backend && std::string_view(backend) == "postgres") {
      RATCHET_OPEN_PG_DATABASE(pg_);  // (two statements: the braces matter)
    }
  }

  bool on_postgres() const { return pg_.has_value(); }

  // The pid of the job's supervisor as the store recorded it.
  int supervisor_pid_of(const std::string& job_id) {
    if (!pg_) return recorded_supervisor_pid(db_path(), job_id);
    auto pid = pg_->number("SELECT supervisor_pid FROM runs WHERE id = '" + job_id + "'");
    return pid.is_ok() ? static_cast<int>(*pid) : 0;
  }

  void TearDown() override {
    stop_leftover_jobs();
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }

  // A job a failed test (or a broken ratchet) left running must not outlive it.
  void stop_leftover_jobs() {
    if (!fs::is_directory(home_)) return;
    auto listed = ratchet({"list", "--limit", "1000"});
    json jobs = json::parse(listed.out, nullptr, false);
    if (!jobs.is_array()) return;
    // Only processes younger than this test binary can be its jobs'.
    const long long test_started = proc_stat(getpid())->start_ticks;
    for (const auto& job : jobs) {
      if (job["status"] == "RUNNING" || job["status"] == "STARTING") {
        ratchet({"cancel", "--job-id", job["job_id"], "--grace", "0s"});
      }
      if (!job["pid"].is_number()) continue;
      const int pgid = job["pid"].get<int>();
      if (!live_group_members(pgid, test_started).empty()) kill(-pgid, SIGKILL);
    }
  }

  std::string db_path() const { return home_ + "/ratchet.db"; }

  Env env_with(Env extra) const {
    extra.insert(extra.begin(), {"RATCHET_HOME", home_});
    if (pg_) extra.insert(extra.begin(), {"RATCHET_DB", pg_->url()});
    return extra;
  }

  std::vector<std::string> argv_of(std::vector<std::string> args) const {
    args.insert(args.begin(), bin_);
    return args;
  }

  ProcessResult ratchet(std::vector<std::string> args, Env extra = {},
                        std::chrono::milliseconds timeout = 30s) {
    return testing::run_process(argv_of(std::move(args)), env_with(std::move(extra)), timeout);
  }

  Process spawn_ratchet(std::vector<std::string> args, Env extra = {}) {
    return Process::spawn(argv_of(std::move(args)), env_with(std::move(extra)));
  }

  // Runs `count` copies of `args` at once, each of which must exit 0 and print
  // a JSON object; what they printed.
  std::vector<json> race(const std::vector<std::string>& args, int count) {
    std::vector<Process> racers;
    racers.reserve(static_cast<std::size_t>(count));
    for (int i = 0; i < count; ++i) racers.push_back(spawn_ratchet(args));
    std::vector<json> printed;
    for (auto& process : racers) {
      ProcessResult result = process.finish(60s);
      EXPECT_EQ(result.exit_code, 0) << result.err;
      json job = json::parse(result.out, nullptr, false);
      EXPECT_TRUE(job.is_object()) << result.out;
      printed.push_back(job.is_object() ? job : json::object());
    }
    return printed;
  }

  // Runs a command that must succeed (exit `expected_exit`) and prints JSON.
  json ratchet_json(std::vector<std::string> args, Env extra = {}, int expected_exit = 0) {
    std::string shown;
    for (const auto& arg : args) shown += arg + " ";
    auto result = ratchet(std::move(args), std::move(extra));
    EXPECT_EQ(result.exit_code, expected_exit) << shown << "\nstderr: " << result.err;
    json parsed = json::parse(result.out, nullptr, false);
    EXPECT_FALSE(parsed.is_discarded()) << shown << "printed no JSON: " << result.out;
    return parsed;
  }

  json start(const std::string& key, std::vector<std::string> command, Env extra = {},
             std::vector<std::string> flags = {}) {
    std::vector<std::string> args = {"start", "--run-key", key};
    args.insert(args.end(), flags.begin(), flags.end());
    args.push_back("--");
    args.insert(args.end(), command.begin(), command.end());
    return ratchet_json(std::move(args), std::move(extra));
  }

  json start_sync(const std::string& key, std::vector<std::string> command, Env extra = {},
                  int expected_exit = 0) {
    std::vector<std::string> args = {"start", "--run-key", key, "--sync", "--"};
    args.insert(args.end(), command.begin(), command.end());
    return ratchet_json(std::move(args), std::move(extra), expected_exit);
  }

  json status_of(const std::string& job_id, Env extra = {}) {
    return ratchet_json({"status", "--job-id", job_id}, std::move(extra));
  }

  json history(const std::string& key, Env extra = {}) {
    return ratchet_json({"status", "--run-key", key, "--all"}, std::move(extra));
  }

  // Polls `status` until the job's status is `wanted`; returns the last JSON.
  json await_status(const std::string& job_id, const std::string& wanted) {
    json last;
    eventually([&] {
      last = status_of(job_id);
      return last.value("status", "") == wanted;
    });
    return last;
  }

  // The pid of the supervisor of a RUNNING job: the parent of its command.
  int supervisor_of(const json& job) {
    auto stat = proc_stat(job["pid"].get<int>());
    return stat ? stat->ppid : 0;
  }

  std::string bin_;
  std::optional<testing::PgTestDatabase> pg_;
  std::string dir_;
  std::string home_;
};

// An error a user can see: the exit code, exactly one line on stderr, nothing
// on stdout and no trace of an exception.
inline void expect_error(const ProcessResult& result, int exit_code, const std::string& what) {
  EXPECT_EQ(result.exit_code, exit_code) << what << "\nstderr: " << result.err;
  EXPECT_EQ(count_lines(result.err), 1) << what << "\nstderr: " << result.err;
  EXPECT_TRUE(result.err.ends_with("\n")) << what;
  EXPECT_EQ(result.out, "") << what;
  for (const char* trace : {"terminate called", "what()", "std::", "Aborted", "#0 "}) {
    EXPECT_EQ(result.err.find(trace), std::string::npos) << what << ": " << result.err;
  }
}

inline const std::vector<std::string> kLongCommand = {"sleep", "300"};
inline const std::vector<std::string> kGroupCommand = {"sh", "-c", "sleep 300 & sleep 300"};

}  // namespace ratchet::jobs_test
