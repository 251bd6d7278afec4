// The job runner tried from outside, as a user's script written against
// JOBS.md would call it: odd values, closed or full output streams, a relative
// state directory, a job's own PATH. Each test here failed before its fix.
#include "support/jobs_cli.hpp"

namespace ratchet::jobs_test {
namespace {

// argv run by sh with some of its standard streams redirected (`redirections`
// as sh spells them: "<&- 2>&-", ">/dev/full").
std::vector<std::string> with_streams(const std::string& redirections,
                                      std::vector<std::string> argv) {
  argv.insert(argv.begin(), {"sh", "-c", "exec \"$@\" " + redirections, "sh"});
  return argv;
}

// argv run by sh after `setup` (a shell command such as "ulimit -f 1").
std::vector<std::string> with_limit(const std::string& setup, std::vector<std::string> argv) {
  argv.insert(argv.begin(), {"sh", "-c", setup + " && exec \"$@\"", "sh"});
  return argv;
}

// ---------------------------------------------------------------------------
// Durations

TEST_F(JobsCli, DurationsTheRunnerCannotHonourAreExit2) {
  // 10^10 s overflowed the clock's nanoseconds: the job was "timed out" at once
  // and `wait` gave up at once.
  start_sync("long", {"true"});
  const std::string huge = "15000000000";
  expect_error(ratchet({"start", "--run-key", "t", "--timeout", huge, "--", "true"}), 2,
               "start --timeout " + huge);
  expect_error(
      ratchet({"start", "--run-key", "t", "--retries", "1", "--retry-delay", huge, "--", "true"}),
      2, "start --retry-delay " + huge);
  expect_error(ratchet({"wait", "--run-key", "long", "--timeout", huge}), 2, "wait --timeout");
  expect_error(ratchet({"cancel", "--run-key", "long", "--grace", huge}), 2, "cancel --grace");
  expect_error(ratchet({"list"}, {{"RATCHET_LOCK_TIMEOUT", huge}}), 2, "RATCHET_LOCK_TIMEOUT");
  // A lease renewed three times per lease: 1ms made every supervisor commit
  // a heartbeat each millisecond.
  expect_error(ratchet({"start", "--run-key", "t", "--", "true"}, {{"RATCHET_JOB_LEASE", "1ms"}}),
               2, "RATCHET_JOB_LEASE=1ms");
  auto refused = ratchet({"start", "--run-key", "t", "--timeout", huge, "--", "true"});
  EXPECT_NE(refused.err.find("longer than 36500d"), std::string::npos) << refused.err;

  // A hundred years is still a timeout that never fires.
  json century = ratchet_json(
      {"start", "--run-key", "century", "--sync", "--timeout", "36500d", "--", "sleep", "0.3"});
  EXPECT_EQ(century["status"], "SUCCEEDED") << century["error"];
}

TEST_F(JobsCli, ATimeoutIsReportedAsItWasGiven) {
  // printf's %.3g: 1.2345s was "1.23s", and an hour "3.6e+03s".
  json job = ratchet_json(
      {"start", "--run-key", "slow", "--sync", "--timeout", "1.2345s", "--", "sleep", "30"}, {}, 6);
  EXPECT_EQ(job["error"], "timed out after 1.2345s (--timeout)");
}

TEST_F(JobsCli, ALockTimeoutPastSqlitesIntWaitsForTheLock) {
  // 30 days of milliseconds overflowed SQLite's int busy timeout: exit 5 at
  // once, "locked for -1702967296 ms".
  start_sync("warm", {"true"});
  auto lock = std::make_unique<StoreLock>(db_path());
  ASSERT_TRUE(lock->locked());
  Process clean =
      spawn_ratchet({"clean", "--before", "2999-01-01"}, {{"RATCHET_LOCK_TIMEOUT", "30d"}});
  ASSERT_TRUE(eventually([&] { return sleeping(clean.pid()); }))
      << "clean did not wait for the lock: " << clean.finish(1s).err;
  lock.reset();
  ProcessResult result = clean.finish(30s);
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(json::parse(result.out, nullptr, false), json({{"deleted", 1}, {"errors", 0}}));
}

TEST_F(JobsCli, AnEmptyDurOrCwdIsExit2NotLeftOut) {
  // `--timeout "$UNSET"` ran the job without a timeout, and `--cwd ""` in
  // the caller's directory, while `--grace ""` was refused.
  start_sync("done", {"true"});
  for (std::vector<std::string> args : {
           std::vector<std::string>{"start", "--run-key", "k", "--timeout", "", "--", "true"},
           {"start", "--run-key", "k", "--timeout=", "--", "true"},
           {"start", "--run-key", "k", "--retries", "1", "--retry-delay", "", "--", "true"},
           {"start", "--run-key", "k", "--cwd", "", "--", "true"},
           {"wait", "--run-key", "done", "--timeout", ""},
           {"unlock", "--run-key", "done", "--ttl", ""},
       }) {
    std::string shown;
    for (const auto& arg : args) shown += "[" + arg + "] ";
    expect_error(ratchet(args), 2, shown);
  }
  expect_error(ratchet({"status", "--run-key", "k"}), 3, "nothing was started");
}

// ---------------------------------------------------------------------------
// clean

TEST_F(JobsCli, ACleanThatCannotDeleteTheRecordsKeepsTheirLogs) {
  // The logs were deleted first: a store locked past its timeout (or a full
  // disk) left the records, and `logs` then exited 3.
  json job = start_sync("kept", {"sh", "-c", "echo out; echo err >&2"});
  {
    StoreLock lock(db_path());
    ASSERT_TRUE(lock.locked());
    auto cleaned =
        ratchet({"clean", "--before", "2999-01-01"}, {{"RATCHET_LOCK_TIMEOUT", "200ms"}}, 20s);
    expect_error(cleaned, 5, "clean on a locked store");
  }
  EXPECT_EQ(ratchet({"logs", "--run-key", "kept"}).out, "out\n");
  EXPECT_EQ(ratchet({"logs", "--run-key", "kept", "--stream", "stderr"}).out, "err\n");

  // A clean killed between moving the logs aside and deleting the records
  // left them aside: the next one deletes them with their records.
  const std::string out = job["stdout_file"];
  const std::string left_aside = home_ + "/logs/.clean-" + fs::path(out).filename().string();
  fs::rename(out, left_aside);
  EXPECT_EQ(ratchet_json({"clean", "--before", "2999-01-01"}),
            json({{"deleted", 1}, {"errors", 0}}));
  std::vector<std::string> left;
  for (const auto& entry : fs::directory_iterator(home_ + "/logs")) {
    const std::string name = entry.path().filename();
    if (!name.starts_with(".spare-")) left.push_back(name);
  }
  EXPECT_EQ(left, std::vector<std::string>{}) << "nothing is left aside";
}

// ---------------------------------------------------------------------------
// logs

TEST_F(JobsCli, LogsOfAnAttemptNotLaunchedYetAreEmptyAndFollowWaitsForThem) {
  // During a retry's delay the key's job is the next attempt, STARTING, with no
  // log file yet: `logs` exited 3 ("missing"), and `--follow` too after 2 s.
  json first = start("delayed", {"sh", "-c", "echo run; exit 1"}, {},
                     {"--retries", "1", "--retry-delay", "120s"});
  json pending;
  ASSERT_TRUE(eventually([&] {
    pending = ratchet_json({"status", "--run-key", "delayed"});
    return pending.value("attempt_no", 0) == 2;
  })) << "no second attempt";
  ASSERT_EQ(pending["status"], "STARTING");
  auto empty = ratchet({"logs", "--run-key", "delayed"});
  EXPECT_EQ(empty.exit_code, 0) << empty.err;
  EXPECT_EQ(empty.out, "");
  EXPECT_EQ(ratchet({"logs", "--run-key", "delayed", "--stream", "stderr"}).exit_code, 0);

  // --follow waits through the delay (ended here by a cancel), then returns.
  Process follower = spawn_ratchet({"logs", "--run-key", "delayed", "--follow"});
  EXPECT_FALSE(follower.read_stdout_until("run", 300ms)) << "it printed before any run";
  ratchet_json({"cancel", "--run-key", "delayed"});
  ProcessResult followed = follower.finish(30s);
  EXPECT_EQ(followed.exit_code, 3) << "the cancelled attempt never had a log: " << followed.err;

  // And when the attempt does run, --follow prints it.
  start("soon", {"sh", "-c", "echo run; exit 1"}, {}, {"--retries", "1", "--retry-delay", "1s"});
  ASSERT_TRUE(eventually([&] {
    return ratchet_json({"status", "--run-key", "soon"}).value("attempt_no", 0) == 2;
  }));
  auto printed = ratchet({"logs", "--run-key", "soon", "--follow"});
  EXPECT_EQ(printed.exit_code, 0) << printed.err;
  EXPECT_EQ(printed.out, "run\n");
}

// ---------------------------------------------------------------------------
// start --sync

TEST_F(JobsCli, ASyncStartWhoseSupervisorIsKilledPrintsTheLostJobWithExit6) {
  // It exited 1 ("the supervisor ended before it reported") although the job
  // had ended, LOST, as `wait` says with exit 6.
  Process sync = spawn_ratchet({"start", "--run-key", "lost", "--sync", "--", "sleep", "300"});
  json running;
  ASSERT_TRUE(eventually([&] {
    auto shown = ratchet({"status", "--run-key", "lost"});
    running = json::parse(shown.out, nullptr, false);
    return shown.exit_code == 0 && running.value("status", "") == "RUNNING";
  })) << "the job did not start";
  const int supervisor = supervisor_of(running);
  ASSERT_GT(supervisor, 1);
  ASSERT_EQ(kill(supervisor, SIGKILL), 0);
  ProcessResult result = sync.finish(30s);
  EXPECT_EQ(result.exit_code, 6) << result.err;
  json job = json::parse(result.out, nullptr, false);
  ASSERT_TRUE(job.is_object()) << result.out;
  EXPECT_EQ(job["job_id"], running["job_id"]);
  EXPECT_EQ(job["status"], "LOST");
  EXPECT_EQ(job["mode"], "sync");
  EXPECT_TRUE(group_ends(running["pid"].get<int>()));
}

// ---------------------------------------------------------------------------
// cancel

TEST_F(JobsCli, ACancelItsSupervisorCannotCarryOutInTimeIsExit1) {
  // It printed the job still RUNNING, with exit 0.
  json job = start("stopped", kLongCommand);
  const int supervisor = supervisor_of(job);
  ASSERT_GT(supervisor, 1);
  ASSERT_EQ(kill(supervisor, SIGSTOP), 0);
  auto cancelled = ratchet({"cancel", "--run-key", "stopped", "--grace", "0s"});
  ASSERT_EQ(kill(supervisor, SIGCONT), 0);
  expect_error(cancelled, 1, "cancel while the supervisor is stopped");
  EXPECT_NE(cancelled.err.find("still RUNNING"), std::string::npos) << cancelled.err;
  // The cancel is recorded: the supervisor carries it out once it runs again.
  json ended = ratchet_json({"wait", "--run-key", "stopped"}, {}, 6);
  EXPECT_EQ(ended["status"], "CANCELLED");
}

// ---------------------------------------------------------------------------
// The command

TEST_F(JobsCli, AnEnvNameGivenTwiceIsSetOnceToItsLastValue) {
  // The command got both A=1 and A=2: getenv() read 1, sh read 2, and the
  // JSON said 2.
  json job = ratchet_json({"start", "--run-key", "env", "--sync", "--env", "A=1", "--env", "B=b",
                           "--env", "A=2", "--", "env"});
  EXPECT_EQ(job["env"], json({{"A", "2"}, {"B", "b"}}));
  std::istringstream lines(read_file(job["stdout_file"]));
  std::vector<std::string> settings;
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with("A=")) settings.push_back(line);
  }
  EXPECT_EQ(settings, std::vector<std::string>{"A=2"});
}

