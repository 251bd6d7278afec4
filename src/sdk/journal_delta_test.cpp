// Journal deltas between the SDK and a server that takes them
// (PollResult.journal_deltas): what the Polls carry, and what a process
// without the frame does with a delta. The server's side is played here by
// protocol::assemble_journal, which the store uses.
#include "protocol/journal_delta.hpp"

#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include "sdk/test_support.hpp"

namespace ratchet {
namespace {

using namespace ratchet::testing;
namespace jv1 = ::ratchet::sdk::v1;

struct Counter {
  Dispatch dispatch;
  Function<int(int)> work;
  Function<long long(int)> count;
  int starts = 0;

  explicit Counter(Options options = test_options())
      : dispatch(options),
        work(dispatch.function("work", [](int i) { return i; })),
        count(dispatch.function("count", [this](int n) -> Task<long long> {
          ++starts;
          long long sum = 0;
          for (int i = 1; i <= n; ++i) sum += co_await work(i);
          co_return sum;
        })) {}
};

// A resume as Ratchet's server sends it: it takes deltas.
pb::RunRequest resume_with_deltas(const google::protobuf::Any& state, std::uint64_t step) {
  pb::RunRequest run;
  run.set_function("count");
  run.set_dispatch_id("d1");
  run.set_root_dispatch_id("d1");
  auto* poll_result = run.mutable_poll_result();
  poll_result->set_arrival_order(true);
  poll_result->set_journal_deltas(true);
  *poll_result->mutable_typed_coroutine_state() = state;
  *poll_result->add_results() = ok_result(step, static_cast<int>(step));
  return run;
}

// What the server holds: the first whole journal, then every delta.
struct Held {
  std::string base;
  std::vector<std::string> deltas;

  void take(const google::protobuf::Any& state) {
    if (state.type_url() == protocol::kJournalDeltaType) {
      deltas.push_back(state.SerializeAsString());
    } else {
      base = state.SerializeAsString();
      deltas.clear();
    }
  }
  google::protobuf::Any whole() const {
    google::protobuf::Any any;
    EXPECT_TRUE(any.ParseFromString(protocol::assemble_journal(base, deltas).value()));
    return any;
  }
};

jv1::Journal journal_of(const google::protobuf::Any& state) {
  jv1::Journal journal;
  EXPECT_TRUE(state.UnpackTo(&journal));
  return journal;
}

TEST(JournalDeltas, APollCarriesOnlyWhatChangedAndTheDeltasMakeTheWholeJournal) {
  Counter with_deltas;
  Counter whole;  // the same coroutine against a server that takes no deltas
  auto a = run(with_deltas.dispatch, first_run("count", 40));
  auto b = run(whole.dispatch, first_run("count", 40));
  Held held;
  held.take(a.poll().typed_coroutine_state());
  std::size_t second_size = 0;
  for (std::uint64_t step = 1; step <= 40; ++step) {
    a = run(with_deltas.dispatch, resume_with_deltas(a.poll().typed_coroutine_state(), step));
    b = run(whole.dispatch, resume("count", b.poll(), {ok_result(step, static_cast<int>(step))}));
    if (step == 40) break;
    ASSERT_TRUE(a.has_poll()) << a.exit().result().error().message();
    const auto& state = a.poll().typed_coroutine_state();
    ASSERT_EQ(state.type_url(), protocol::kJournalDeltaType);
    // Two steps (and, once, the result's type URL), not the journal: no growth.
    if (step == 2) second_size = state.value().size();
    EXPECT_LT(state.value().size(), 128u) << "step " << step;
    if (step > 2) {
      EXPECT_LE(state.value().size(), second_size + 4) << "step " << step;
    }
    EXPECT_EQ(b.poll().typed_coroutine_state().type_url(), protocol::kJournalType);
    held.take(state);
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(
        journal_of(held.whole()), journal_of(b.poll().typed_coroutine_state())))
        << "step " << step;
  }
  EXPECT_EQ(unpacked(a.exit().result().output()), 820);
  EXPECT_EQ(with_deltas.starts, 1);  // every delta came back to its frame
}

TEST(JournalDeltas, ADeltaWithoutItsFrameIsRetriedAndTheWholeJournalResumes) {
  Counter first;
  Counter second;  // another process: same code, empty cache
  auto answer = run(first.dispatch, first_run("count", 3));
  Held held;
  held.take(answer.poll().typed_coroutine_state());
  answer = run(first.dispatch, resume_with_deltas(answer.poll().typed_coroutine_state(), 1));
  held.take(answer.poll().typed_coroutine_state());

  auto refused = run(second.dispatch, resume_with_deltas(answer.poll().typed_coroutine_state(), 2));
  EXPECT_EQ(refused.status(), pb::STATUS_TEMPORARY_ERROR);
  EXPECT_EQ(refused.exit().result().error().type(), "JournalNotHeld");
  EXPECT_EQ(second.starts, 0);

  answer = run(second.dispatch, resume_with_deltas(held.whole(), 2));
  ASSERT_TRUE(answer.has_poll()) << answer.exit().result().error().message();
  EXPECT_EQ(second.starts, 1);  // a replay of steps 1 and 2
  ASSERT_EQ(answer.poll().calls_size(), 1);
  EXPECT_EQ(answer.poll().calls(0).correlation_id(), 3u);
  // Its next Poll is a delta on the revision it was given.
  const auto& state = answer.poll().typed_coroutine_state();
  ASSERT_EQ(state.type_url(), protocol::kJournalDeltaType);
  jv1::JournalDelta delta;
  ASSERT_TRUE(state.UnpackTo(&delta));
  EXPECT_EQ(delta.base_revision(), journal_of(held.whole()).revision());
  answer = run(second.dispatch, resume_with_deltas(state, 3));
  EXPECT_EQ(unpacked(answer.exit().result().output()), 6);
}

TEST(JournalDeltas, WithoutAFrameCacheEveryPollCarriesTheWholeJournal) {
  Options options = test_options();
  options.frame_cache_size = 0;
  Counter counter(options);
  auto answer = run(counter.dispatch, first_run("count", 3));
  for (std::uint64_t step = 1; answer.has_poll(); ++step) {
    EXPECT_EQ(answer.poll().typed_coroutine_state().type_url(), protocol::kJournalType);
    answer = run(counter.dispatch, resume_with_deltas(answer.poll().typed_coroutine_state(), step));
  }
  EXPECT_EQ(unpacked(answer.exit().result().output()), 6);
}

TEST(JournalDeltas, AJournalTheServerCouldNotAssembleIsIncompatibleState) {
  Counter counter;
  auto answer = run(counter.dispatch, first_run("count", 3));
  google::protobuf::Any broken;
  ASSERT_TRUE(broken.ParseFromString(protocol::broken_journal_state("step 9 past the end")));
  answer = run(counter.dispatch, resume_with_deltas(broken, 1));
  EXPECT_EQ(answer.status(), pb::STATUS_INCOMPATIBLE_STATE);
  EXPECT_NE(answer.exit().result().error().message().find("could not assemble"), std::string::npos)
      << answer.exit().result().error().message();
}

}  // namespace
}  // namespace ratchet
