// End-to-end tests of what orchestrators use the job runner for (issue 13):
// run-once keys and unlocks, reruns, retries, lineage, cancel reasons, and
// the fixes around run keys and file modes. Real `ratchet` processes, as in
// jobs_e2e_test.cpp.
#include <sys/mount.h>
#include <sys/wait.h>

#include <set>

#include "common/byte_text.hpp"
#include "support/jobs_cli.hpp"

namespace ratchet::jobs_test {
namespace {

class JobsOrchestration : public JobsCli {
 protected:
  // A command that fails until its `n`th run: it counts its runs in a file.
  std::vector<std::string> succeeds_on_run(int n) {
    counter_ = dir_ + "/runs";
    return {"sh", "-c",
            "n=$(($(cat \"$0\" 2>/dev/null || echo 0) + 1)); echo $n > \"$0\"; "
            "echo \"run $n\"; [ $n -ge " +
                std::to_string(n) + " ]",
            counter_};
  }

  std::string counter_;
};

// ---------------------------------------------------------------------------
// Run-once keys (--strict) and unlock

TEST_F(JobsOrchestration, StrictKeyRunsOnceAcrossFiftyRacingStarts) {
  const std::string marker = dir_ + "/ran";
  // A command that ends at once: later starts come after it has ended, and
  // only --strict keeps them from running it again.
  std::set<std::string> ids;
  int started = 0;
  for (const json& job : race(
           {"start", "--run-key", "once", "--strict", "--", "sh", "-c", "echo x >> \"$0\"", marker},
           50)) {
    EXPECT_EQ(job["strict"], true);
    EXPECT_EQ(job["strict_override_used"], false);
    ids.insert(job.value("job_id", ""));
    bool new_job = job["existing"] == false;
    started += new_job ? 1 : 0;
    EXPECT_EQ(job["accepted"], new_job) << "only the start that ran it is accepted";
  }
  EXPECT_EQ(started, 1);
  EXPECT_EQ(ids.size(), 1u);
  ratchet_json({"wait", "--run-key", "once"});
  EXPECT_EQ(read_file(marker), "x\n") << "the command ran exactly once";
  EXPECT_EQ(history("once").size(), 1u);
}

TEST_F(JobsOrchestration, EveryStartShowsStrictAndStrictOverrideUsed) {
  json plain = start_sync("plain", {"true"});
  EXPECT_EQ(plain["strict"], false);
  EXPECT_EQ(plain["strict_override_used"], false);
  EXPECT_EQ(plain["accepted"], true);
  json strict =
      ratchet_json({"start", "--run-key", "strict", "--strict", "--sync", "--", "false"}, {}, 6);
  EXPECT_EQ(strict["strict"], true);
  EXPECT_EQ(strict["strict_override_used"], false);
  EXPECT_EQ(strict["existing"], false);
  // A strict start of a used key gives the job's real outcome with --sync.
  json again =
      ratchet_json({"start", "--run-key", "strict", "--strict", "--sync", "--", "true"}, {}, 6);
  EXPECT_EQ(again["existing"], true);
  EXPECT_EQ(again["accepted"], false);
  EXPECT_EQ(again["job_id"], strict["job_id"]);
  EXPECT_EQ(again["status"], "FAILED");
}

TEST_F(JobsOrchestration, UnlockLetsTheNextStrictStartRunOnceWithItsReason) {
  const std::vector<std::string> strict = {"start",  "--run-key", "k",   "--strict",
                                           "--sync", "--",        "true"};
  json first = ratchet_json(strict);
  json unlocked =
      ratchet_json({"unlock", "--run-key", "k", "--reason", "upstream data fixed", "--ttl", "1h"});
  EXPECT_EQ(unlocked["unlocked"], true);
  EXPECT_EQ(unlocked["job_id"], first["job_id"]);
  EXPECT_EQ(unlocked["reason"], "upstream data fixed");
  EXPECT_TRUE(unlocked["expires_at"].is_string());

  json second = ratchet_json(strict);
  EXPECT_EQ(second["existing"], false);
  EXPECT_EQ(second["accepted"], true);
  EXPECT_EQ(second["strict_override_used"], true);
  EXPECT_EQ(second["rerun_reason"], "upstream data fixed");
  EXPECT_EQ(second["attempt_no"], 2);
  EXPECT_EQ(second["rerun_of_job_id"], first["job_id"]);
  EXPECT_EQ(status_of(second["job_id"])["strict_override_used"], true);

  json third = ratchet_json(strict);
  EXPECT_EQ(third["existing"], true) << "locked again after one run";
  EXPECT_EQ(third["accepted"], false);
  EXPECT_EQ(third["job_id"], second["job_id"]);
  EXPECT_EQ(history("k").size(), 2u);
}

TEST_F(JobsOrchestration, AnUnlockNotUsedWithinItsTtlLapses) {
  ratchet_json({"start", "--run-key", "k", "--strict", "--sync", "--", "true"});
  constexpr auto kTtl = 300ms;
  json unlocked = ratchet_json({"unlock", "--run-key", "k", "--ttl", "300ms"});
  // The unlock was recorded before `unlock` returned, so it has expired once
  // its TTL has passed since then: the event waited for is the clock.
  auto expired = std::chrono::steady_clock::now() + kTtl + 1ms;
  ASSERT_TRUE(unlocked["expires_at"].is_string());
  std::this_thread::sleep_until(expired);
  json refused = ratchet_json({"start", "--run-key", "k", "--strict", "--", "true"});
  EXPECT_EQ(refused["existing"], true);
  EXPECT_EQ(refused["accepted"], false);
  EXPECT_EQ(refused["strict_override_used"], false);
  EXPECT_EQ(history("k").size(), 1u);
}

TEST_F(JobsOrchestration, UnlockAndRerunRefuseAnActiveJobWith4AndAnUnknownOneWith3) {
  json live = start("busy", kLongCommand);
  for (std::string command : {"unlock", "rerun"}) {
    auto refused = ratchet({command, "--run-key", "busy"});
    expect_error(refused, 4, command + " of a running job");
    EXPECT_NE(refused.err.find("Cannot " + command + " active job"), std::string::npos)
        << refused.err;
    expect_error(ratchet({command, "--run-key", "never-ran"}), 3, command + " of an unknown key");
  }
  expect_error(ratchet({"rerun", "--job-id", "no-such-job"}), 3, "rerun of an unknown job");
  EXPECT_EQ(status_of(live["job_id"])["status"], "RUNNING");
  EXPECT_EQ(history("busy").size(), 1u);
}

// ---------------------------------------------------------------------------
// rerun and lineage

TEST_F(JobsOrchestration, RerunRunsTheCommandAgainWithItsCwdEnvAndTimeout) {
  const std::string work = dir_ + "/work";
  fs::create_directory(work);
  json first =
      ratchet_json({"start", "--run-key", "report", "--sync", "--cwd", work, "--env", "MODE=full",
                    "--timeout", "1h", "--", "sh", "-c", "printf '%s %s' \"$MODE\" \"$(pwd -P)\""});
  // Started from elsewhere, with another environment: the job's own are used.
  json again = ratchet_json({"rerun", "--run-key", "report", "--sync", "--reason", "bad input"},
                            {{"MODE", "partial"}});
  EXPECT_EQ(again["existing"], false);
  EXPECT_EQ(again["status"], "SUCCEEDED");
  EXPECT_EQ(read_file(again["stdout_file"]), "full " + work);
  EXPECT_EQ(again["command"], first["command"]);
  EXPECT_EQ(again["cwd"], work);
  EXPECT_EQ(again["env"], json({{"MODE", "full"}}));
  EXPECT_EQ(again["timeout_seconds"], 3600.0);
  EXPECT_EQ(again["run_key"], "report");
  EXPECT_EQ(again["started_by"], "rerun");
  EXPECT_EQ(again["rerun_of_job_id"], first["job_id"]);
  EXPECT_EQ(again["rerun_reason"], "bad input");
  EXPECT_EQ(again["attempt_no"], 2);

  // By id: the job named, even when it is not the newest.
  json older = ratchet_json({"rerun", "--job-id", first["job_id"], "--sync"});
  EXPECT_EQ(older["rerun_of_job_id"], first["job_id"]);
  EXPECT_EQ(older["attempt_no"], 3);
  EXPECT_TRUE(older["rerun_reason"].is_null());

  json all = history("report");
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0]["attempt_no"], 3);
  EXPECT_EQ(all[2]["attempt_no"], 1);
  EXPECT_TRUE(all[2]["rerun_of_job_id"].is_null());
}

