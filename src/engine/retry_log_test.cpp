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

TEST(RetryLog, EveryRestartFromTheInputHasALineOfItsOwn) {
  std::vector<std::string> lines;
  RetryLog log(30 * kMicrosPerSecond, 1, [&](const std::string& line) { lines.push_back(line); });
  log.retried(failure("a", 1), 0);  // uses the one first line of the period
  RetryEvent diverged{"a",
                      "fetch",
                      "http://a",
                      2,
                      "answered INCOMPATIBLE_STATE, restarting from its input",
                      CallError{"INCOMPATIBLE_STATE", "step 5 diverged: the code now calls work"},
                      50 * kMicrosPerMilli,
                      true};
  log.retried(diverged, kMicrosPerSecond);
  diverged.call_id = "b";
  log.retried(diverged, kMicrosPerSecond);
  ASSERT_EQ(lines.size(), 3u) << "a restart is never only counted";
  EXPECT_NE(lines[1].find("call a (fetch) attempt 2 answered INCOMPATIBLE_STATE, restarting from "
                          "its input, retrying in 50 ms: INCOMPATIBLE_STATE: step 5 diverged"),
            std::string::npos)
      << lines[1];
  EXPECT_NE(lines[2].find("call b (fetch)"), std::string::npos) << lines[2];
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