TEST_F(JobsCli, TheJobsOwnPathDecidesWhereItsCommandIsFound) {
  // The command was looked up in the caller's PATH: FAILED, 127.
  const std::string bin = dir_ + "/bin";
  fs::create_directory(bin);
  {
    std::ofstream tool(bin + "/only-here");
    tool << "#!/bin/sh\necho found in the PATH of the job\n";
  }
  fs::permissions(bin + "/only-here", fs::perms::owner_all);
  json job = ratchet_json({"start", "--run-key", "path", "--sync", "--env",
                           "PATH=" + bin + ":/usr/bin:/bin", "--", "only-here"});
  EXPECT_EQ(job["status"], "SUCCEEDED") << job["error"];
  EXPECT_EQ(read_file(job["stdout_file"]), "found in the PATH of the job\n");

  // And the caller's PATH no longer finds it.
  json missing = ratchet_json({"start", "--run-key", "path", "--sync", "--env", "PATH=/nonexistent",
                               "--", "sh", "-c", "true"},
                              {}, 6);
  EXPECT_EQ(missing["exit_code"], 127);
}

// ---------------------------------------------------------------------------
// Standard streams

TEST_F(JobsCli, StartWithClosedStdinAndStderrReportsItsJobAtOnce) {
  // The report pipe took the closed descriptors, the supervisor's /dev/null
  // replaced it, and `start` waited for the whole job, then exit 1.
  ProcessResult result = testing::run_process(
      with_streams("<&- 2>&-", argv_of({"start", "--run-key", "closed", "--", "sleep", "300"})),
      env_with({}), 20s);
  ASSERT_FALSE(result.timed_out) << "start waited for the job to end";
  EXPECT_EQ(result.exit_code, 0);
  json job = json::parse(result.out, nullptr, false);
  ASSERT_TRUE(job.is_object()) << result.out;
  EXPECT_EQ(job["status"], "RUNNING");
  EXPECT_EQ(status_of(job["job_id"])["status"], "RUNNING");
}

