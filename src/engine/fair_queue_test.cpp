#include "engine/fair_queue.hpp"

#include <gtest/gtest.h>

namespace ratchet::engine {
namespace {

// serve() with a room map of its own.
Result<int> serve(DeficitRoundRobin& drr, const std::vector<QueueKey>& due, int slots,
                  std::map<std::string, int> room, const DeficitRoundRobin::Take& take) {
  return drr.serve(due, slots, room, take);
}

// Queues of `size` calls each; take() removes from them and logs the order.
struct Queues {
  std::map<QueueKey, int> left;
  std::vector<std::pair<QueueKey, int>> log;
  DeficitRoundRobin::Take take() {
    return [this](const QueueKey& q, int limit) -> Result<int> {
      int got = std::min(limit, left[q]);
      left[q] -= got;
      log.emplace_back(q, got);
      return got;
    };
  }
  std::vector<QueueKey> due() const {
    std::vector<QueueKey> keys;
    for (const auto& [q, n] : left) {
      if (n > 0) keys.push_back(q);
    }
    return keys;
  }
};

const QueueKey kA{"http://e", "A"};
const QueueKey kB{"http://e", "B"};

TEST(DeficitRoundRobin, AFewCallsBehindAFloodAreServedInTheFirstRound) {
  Queues queues;
  queues.left = {{kA, 50'000}, {kB, 10}};
  DeficitRoundRobin drr(32);
  auto taken = serve(drr, queues.due(), 512, {{"http://e", 512}}, queues.take());
  ASSERT_TRUE(taken.is_ok());
  EXPECT_EQ(*taken, 512);
  EXPECT_EQ(queues.left[kB], 0) << "B's 10 calls start in the first turn";
  EXPECT_EQ(queues.left[kA], 50'000 - 502);
  // B is served in the first round, right after A's first quantum.
  ASSERT_GE(queues.log.size(), 2u);
  EXPECT_EQ(queues.log[1].first, kB);
}

TEST(DeficitRoundRobin, EqualFloodsShareTheTurnsEqually) {
  Queues queues;
  queues.left = {{kA, 10'000}, {kB, 10'000}};
  DeficitRoundRobin drr(32);
  for (int turn = 0; turn < 10; ++turn) {
    std::vector<QueueKey> due;  // as the store lists them: after the cursor
    auto all = queues.due();
    auto start = std::upper_bound(all.begin(), all.end(), drr.cursor());
    due.insert(due.end(), start, all.end());
    due.insert(due.end(), all.begin(), start);
    ASSERT_TRUE(serve(drr, due, 100, {{"http://e", 100}}, queues.take()).is_ok());
  }
  EXPECT_EQ(queues.left[kA] + queues.left[kB], 20'000 - 1000);
  EXPECT_LE(std::abs(queues.left[kA] - queues.left[kB]), 32);
}

TEST(DeficitRoundRobin, EndpointsShareEquallyWhateverTheirNumberOfFunctions) {
  Queues queues;
  for (int f = 0; f < 8; ++f) queues.left[{"http://many", "f" + std::to_string(f)}] = 1000;
  queues.left[{"http://one", "g"}] = 1000;
  DeficitRoundRobin drr(32);
  ASSERT_TRUE(
      serve(drr, queues.due(), 64, {{"http://many", 512}, {"http://one", 512}}, queues.take())
          .is_ok());
  int many = 0;
  for (int f = 0; f < 8; ++f) many += 1000 - queues.left[{"http://many", "f" + std::to_string(f)}];
  EXPECT_EQ(many, 32);
  EXPECT_EQ(1000 - queues.left[(QueueKey{"http://one", "g"})], 32);
}

TEST(DeficitRoundRobin, TakesNoMoreThanAnEndpointsRoom) {
  Queues queues;
  queues.left = {{kA, 1000}, {{"http://other", "C"}, 1000}};
  DeficitRoundRobin drr(32);
  auto taken =
      serve(drr, queues.due(), 512, {{"http://e", 3}, {"http://other", 512}}, queues.take());
  ASSERT_TRUE(taken.is_ok());
  EXPECT_EQ(1000 - queues.left[kA], 3) << "the full endpoint's calls stay in the store";
  EXPECT_EQ(1000 - queues.left[(QueueKey{"http://other", "C"})], 509) << "the other takes the rest";
}

TEST(DeficitRoundRobin, AQueueCutOffByAFullTurnIsFirstNextTurn) {
  Queues queues;
  queues.left = {{kA, 1000}, {kB, 1000}};
  DeficitRoundRobin drr(32);  // two queues of one endpoint: 16 each a round
  ASSERT_TRUE(serve(drr, {kA, kB}, 16, {{"http://e", 512}}, queues.take()).is_ok());
  EXPECT_EQ(drr.cursor(), kA) << "A took the whole turn";
  EXPECT_EQ(queues.left[kB], 1000);
  // The store lists the queues after the cursor first.
  ASSERT_TRUE(serve(drr, {kB, kA}, 16, {{"http://e", 512}}, queues.take()).is_ok());
  EXPECT_EQ(queues.left[kB], 1000 - 16) << "B's turn came next";
  EXPECT_EQ(queues.left[kA], 1000 - 16);
}

TEST(DeficitRoundRobin, AStoreErrorStopsTheTurn) {
  DeficitRoundRobin drr(32);
  auto taken = serve(drr, {kA}, 10, {{"http://e", 10}}, [](const QueueKey&, int) -> Result<int> {
    return Status(Code::kUnavailable, "disk full");
  });
  EXPECT_EQ(taken.status().code(), Code::kUnavailable);
}

}  // namespace
}  // namespace ratchet::engine
