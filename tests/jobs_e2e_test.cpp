// End-to-end tests of the job runner: the real `ratchet` binary (RATCHET_BIN)
// run as processes against a fresh state directory per test, checked against
// JOBS.md through its JSON output, exit codes, log files and /proc.
#include <map>
#include <regex>
#include <set>

#include "support/jobs_cli.hpp"

namespace ratchet::jobs_test {
namespace {

// ---------------------------------------------------------------------------
// Idempotency and history

TEST_F(JobsCli, StartWhileRunningReturnsTheRunningJob) {
  json first = start("nightly", kLongCommand);
  EXPECT_EQ(first["existing"], false);
  EXPECT_EQ(first["accepted"], true);
  EXPECT_EQ(first["mode"], "async");
  EXPECT_EQ(first["status"], "RUNNING");
  EXPECT_TRUE(first["pid"].is_number());

  json second = start("nightly", {"echo", "something else"});
  EXPECT_EQ(second["existing"], true);
  EXPECT_EQ(second["job_id"], first["job_id"]);
  EXPECT_EQ(second["command"], first["command"]);
  EXPECT_EQ(history("nightly").size(), 1u);
}

TEST_F(JobsCli, StartAfterEachTerminalStatusStartsANewJob) {
  std::vector<std::string> ids;
  json succeeded = start_sync("key", {"true"});
  EXPECT_EQ(succeeded["status"], "SUCCEEDED");
  ids.push_back(succeeded["job_id"]);

  json failed = start_sync("key", {"false"}, {}, 6);
  EXPECT_EQ(failed["existing"], false);
  EXPECT_EQ(failed["status"], "FAILED");
  ids.push_back(failed["job_id"]);

  json to_cancel = start("key", kLongCommand);
  EXPECT_EQ(to_cancel["existing"], false);
  ids.push_back(to_cancel["job_id"]);
  EXPECT_EQ(ratchet_json({"cancel", "--run-key", "key", "--grace", "1s"})["status"], "CANCELLED");

  json to_lose = start("key", kGroupCommand);
  EXPECT_EQ(to_lose["existing"], false);
  ids.push_back(to_lose["job_id"]);
  int supervisor = supervisor_of(to_lose);
  ASSERT_GT(supervisor, 1);
  ASSERT_EQ(kill(supervisor, SIGKILL), 0);
  ASSERT_TRUE(eventually([&] { return !alive(supervisor); }));

  // No `status` in between: `start` itself finds the job lost.
  json after_lost = start("key", {"true"});
  EXPECT_EQ(after_lost["existing"], false);
  ids.push_back(after_lost["job_id"]);
  EXPECT_EQ(status_of(to_lose["job_id"])["status"], "LOST");
  EXPECT_TRUE(group_ends(to_lose["pid"].get<int>()));

  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), 5u) << "every start made a job";
  json all = history("key");
  ASSERT_EQ(all.size(), 5u);
  for (std::size_t i = 0; i < ids.size(); ++i) {
    EXPECT_EQ(all[i]["job_id"], ids[ids.size() - 1 - i]) << "newest first, position " << i;
  }
}

TEST_F(JobsCli, HistoryIsNewestFirstAcrossATimeZoneChange) {
  const Env tokyo = {{"TZ", "Asia/Tokyo"}};
  const Env los_angeles = {{"TZ", "America/Los_Angeles"}};
  json older = start_sync("tz", {"true"}, tokyo);
  json newer = start_sync("tz", {"true"}, los_angeles);
  // The premise: as local-time strings, the older start sorts after the newer.
  ASSERT_GT(older["started_at"].get<std::string>(), newer["started_at"].get<std::string>());
  EXPECT_TRUE(older["started_at"].get<std::string>().ends_with("+09:00"));

  for (const Env& zone : {tokyo, los_angeles}) {
    json all = history("tz", zone);
    ASSERT_EQ(all.size(), 2u);
    EXPECT_EQ(all[0]["job_id"], newer["job_id"]);
    EXPECT_EQ(all[1]["job_id"], older["job_id"]);
    EXPECT_EQ(ratchet_json({"status", "--run-key", "tz"}, zone)["job_id"], newer["job_id"]);
    json listed = ratchet_json({"list"}, zone);
    ASSERT_EQ(listed.size(), 2u);
    EXPECT_EQ(listed[0]["job_id"], newer["job_id"]);
  }
  // RFC 3339 with microseconds, in the zone of the reader.
  const std::regex pacific(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}-0[78]:00)");
  json read_in_la = history("tz", los_angeles)[1];
  EXPECT_TRUE(std::regex_match(read_in_la["started_at"].get<std::string>(), pacific))
      << read_in_la["started_at"];
  EXPECT_TRUE(std::regex_match(read_in_la["finished_at"].get<std::string>(), pacific))
      << read_in_la["finished_at"];
}

