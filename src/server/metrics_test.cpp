#include "server/metrics.hpp"

#include <gtest/gtest.h>

namespace ratchet::server {
namespace {

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos || text.rfind(line + "\n", 0) == 0;
}

TEST(PrometheusText, NamesEveryFigureWithItsLabels) {
  engine::SchedulerFigures f;
  f.calls_ended[{"greet", "SUCCEEDED"}] = 3;
  f.calls_ended[{"a\"b\\c\nd", "FAILED"}] = 1;
  f.queue_depth["greet"] = 42;
  f.attempts = 7;
  f.retries = 2;
  f.in_flight = 5;
  f.endpoints.push_back({"http://127.0.0.1:8000", 5, 16});
  std::string text = prometheus_text(f);
  EXPECT_TRUE(
      has_line(text, "ratchet_calls_ended_total{function=\"greet\",status=\"SUCCEEDED\"} 3"))
      << text;
  EXPECT_TRUE(
      has_line(text, "ratchet_calls_ended_total{function=\"a\\\"b\\\\c\\nd\",status=\"FAILED\"} 1"))
      << "label values are escaped";
  EXPECT_TRUE(has_line(text, "ratchet_queue_depth{function=\"greet\"} 42"));
  EXPECT_TRUE(has_line(text, "ratchet_attempts_total 7"));
  EXPECT_TRUE(has_line(text, "ratchet_retries_total 2"));
  EXPECT_TRUE(has_line(text, "ratchet_endpoint_in_flight{endpoint=\"http://127.0.0.1:8000\"} 5"));
  EXPECT_TRUE(has_line(text, "ratchet_endpoint_limit{endpoint=\"http://127.0.0.1:8000\"} 16"));
  EXPECT_TRUE(has_line(text, "# TYPE ratchet_commit_seconds histogram"));
}

// Function names are the clients' choice: past kMaxEndedFunctions names, a
// new one counts under "(other)", while the names already counted go on.
TEST(PrometheusText, CallsEndedKeepsAThousandFunctionsAndCountsTheRestAsOther) {
  engine::SchedulerFigures f;
  const std::size_t cap = engine::SchedulerFigures::kMaxEndedFunctions;
  for (std::size_t i = 0; i < cap; ++i) {
    f.count_ended("f" + std::to_string(i), "SUCCEEDED", 1);
    f.count_ended("f" + std::to_string(i), "FAILED", 1);  // a second status, the same name
  }
  f.count_ended("f0", "SUCCEEDED", 2);
  f.count_ended("late", "SUCCEEDED", 1);
  f.count_ended("later", "SUCCEEDED", 3);
  f.count_ended("late", "FAILED", 1);
  EXPECT_EQ(f.calls_ended.size(), 2 * cap + 2);
  std::string text = prometheus_text(f);
  EXPECT_TRUE(has_line(text, "ratchet_calls_ended_total{function=\"f0\",status=\"SUCCEEDED\"} 3"))
      << "a function counted before the cap goes on counting";
  EXPECT_TRUE(
      has_line(text, "ratchet_calls_ended_total{function=\"(other)\",status=\"SUCCEEDED\"} 4"));
  EXPECT_TRUE(
      has_line(text, "ratchet_calls_ended_total{function=\"(other)\",status=\"FAILED\"} 1"));
  EXPECT_EQ(text.find("function=\"late"), std::string::npos);
}

TEST(PrometheusText, HistogramBucketsAreCumulativeWithInfAndCount) {
  engine::SchedulerFigures f;
  f.turn_size.observe(1);
  f.turn_size.observe(3);
  f.turn_size.observe(100'000);
  std::string text = prometheus_text(f);
  EXPECT_TRUE(has_line(text, "ratchet_turn_size_bucket{le=\"1\"} 1")) << text;
  EXPECT_TRUE(has_line(text, "ratchet_turn_size_bucket{le=\"5\"} 2"));
  EXPECT_TRUE(has_line(text, "ratchet_turn_size_bucket{le=\"5000\"} 2"));
  EXPECT_TRUE(has_line(text, "ratchet_turn_size_bucket{le=\"+Inf\"} 3"));
  EXPECT_TRUE(has_line(text, "ratchet_turn_size_count 3"));
  EXPECT_TRUE(has_line(text, "ratchet_turn_size_sum 100004"));
}

}  // namespace
}  // namespace ratchet::server
