#include "engine/retry_log.hpp"

#include <gtest/gtest.h>

namespace ratchet::engine {
namespace {

RetryEvent failure(const std::string& id, int attempt) {
  return RetryEvent{id,
                    "fetch",
                    "http://a",
                    attempt,
                    "failed",
                    CallError{"TEMPORARY_ERROR", "503"},
                    100 * kMicrosPerMilli};
}

TEST(RetryLog, LogsFirstFailuresThenOneSummaryPerPeriodInsteadOfALinePerRetry) {
  std::vector<std::string> lines;
  RetryLog log(30 * kMicrosPerSecond, 5, [&](const std::string& line) { lines.push_back(line); });
  Micros now = 1'000 * kMicrosPerSecond;
  // 50 calls, each retried every 100 ms for 30 s: 15,000 retries.
  for (int attempt = 1; attempt <= 300; ++attempt) {
    for (int c = 0; c < 50; ++c) log.retried(failure("call-" + std::to_string(c), attempt), now);
    now += 100 * kMicrosPerMilli;
    log.flush(now);
  }
  ASSERT_EQ(lines.size(), 6u) << "5 first failures and 1 summary, not 15,000 lines";
  for (int i = 0; i < 5; ++i) {
    EXPECT_NE(lines[i].find("call call-" + std::to_string(i) + " (fetch) attempt 1 failed"),
              std::string::npos)
        << lines[i];
    EXPECT_NE(lines[i].find("ratchet status --job-id call-" + std::to_string(i)),
              std::string::npos);
  }
  EXPECT_NE(lines[5].find("14995 more retries of 50 calls to fetch at http://a in the last 30 s"),
            std::string::npos)
      << lines[5];
  EXPECT_NE(lines[5].find("TEMPORARY_ERROR: 503"), std::string::npos) << lines[5];
  EXPECT_EQ(log.next_flush(), std::nullopt);
}

RetryEvent restart(const std::string& id, const std::string& function) {
  return RetryEvent{id,
                    function,
                    "http://a",
                    2,
                    "answered INCOMPATIBLE_STATE, restarting from its input",
                    CallError{"INCOMPATIBLE_STATE", "step 5 diverged: the code now calls work"},
                    50 * kMicrosPerMilli,
                    true};
}

TEST(RetryLog, TheFirstRestartOfAFunctionHasALineOfItsOwn) {
  std::vector<std::string> lines;
  RetryLog log(30 * kMicrosPerSecond, 1, [&](const std::string& line) { lines.push_back(line); });
  log.retried(failure("a", 1), 0);  // uses the one first line of the period
  log.retried(restart("a", "fetch"), kMicrosPerSecond);
  log.retried(restart("b", "store"), kMicrosPerSecond);
  ASSERT_EQ(lines.size(), 3u) << "a function's first restart is never only counted";
  EXPECT_NE(lines[1].find("call a (fetch) attempt 2 answered INCOMPATIBLE_STATE, restarting from "
                          "its input, retrying in 50 ms: INCOMPATIBLE_STATE: step 5 diverged"),
            std::string::npos)
      << lines[1];
  EXPECT_NE(lines[2].find("call b (store)"), std::string::npos) << lines[2];
}

// A deploy that breaks a function's journals restarts every open coroutine of
// it: the first has a line, the rest a summary at most once a minute, in fake
// time; once the function is quiet for a minute, its next restart has a line.
TEST(RetryLog, AFloodOfRestartsOfAFunctionIsASummaryAMinute) {
  std::vector<std::string> lines;
  RetryLog log(30 * kMicrosPerSecond, 5, [&](const std::string& line) { lines.push_back(line); });
  Micros start = 1'000 * kMicrosPerSecond;
  Micros now = start;
  // 20 restarts a second for 150 s, flushed each second as the scheduler does.
  for (int second = 0; second < 150; ++second) {
    for (int c = 0; c < 20; ++c) {
      log.retried(restart("call-" + std::to_string(second * 20 + c), "fetch"), now);
    }
    now += kMicrosPerSecond;
    log.flush(now);
  }
  ASSERT_EQ(lines.size(), 3u) << "a line and a summary at 60 s and 120 s, not 3,000 lines";
  EXPECT_NE(lines[0].find("call call-0 (fetch)"), std::string::npos) << lines[0];
  EXPECT_NE(lines[1].find("1199 more restarts of 1199 calls of fetch from their input in the "
                          "last 60 s; the last: call call-1199: INCOMPATIBLE_STATE: step 5"),
            std::string::npos)
      << lines[1];
  EXPECT_NE(lines[2].find("1200 more restarts of 1200 calls of fetch"), std::string::npos)
      << lines[2];
  // The last 30 s are counted, and due a minute after the summary before.
  EXPECT_EQ(log.next_flush(), start + 180 * kMicrosPerSecond);
  log.flush(start + 180 * kMicrosPerSecond);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_NE(lines[3].find("600 more restarts of 600 calls of fetch"), std::string::npos)
      << lines[3];
  EXPECT_EQ(log.next_flush(), std::nullopt) << "nothing counted: no timer";

  log.retried(restart("again", "fetch"), start + 200 * kMicrosPerSecond);
  EXPECT_EQ(lines.size(), 4u) << "within a minute of the last summary: counted";
  log.flush(start + 240 * kMicrosPerSecond);
  log.flush(start + 301 * kMicrosPerSecond);
  log.retried(restart("later", "fetch"), start + 302 * kMicrosPerSecond);
  ASSERT_EQ(lines.size(), 6u);
  EXPECT_NE(lines[4].find("1 more restarts of 1 calls of fetch"), std::string::npos) << lines[4];
  EXPECT_NE(lines[5].find("call later (fetch)"), std::string::npos)
      << "a minute without restarts: a line of its own again; " << lines[5];
}

TEST(RetryLog, NothingToSayMeansNoSummaryAndNoTimer) {
  std::vector<std::string> lines;
  RetryLog log(30 * kMicrosPerSecond, 5, [&](const std::string& line) { lines.push_back(line); });
  EXPECT_EQ(log.next_flush(), std::nullopt);
  log.retried(failure("a", 1), 0);
  EXPECT_EQ(log.next_flush(), 30 * kMicrosPerSecond);
  log.flush(29 * kMicrosPerSecond);
  log.flush(30 * kMicrosPerSecond);
  EXPECT_EQ(lines.size(), 1u) << "a lone first failure needs no summary";
  EXPECT_EQ(log.next_flush(), std::nullopt);
}

}  // namespace
}  // namespace ratchet::engine
