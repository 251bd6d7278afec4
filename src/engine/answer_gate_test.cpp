#include "engine/answer_gate.hpp"

#include <gtest/gtest.h>

namespace ratchet::engine {
namespace {

ClaimedCall claimed(const std::string& id, std::int64_t epoch = 1) {
  ClaimedCall c;
  c.call.id = id;
  c.call.lease_epoch = epoch;
  return c;
}

std::vector<std::string> ids_of(const std::vector<ClaimedCall>& calls) {
  std::vector<std::string> ids;
  for (const auto& c : calls) ids.push_back(c.call.id);
  return ids;
}

constexpr Micros kGrace = 20 * kMicrosPerMilli;

TEST(AnswerGate, HoldsACallUntilTheGraceAfterItsAnswerIsWritten) {
  AnswerGate gate(kGrace);
  auto answer = gate.answering({"a", "b"});
  EXPECT_TRUE(gate.holds("a"));
  EXPECT_FALSE(gate.holds("other")) << "calls no Dispatch answers (a Poll's) go at once";
  EXPECT_TRUE(gate.hold(claimed("a")));
  EXPECT_TRUE(gate.release_due(1'000'000'000).empty()) << "not written yet, whatever the time";
  EXPECT_FALSE(gate.next_due());

  gate.written(answer, 1000);
  EXPECT_EQ(gate.next_due(), 1000 + kGrace);
  EXPECT_TRUE(gate.release_due(1000 + kGrace - 1).empty());
  EXPECT_TRUE(gate.holds("a"));
  EXPECT_EQ(ids_of(gate.release_due(1000 + kGrace)), std::vector<std::string>{"a"});
  EXPECT_FALSE(gate.holds("a"));
  EXPECT_FALSE(gate.holds("b")) << "answered and never claimed: a later claim sends it";
  EXPECT_EQ(gate.held(), 0u);
}

TEST(AnswerGate, AClientsNextRequestLetsItsCallsGoAtOnce) {
  AnswerGate gate(kGrace);
  auto answer = gate.answering({"a"});
  gate.hold(claimed("a"));
  gate.written(answer, 1000);
  gate.read(answer, 1500);  // its next request on the connection: it has read the answer
  EXPECT_EQ(gate.next_due(), 1500);
  EXPECT_EQ(ids_of(gate.release_due(1500)), std::vector<std::string>{"a"});
  EXPECT_TRUE(gate.release_due(1000 + kGrace).empty()) << "the grace's wake-up finds nothing";
}

TEST(AnswerGate, AWaitForOneIdLetsItsAnswersGoAtOnce) {
  AnswerGate gate(kGrace);
  auto answer = gate.answering({"a", "b"});
  auto other = gate.answering({"c"});
  gate.hold(claimed("b"));
  gate.hold(claimed("c"));
  gate.waited("a", 700);  // before the answer is even written: the client has it
  EXPECT_EQ(ids_of(gate.release_due(700)), std::vector<std::string>{"b"});
  gate.written(other, 800);
  EXPECT_TRUE(gate.release_due(800).empty()) << "another answer waits for its grace";
  gate.waited("nobody-holds-this", 900);
  EXPECT_TRUE(gate.release_due(900).empty());
  (void)answer;
}

TEST(AnswerGate, AnIdAnsweredByTwoDispatchesWaitsForBoth) {
  AnswerGate gate(kGrace);
  auto first = gate.answering({"k"});  // a run key's call, answered to two clients
  auto second = gate.answering({"k"});
  gate.hold(claimed("k"));
  gate.read(first, 1000);
  EXPECT_TRUE(gate.release_due(10 * kGrace).empty());
  EXPECT_TRUE(gate.holds("k"));
  gate.written(second, 2000);
  EXPECT_TRUE(gate.release_due(2000 + kGrace - 1).empty());
  EXPECT_EQ(gate.release_due(2000 + kGrace).size(), 1u);
}

TEST(AnswerGate, ARepeatedClaimReplacesTheHeldOne) {
  AnswerGate gate(0);
  auto answer = gate.answering({"a"});
  EXPECT_TRUE(gate.hold(claimed("a", 1)));
  EXPECT_FALSE(gate.hold(claimed("a", 2))) << "its lease lapsed while held: one claim in flight";
  gate.written(answer, 10);
  auto ready = gate.release_due(10);
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(ready[0].call.lease_epoch, 2);
}

TEST(AnswerGate, EventsOfUnknownOrClosedAnswersAreIgnored) {
  AnswerGate gate(kGrace);
  gate.written(42, 0);
  EXPECT_FALSE(gate.next_due());
  auto answer = gate.answering({"a"});
  gate.written(answer, 5);
  gate.written(answer, 1'000'000);  // a second time: changes nothing
  EXPECT_EQ(gate.next_due(), 5 + kGrace);
  gate.release_due(5 + kGrace);
  gate.written(answer, 6);  // after it closed: changes nothing
  EXPECT_FALSE(gate.next_due());
  EXPECT_FALSE(gate.holds("a"));
}

}  // namespace
}  // namespace ratchet::engine
