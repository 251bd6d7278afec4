#include "protocol/journal_delta.hpp"

#include <google/protobuf/any.pb.h>
#include <gtest/gtest.h>

namespace ratchet::protocol {
namespace {

namespace jv1 = ::ratchet::sdk::v1;

std::string pack(const google::protobuf::Message& message) {
  google::protobuf::Any any;
  any.PackFrom(message);
  return any.SerializeAsString();
}

jv1::Journal base_journal() {
  jv1::Journal journal;
  journal.set_version(2);
  journal.set_function("steps");
  journal.set_revision(1);
  journal.add_names("work");
  journal.add_steps()->set_argument_hash(11);  // step 1, pending
  return journal;
}

// A delta on `base` that completes step `done` and adds step `added` (pending).
std::string delta(std::uint64_t base, std::uint64_t done, std::uint64_t added) {
  jv1::JournalDelta d;
  d.set_base_revision(base);
  jv1::Journal& changes = *d.mutable_changes();
  changes.set_revision(base + 1);
  changes.set_completed(done);
  jv1::Step& completed = (*changes.mutable_step_updates())[done];
  completed.set_argument_hash(10 + done);
  completed.mutable_output()->set_value("r" + std::to_string(done));
  completed.set_completion(done);
  (*changes.mutable_step_updates())[added].set_argument_hash(10 + added);
  return pack(d);
}

jv1::Journal unpack(const std::string& bytes) {
  google::protobuf::Any any;
  jv1::Journal journal;
  EXPECT_TRUE(any.ParseFromString(bytes) && any.UnpackTo(&journal));
  return journal;
}

TEST(JournalDelta, AssemblesDeltasOntoTheBaseInOrder) {
  auto whole = assemble_journal(pack(base_journal()), {delta(1, 1, 2), delta(2, 2, 3)});
  ASSERT_TRUE(whole.is_ok()) << whole.status().message();
  jv1::Journal journal = unpack(*whole);
  EXPECT_EQ(journal.revision(), 3u);
  EXPECT_EQ(journal.function(), "steps");
  EXPECT_EQ(journal.completed(), 2u);
  EXPECT_TRUE(journal.step_updates().empty());
  ASSERT_EQ(journal.steps_size(), 3);
  EXPECT_EQ(journal.steps(0).output().value(), "r1");
  EXPECT_EQ(journal.steps(1).output().value(), "r2");
  EXPECT_EQ(journal.steps(2).argument_hash(), 13u);
  EXPECT_FALSE(journal.steps(2).has_output());
}

TEST(JournalDelta, WithoutDeltasTheBaseIsSentAsItIs) {
  std::string base = "not even a journal";
  auto whole = assemble_journal(base, {});
  ASSERT_TRUE(whole.is_ok());
  EXPECT_EQ(*whole, base);
}

TEST(JournalDelta, RefusesADeltaThatLeavesAGapOrDoesNotParse) {
  auto gap = assemble_journal(pack(base_journal()), {delta(1, 1, 5)});
  EXPECT_FALSE(gap.is_ok());
  auto garbage = assemble_journal(pack(base_journal()), {"\xff\xff"});
  EXPECT_FALSE(garbage.is_ok());
  auto not_journal = assemble_journal("\xff\xff", {delta(1, 1, 2)});
  EXPECT_FALSE(not_journal.is_ok());
}

TEST(JournalDelta, ReadsTheRevisionOfADeltaAndOfAWholeJournal) {
  google::protobuf::Any any;
  ASSERT_TRUE(any.ParseFromString(delta(4, 1, 2)));
  auto d = state_revision(any.type_url(), any.value());
  ASSERT_TRUE(d.has_value());
  EXPECT_TRUE(d->delta);
  EXPECT_EQ(d->base_revision, 4u);
  EXPECT_EQ(d->revision, 5u);
  ASSERT_TRUE(any.ParseFromString(pack(base_journal())));
  auto w = state_revision(any.type_url(), any.value());
  ASSERT_TRUE(w.has_value());
  EXPECT_FALSE(w->delta);
  EXPECT_EQ(w->revision, 1u);
  EXPECT_FALSE(state_revision("type.googleapis.com/other", "x").has_value());
}

// A size that does not fit ParseFromArray's int is no journal: cast, 4 GiB and
// 10 bytes would have read as the journal of its first 10 bytes.
TEST(JournalDelta, AStateOverTwoGibibytesHasNoRevision) {
  std::string journal = base_journal().SerializeAsString();
  ASSERT_TRUE(state_revision(kJournalType, journal).has_value());
  std::string_view wrapped(journal.data(), (std::size_t{1} << 32) + journal.size());
  EXPECT_FALSE(state_revision(kJournalType, wrapped).has_value());
  std::string_view over(journal.data(), std::size_t{1} << 31);
  EXPECT_FALSE(state_revision(kJournalType, over).has_value());
}

}  // namespace
}  // namespace ratchet::protocol