TEST_F(JobsCli, OutputThatCannotBeWrittenIsExit1) {
  // A full disk behind `>` gave exit 0 and an empty or cut file.
  start_sync("written", {"sh", "-c", "head -c 200000 /dev/zero"});
  for (std::vector<std::string> args : {
           std::vector<std::string>{"status", "--run-key", "written"},
           {"list"},
           {"logs", "--run-key", "written"},
           {"logs", "--run-key", "written", "--follow"},
           {"wait", "--run-key", "written"},
       }) {
    auto result = testing::run_process(with_streams(">/dev/full", argv_of(args)), env_with({}));
    expect_error(result, 1, args[0] + " into /dev/full");
    EXPECT_NE(result.err.find("cannot write to stdout"), std::string::npos) << result.err;
  }
}

TEST_F(JobsCli, AFileSizeLimitIsAOneLineErrorNotASignal) {
  // SIGXFSZ killed `clean` ("File size limit exceeded", exit 153) and the
  // supervisor of `start` ("ended before it reported").
  start_sync("warm", {"true"});  // the store is larger than the limit below
  for (std::vector<std::string> args : {
           std::vector<std::string>{"clean", "--before", "2999-01-01"},
           {"start", "--run-key", "limited", "--sync", "--", "true"},
       }) {
    auto limited = testing::run_process(with_limit("ulimit -f 1", argv_of(args)), env_with({}));
    expect_error(limited, 1, args[0] + " under ulimit -f 1");
    EXPECT_EQ(limited.err.find("supervisor"), std::string::npos) << limited.err;
  }
  EXPECT_EQ(history("warm").size(), 1u) << "nothing was deleted";
  expect_error(ratchet({"status", "--run-key", "limited"}), 3, "nothing was recorded");
}