TEST_F(JobsOrchestration, EachJobOfAKeyFollowsThePreviousOne) {
  json a = start_sync("k", {"true"});
  json b = start_sync("k", {"false"}, {}, 6);
  json c = start_sync("k", {"true"});
  EXPECT_EQ(a["attempt_no"], 1);
  EXPECT_TRUE(a["rerun_of_job_id"].is_null());
  EXPECT_EQ(b["attempt_no"], 2);
  EXPECT_EQ(b["rerun_of_job_id"], a["job_id"]);
  EXPECT_EQ(c["attempt_no"], 3);
  EXPECT_EQ(c["rerun_of_job_id"], b["job_id"]);
  EXPECT_EQ(c["started_by"], "start");
  json all = history("k");
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0]["attempt_no"], 3);
  EXPECT_EQ(all[1]["rerun_of_job_id"], a["job_id"]);
}

// ---------------------------------------------------------------------------
// Retries

TEST_F(JobsOrchestration, RetriesEndSucceededOnTheThirdAttempt) {
  std::vector<std::string> args = {"start", "--run-key",     "flaky", "--sync", "--retries",
                                   "5",     "--retry-delay", "10ms",  "--"};
  for (const auto& arg : succeeds_on_run(3)) args.push_back(arg);
  json last = ratchet_json(args);
  EXPECT_EQ(last["status"], "SUCCEEDED");
  EXPECT_EQ(last["attempt_no"], 3);
  EXPECT_EQ(last["started_by"], "retry");
  EXPECT_EQ(last["retries"], 5);
  EXPECT_EQ(read_file(counter_), "3\n");

  json all = history("flaky");
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0]["job_id"], last["job_id"]);
  EXPECT_EQ(all[0]["rerun_of_job_id"], all[1]["job_id"]);
  EXPECT_EQ(all[1]["rerun_of_job_id"], all[2]["job_id"]);
  EXPECT_EQ(all[2]["started_by"], "start");
  for (int i = 0; i < 3; ++i) {
    const json& attempt = all[2 - i];
    EXPECT_EQ(attempt["attempt_no"], i + 1);
    EXPECT_EQ(attempt["status"], i == 2 ? "SUCCEEDED" : "FAILED");
    EXPECT_EQ(attempt["exit_code"], i == 2 ? 0 : 1);
    // Each attempt has its own logs.
    EXPECT_EQ(read_file(attempt["stdout_file"]), "run " + std::to_string(i + 1) + "\n");
  }
}

