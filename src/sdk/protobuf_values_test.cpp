// Protobuf messages as arguments and results (ratchet/protobuf.hpp), driven
// through Dispatch::handle with hand-built RunRequests. FieldMask and
// SourceContext stand for a user's messages: the value table does not name
// them, so they travel as Anys of their own type.
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/duration.pb.h>
#include <google/protobuf/field_mask.pb.h>
#include <google/protobuf/source_context.pb.h>
#include <google/protobuf/timestamp.pb.h>
#include <google/protobuf/wrappers.pb.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "ratchet/protobuf.hpp"
#include "ratchet/ratchet.hpp"
#include "sdk/test_support.hpp"

namespace ratchet {
namespace {

using nlohmann::json;
using namespace ratchet::testing;
namespace gpb = google::protobuf;

gpb::FieldMask mask_of(std::vector<std::string> paths) {
  gpb::FieldMask mask;
  for (auto& path : paths) mask.add_paths(std::move(path));
  return mask;
}

gpb::Any any_of(const gpb::Message& message) {
  gpb::Any any;
  any.PackFrom(message);
  return any;
}

std::vector<std::string> paths_of(const gpb::Any& any) {
  gpb::FieldMask mask;
  EXPECT_EQ(any.type_url(), "type.googleapis.com/google.protobuf.FieldMask");
  EXPECT_TRUE(any.UnpackTo(&mask));
  return {mask.paths().begin(), mask.paths().end()};
}

pb::RunRequest run_with_input(const std::string& function, const gpb::Any& input) {
  pb::RunRequest request = first_run(function, nullptr);
  *request.mutable_input() = input;
  return request;
}

pb::CallResult message_result(std::uint64_t correlation_id, const gpb::Message& message) {
  pb::CallResult result = ok_result(correlation_id, nullptr);
  *result.mutable_output() = any_of(message);
  return result;
}

gpb::FieldMask widened(gpb::FieldMask mask) {
  mask.add_paths("z");
  return mask;
}

TEST(ProtobufValues, PlainFunctionTakesAndReturnsAMessageAsAnAnyOfItsType) {
  Dispatch dispatch(test_options());
  dispatch.function("widen", [](gpb::FieldMask mask) { return widened(std::move(mask)); });
  auto answer = run(dispatch, run_with_input("widen", any_of(mask_of({"a"}))));
  ASSERT_EQ(answer.status(), pb::STATUS_OK) << answer.exit().result().error().message();
  EXPECT_EQ(paths_of(answer.exit().result().output()), (std::vector<std::string>{"a", "z"}));
}

TEST(ProtobufValues, CoroutineTakesAndReturnsAMessage) {
  Dispatch dispatch(test_options());
  dispatch.function("widen", [](gpb::FieldMask mask) -> Task<gpb::FieldMask> {
    co_return widened(std::move(mask));
  });
  auto answer = run(dispatch, run_with_input("widen", any_of(mask_of({"b"}))));
  ASSERT_EQ(answer.status(), pb::STATUS_OK) << answer.exit().result().error().message();
  EXPECT_EQ(paths_of(answer.exit().result().output()), (std::vector<std::string>{"b", "z"}));
}

TEST(ProtobufValues, WellKnownTypesAreReadFromTheirUnpackedForm) {
  // A Timestamp unpacks as an RFC 3339 string, which the message reads as its proto3 JSON.
  Dispatch dispatch(test_options());
  dispatch.function("age", [](gpb::Timestamp t) {
    gpb::Duration d;
    d.set_seconds(1719000000 - t.seconds());
    return d;
  });
  gpb::Timestamp t;
  t.set_seconds(1718999990);
  auto answer = run(dispatch, run_with_input("age", any_of(t)));
  ASSERT_EQ(answer.status(), pb::STATUS_OK) << answer.exit().result().error().message();
  gpb::Duration d;
  ASSERT_EQ(answer.exit().result().output().type_url(),
            "type.googleapis.com/google.protobuf.Duration");
  ASSERT_TRUE(answer.exit().result().output().UnpackTo(&d));
  EXPECT_EQ(d.seconds(), 10);
}

TEST(ProtobufValues, BytesValueIsReadFromItsUnpackedBinary) {
  Dispatch dispatch(test_options());
  dispatch.function("size", [](gpb::BytesValue b) { return b.value().size(); });
  auto answer = run(dispatch, first_run("size", json::binary({0, 1, 255})));
  ASSERT_EQ(answer.status(), pb::STATUS_OK) << answer.exit().result().error().message();
  EXPECT_EQ(unpacked(answer.exit().result().output()), 3);
}

TEST(ProtobufValues, AResultMissingRequiredFieldsIsRefusedWhenSent) {
  Dispatch dispatch(test_options());
  dispatch.function("part", [] { return gpb::UninterpretedOption::NamePart(); });
  auto answer = run(dispatch, first_run("part", nullptr));
  EXPECT_EQ(answer.status(), pb::STATUS_INVALID_ARGUMENT);
  EXPECT_NE(answer.exit().result().error().message().find("required"), std::string::npos)
      << answer.exit().result().error().message();
}

TEST(ProtobufValues, AMessageReadsItsProto3JsonForm) {
  Dispatch dispatch(test_options());
  dispatch.function("file", [](gpb::SourceContext c) { return c.file_name(); });
  auto answer = run(dispatch, first_run("file", {{"fileName", "order.proto"}}));
  ASSERT_EQ(answer.status(), pb::STATUS_OK) << answer.exit().result().error().message();
  EXPECT_EQ(unpacked(answer.exit().result().output()), "order.proto");
}

TEST(ProtobufValues, AnInputOfAnotherTypeIsInvalidArgumentNamingBoth) {
  Dispatch dispatch(test_options());
  dispatch.function("widen", [](gpb::FieldMask mask) { return widened(std::move(mask)); });
  gpb::SourceContext other;
  other.set_file_name("x.proto");
  auto answer = run(dispatch, run_with_input("widen", any_of(other)));
  EXPECT_EQ(answer.status(), pb::STATUS_INVALID_ARGUMENT);
  const auto& error = answer.exit().result().error();
  EXPECT_EQ(error.type(), "InvalidArgumentError");
  EXPECT_NE(error.message().find("expected a protobuf message google.protobuf.FieldMask, got an "
                                 "Any of google.protobuf.SourceContext"),
            std::string::npos)
      << error.message();

  answer = run(dispatch, first_run("widen", {{"no_such_field", 1}}));
  EXPECT_EQ(answer.status(), pb::STATUS_INVALID_ARGUMENT);
  EXPECT_NE(answer.exit().result().error().message().find("google.protobuf.FieldMask"),
            std::string::npos);

  gpb::Any corrupt = any_of(mask_of({"a"}));
  corrupt.set_value("\xff\xff");
  answer = run(dispatch, run_with_input("widen", corrupt));
  EXPECT_EQ(answer.status(), pb::STATUS_INVALID_ARGUMENT);
  EXPECT_NE(answer.exit().result().error().message().find("do not parse"), std::string::npos);
}

TEST(ProtobufValues, MessagesAmongSeveralArgumentsAndInContainersRoundTrip) {
  Dispatch dispatch(test_options());
  dispatch.function("repeat", [](gpb::FieldMask mask, int times) {
    std::vector<gpb::FieldMask> out(static_cast<std::size_t>(times), mask);
    return out;
  });
  // The caller's JSON form of the arguments, as a C++ caller builds it.
  auto answer = run(dispatch, first_run("repeat", json::array({json(mask_of({"p"})), 2})));
  ASSERT_EQ(answer.status(), pb::STATUS_OK) << answer.exit().result().error().message();
  EXPECT_EQ(answer.exit().result().output().type_url(),
            "type.googleapis.com/google.protobuf.Value");
  auto out = unpacked(answer.exit().result().output()).get<std::vector<gpb::FieldMask>>();
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1].paths(0), "p");
}