// ---------------------------------------------------------------------------
// import

TEST_F(JobsCli, ImportRefusesAJobIdThatWouldNameAFileOutsideTheLogs) {
  // An orchesjob row with the id "../../escape" made import copy its log onto
  // (and truncate) a file two levels above Ratchet's logs/, which `clean`
  // then deleted.
  const std::string orchesjob = dir_ + "/orchesjob";
  fs::create_directories(orchesjob + "/logs");
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((orchesjob + "/orchesjob.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "CREATE TABLE jobs(job_id, run_key, worker_pid, target_pid, command, "
                         "status, exit_code, stdout_file, stderr_file, started_at, finished_at);"
                         "INSERT INTO jobs VALUES('ok', 'k', 1, 2, '[\"true\"]', 'SUCCEEDED', 0, "
                         "NULL, NULL, '2026-01-01T00:00:00+00:00', '2026-01-01T00:00:01+00:00');"
                         "INSERT INTO jobs VALUES('../../escape', 'k', 1, 2, '[\"true\"]', "
                         "'SUCCEEDED', 0, NULL, NULL, '2026-01-01T00:00:02+00:00', "
                         "'2026-01-01T00:00:03+00:00');",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  // What the id names from Ratchet's logs/ (and from orchesjob's: the same file).
  const std::string victim = home_ + "/logs/../../escape.stdout";
  fs::create_directories(home_ + "/logs");
  { std::ofstream(victim) << "someone else's file\n"; }

  auto imported = ratchet({"import", "--from-orchesjob", orchesjob});
  expect_error(imported, 1, "import of a job id with a '/'");
  EXPECT_EQ(read_file(victim), "someone else's file\n");
  expect_error(ratchet({"status", "--run-key", "k"}), 3, "nothing was imported");
}

// An orchesjob history with one good row and `bad_row` (the VALUES of an
// INSERT into its jobs table) in `dir`.
void write_orchesjob_history(const std::string& dir, const std::string& bad_row) {
  fs::create_directories(dir + "/logs");
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir + "/orchesjob.db").c_str(), &db), SQLITE_OK);
  std::string sql =
      "CREATE TABLE jobs(job_id, run_key, worker_pid, target_pid, command, status, exit_code, "
      "stdout_file, stderr_file, started_at, finished_at);"
      "CREATE TABLE run_keys(run_key, job_id, created_at);"
      "INSERT INTO jobs VALUES('good', 'good', 1, 2, '[\"true\"]', 'SUCCEEDED', 0, NULL, NULL, "
      "'2026-01-01T00:00:00+00:00', '2026-01-01T00:00:01+00:00');";
  if (!bad_row.empty()) sql += "INSERT INTO jobs VALUES(" + bad_row + ");";
  ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK) << bad_row;
  sqlite3_close(db);
}