TEST_F(JobsOrchestration, RetriesEndFailedAfterTheLastOne) {
  json last = ratchet_json({"start", "--run-key", "broken", "--sync", "--retries", "2",
                            "--retry-delay", "10ms", "--", "sh", "-c", "echo try; exit 3"},
                           {}, 6);
  EXPECT_EQ(last["status"], "FAILED");
  EXPECT_EQ(last["exit_code"], 3);
  EXPECT_EQ(last["attempt_no"], 3) << "the first run and 2 retries";
  json all = history("broken");
  ASSERT_EQ(all.size(), 3u);
  for (const auto& attempt : all) {
    EXPECT_EQ(attempt["status"], "FAILED");
    EXPECT_EQ(read_file(attempt["stdout_file"]), "try\n");
  }
}

TEST_F(JobsOrchestration, WaitOnTheKeyFollowsRetriesToTheLastAttempt) {
  std::vector<std::string> command = succeeds_on_run(2);
  std::vector<std::string> args = {"start", "--run-key",     "later", "--retries",
                                   "3",     "--retry-delay", "10ms",  "--"};
  args.insert(args.end(), command.begin(), command.end());
  json first = ratchet_json(args);
  EXPECT_EQ(first["attempt_no"], 1);
  json waited = ratchet_json({"wait", "--run-key", "later"});
  EXPECT_EQ(waited["status"], "SUCCEEDED");
  EXPECT_EQ(waited["attempt_no"], 2);
  // By id, `wait` waits for that job only.
  json just_first = ratchet_json({"wait", "--job-id", first["job_id"]}, {}, 6);
  EXPECT_EQ(just_first["job_id"], first["job_id"]);
  EXPECT_EQ(just_first["status"], "FAILED");
}