// A coroutine awaiting two calls whose results are messages; with the frame
// cache off, every resume replays and reads step 1's result from the journal.
struct Relay {
  Dispatch dispatch;
  Function<gpb::FieldMask(gpb::FieldMask)> widen;
  Function<std::string(gpb::FieldMask)> relay;

  static Options no_cache() {
    Options options = test_options();
    options.frame_cache_size = 0;
    return options;
  }

  Relay()
      : dispatch(no_cache()),
        widen(dispatch.function("widen",
                                [](gpb::FieldMask mask) { return widened(std::move(mask)); })),
        relay(dispatch.function("relay", [this](gpb::FieldMask mask) -> Task<std::string> {
          gpb::FieldMask once = co_await widen(mask);
          gpb::FieldMask twice = co_await widen(once);
          co_return once.paths(once.paths_size() - 1) + "|" + std::to_string(twice.paths_size());
        })) {}
};

TEST(ProtobufValues, AnAwaitedMessageResultSurvivesTheJournal) {
  Relay r;
  auto answer = run(r.dispatch, run_with_input("relay", any_of(mask_of({"a"}))));
  ASSERT_TRUE(answer.has_poll());
  ASSERT_EQ(answer.poll().calls_size(), 1);
  EXPECT_EQ(paths_of(answer.poll().calls(0).input()), (std::vector<std::string>{"a"}));

  answer =
      run(r.dispatch, resume("relay", answer.poll(), {message_result(1, mask_of({"a", "x"}))}));
  ASSERT_TRUE(answer.has_poll()) << answer.exit().result().error().message();
  ASSERT_EQ(answer.poll().calls_size(), 1);
  EXPECT_EQ(paths_of(answer.poll().calls(0).input()), (std::vector<std::string>{"a", "x"}));

  answer = run(r.dispatch,
               resume("relay", answer.poll(), {message_result(2, mask_of({"1", "2", "3"}))}));
  ASSERT_EQ(answer.status(), pb::STATUS_OK) << answer.exit().result().error().message();
  EXPECT_EQ(unpacked(answer.exit().result().output()), "x|3");
}

TEST(ProtobufValues, AnAwaitedResultOfAnotherTypeIsAnInvalidResponse) {
  Relay r;
  auto answer = run(r.dispatch, run_with_input("relay", any_of(mask_of({"a"}))));
  ASSERT_TRUE(answer.has_poll());
  answer =
      run(r.dispatch, resume("relay", answer.poll(), {message_result(1, gpb::SourceContext())}));
  ASSERT_TRUE(answer.has_exit());
  const auto& error = answer.exit().result().error();
  EXPECT_EQ(error.type(), "InvalidResponseError");
  EXPECT_NE(error.message().find("step 1"), std::string::npos) << error.message();
  EXPECT_NE(error.message().find("google.protobuf.SourceContext"), std::string::npos);
}

}  // namespace
}  // namespace ratchet