TEST_F(JobsCli, ImportRefusesARowOrchesjobWouldNotHaveWrittenNamingIt) {
  // A time that did not parse became "now", an unknown status LOST, a text
  // exit code 0, a key-less job one of run key "".
  const std::string times = "'2026-01-02T00:00:00+00:00', '2026-01-02T00:00:01+00:00'";
  const std::vector<std::pair<std::string, std::string>> rows = {
      {"'b', 'k', 1, 2, '[\"true\"]', 'DONE', 0, NULL, NULL, " + times, "unknown status 'DONE'"},
      {"'b', 'k', 1, 2, '[\"true\"]', 'SUCCEEDED', 0, NULL, NULL, 'yesterday', NULL",
       "started_at that is not ISO 8601 ('yesterday')"},
      {"'b', 'k', 1, 2, '[\"true\"]', 'SUCCEEDED', 0, NULL, NULL, NULL, NULL", "no started_at"},
      {"'b', 'k', 1, 2, '[\"true\"]', 'FAILED', 1, NULL, NULL, "
       "'2026-01-02T00:00:00+00:00', '2026-13-45'",
       "finished_at that is not ISO 8601"},
      {"'b', 'k', 1, 2, '[\"true\"]', 'FAILED', 'abc', NULL, NULL, " + times,
       "exit_code that is not an integer"},
      {"'b', 'k', 'x', 2, '[\"true\"]', 'RUNNING', NULL, NULL, NULL, " + times,
       "pid that is not an integer"},
      {"'b', NULL, 1, 2, '[\"true\"]', 'SUCCEEDED', 0, NULL, NULL, " + times, "no run key"},
      {"'b', 'k', 1, 2, 'true', 'SUCCEEDED', 0, NULL, NULL, " + times,
       "command that is not a JSON array of strings"},
      {"42, 'k', 1, 2, '[\"true\"]', 'SUCCEEDED', 0, NULL, NULL, " + times,
       "job_id that is not text"},
  };
  for (const auto& [row, problem] : rows) {
    const std::string orchesjob = dir_ + "/orchesjob-" + std::to_string(&row - &rows[0].first);
    write_orchesjob_history(orchesjob, row);
    auto imported = ratchet({"import", "--from-orchesjob", orchesjob});
    expect_error(imported, 1, "import of " + row);
    EXPECT_NE(imported.err.find("row 2 "), std::string::npos) << imported.err;
    EXPECT_NE(imported.err.find(problem), std::string::npos) << problem << ": " << imported.err;
    EXPECT_NE(imported.err.find("nothing was imported"), std::string::npos) << imported.err;
    expect_error(ratchet({"status", "--run-key", "good"}), 3, "nothing imported with " + row);
  }
  // The same history without the bad row imports.
  write_orchesjob_history(dir_ + "/orchesjob-good", "");
  json imported = ratchet_json({"import", "--from-orchesjob", dir_ + "/orchesjob-good"});
  EXPECT_EQ(imported["imported"], 1);
  EXPECT_EQ(ratchet_json({"status", "--run-key", "good"})["status"], "SUCCEEDED");
}