TEST_F(JobsOrchestration, LogsFollowOnTheKeyPrintsEveryAttemptToTheLast) {
  // `logs --run-key K --follow` returned when the first attempt ended, while
  // the key's job ran on (and `wait --run-key` waited for the last).
  const std::string go = dir_ + "/go";
  // Run 1 waits for `go` (at most 30 s), so the follower is on it; run 3 succeeds.
  std::vector<std::string> command = {
      "sh", "-c",
      "n=$(($(cat \"$0\" 2>/dev/null || echo 0) + 1)); echo $n > \"$0\"; echo \"run $n\"; "
      "i=0; while [ $n -eq 1 ] && [ ! -e \"$1\" ] && [ $i -lt 300 ]; do sleep 0.1; "
      "i=$((i+1)); done; [ $n -ge 3 ]",
      dir_ + "/runs", go};
  std::vector<std::string> args = {"start", "--run-key",     "chain", "--retries",
                                   "3",     "--retry-delay", "10ms",  "--"};
  args.insert(args.end(), command.begin(), command.end());
  json first = ratchet_json(args);
  Process follower = spawn_ratchet({"logs", "--run-key", "chain", "--follow"});
  ASSERT_TRUE(follower.read_stdout_until("run 1\n", 30s)) << follower.stdout_so_far();
  std::ofstream(go).put('\n');
  ProcessResult followed = follower.finish(60s);
  EXPECT_EQ(followed.exit_code, 0) << followed.err;
  EXPECT_EQ(followed.out, "run 1\nrun 2\nrun 3\n");
  EXPECT_EQ(ratchet_json({"wait", "--run-key", "chain"})["attempt_no"], 3);
  // By id, --follow prints that attempt only.
  auto just_first = ratchet({"logs", "--job-id", first["job_id"], "--follow"});
  EXPECT_EQ(just_first.out, "run 1\n");
}

TEST_F(JobsOrchestration, ACancelledJobIsNotRetried) {
  json job = ratchet_json({"start", "--run-key", "stop", "--retries", "3", "--retry-delay", "10ms",
                           "--", "sleep", "300"});
  json cancelled = ratchet_json(
      {"cancel", "--run-key", "stop", "--grace", "5s", "--reason", "wrong parameters"});
  EXPECT_EQ(cancelled["status"], "CANCELLED");
  EXPECT_EQ(cancelled["cancel_reason"], "wrong parameters");
  EXPECT_TRUE(cancelled["cancelled_at"].is_string());
  EXPECT_NE(cancelled["error"].get<std::string>().find("wrong parameters"), std::string::npos);
  int supervisor = supervisor_pid_of(job["job_id"]);
  ASSERT_TRUE(eventually([&] { return !alive(supervisor); })) << "the supervisor retried";
  EXPECT_EQ(history("stop").size(), 1u);
}

TEST_F(JobsOrchestration, CancelDuringARetryDelayEndsTheChain) {
  // A command that cannot be launched fails before it is ever RUNNING: that
  // failure is what the async start reports, while the retry waits its hour,
  // holding the key.
  json first = ratchet_json({"start", "--run-key", "wait", "--retries", "3", "--retry-delay", "1h",
                             "--", "ratchet-e2e-no-such-command"});
  EXPECT_EQ(first["status"], "FAILED");
  EXPECT_EQ(first["exit_code"], 127);
  json pending = ratchet_json({"status", "--run-key", "wait"});
  EXPECT_EQ(pending["status"], "STARTING");
  EXPECT_EQ(pending["attempt_no"], 2);
  EXPECT_EQ(pending["rerun_of_job_id"], first["job_id"]);
  EXPECT_EQ(start("wait", {"true"})["existing"], true) << "the key is held between attempts";

  json cancelled = ratchet_json({"cancel", "--run-key", "wait"});
  EXPECT_EQ(cancelled["job_id"], pending["job_id"]);
  EXPECT_EQ(cancelled["status"], "CANCELLED");
  int supervisor = supervisor_pid_of(pending["job_id"]);
  ASSERT_TRUE(eventually([&] { return !alive(supervisor); }))
      << "the supervisor left its delay when the retry was cancelled";
  EXPECT_EQ(history("wait").size(), 2u);
}

