#include "engine/endpoint_limits.hpp"

#include <gtest/gtest.h>

namespace ratchet::engine {
namespace {

using protocol::DispatchStatus;

EndpointReply http(int status) {
  EndpointReply reply;
  reply.responded = true;
  reply.http_status = status;
  return reply;
}

// Sends `n` calls to `e` and answers them all with `signal`.
void window(EndpointLimits& limits, const std::string& e, int n, LoadSignal signal) {
  std::vector<std::uint64_t> tickets;
  for (int i = 0; i < n; ++i) tickets.push_back(limits.sent(e));
  for (auto ticket : tickets) {
    limits.answered(e);
    limits.observed(e, ticket, signal);
  }
}

TEST(EndpointLimits, OverloadIsThrottledOr429Or503OrNoAnswer) {
  EXPECT_EQ(load_signal(http(200), DispatchStatus::kThrottled), LoadSignal::kOverloaded);
  EXPECT_EQ(load_signal(http(429), DispatchStatus::kThrottled), LoadSignal::kOverloaded);
  EXPECT_EQ(load_signal(http(503), DispatchStatus::kTemporaryError), LoadSignal::kOverloaded);
  EXPECT_EQ(load_signal(EndpointReply{}, DispatchStatus::kTimeout), LoadSignal::kOverloaded);
  EXPECT_EQ(load_signal(http(200), DispatchStatus::kOk), LoadSignal::kFine);
  EXPECT_EQ(load_signal(http(200), DispatchStatus::kTemporaryError), LoadSignal::kFine)
      << "an application error says nothing about load";
  EXPECT_EQ(load_signal(http(500), DispatchStatus::kTemporaryError), LoadSignal::kFine);
}

TEST(EndpointLimits, GrowsWhileCallsSucceedAndHalvesOnceAWindowWhenThrottled) {
  EndpointLimits limits(AimdOptions{4, 1, 1000, 0.5});
  const std::string e = "http://e";
  EXPECT_EQ(limits.room(e), 4);
  // One call stays in flight throughout: an idle endpoint may be forgotten.
  auto held = limits.sent(e);
  window(limits, e, 3, LoadSignal::kFine);
  window(limits, e, 4, LoadSignal::kFine);
  int grown = limits.limit(e);
  EXPECT_EQ(grown, 11) << "slow start: +1 per success";
  window(limits, e, grown - 1, LoadSignal::kOverloaded);
  EXPECT_EQ(limits.limit(e), grown / 2) << "a whole window of throttles cuts once";
  int cut = limits.limit(e);
  window(limits, e, cut - 1, LoadSignal::kFine);
  EXPECT_EQ(limits.limit(e), cut) << "less than a window after a cut: +1/limit each";
  window(limits, e, cut, LoadSignal::kFine);
  EXPECT_EQ(limits.limit(e), cut + 1) << "additive increase: +1 per window";
  limits.answered(e);
  limits.observed(e, held, LoadSignal::kOverloaded);
  EXPECT_EQ(limits.limit(e), cut + 1) << "a reply sent before the last cut does not cut again";
}

TEST(EndpointLimits, AGrownLimitOutlastsAMomentWithNothingInFlight) {
  EndpointLimits limits(AimdOptions{4, 1, 1000, 0.5});
  const std::string e = "http://e";
  // Each window goes out and comes back whole: nothing in flight between them.
  window(limits, e, 4, LoadSignal::kFine);
  window(limits, e, 8, LoadSignal::kFine);
  EXPECT_EQ(limits.limit(e), 16) << "slow start doubles per window";
  EXPECT_EQ(limits.room(e), 16);
  limits.sent("http://new");
  limits.answered("http://new");
  ASSERT_EQ(limits.figures().size(), 1u) << "an idle endpoint that learnt nothing is forgotten";
  EXPECT_EQ(limits.figures()[0].endpoint, e);
}

TEST(EndpointLimits, RoomIsTheLimitLessWhatIsInFlightAndNeverBelowTheMinimum) {
  EndpointLimits limits(AimdOptions{4, 1, 1000, 0.5});
  const std::string e = "http://e";
  std::vector<std::uint64_t> tickets;
  for (int i = 0; i < 4; ++i) tickets.push_back(limits.sent(e));
  EXPECT_EQ(limits.room(e), 0);
  EXPECT_EQ(limits.room("http://other"), 4) << "one endpoint's load leaves the others' room";
  for (int round = 0; round < 10; ++round) {
    auto t = limits.sent(e);
    limits.answered(e);
    limits.observed(e, t, LoadSignal::kOverloaded);
  }
  EXPECT_EQ(limits.limit(e), 1);
}

}  // namespace
}  // namespace ratchet::engine