TEST_F(JobsCli, ImportOfALogThatIsAFifoIsAnErrorNotAHang) {
  const std::string orchesjob = dir_ + "/orchesjob";
  write_orchesjob_history(orchesjob, "");
  ASSERT_EQ(mkfifo((orchesjob + "/logs/good.stdout").c_str(), 0600), 0);
  auto imported = ratchet({"import", "--from-orchesjob", orchesjob}, {}, 20s);
  expect_error(imported, 1, "import of a FIFO log");
  EXPECT_NE(imported.err.find("is a FIFO, not a regular file"), std::string::npos) << imported.err;
  expect_error(ratchet({"status", "--run-key", "good"}), 3, "nothing was imported");
}

// ---------------------------------------------------------------------------
// Logs that are not regular files

TEST_F(JobsCli, LogsOfAFifoOrALinkInTheLogsPlaceIsExit3NotAHang) {
  // open() of a FIFO blocks until someone writes to it: `logs` hung for good.
  json job = start_sync("fifo", {"echo", "hello"});
  const std::string path = job["stdout_file"];
  ASSERT_TRUE(fs::remove(path));
  ASSERT_EQ(mkfifo(path.c_str(), 0600), 0);
  for (std::vector<std::string> args : {std::vector<std::string>{"logs", "--run-key", "fifo"},
                                        {"logs", "--run-key", "fifo", "--follow"}}) {
    auto logs = ratchet(args, {}, 20s);
    expect_error(logs, 3, args.back());
    EXPECT_NE(logs.err.find(path + " is a FIFO, not a regular file"), std::string::npos)
        << logs.err;
  }
  // A link is not followed out of the logs directory.
  const std::string secret = dir_ + "/secret";
  { std::ofstream(secret) << "not the job's\n"; }
  ASSERT_TRUE(fs::remove(path));
  fs::create_symlink(secret, path);
  auto linked = ratchet({"logs", "--run-key", "fifo"}, {}, 20s);
  expect_error(linked, 3, "logs of a symbolic link");
  EXPECT_EQ(linked.out.find("not the job's"), std::string::npos);
}

TEST_F(JobsCli, ASpareLogReplacedByAFifoIsNotUsed) {
  // The supervisor renames a spare empty file (logs/.spare-N) into a new
  // job's log: a FIFO there became the log, and its open() blocked the
  // supervisor for good (the job STARTING, `start` waiting).
  start_sync("warm", {"true"});
  const std::string logs = home_ + "/logs";
  for (int slot = 0; slot < 4; ++slot) {
    const std::string spare = logs + "/.spare-" + std::to_string(slot);
    fs::remove(spare);
    ASSERT_EQ(mkfifo(spare.c_str(), 0600), 0);
  }
  auto started =
      ratchet({"start", "--run-key", "after", "--sync", "--", "echo", "written"}, {}, 20s);
  ASSERT_EQ(started.exit_code, 0) << started.err;
  json job = json::parse(started.out, nullptr, false);
  EXPECT_EQ(job["status"], "SUCCEEDED") << job;
  EXPECT_EQ(ratchet({"logs", "--run-key", "after"}).out, "written\n");
}

// ---------------------------------------------------------------------------
// The state directory

TEST_F(JobsCli, ARelativeRatchetHomeRecordsAbsoluteLogPaths) {
  // The logs' paths were recorded relative to the caller's directory: `logs`
  // from elsewhere found no file (exit 3), and `clean` deleted none.
  Process started =
      Process::spawn(argv_of({"start", "--run-key", "rel", "--sync", "--", "echo", "hello"}),
                     {{"RATCHET_HOME", fs::relative(home_, dir_).string()}}, dir_);
  ProcessResult result = started.finish(30s);
  ASSERT_EQ(result.exit_code, 0) << result.err;
  json job = json::parse(result.out, nullptr, false);
  EXPECT_EQ(job["stdout_file"], home_ + "/logs/" + job["job_id"].get<std::string>() + ".stdout");
  auto logs = ratchet({"logs", "--run-key", "rel"});  // from another directory
  EXPECT_EQ(logs.exit_code, 0) << logs.err;
  EXPECT_EQ(logs.out, "hello\n");
}