// ---------------------------------------------------------------------------
// cancel --reason and abort

TEST_F(JobsOrchestration, AbortIsCancelWithGraceSecondsAndAReason) {
  json job = start("group", kGroupCommand);
  const int pgid = job["pid"].get<int>();
  ASSERT_TRUE(eventually([&] { return live_group_members(pgid).size() >= 2; }));
  json aborted = ratchet_json(
      {"abort", "--job-id", job["job_id"], "--grace-seconds", "2", "--reason", "maintenance"});
  EXPECT_EQ(aborted["status"], "CANCELLED");
  EXPECT_EQ(aborted["cancel_reason"], "maintenance");
  EXPECT_TRUE(aborted["cancelled_at"].is_string());
  EXPECT_TRUE(live_group_members(pgid).empty());
  json shown = status_of(job["job_id"]);
  EXPECT_EQ(shown["cancel_reason"], "maintenance");
  EXPECT_EQ(shown["cancelled_at"], aborted["cancelled_at"]);
  expect_error(ratchet({"abort", "--job-id", job["job_id"]}), 4, "abort of a cancelled job");
}

// ---------------------------------------------------------------------------
// status --job-id --all, run keys, file modes

TEST_F(JobsOrchestration, StatusJobIdAllGivesThatJob) {
  json a = start_sync("k", {"true"});
  start_sync("k", {"true"});
  json shown = ratchet_json({"status", "--job-id", a["job_id"], "--all"});
  ASSERT_TRUE(shown.is_object()) << shown;
  EXPECT_EQ(shown["job_id"], a["job_id"]);
}

TEST_F(JobsOrchestration, AnEmptyRunKeyIsExit2EvenWrittenWithEquals) {
  for (auto args : std::vector<std::vector<std::string>>{
           {"start", "--run-key=", "--sync", "--", "true"},
           {"start", "--run-key", "", "--", "true"},
           {"status", "--run-key="},
           {"status", "--run-key", ""},
           {"unlock", "--run-key="},
           {"rerun", "--run-key=", "--sync"},
       }) {
    std::string shown;
    for (const auto& arg : args) shown += arg + " ";
    expect_error(ratchet(args), 2, shown);
  }
  EXPECT_EQ(ratchet_json({"list"}), json::array()) << "nothing ran, under any key";
  // `--name=` with a value still works, and an empty --reason= is no reason.
  json job = ratchet_json({"start", "--run-key=eq", "--sync", "--", "true"});
  EXPECT_EQ(job["run_key"], "eq");
  json rerun = ratchet_json({"rerun", "--run-key=eq", "--reason=", "--sync"});
  EXPECT_TRUE(rerun["rerun_reason"].is_null());
}

TEST_F(JobsOrchestration, ARunKeyThatIsNotUtf8RoundTrips) {
  const std::string key = "nightly-\xff\xfe-\xc3";
  json job = start_sync(key, {"true"});
  const std::string shown = job["run_key"];
  EXPECT_EQ(shown.find("\xef\xbf\xbd"), std::string::npos) << "not replaced by U+FFFD";
  // The key as JSON shows it finds the job, and so do its raw bytes.
  EXPECT_EQ(ratchet_json({"status", "--run-key", shown})["job_id"], job["job_id"]);
  EXPECT_EQ(ratchet_json({"status", "--run-key", key})["job_id"], job["job_id"]);
  EXPECT_EQ(history(shown).size(), 1u);
  json listed = ratchet_json({"list"});
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0]["run_key"], shown);
  // A second start under the shown key is the same key.
  EXPECT_EQ(start_sync(shown, {"true"})["attempt_no"], 2);
  // Unknown keys are named in the same form.
  auto missing = ratchet({"status", "--run-key", "x\xff"});
  expect_error(missing, 3, "an unknown key");
  EXPECT_EQ(missing.err.find("\xff"), std::string::npos) << "the message is valid UTF-8";
}