TEST_F(JobsCli, ListFiltersByAStatusGivenInAnyCase) {
  json ok = start_sync("ok", {"true"});
  json bad = start_sync("bad", {"false"}, {}, 6);
  for (std::string status : {"FAILED", "failed", "Failed"}) {
    json listed = ratchet_json({"list", "--status", status});
    ASSERT_EQ(listed.size(), 1u) << status;
    EXPECT_EQ(listed[0]["job_id"], bad["job_id"]);
  }
  EXPECT_EQ(ratchet_json({"list", "--status", "succeeded"})[0]["job_id"], ok["job_id"]);
}

TEST_F(JobsCli, ListByStatusSeesAJobLostSinceItWasLastRead) {
  // A job whose supervisor died stays RUNNING in the store until a command
  // reads it: `list --status LOST` gave [] while `list` showed it LOST, and
  // `--status RUNNING --limit 1` gave [] while another job ran.
  json running = start("running", kLongCommand);
  json lost = start("lost", kLongCommand);  // the newest: what --limit 1 took
  int supervisor = supervisor_of(lost);
  ASSERT_GT(supervisor, 1);
  ASSERT_EQ(kill(supervisor, SIGKILL), 0);
  ASSERT_TRUE(eventually([&] { return !alive(supervisor); }));

  json listed_lost = ratchet_json({"list", "--status", "LOST"});
  ASSERT_EQ(listed_lost.size(), 1u) << listed_lost;
  EXPECT_EQ(listed_lost[0]["job_id"], lost["job_id"]);
  json listed_running = ratchet_json({"list", "--status", "RUNNING", "--limit", "1"});
  ASSERT_EQ(listed_running.size(), 1u) << listed_running;
  EXPECT_EQ(listed_running[0]["job_id"], running["job_id"]);
}

TEST_F(JobsCli, HundredConcurrentStartsOfOneKeyStartOneJob) {
  constexpr int kStarts = 100;
  // Long enough to outlive the slowest start (sanitizer builds start slowly):
  // a start after the job ended would rightly start a second one.
  std::set<std::string> ids;
  int existing = 0;
  for (const json& job : race({"start", "--run-key", "same", "--", "sleep", "300"}, kStarts)) {
    ids.insert(job.value("job_id", ""));
    if (job["existing"] == true) ++existing;
  }
  EXPECT_EQ(ids.size(), 1u);
  EXPECT_EQ(existing, kStarts - 1);
  EXPECT_EQ(history("same").size(), 1u);
}

// ---------------------------------------------------------------------------
// Crashes: a dead supervisor, a dead `start`

TEST_F(JobsCli, KilledSupervisorMakesTheJobLostWithNothingLeftRunning) {
  json job = start("crash", kGroupCommand);
  ASSERT_EQ(job["status"], "RUNNING");
  const int pgid = job["pid"].get<int>();
  ASSERT_TRUE(eventually([&] { return live_group_members(pgid).size() >= 2; }))
      << "the command and its background child";
  int supervisor = supervisor_of(job);
  ASSERT_GT(supervisor, 1);
  ASSERT_NE(supervisor, getpid());

  ASSERT_EQ(kill(supervisor, SIGKILL), 0);
  ASSERT_TRUE(eventually([&] { return !alive(supervisor); }));

  json lost = status_of(job["job_id"]);
  EXPECT_EQ(lost["status"], "LOST");
  EXPECT_TRUE(lost["error"].is_string());
  EXPECT_TRUE(group_ends(pgid)) << "the command and its grandchild are gone";

  json rerun = start("crash", kLongCommand);
  EXPECT_EQ(rerun["existing"], false);
  EXPECT_NE(rerun["job_id"], job["job_id"]);
  EXPECT_EQ(rerun["status"], "RUNNING");
  EXPECT_TRUE(group_ends(pgid)) << "the new job overlaps nothing of the old";
  EXPECT_FALSE(live_group_members(rerun["pid"].get<int>()).empty());
}

