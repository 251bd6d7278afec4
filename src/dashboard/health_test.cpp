#include "dashboard/health.hpp"

#include <gtest/gtest.h>

namespace ratchet::dashboard {
namespace {

engine::SchedulerFigures ended(std::uint64_t succeeded, std::uint64_t failed) {
  engine::SchedulerFigures figures;
  figures.calls_ended[{"greet", "SUCCEEDED"}] = succeeded;
  figures.calls_ended[{"greet", "FAILED"}] = failed;
  return figures;
}

TEST(SchedulerHealth, RatesAreTheCountersChangeOverTheWindow) {
  SchedulerHealth health(60 * kMicrosPerSecond);
  health.read(ended(100, 0), 0);
  auto shown = health.read(ended(150, 50), 10 * kMicrosPerSecond);
  EXPECT_EQ(shown["window_seconds"], 10.0);
  EXPECT_DOUBLE_EQ(shown["calls_per_second"].get<double>(), 10.0) << "100 calls in 10 s";
  EXPECT_DOUBLE_EQ(shown["error_rate"].get<double>(), 0.5);
}

TEST(SchedulerHealth, OldSamplesLeaveTheWindow) {
  SchedulerHealth health(60 * kMicrosPerSecond);
  health.read(ended(0, 0), 0);
  health.read(ended(600, 600), 60 * kMicrosPerSecond);
  // The burst before the window's start no longer counts: 60 calls in 60 s.
  auto shown = health.read(ended(660, 600), 120 * kMicrosPerSecond);
  EXPECT_EQ(shown["window_seconds"], 60.0);
  EXPECT_DOUBLE_EQ(shown["calls_per_second"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(shown["error_rate"].get<double>(), 0.0);
}

TEST(SchedulerHealth, ShowsTheGaugesAsTheyAre) {
  SchedulerHealth health;
  engine::SchedulerFigures figures;
  figures.queue_depth["greet"] = 7;
  figures.endpoints.push_back({"http://a", 3, 12});
  figures.commit_seconds.observe(0.003);
  figures.commit_seconds.observe(0.004);
  auto shown = health.read(figures, 0);
  EXPECT_EQ(shown["queue_by_function"][0]["name"], "greet");
  EXPECT_EQ(shown["queue_by_function"][0]["count"], 7);
  EXPECT_EQ(shown["endpoints"][0]["endpoint"], "http://a");
  EXPECT_EQ(shown["endpoints"][0]["in_flight"], 3);
  EXPECT_EQ(shown["endpoints"][0]["limit"], 12);
  EXPECT_DOUBLE_EQ(shown["commit_p99_seconds"].get<double>(), 0.005) << "its bucket's bound";
  EXPECT_DOUBLE_EQ(shown["calls_per_second"].get<double>(), 0.0) << "no time has passed";
}

TEST(SchedulerHealth, QuantileOfAnEmptyHistogramIsZero) {
  engine::Histogram empty({1, 2});
  EXPECT_EQ(histogram_quantile(empty, 0.99), 0.0);
  engine::Histogram over({1, 2});
  over.observe(10);
  EXPECT_EQ(histogram_quantile(over, 0.99), 2.0) << "+Inf shows the largest bound";
}

}  // namespace
}  // namespace ratchet::dashboard