TEST_F(JobsOrchestration, StoreAndLogsArePrivateWhateverTheUmask) {
  for (mode_t caller : {0000, 0022, 0277}) {
    SCOPED_TRACE("umask " + std::to_string(caller));
    std::error_code ignored;
    fs::remove_all(home_, ignored);
    mode_t saved = umask(caller);
    json job = start_sync("k", {"sh", "-c", "umask; echo secret >&2"});
    umask(saved);
    EXPECT_EQ(job["status"], "SUCCEEDED");
    std::vector<std::string> files = {job["stdout_file"], job["stderr_file"]};
    if (!on_postgres())
      files.insert(files.end(), {db_path(), db_path() + "-wal", db_path() + "-shm"});
    for (const std::string& file : files) {
      struct stat info {};
      ASSERT_EQ(stat(file.c_str(), &info), 0) << file;
      EXPECT_EQ(info.st_mode & 0777, 0600u) << file;
    }
    for (const std::string& dir : {home_, home_ + "/logs"}) {
      struct stat info {};
      ASSERT_EQ(stat(dir.c_str(), &info), 0) << dir;
      EXPECT_EQ(info.st_mode & 0777, 0700u) << dir;
    }
    // The command itself gets the caller's umask.
    char expected[8];
    std::snprintf(expected, sizeof expected, "%04o\n", caller);
    EXPECT_EQ(read_file(job["stdout_file"]), expected);
  }
}

// ---------------------------------------------------------------------------
// ratchet import --from-orchesjob

// An orchesjob 1.0 state directory written by tests/data/make-orchesjob-home.sh.
std::string make_orchesjob_home(const std::string& dir, const std::string& live_pid = "") {
  auto made = testing::run_process(
      {"sh", std::string(RATCHET_TESTS_DIR) + "/data/make-orchesjob-home.sh", dir, live_pid});
  EXPECT_EQ(made.exit_code, 0) << made.err;
  return dir;
}

TEST_F(JobsOrchestration, ImportCopiesAnOrchesjobHistoryOnce) {
  const std::string orchesjob = make_orchesjob_home(dir_ + "/orchesjob");
  const Env tokyo = {{"TZ", "Asia/Tokyo"}};
  json imported = ratchet_json({"import", "--from-orchesjob", orchesjob});
  EXPECT_EQ(imported["imported"], 6);
  EXPECT_EQ(imported["skipped"], 0);
  EXPECT_EQ(imported["lost"], 1);
  EXPECT_EQ(imported["logs_copied"], 5);

  json nightly = history("nightly", tokyo);
  ASSERT_EQ(nightly.size(), 2u);
  EXPECT_EQ(nightly[0]["job_id"], "oj-nightly-2");
  EXPECT_EQ(nightly[0]["status"], "FAILED");
  EXPECT_EQ(nightly[0]["exit_code"], 3);
  EXPECT_EQ(nightly[0]["attempt_no"], 2);
  EXPECT_EQ(nightly[0]["rerun_of_job_id"], "oj-nightly-1");
  EXPECT_EQ(nightly[0]["started_by"], "import");
  EXPECT_EQ(nightly[1]["command"], json({"/usr/local/bin/backup.sh", "--full"}));
  EXPECT_EQ(nightly[1]["started_at"], "2026-01-01T02:00:00.000001+09:00");
  EXPECT_EQ(nightly[1]["finished_at"], "2026-01-01T02:05:42.654321+09:00");
  EXPECT_EQ(ratchet({"logs", "--job-id", "oj-nightly-1"}).out, "backup done\n");
  EXPECT_EQ(ratchet({"logs", "--run-key", "nightly", "--stream", "stderr"}).out,
            "disk quota exceeded\n");

  json launch_failure = status_of("oj-report-1");
  EXPECT_EQ(launch_failure["status"], "FAILED");
  EXPECT_TRUE(launch_failure["exit_code"].is_null()) << "-1 is orchesjob's failed launch";
  EXPECT_NE(launch_failure["error"].get<std::string>().find("launched"), std::string::npos);
  expect_error(ratchet({"logs", "--job-id", "oj-report-1"}), 3, "a log orchesjob never wrote");
  json cancelled = status_of("oj-report-2");
  EXPECT_EQ(cancelled["status"], "CANCELLED");
  EXPECT_EQ(cancelled["signal"], "SIGTERM") << "-15: Python's signal 15";
  json stale = status_of("oj-stale-1");
  EXPECT_EQ(stale["status"], "LOST") << "left RUNNING by an orchesjob that is gone";
  EXPECT_TRUE(stale["finished_at"].is_string());
  EXPECT_EQ(status_of("oj-named-1")["run_key"], "named") << "named by run_keys only";

  // Importing again changes nothing.
  json again = ratchet_json({"import", "--from-orchesjob", orchesjob});
  EXPECT_EQ(again["imported"], 0);
  EXPECT_EQ(again["skipped"], 6);
  EXPECT_EQ(ratchet_json({"list"}).size(), 6u);
  // Ratchet's own next job of the key follows the imported ones.
  json next = start_sync("nightly", {"true"});
  EXPECT_EQ(next["attempt_no"], 3);
  EXPECT_EQ(next["rerun_of_job_id"], "oj-nightly-2");
}