TEST_F(JobsCli, SupervisorKilledAfterCommitLeavesALostJobNotABlockedKey) {
  auto killed = ratchet({"start", "--run-key", "fault", "--", "true"},
                        {{"RATCHET_TEST_FAULT", "after-commit"}});
  expect_error(killed, 1, "start whose supervisor died before reporting");

  json lost = ratchet_json({"status", "--run-key", "fault"});
  EXPECT_EQ(lost["status"], "LOST");
  EXPECT_TRUE(lost["error"].is_string());
  EXPECT_TRUE(lost["finished_at"].is_string());

  json rerun = start_sync("fault", {"true"});
  EXPECT_EQ(rerun["existing"], false);
  EXPECT_NE(rerun["job_id"], lost["job_id"]);
  EXPECT_EQ(rerun["status"], "SUCCEEDED");
}

TEST_F(JobsCli, StartKilledBeforeItsSupervisorReportsLeavesTheJobToRunOnce) {
  const std::string marker = dir_ + "/ran";
  auto killed =
      ratchet({"start", "--run-key", "orphan", "--", "sh", "-c", "echo x >> \"$0\"", marker},
              {{"RATCHET_TEST_FAULT", "start-after-fork"}});
  ASSERT_EQ(killed.term_signal, SIGKILL) << "the fault point was not reached: " << killed.err;
  // The supervisor carries on alone: the job is recorded and runs to its end.
  ASSERT_TRUE(eventually([&] {
    return ratchet({"status", "--run-key", "orphan"}).exit_code == 0;
  })) << "the job was never recorded";
  json ended = ratchet_json({"wait", "--run-key", "orphan"});
  EXPECT_EQ(ended["status"], "SUCCEEDED");
  EXPECT_EQ(read_file(marker), "x\n");
  EXPECT_EQ(history("orphan").size(), 1u);
}

// ---------------------------------------------------------------------------
// cancel and --timeout

TEST_F(JobsCli, CancelEndsTheWholeProcessGroup) {
  json job = start("group", kGroupCommand);
  const int pgid = job["pid"].get<int>();
  ASSERT_TRUE(eventually([&] { return live_group_members(pgid).size() >= 2; }));

  json cancelled = ratchet_json({"cancel", "--job-id", job["job_id"], "--grace", "5s"});
  EXPECT_EQ(cancelled["status"], "CANCELLED");
  EXPECT_EQ(cancelled["signal"], "SIGTERM");
  EXPECT_TRUE(cancelled["finished_at"].is_string());
  EXPECT_TRUE(live_group_members(pgid).empty());
  EXPECT_EQ(status_of(job["job_id"])["status"], "CANCELLED");
}

TEST_F(JobsCli, CancelSigkillsAGroupThatIgnoresSigtermAfterTheGrace) {
  json job = start("stubborn", {"sh", "-c", "trap '' TERM; sleep 300 & sleep 300"});
  const int pgid = job["pid"].get<int>();
  ASSERT_TRUE(eventually([&] { return live_group_members(pgid).size() >= 2; }));

  json cancelled = ratchet_json({"cancel", "--run-key", "stubborn", "--grace", "500ms"});
  EXPECT_EQ(cancelled["status"], "CANCELLED");
  EXPECT_EQ(cancelled["signal"], "SIGKILL");
  EXPECT_TRUE(live_group_members(pgid).empty());
}

TEST_F(JobsCli, CancelOfAnEndedJobExits4) {
  json job = start_sync("done", {"true"});
  auto result = ratchet({"cancel", "--job-id", job["job_id"]});
  expect_error(result, 4, "cancel of a SUCCEEDED job");
  EXPECT_EQ(status_of(job["job_id"])["status"], "SUCCEEDED");
}

