#include "protocol/journal_edit.hpp"

#include <gtest/gtest.h>

#include "protocol/values.hpp"

namespace ratchet::protocol {
namespace {

namespace jv1 = ::ratchet::sdk::v1;
constexpr int kTyped = 6;  // Poll.typed_coroutine_state

// A journal of `n` call steps to "work"; those up to `done` completed, in
// reverse order of their numbers (so that completions differ from positions).
std::string journal_bytes(int n, int done) {
  jv1::Journal journal;
  journal.set_version(2);
  journal.set_function("steps");
  for (int i = 1; i <= n; ++i) {
    jv1::Step* step = journal.add_steps();
    step->set_function(intern_name(journal, "work"));
    if (i <= done) {
      auto value = pack_int64(i * i);
      step->mutable_output()->set_type(intern_name(journal, value.type_url()));
      step->mutable_output()->set_value(value.value());
      step->set_completion(static_cast<std::uint64_t>(done - i + 1));
    }
  }
  journal.set_completed(static_cast<std::uint64_t>(done));
  journal.set_last_poll_first_step(static_cast<std::uint64_t>(n));
  google::protobuf::Any any;
  any.PackFrom(journal);
  return any.SerializeAsString();
}

jv1::Journal parse(const std::string& bytes) {
  google::protobuf::Any any;
  jv1::Journal journal;
  EXPECT_TRUE(any.ParseFromString(bytes) && any.UnpackTo(&journal));
  return journal;
}

TEST(JournalEdit, RewindKeepsTheStepsBeforeAndRenumbersTheirCompletions) {
  auto edit = rewind_journal(kTyped, journal_bytes(5, 4), 3);
  ASSERT_TRUE(edit.is_ok()) << edit.status().message();
  jv1::Journal journal = parse(edit->state);
  ASSERT_EQ(journal.steps_size(), 2);
  EXPECT_EQ(journal.completed(), 2u);
  // Steps 1 and 2 completed 4th and 3rd: now 2nd and 1st.
  EXPECT_EQ(journal.steps(0).completion(), 2u);
  EXPECT_EQ(journal.steps(1).completion(), 1u);
  EXPECT_LE(journal.last_poll_first_step(), 3u);
  EXPECT_EQ(edit->steps, 5u);
  EXPECT_EQ(edit->detail, "rewound to step 3 of 5 (dropped 3 call work, 4 call work, 5 call work)");
}

TEST(JournalEdit, RewindPastTheLastStepDropsNothingAndOutOfRangeIsRefused) {
  auto none = rewind_journal(kTyped, journal_bytes(2, 2), 3);
  ASSERT_TRUE(none.is_ok());
  EXPECT_EQ(parse(none->state).steps_size(), 2);
  for (std::uint64_t step : {0u, 4u}) {
    auto refused = rewind_journal(kTyped, journal_bytes(2, 2), step);
    EXPECT_EQ(refused.status().code(), Code::kInvalidArgument);
    EXPECT_NE(refused.status().message().find("from 1 to 3"), std::string::npos);
  }
}

TEST(JournalEdit, SetResultCompletesAPendingStepWithAValueOrAnError) {
  auto edit =
      set_journal_result(kTyped, journal_bytes(3, 2), 3, StepResult{"[1, \"two\"]", "", ""});
  ASSERT_TRUE(edit.is_ok()) << edit.status().message();
  jv1::Journal journal = parse(edit->state);
  const jv1::Step& step = journal.steps(2);
  EXPECT_EQ(step.completion(), 3u);
  EXPECT_EQ(journal.completed(), 3u);
  google::protobuf::Any value;
  value.set_type_url(journal.names(static_cast<int>(step.output().type())));
  value.set_value(step.output().value());
  EXPECT_EQ(*unpack_to_json(value), nlohmann::json::parse("[1, \"two\"]"));
  EXPECT_EQ(edit->detail, "set the result of step 3 (call work) to output [1,\"two\"]");

  auto failed = set_journal_result(kTyped, journal_bytes(3, 3), 1,
                                   StepResult{std::nullopt, "TemporaryError", "card service down"});
  ASSERT_TRUE(failed.is_ok());
  jv1::Journal replaced = parse(failed->state);
  EXPECT_EQ(replaced.steps(0).error().type(), "TemporaryError");
  EXPECT_EQ(replaced.steps(0).error().message(), "card service down");
  EXPECT_EQ(replaced.steps(0).completion(), 3u) << "a completed step keeps its place in the order";
  EXPECT_EQ(replaced.completed(), 3u);
}

// Step 2 recorded the number 4: the coroutine reads its result as one.
TEST(JournalEdit, SetResultRefusesAValueOfAnotherKindThanTheRecordedOneUnlessAsked) {
  StepResult text;
  text.output_json = "\"soon\"";
  auto refused = set_journal_result(kTyped, journal_bytes(3, 2), 2, text);
  EXPECT_EQ(refused.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(refused.status().message(),
            "step 2 recorded a number (4), --output is a string: the coroutine could not read "
            "it; add --any-type to set it anyway");

  StepResult fraction;
  fraction.output_json = "2.5";
  EXPECT_TRUE(set_journal_result(kTyped, journal_bytes(3, 2), 2, fraction).is_ok())
      << "a number is a number";
  StepResult error;
  error.error_type = "PermanentError";
  error.error_message = "gone";
  EXPECT_TRUE(set_journal_result(kTyped, journal_bytes(3, 2), 2, error).is_ok());
  EXPECT_TRUE(set_journal_result(kTyped, journal_bytes(3, 2), 3, text).is_ok())
      << "a pending step recorded no value to compare with";
  text.any_type = true;
  auto forced = set_journal_result(kTyped, journal_bytes(3, 2), 2, text);
  ASSERT_TRUE(forced.is_ok()) << forced.status().message();
  EXPECT_EQ(forced->detail, "set the result of step 2 (call work) to output \"soon\"");
}

TEST(JournalEdit, WhatIsNotACppJournalOrNotJsonIsRefused) {
  EXPECT_EQ(rewind_journal(1, "opaque python state", 1).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(rewind_journal(kTyped, "not an any", 1).status().code(), Code::kInvalidArgument);
  auto bad = set_journal_result(kTyped, journal_bytes(1, 0), 1, StepResult{"{oops", "", ""});
  EXPECT_EQ(bad.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(
      set_journal_result(kTyped, journal_bytes(1, 0), 2, StepResult{"1", "", ""}).status().code(),
      Code::kInvalidArgument);
}

// The action's detail is kept on the call and shown by `ratchet status`: a
// rewind of a long journal, or a large --output, is summarised, not copied
// whole (a rewind of 100,000 steps to step 1 would write megabytes).
TEST(JournalEdit, TheDetailOfALargeEditStaysShort) {
  auto rewound = rewind_journal(kTyped, journal_bytes(10'000, 10'000), 1);
  ASSERT_TRUE(rewound.is_ok()) << rewound.status().message();
  EXPECT_LT(rewound->detail.size(), 400u) << rewound->detail.substr(0, 400);
  EXPECT_EQ(
      rewound->detail.rfind("rewound to step 1 of 10000 (dropped 1 call work, 2 call work, ", 0),
      0u)
      << rewound->detail.substr(0, 400);
  EXPECT_NE(rewound->detail.find("and 9990 more)"), std::string::npos) << rewound->detail;

  StepResult large;
  large.output_json = "\"" + std::string(100'000, 'x') + "\"";
  auto set = set_journal_result(kTyped, journal_bytes(1, 0), 1, large);
  ASSERT_TRUE(set.is_ok()) << set.status().message();
  EXPECT_LT(set->detail.size(), 400u) << set->detail.substr(0, 400);
  EXPECT_NE(set->detail.find("(100002 bytes of JSON)"), std::string::npos) << set->detail;

  StepResult not_json;
  not_json.output_json = std::string(100'000, '[');
  auto refused = set_journal_result(kTyped, journal_bytes(1, 0), 1, not_json);
  EXPECT_EQ(refused.status().code(), Code::kInvalidArgument);
  EXPECT_LT(refused.status().message().size(), 300u) << refused.status().message().substr(0, 300);
}

// An error needs a type: the SDK raises the step's error by its type.
TEST(JournalEdit, SetResultRefusesAnErrorWithoutAType) {
  auto refused =
      set_journal_result(kTyped, journal_bytes(1, 0), 1, StepResult{std::nullopt, "", "no type"});
  EXPECT_EQ(refused.status().code(), Code::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("--error-type"), std::string::npos)
      << refused.status().message();
}

}  // namespace
}  // namespace ratchet::protocol