// A key is switched over once: its orchesjob history is older than what
// Ratchet ran for it, and imported after, it would become the key's newest
// job (numbered after Ratchet's). Refused, with nothing copied, logs included.
TEST_F(JobsOrchestration, ImportIntoAKeyRatchetHasRunIsRefusedAndCopiesNothing) {
  const std::string orchesjob = make_orchesjob_home(dir_ + "/orchesjob");
  json ran = start_sync("nightly", {"true"});
  auto refused = ratchet({"import", "--from-orchesjob", orchesjob});
  expect_error(refused, 4, "import into a key Ratchet has run");
  EXPECT_NE(refused.err.find("'nightly'"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find(ran["job_id"].get<std::string>()), std::string::npos) << refused.err;
  EXPECT_EQ(ratchet_json({"list"}).size(), 1u) << "nothing was imported";
  EXPECT_EQ(history("nightly")[0]["job_id"], ran["job_id"]);
  for (const auto& entry : fs::directory_iterator(home_ + "/logs")) {
    EXPECT_EQ(entry.path().filename().string().rfind("oj-", 0), std::string::npos)
        << "a log copied for a job not imported: " << entry.path();
  }
}

TEST_F(JobsOrchestration, ImportIsRefusedWhileAnOrchesjobJobRuns) {
  Process worker = Process::spawn({"sleep", "300"});
  const std::string orchesjob =
      make_orchesjob_home(dir_ + "/orchesjob", std::to_string(worker.pid()));
  auto refused = ratchet({"import", "--from-orchesjob", orchesjob});
  expect_error(refused, 4, "import while an orchesjob job runs");
  EXPECT_NE(refused.err.find("oj-live-1"), std::string::npos) << refused.err;
  EXPECT_EQ(ratchet_json({"list"}), json::array()) << "nothing was imported";
  kill(worker.pid(), SIGKILL);
  worker.finish();
  EXPECT_EQ(ratchet_json({"import", "--from-orchesjob", orchesjob})["imported"], 7);
}

TEST_F(JobsOrchestration, ImportReadsOnlyTheDirectoryItIsGiven) {
  const std::string orchesjob = make_orchesjob_home(dir_ + "/orchesjob");
  const Env home = {{"ORCHESJOB_HOME", orchesjob}};
  expect_error(ratchet({"import"}, home), 2, "import without --from-orchesjob");
  expect_error(ratchet({"import", "--from-orchesjob", dir_ + "/nowhere"}, home), 3,
               "import of a directory without orchesjob.db");
  EXPECT_EQ(ratchet_json({"list"}), json::array());
}

// ---------------------------------------------------------------------------
// What the supervisor cannot do, and the wall clock

TEST_F(JobsOrchestration, AnAttemptWhoseLogCannotBeOpenedFailsSayingSoWithoutRunning) {
  // Its output went to /dev/null and the job SUCCEEDED as if nothing was
  // amiss. The retry's log path is known while it waits out its delay: a
  // directory put there makes it unopenable, even for root.
  json first = start("nolog", succeeds_on_run(2), {}, {"--retries", "1", "--retry-delay", "8s"});
  json retry;
  ASSERT_TRUE(eventually([&] {
    retry = history("nolog");
    return retry.size() == 2 && retry[0]["status"] == "STARTING";
  })) << retry;
  const std::string path = retry[0]["stdout_file"];
  ASSERT_TRUE(fs::create_directory(path));
  json ended = ratchet_json({"wait", "--run-key", "nolog"}, {}, 6);
  EXPECT_EQ(ended["job_id"], retry[0]["job_id"]);
  EXPECT_EQ(ended["status"], "FAILED");
  EXPECT_EQ(ended["exit_code"], nullptr);
  const std::string error = ended["error"];
  EXPECT_NE(error.find("cannot open its stdout log (" + path + " is a directory"),
            std::string::npos)
      << error;
  EXPECT_NE(error.find("the command was not run"), std::string::npos) << error;
  EXPECT_EQ(read_file(counter_), "1\n");  // run once, by the first attempt
  auto stderr_log = ratchet({"logs", "--run-key", "nolog", "--stream", "stderr"});
  EXPECT_EQ(stderr_log.out, "ratchet: " + error + "\n");
}

TEST_F(JobsOrchestration, TheNewestJobOfAKeyIsTheLastStartedEvenAfterTheClockSteppedBack) {
  // "Newest" was the greatest started_at: after the wall clock stepped back,
  // `status --run-key` showed the job before, and `start` numbered the next
  // job after that one.
  json first = start_sync("stepped", {"true"});
  json second = start_sync("stepped", {"false"}, {}, 6);
  // As if the clock had stepped back an hour between the two starts.
  const std::string earlier = "started_at = started_at - 3600000000";
  if (on_postgres()) {
    ASSERT_TRUE(pg_->number("WITH moved AS (UPDATE runs SET " + earlier + " WHERE id = '" +
                            second["job_id"].get<std::string>() +
                            "' RETURNING 1) SELECT count(*) FROM moved")
                    .is_ok());
  } else {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(db_path().c_str(), &db), SQLITE_OK);
    std::string sql =
        "UPDATE runs SET " + earlier + " WHERE id = '" + second["job_id"].get<std::string>() + "'";
    EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
  }
  EXPECT_EQ(ratchet_json({"status", "--run-key", "stepped"})["job_id"], second["job_id"]);
  json all = history("stepped");
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0]["job_id"], second["job_id"]);
  EXPECT_EQ(all[1]["job_id"], first["job_id"]);
  json third = start_sync("stepped", {"true"});
  EXPECT_EQ(third["attempt_no"], 3);
  EXPECT_EQ(third["rerun_of_job_id"], second["job_id"]);
  EXPECT_EQ(ratchet_json({"status", "--run-key", "stepped"})["job_id"], third["job_id"]);
}