TEST_F(JobsCli, TimeoutEndsTheJobFailedWithTheReason) {
  json job = ratchet_json(
      {"start", "--run-key", "slow", "--sync", "--timeout", "300ms", "--", "sleep", "30"}, {}, 6);
  EXPECT_EQ(job["status"], "FAILED");
  ASSERT_TRUE(job["error"].is_string());
  EXPECT_NE(job["error"].get<std::string>().find("timeout"), std::string::npos) << job["error"];
  EXPECT_DOUBLE_EQ(job["timeout_seconds"].get<double>(), 0.3);
}

// ---------------------------------------------------------------------------
// clean

TEST_F(JobsCli, CleanDeletesOnlyTerminalJobsFinishedBeforeTheCutoff) {
  const Env tokyo = {{"TZ", "Asia/Tokyo"}};
  const Env los_angeles = {{"TZ", "America/Los_Angeles"}};
  json a = start_sync("a", {"sh", "-c", "echo a; echo a >&2"}, tokyo);
  json b = start_sync("b", {"false"}, tokyo, 6);
  json c = start_sync("c", {"true"}, tokyo);
  json running = start("r", kLongCommand, tokyo);
  auto expect_clean = [&](const std::string& before, const Env& zone, int deleted) {
    json counts = ratchet_json({"clean", "--before", before}, zone);
    EXPECT_EQ(counts, json({{"deleted", deleted}, {"errors", 0}})) << "--before " << before;
  };
  auto exists = [&](const json& job) {
    return ratchet({"status", "--job-id", job["job_id"]}).exit_code == 0;
  };

  // A local date-time without offset, in Tokyo time: b started after a ended.
  std::string b_started = b["started_at"];
  ASSERT_TRUE(b_started.ends_with("+09:00"));
  expect_clean(b_started.substr(0, b_started.size() - 6), tokyo, 1);
  EXPECT_FALSE(exists(a));
  EXPECT_FALSE(fs::exists(a["stdout_file"].get<std::string>()));
  EXPECT_FALSE(fs::exists(a["stderr_file"].get<std::string>()));
  EXPECT_TRUE(exists(b));
  EXPECT_TRUE(fs::exists(b["stderr_file"].get<std::string>()));

  // A date-time with an offset, read in another zone.
  expect_clean(c["started_at"], los_angeles, 1);
  EXPECT_FALSE(exists(b));
  EXPECT_TRUE(exists(c));

  // A date alone is local midnight: tomorrow's covers everything that ended.
  expect_clean(next_day(c["finished_at"]), tokyo, 1);
  EXPECT_FALSE(exists(c));
  EXPECT_FALSE(fs::exists(c["stdout_file"].get<std::string>()));

  // Never a running job, whatever the cutoff.
  expect_clean("2999-12-31T23:59:59+00:00", tokyo, 0);
  json still = status_of(running["job_id"]);
  EXPECT_EQ(still["status"], "RUNNING");
  EXPECT_TRUE(fs::exists(still["stdout_file"].get<std::string>()));
}

TEST_F(JobsCli, CleanDryRunListsOnStderrAndChangesNothing) {
  json a = start_sync("a", {"echo", "a"});
  // One line per job, whatever its key holds (a newline split it in two).
  json b = start_sync("b\nsecond line", {"false"}, {}, 6);
  json running = start("r", kLongCommand);

  auto dry = ratchet({"clean", "--before", "2999-01-01", "--dry-run"});
  ASSERT_EQ(dry.exit_code, 0) << dry.err;
  EXPECT_EQ(json::parse(dry.out), json({{"deleted", 2}, {"errors", 0}}));
  EXPECT_EQ(count_lines(dry.err), 2) << dry.err;
  EXPECT_NE(dry.err.find("(run key \"b\\nsecond line\", FAILED"), std::string::npos) << dry.err;
  EXPECT_NE(dry.err.find(a["job_id"].get<std::string>()), std::string::npos);
  EXPECT_NE(dry.err.find(b["job_id"].get<std::string>()), std::string::npos);
  EXPECT_EQ(dry.err.find(running["job_id"].get<std::string>()), std::string::npos);

  EXPECT_EQ(status_of(a["job_id"])["status"], "SUCCEEDED");
  EXPECT_EQ(status_of(b["job_id"])["status"], "FAILED");
  EXPECT_TRUE(fs::exists(a["stdout_file"].get<std::string>()));
  EXPECT_TRUE(fs::exists(b["stderr_file"].get<std::string>()));

  EXPECT_EQ(ratchet_json({"clean", "--before", "2999-01-01"}),
            json({{"deleted", 2}, {"errors", 0}}));
  EXPECT_FALSE(fs::exists(a["stdout_file"].get<std::string>()));
}

