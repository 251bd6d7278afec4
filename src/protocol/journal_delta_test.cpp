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

// The C++ SDK's deltas each touch at most one step past those before them;
// a broken SDK's delta that skips steps after another may hide the good
// revision before it once merged.
TEST(JournalDelta, AMergeMayHideGoodRevisionsOnlyWhenADeltaAfterTheFirstSkipsSteps) {
  EXPECT_FALSE(may_hide_good_revisions({delta(1, 1, 2), delta(2, 2, 3), delta(3, 3, 4)}));
  EXPECT_FALSE(may_hide_good_revisions({delta(1, 1, 7)}))
      << "the first delta is not merged after any";
  EXPECT_TRUE(may_hide_good_revisions({delta(1, 1, 2), delta(2, 2, 9)}));
  EXPECT_TRUE(may_hide_good_revisions({delta(1, 1, 2), "\xff\xff"}));
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

// A delta carries its steps in step_updates only. One that also appends to
// `steps` assembles differently once compaction folds the deltas before it
// into a base (the fold moves their step_updates into `steps` first), so it
// is no delta the server reads: the Poll is refused as one.
TEST(JournalDelta, ADeltaThatAppendsToStepsIsNotReadAsADelta) {
  std::vector<std::string> deltas{delta(1, 1, 2)};
  jv1::JournalDelta appending;
  appending.set_base_revision(2);
  appending.mutable_changes()->set_revision(3);
  appending.mutable_changes()->add_steps()->set_argument_hash(99);
  deltas.push_back(pack(appending));
  auto whole = assemble_journal(pack(base_journal()), deltas);
  auto folded = assemble_journal(pack(base_journal()), {deltas[0]});
  ASSERT_TRUE(whole.is_ok() && folded.is_ok());
  auto after_fold = assemble_journal(*folded, {deltas[1]});
  ASSERT_TRUE(after_fold.is_ok());
  ASSERT_NE(*after_fold, *whole) << "why it cannot be stored";

  google::protobuf::Any any;
  ASSERT_TRUE(any.ParseFromString(deltas[1]));
  EXPECT_FALSE(state_revision(any.type_url(), any.value()).has_value());
  ASSERT_TRUE(any.ParseFromString(deltas[0]));
  EXPECT_TRUE(state_revision(any.type_url(), any.value()).has_value());
}

// The revisions read as a parse gives them (a later occurrence wins, in any
// field order), and bytes that are not a message have none.
TEST(JournalDelta, ReadsTheRevisionsOfConcatenatedAndReorderedFieldsAsAParse) {
  google::protobuf::Any first;
  google::protobuf::Any second;
  ASSERT_TRUE(first.ParseFromString(delta(4, 1, 2)));
  ASSERT_TRUE(second.ParseFromString(delta(7, 2, 3)));
  // Concatenated messages merge: the second's fields win.
  std::string both = first.value() + second.value();
  jv1::JournalDelta parsed;
  ASSERT_TRUE(parsed.ParseFromString(both));
  auto merged = state_revision(kJournalDeltaType, both);
  ASSERT_TRUE(merged.has_value());
  EXPECT_EQ(merged->base_revision, parsed.base_revision());
  EXPECT_EQ(merged->revision, parsed.changes().revision());
  EXPECT_EQ(merged->revision, 8u);
  // `changes` first, then the base.
  jv1::JournalDelta changes_only;
  *changes_only.mutable_changes() = parsed.changes();
  jv1::JournalDelta base_only;
  base_only.set_base_revision(9);
  auto reordered = state_revision(kJournalDeltaType,
                                  changes_only.SerializeAsString() + base_only.SerializeAsString());
  ASSERT_TRUE(reordered.has_value());
  EXPECT_EQ(reordered->base_revision, 9u);
  EXPECT_EQ(reordered->revision, 8u);
  // Cut short inside `changes`, or a length past the end: no revision.
  EXPECT_FALSE(state_revision(kJournalDeltaType, both.substr(0, both.size() - 3)).has_value());
  std::string journal = base_journal().SerializeAsString();
  EXPECT_FALSE(state_revision(kJournalType, journal.substr(0, journal.size() - 1)).has_value());
  EXPECT_FALSE(state_revision(kJournalType, std::string("\x22\x7f", 2)).has_value());
  EXPECT_FALSE(state_revision(kJournalType, std::string("\x00", 1)).has_value());
  // A journal with no revision field (written before deltas) is revision 0.
  jv1::Journal old = base_journal();
  old.clear_revision();
  auto zero = state_revision(kJournalType, old.SerializeAsString());
  ASSERT_TRUE(zero.has_value());
  EXPECT_EQ(zero->revision, 0u);
}

TEST(JournalDelta, MergesTheLastDeltasWhenFanInOfThemCoverAsManyPolls) {
  // A base at revision 1 and 7 single-Poll deltas: nothing to merge yet.
  std::vector<std::uint64_t> revisions{1, 2, 3, 4, 5, 6, 7, 8};
  EXPECT_EQ(merge_from(revisions), 7u);
  // The 8th single-Poll delta: the 8 become one.
  revisions.push_back(9);
  EXPECT_EQ(merge_from(revisions), 0u);
  // After 7 merged runs of 8 and 8 single ones, the cascade takes all 64.
  std::vector<std::uint64_t> cascade{1};
  for (int i = 1; i <= 7; ++i) cascade.push_back(1 + 8 * static_cast<std::uint64_t>(i));
  for (int i = 1; i <= 8; ++i) cascade.push_back(57 + static_cast<std::uint64_t>(i));
  EXPECT_EQ(merge_from(cascade), 0u);
  // A run of 8 before 8 single ones: only the single ones merge.
  std::vector<std::uint64_t> tail{1, 9};
  for (int i = 1; i <= 8; ++i) tail.push_back(9 + static_cast<std::uint64_t>(i));
  EXPECT_EQ(merge_from(tail), 1u);
  EXPECT_EQ(merge_from({5}), 0u);
}

TEST(JournalDelta, AMergedDeltaAssemblesAsItsDeltasInOrder) {
  std::vector<std::string> deltas;
  for (std::uint64_t r = 1; r <= 6; ++r) deltas.push_back(delta(r, r, r + 1));
  auto separate = assemble_journal(pack(base_journal()), deltas);
  ASSERT_TRUE(separate.is_ok());
  auto merged = merge_deltas({deltas.begin() + 1, deltas.begin() + 5});
  ASSERT_TRUE(merged.is_ok()) << merged.status().message();
  google::protobuf::Any any;
  ASSERT_TRUE(any.ParseFromString(*merged));
  auto revision = state_revision(any.type_url(), any.value());
  ASSERT_TRUE(revision.has_value());
  EXPECT_EQ(revision->base_revision, 2u);
  EXPECT_EQ(revision->revision, 6u);
  auto together = assemble_journal(pack(base_journal()), {deltas[0], *merged, deltas[5]});
  ASSERT_TRUE(together.is_ok());
  EXPECT_EQ(*together, *separate);
  EXPECT_FALSE(merge_deltas({deltas[0], "\xff\xff"}).is_ok());
}

TEST(JournalDelta, AssemblesTheDeltasBeforeTheFirstBrokenOne) {
  std::vector<std::string> deltas{delta(1, 1, 2), delta(2, 2, 3), delta(3, 3, 9), delta(4, 4, 5)};
  auto good = assemble_good_prefix(pack(base_journal()), deltas);
  EXPECT_EQ(good.deltas, 2u);
  EXPECT_NE(good.broken.find("updates step 9"), std::string::npos) << good.broken;
  EXPECT_EQ(good.journal, *assemble_journal(pack(base_journal()), {deltas[0], deltas[1]}));
  auto not_journal = assemble_good_prefix("\xff", deltas);
  EXPECT_EQ(not_journal.deltas, 0u);
  EXPECT_NE(not_journal.broken, "");
  auto whole = assemble_good_prefix(pack(base_journal()), {deltas[0]});
  EXPECT_EQ(whole.deltas, 1u);
  EXPECT_EQ(whole.broken, "");
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