// ---------------------------------------------------------------------------
// Bytes that are not UTF-8

TEST_F(JobsOrchestration, ANonUtf8CommandCwdAndEnvAreShownLosslesslyAndRunWithTheirBytes) {
  // A cwd was shown with U+FFFD (the JSON lost which bytes it was), and a
  // command argument or --env value killed the supervisor before it recorded
  // the job (the store's JSON refused the bytes): exit 1.
  const std::string odd = "caf\xe9-\xff";  // Latin-1 bytes, not UTF-8
  const std::string cwd = dir_ + "/" + odd;
  fs::create_directories(cwd);
  json in_dir =
      ratchet_json({"start", "--run-key", "bytes2", "--sync", "--cwd", cwd, "--env", "ODD=" + odd,
                    "--", "sh", "-c", "printf %s \"$0\" > out; printf %s \"$ODD\" > env", odd});
  EXPECT_EQ(read_file(cwd + "/out"), odd);  // the command ran with its exact bytes
  EXPECT_EQ(read_file(cwd + "/env"), odd);
  EXPECT_EQ(text_to_bytes(in_dir["env"]["ODD"].get<std::string>()), odd);
  const std::string shown = in_dir["command"][3];
  EXPECT_EQ(shown, bytes_to_text(odd));
  EXPECT_EQ(text_to_bytes(shown), odd);
  EXPECT_EQ(shown.find("\xef\xbf\xbd"), std::string::npos) << "U+FFFD in " << shown;
  EXPECT_EQ(text_to_bytes(in_dir["cwd"].get<std::string>()), cwd);
  // rerun runs the recorded bytes, not the text shown.
  fs::remove(cwd + "/out");
  ratchet_json({"rerun", "--run-key", "bytes2", "--sync"});
  EXPECT_EQ(read_file(cwd + "/out"), odd);
}

}  // namespace
}  // namespace ratchet::jobs_test