// ---------------------------------------------------------------------------
// logs

TEST_F(JobsCli, LogsPrintTheRawBytesOfEitherStream) {
  // NUL, 0xFF, an invalid UTF-8 sequence, and no newline at the end.
  json job =
      start_sync("bytes", {"sh", "-c", "printf 'a\\000b\\377\\303\\n c'; printf 'e\\001rr' >&2"});
  auto out = ratchet({"logs", "--job-id", job["job_id"]});
  EXPECT_EQ(out.exit_code, 0) << out.err;
  EXPECT_EQ(out.out, std::string("a\0b\xff\xc3\n c", 8));
  auto err = ratchet({"logs", "--run-key", "bytes", "--stream", "stderr"});
  EXPECT_EQ(err.exit_code, 0) << err.err;
  EXPECT_EQ(err.out, std::string("e\001rr"));
}

TEST_F(JobsCli, LogsFollowPrintsEverythingAndReturnsWhenTheJobEnds) {
  const std::string go = dir_ + "/go";
  json job = start("follow",
                   {"sh", "-c",
                    "printf first; while [ ! -e \"$GO\" ]; do sleep 0.01; done; "
                    "printf second; printf third >&1"},
                   {}, {"--env", "GO=" + go});
  ASSERT_EQ(job["status"], "RUNNING");
  Process follower = spawn_ratchet({"logs", "--run-key", "follow", "--follow"});
  ASSERT_TRUE(follower.read_stdout_until("first", 10s));
  // Written only after `logs --follow` is already following.
  std::ofstream(go).put('x');
  ProcessResult followed = follower.finish(20s);
  EXPECT_FALSE(followed.timed_out) << "--follow did not return when the job ended";
  EXPECT_EQ(followed.exit_code, 0) << followed.err;
  EXPECT_EQ(followed.out, "firstsecondthird");
  EXPECT_EQ(status_of(job["job_id"])["status"], "SUCCEEDED");
}

// ---------------------------------------------------------------------------
// --sync and wait

TEST_F(JobsCli, SyncStartExits0OnSuccessAnd6OtherwiseWithTheEnd) {
  json ok = start_sync("ok", {"sh", "-c", "sleep 0.1; exit 0"});
  EXPECT_EQ(ok["mode"], "sync");
  EXPECT_EQ(ok["status"], "SUCCEEDED");
  EXPECT_EQ(ok["exit_code"], 0);
  EXPECT_TRUE(ok["finished_at"].is_string());

  json bad = start_sync("bad", {"sh", "-c", "sleep 0.1; exit 3"}, {}, 6);
  EXPECT_EQ(bad["status"], "FAILED");
  EXPECT_EQ(bad["exit_code"], 3);
  EXPECT_EQ(bad["error"], "exited with code 3");

  json killed = start_sync("killed", {"sh", "-c", "kill -9 $$"}, {}, 6);
  EXPECT_EQ(killed["status"], "FAILED");
  EXPECT_TRUE(killed["exit_code"].is_null());
  EXPECT_EQ(killed["signal"], "SIGKILL");

  // --sync on a key whose job another start owns waits for that job's end.
  // The job ends only once the joining start is waiting on its supervisor (it
  // holds a pidfd of it): a job that ended first would let the join start anew.
  const std::string gate = dir_ + "/owned.fifo";
  ASSERT_EQ(mkfifo(gate.c_str(), 0600), 0);
  json owned = start("owned", {"sh", "-c", "read line < \"$0\"; exit 4", gate});
  Process joiner = spawn_ratchet({"start", "--run-key", "owned", "--sync", "--", "true"});
  ASSERT_TRUE(eventually([&] { return holds_pidfd(joiner.pid()); }, 30s))
      << "the joining start never waited on the owned job";
  // RUNNING means its shell was exec'd, not that it has opened the gate yet: a
  // non-blocking open for writing succeeds once it has (a loaded machine runs
  // the shell late).
  int writer = -1;
  ASSERT_TRUE(
      eventually([&] { return (writer = open(gate.c_str(), O_WRONLY | O_NONBLOCK)) >= 0; }, 30s))
      << "the owned job never read its gate: " << std::strerror(errno);
  ASSERT_EQ(write(writer, "go\n", 3), 3);
  close(writer);
  ProcessResult joined_result = joiner.finish();
  EXPECT_EQ(joined_result.exit_code, 6) << joined_result.err;
  json joined = json::parse(joined_result.out, nullptr, false);
  EXPECT_EQ(joined["existing"], true);
  EXPECT_EQ(joined["job_id"], owned["job_id"]);
  EXPECT_EQ(joined["status"], "FAILED");
  EXPECT_EQ(joined["exit_code"], 4);
}