TEST_F(JobsCli, AStartFromADeletedDirectorySaysWhyAndToGiveCwd) {
  // "cannot read the current directory" said neither why nor what to do.
  const std::string gone = dir_ + "/gone";
  auto from_gone = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {"sh", "-c", "cd \"$0\" && rmdir \"$0\" && exec \"$@\"", gone,
                                     bin_};
    argv.insert(argv.end(), args.begin(), args.end());
    fs::create_directory(gone);
    return testing::run_process(argv, env_with({}));
  };
  auto refused = from_gone({"start", "--run-key", "k", "--", "true"});
  expect_error(refused, 1, "start from a deleted directory");
  EXPECT_NE(refused.err.find("No such file or directory (give the job one with --cwd DIR)"),
            std::string::npos)
      << refused.err;
  auto given = from_gone({"start", "--run-key", "k", "--sync", "--cwd", dir_, "--", "true"});
  EXPECT_EQ(given.exit_code, 0) << given.err;
}

TEST_F(JobsCli, TheDefaultStateDirectoryIsTheSameFromEveryDirectory) {
  // A relative XDG_STATE_HOME, or no HOME ("./.local/state/ratchet"), was
  // taken from the current directory: a script run from two directories had
  // two histories, and the second start ran a key the first was running.
  // Root's default is /var/lib/ratchet, so a user's runs as nobody.
  const bool as_root = geteuid() == 0;
  const std::string user_home = dir_ + "/user";
  for (const std::string& dir : {dir_, user_home, dir_ + "/a", dir_ + "/b"}) {
    fs::create_directories(dir);
    if (as_root) fs::permissions(dir, fs::perms::all);
  }
  auto as_user = [&](const Env& variables, std::vector<std::string> args, const std::string& cwd) {
    std::vector<std::string> argv = {"env",  "-u", "RATCHET_HOME",  "-u", "RATCHET_DB", "-u",
                                     "HOME", "-u", "XDG_STATE_HOME"};
    for (const auto& [name, value] : variables) argv.push_back(name + "=" + value);
    if (as_root) {
      argv.insert(argv.end(), {"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"});
    }
    argv.push_back(bin_);
    argv.insert(argv.end(), args.begin(), args.end());
    return Process::spawn(argv, {}, cwd).finish(30s);
  };
  if (as_root && as_user({}, {"--version"}, dir_).exit_code != 0) {
    GTEST_SKIP() << "setpriv cannot run ratchet as nobody";
  }

  const Env relative_xdg = {{"HOME", user_home}, {"XDG_STATE_HOME", "state"}};
  const std::vector<std::string> start_k = {"start", "--run-key", "k", "--", "sleep", "300"};
  auto started = as_user(relative_xdg, start_k, dir_ + "/a");
  auto again = as_user(relative_xdg, start_k, dir_ + "/b");
  as_user(relative_xdg, {"cancel", "--run-key", "k", "--grace", "0s"}, dir_ + "/a");
  as_user(relative_xdg, {"cancel", "--run-key", "k", "--grace", "0s"}, dir_ + "/b");
  ASSERT_EQ(started.exit_code, 0) << started.err;
  json job = json::parse(started.out, nullptr, false);
  ASSERT_TRUE(job.is_object()) << started.out;
  EXPECT_TRUE(
      job["stdout_file"].get<std::string>().starts_with(user_home + "/.local/state/ratchet/logs/"))
      << job["stdout_file"];
  json existing = json::parse(again.out, nullptr, false);
  EXPECT_EQ(existing.value("existing", false), true) << again.out << again.err;
  EXPECT_EQ(existing.value("job_id", ""), job["job_id"]);

  // No HOME, no RATCHET_HOME: no place that is the user's, so an error.
  auto homeless = as_user({}, {"start", "--run-key", "k", "--", "true"}, dir_ + "/a");
  expect_error(homeless, 1, "start without HOME");
  EXPECT_NE(homeless.err.find("RATCHET_HOME"), std::string::npos) << homeless.err;
  EXPECT_FALSE(fs::exists(dir_ + "/a/.local")) << "nothing is made in the current directory";
}

}  // namespace
}  // namespace ratchet::jobs_test