TEST_F(JobsCli, WaitExits0Or6WhenTheJobEndsAnd1OnItsTimeout) {
  json ok = start("ok", {"sh", "-c", "sleep 0.2"});
  json bad = start("bad", {"sh", "-c", "sleep 0.2; exit 5"});
  json waited_ok = ratchet_json({"wait", "--job-id", ok["job_id"]});
  EXPECT_EQ(waited_ok["status"], "SUCCEEDED");
  json waited_bad = ratchet_json({"wait", "--run-key", "bad"}, {}, 6);
  EXPECT_EQ(waited_bad["status"], "FAILED");
  EXPECT_EQ(waited_bad["exit_code"], 5);

  json slow = start("slow", kLongCommand);
  auto timed_out = ratchet({"wait", "--run-key", "slow", "--timeout", "200ms"});
  expect_error(timed_out, 1, "wait --timeout on a long job");
  EXPECT_EQ(status_of(slow["job_id"])["status"], "RUNNING");
}

// ---------------------------------------------------------------------------
// Launch failures

TEST_F(JobsCli, MissingCommandFailsWith127AndTheReason) {
  json job = start_sync("missing", {"ratchet-e2e-no-such-command"}, {}, 6);
  EXPECT_EQ(job["status"], "FAILED");
  EXPECT_EQ(job["exit_code"], 127);
  ASSERT_TRUE(job["error"].is_string());
  const std::string error = job["error"];
  EXPECT_NE(error.find("ratchet-e2e-no-such-command"), std::string::npos) << error;
  EXPECT_NE(read_file(job["stderr_file"]).find(error), std::string::npos);
  auto logged = ratchet({"logs", "--run-key", "missing", "--stream", "stderr"});
  EXPECT_NE(logged.out.find(error), std::string::npos);
}

TEST_F(JobsCli, NonExecutableFileFailsWith126) {
  const std::string script = dir_ + "/script.sh";
  std::ofstream(script) << "#!/bin/sh\necho hi\n";
  ASSERT_EQ(chmod(script.c_str(), 0644), 0);
  json job = start_sync("noexec", {script}, {}, 6);
  EXPECT_EQ(job["status"], "FAILED");
  EXPECT_EQ(job["exit_code"], 126);
  ASSERT_TRUE(job["error"].is_string());
  EXPECT_NE(read_file(job["stderr_file"]).find(job["error"].get<std::string>()), std::string::npos);
}

// ---------------------------------------------------------------------------
// Exit codes and error messages

TEST_F(JobsCli, UnusableStateDirectoryExits1) {
  const std::string file = dir_ + "/not-a-directory";
  std::ofstream(file) << "x";
  for (auto args : std::vector<std::vector<std::string>>{
           {"status", "--run-key", "k"}, {"start", "--run-key", "k", "--", "true"}, {"list"}}) {
    auto result = testing::run_process(argv_of(args), {{"RATCHET_HOME", file}});
    expect_error(result, 1, args[0] + " with RATCHET_HOME on a regular file");
  }
}

TEST_F(JobsCli, InvalidArgumentsExit2) {
  const std::vector<std::vector<std::string>> cases = {
      {"start", "--run-key", "k", "--bogus"},
      {"start", "--bogus", "--run-key", "k", "--", "true"},
      {"status", "--run-key", "k", "--bogus"},
      {"start", "--run-key", "k"},
      {"start", "--run-key", "k", "--"},
      {"start", "--", "true"},
      {"clean", "--before", "yesterday"},
      {"clean", "--before", "2026-02-30"},
      {"clean"},
      {"start", "--run-key", "k", "--timeout", "5parsecs", "--", "true"},
      {"cancel", "--run-key", "k", "--grace", "-1s"},
      {"wait", "--run-key", "k", "--timeout", "soon"},
      {"logs", "--run-key", "k", "--stream", "stdin"},
      {"status"},
      {"status", "--run-key", "k", "--job-id", "j"},
      {"logs", "--follow"},
      {"cancel", "--grace", "1s"},
      {"cancel", "--run-key", "k", "--grace", "1s", "--grace-seconds", "2"},
      {"abort", "--run-key", "k", "--grace-seconds", "soon"},
      {"start", "--run-key", "k", "--retries", "-1", "--", "true"},
      {"start", "--run-key", "k", "--retries", "2", "--retry-delay", "soon", "--", "true"},
      {"unlock", "--run-key", "k", "--ttl", "0s"},
      {"unlock", "--ttl", "1h"},
      {"rerun", "--sync"},
      {"import"},
      {"list", "--status", "bogus"},
      {"frobnicate"},
  };
  for (const auto& args : cases) {
    std::string shown;
    for (const auto& arg : args) shown += arg + " ";
    expect_error(ratchet(args), 2, shown);
  }
  EXPECT_EQ(ratchet_json({"list"}), json::array()) << "no invalid start made a job";

  auto typo = ratchet({"stats", "--run-key", "k"});
  expect_error(typo, 2, "ratchet stats");
  EXPECT_NE(typo.err.find("did you mean 'status'"), std::string::npos) << typo.err;

  // After --, a leading dash is the command's, not an unknown flag.
  json dashed = start_sync("dash", {"-x"}, {}, 6);
  EXPECT_EQ(dashed["command"], json({"-x"}));
  EXPECT_EQ(dashed["exit_code"], 127);
}

TEST_F(JobsCli, UnknownJobKeyOrMissingLogExits3) {
  expect_error(ratchet({"status", "--job-id", "no-such-id"}), 3, "status of an unknown id");
  expect_error(ratchet({"status", "--run-key", "no-such-key"}), 3, "status of an unknown key");
  expect_error(ratchet({"status", "--run-key", "no-such-key", "--all"}), 3, "status --all");
  expect_error(ratchet({"wait", "--run-key", "no-such-key"}), 3, "wait on an unknown key");
  expect_error(ratchet({"cancel", "--job-id", "no-such-id"}), 3, "cancel of an unknown id");
  expect_error(ratchet({"logs", "--run-key", "no-such-key"}), 3, "logs of an unknown key");

  json job = start_sync("logged", {"echo", "hello"});
  ASSERT_TRUE(fs::remove(job["stdout_file"].get<std::string>()));
  expect_error(ratchet({"logs", "--job-id", job["job_id"]}), 3, "logs with the file deleted");
  auto other_stream = ratchet({"logs", "--job-id", job["job_id"], "--stream", "stderr"});
  EXPECT_EQ(other_stream.exit_code, 0) << "the stderr log is still there";
}

TEST_F(JobsCli, LockedStoreExits5) {
  start_sync("warm", {"true"});  // creates the store
  StoreLock lock(db_path());
  ASSERT_TRUE(lock.locked());
  const Env short_wait = {{"RATCHET_LOCK_TIMEOUT", "200ms"}};
  auto result = ratchet({"start", "--run-key", "k", "--", "true"}, short_wait, 20s);
  expect_error(result, 5, "start on a locked store");
  auto cleaned = ratchet({"clean", "--before", "2999-01-01"}, short_wait, 20s);
  expect_error(cleaned, 5, "clean on a locked store");
}

TEST_F(JobsCli, HelpOfEverySubcommandExits0) {
  for (std::string name : {"start", "status", "logs", "clean", "cancel", "abort", "wait", "list",
                           "unlock", "rerun", "import"}) {
    auto result = ratchet({name, "--help"});
    EXPECT_EQ(result.exit_code, 0) << name << ": " << result.err;
    EXPECT_NE(result.out.find("--"), std::string::npos) << name << " --help shows its options";
    EXPECT_EQ(result.err, "") << name;
  }
  auto top = ratchet({"--help"});
  EXPECT_EQ(top.exit_code, 0);
  EXPECT_NE(top.out.find("clean"), std::string::npos);
}

// ---------------------------------------------------------------------------
// --env and --cwd

TEST_F(JobsCli, EnvAndCwdReachTheCommandAndAreRecorded) {
  const std::string work = dir_ + "/work dir";
  fs::create_directory(work);
  json job = ratchet_json({"start", "--run-key", "env", "--sync", "--env", "GREETING=hello",
                           "--env", "PAIR=a=b", "--cwd", work, "--", "sh", "-c",
                           "printf '%s|%s|%s' \"$GREETING\" \"$PAIR\" \"$(pwd -P)\""});
  EXPECT_EQ(job["status"], "SUCCEEDED");
  EXPECT_EQ(read_file(job["stdout_file"]), "hello|a=b|" + work);
  EXPECT_EQ(job["cwd"], work);
  EXPECT_EQ(job["env"], json({{"GREETING", "hello"}, {"PAIR", "a=b"}}));
  json shown = status_of(job["job_id"]);
  EXPECT_EQ(shown["cwd"], work);
  EXPECT_EQ(shown["env"], job["env"]);
}

TEST_F(JobsCli, JobsTakeTheirLogFilesFromAReserveOfEmptyOnes) {
  auto spares = [&] {
    std::map<ino_t, std::string> found;
    for (const auto& entry : fs::directory_iterator(home_ + "/logs")) {
      const std::string name = entry.path().filename();
      if (!name.starts_with(".spare-")) continue;
      struct stat info {};
      if (stat(entry.path().c_str(), &info) == 0) found[info.st_ino] = name;
    }
    return found;
  };
  start_sync("first", {"true"});
  // Made once `start` had its answer.
  ASSERT_TRUE(eventually([&] { return spares().size() == 4; })) << spares().size();
  for (const auto& entry : fs::directory_iterator(home_ + "/logs")) {
    struct stat info {};
    ASSERT_EQ(stat(entry.path().c_str(), &info), 0);
    EXPECT_EQ(info.st_mode & 0777, 0600u) << entry.path();
  }
  auto reserve = spares();
  json second = start_sync("second", {"sh", "-c", "echo out; echo err >&2"});
  for (const std::string stream : {"stdout_file", "stderr_file"}) {
    struct stat info {};
    ASSERT_EQ(stat(second[stream].get<std::string>().c_str(), &info), 0);
    EXPECT_TRUE(reserve.count(info.st_ino)) << stream << " was created, not taken from the reserve";
  }
  EXPECT_EQ(read_file(second["stdout_file"]), "out\n");
  EXPECT_EQ(read_file(second["stderr_file"]), "err\n");
  // A job's logs are its own; `clean` leaves the reserve alone.
  EXPECT_EQ(ratchet_json({"clean", "--before", "2999-01-01"})["deleted"], 2);
  ASSERT_TRUE(eventually([&] { return spares().size() == 4; }));
}

TEST_F(JobsCli, TheCommandGetsDefaultSignalsWhateverItsCallerIgnored) {
  // The caller ignores SIGINT and SIGQUIT (as a shell's background job does);
  // the supervisor itself ignores SIGHUP and SIGPIPE.
  auto result = testing::run_process(
      {"sh", "-c",
       "trap '' INT QUIT; exec \"$0\" start --run-key sig --sync -- cat /proc/self/status", bin_},
      env_with({}));
  ASSERT_EQ(result.exit_code, 0) << result.err;
  json job = json::parse(result.out);
  std::string status = read_file(job["stdout_file"]);
  auto line = status.find("SigIgn:");
  ASSERT_NE(line, std::string::npos) << status;
  EXPECT_EQ(status.substr(line, status.find('\n', line) - line), "SigIgn:\t0000000000000000");
}

TEST_F(JobsCli, StateDirectoryIsCreatedPrivateOnFirstUse) {
  ASSERT_FALSE(fs::exists(home_));
  start_sync("first", {"true"});
  for (const std::string& dir : {home_, home_ + "/logs"}) {
    struct stat info {};
    ASSERT_EQ(stat(dir.c_str(), &info), 0) << dir;
    EXPECT_TRUE(S_ISDIR(info.st_mode)) << dir;
    EXPECT_EQ(info.st_mode & 0777, 0700u) << dir;
  }
  EXPECT_TRUE(fs::exists(db_path()));
}

}  // namespace
}  // namespace ratchet::jobs_test
