#include "protocol/values.hpp"

#include <google/protobuf/duration.pb.h>
#include <google/protobuf/field_mask.pb.h>
#include <google/protobuf/timestamp.pb.h>
#include <google/protobuf/wrappers.pb.h>
#include <gtest/gtest.h>

#include <vector>

#include "dispatch/sdk/python/v1/pickled.pb.h"
#include "protocol/base64.hpp"

namespace ratchet::protocol {
namespace {

using nlohmann::json;
namespace pb = google::protobuf;

json round_trip(const json& value) {
  Result<pb::Any> packed = pack_json(value);
  EXPECT_TRUE(packed.is_ok()) << packed.status().message();
  if (!packed) return json("pack failed");
  Result<json> unpacked = unpack_to_json(*packed);
  EXPECT_TRUE(unpacked.is_ok()) << unpacked.status().message();
  return unpacked ? *unpacked : json("unpack failed");
}

TEST(Values, PacksScalarsIntoTheirWrappers) {
  EXPECT_EQ(pack_json(nullptr)->type_url(), "type.googleapis.com/google.protobuf.Empty");
  EXPECT_EQ(pack_json(true)->type_url(), "type.googleapis.com/google.protobuf.BoolValue");
  EXPECT_EQ(pack_json(42)->type_url(), "type.googleapis.com/google.protobuf.Int64Value");
  EXPECT_EQ(pack_json(1.5)->type_url(), "type.googleapis.com/google.protobuf.DoubleValue");
  EXPECT_EQ(pack_json("hi")->type_url(), "type.googleapis.com/google.protobuf.StringValue");
  EXPECT_EQ(pack_json(json::binary({1, 2}))->type_url(),
            "type.googleapis.com/google.protobuf.BytesValue");
  EXPECT_EQ(pack_json(json::array({1}))->type_url(), "type.googleapis.com/google.protobuf.Value");
  EXPECT_EQ(pack_json(json::object())->type_url(), "type.googleapis.com/google.protobuf.Value");

  pb::Int64Value wrapped;
  ASSERT_TRUE(pack_int64(-7).UnpackTo(&wrapped));
  EXPECT_EQ(wrapped.value(), -7);
}

TEST(Values, ScalarsRoundTrip) {
  EXPECT_EQ(round_trip(nullptr), json(nullptr));
  EXPECT_EQ(round_trip(UINT64_MAX), json(UINT64_MAX)) << "a UInt64Value, above int64";
  EXPECT_EQ(pack_json(json(UINT64_MAX))->type_url(),
            "type.googleapis.com/google.protobuf.UInt64Value");
  EXPECT_EQ(round_trip(false), json(false));
  EXPECT_EQ(round_trip(INT64_MIN), json(INT64_MIN));
  EXPECT_EQ(round_trip(INT64_MAX), json(INT64_MAX));
  EXPECT_EQ(round_trip(0.25), json(0.25));
  EXPECT_EQ(round_trip("World"), json("World"));
  EXPECT_EQ(round_trip(json::binary({0, 255})), json::binary({0, 255}));
  EXPECT_TRUE(round_trip(42).is_number_integer());
}

TEST(Values, JsonLikeValuesRoundTripThroughGoogleProtobufValue) {
  const json value = {{"name", "x"},
                      {"n", 3},
                      {"neg", -9007199254740992},
                      {"f", 2.5},
                      {"ok", true},
                      {"none", nullptr},
                      {"list", {1, "two", {{"three", json::array()}}}}};
  const json back = round_trip(value);
  EXPECT_EQ(back, value);
  EXPECT_TRUE(back["n"].is_number_integer());
  EXPECT_EQ(round_trip(json::array()), json::array());
}

TEST(Values, PackJsonAsValueWrapsScalarsToo) {
  Result<pb::Any> packed = pack_json_as_value("s");
  ASSERT_TRUE(packed.is_ok());
  EXPECT_EQ(packed->type_url(), "type.googleapis.com/google.protobuf.Value");
  EXPECT_EQ(unpack_to_json(*packed).value(), json("s"));
}

// A protobuf string must be UTF-8: bytes that are not would be sent, then
// refused by whoever parses the message, with a message that names nothing.
TEST(Values, AStringThatIsNotUtf8IsRefusedSayingSo) {
  for (const char* bad : {"\xff", "a\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82"}) {
    for (const json& value : {json(bad), json::array({bad}), json::object({{bad, 1}})}) {
      auto packed = pack_json(value);
      ASSERT_FALSE(packed.is_ok()) << value.dump(-1, ' ', false, json::error_handler_t::replace);
      EXPECT_NE(packed.status().message().find("is not UTF-8"), std::string::npos)
          << packed.status().message();
    }
  }
  for (const char* good :
       {"", "plain", "caf\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf"}) {
    EXPECT_EQ(round_trip(json(good)), json(good)) << good;
  }
}

TEST(Values, RefusesWhatAValueCannotHoldExactly) {
  EXPECT_FALSE(pack_json(json::array({9007199254740993LL})).is_ok());
  EXPECT_FALSE(pack_json(json::array({json::binary({1})})).is_ok());
  EXPECT_FALSE(pack_json(json::array({UINT64_MAX})).is_ok()) << "in a list: a double";
  json deep = 1;
  for (int i = 0; i < kMaxValueDepth + 2; ++i) deep = json::array({deep});
  Result<pb::Any> packed = pack_json(deep);
  ASSERT_FALSE(packed.is_ok());
  EXPECT_NE(packed.status().message().find("nested"), std::string::npos);
}

TEST(Values, UnpacksTheOtherStandardTypes) {
  pb::Any any;
  pb::Timestamp t;
  t.set_seconds(1719000000);
  any.PackFrom(t);
  EXPECT_EQ(unpack_to_json(any).value(), json("2024-06-21T20:00:00Z"));
  pb::Duration d;
  d.set_seconds(1);
  d.set_nanos(500'000'000);
  any.PackFrom(d);
  EXPECT_EQ(unpack_to_json(any).value(), json("1.500s"));
  pb::UInt64Value u;
  u.set_value(UINT64_MAX);
  any.PackFrom(u);
  EXPECT_EQ(unpack_to_json(any).value(), json(UINT64_MAX));
  pb::Struct s;
  (*s.mutable_fields())["k"].set_string_value("v");
  any.PackFrom(s);
  EXPECT_EQ(unpack_to_json(any).value(), json({{"k", "v"}}));
}

TEST(Values, PickledPythonObjectsAndMissingTypeUrlsAreAClearError) {
  pb::Any any;
  Result<json> unpacked = unpack_to_json(any);
  ASSERT_FALSE(unpacked.is_ok());
  EXPECT_NE(unpacked.status().message().find("type URL"), std::string::npos);

  dispatch::sdk::python::v1::Pickled pickled;
  pickled.set_pickled_value("\x80\x04N.");
  ASSERT_TRUE(any.PackFrom(pickled, "buf.build/stealthrocket/dispatch-proto"));
  EXPECT_EQ(any.type_url(), kPickledTypeUrl);
  unpacked = unpack_to_json(any);
  ASSERT_FALSE(unpacked.is_ok());
  EXPECT_NE(unpacked.status().message().find("pickled"), std::string::npos);
}

// A message the value table does not name (FieldMask stands for a user's message).
pb::Any field_mask_any() {
  pb::FieldMask mask;
  mask.add_paths("a.b");
  mask.add_paths("c");
  pb::Any any;
  any.PackFrom(mask);
  return any;
}

TEST(Values, OtherMessagesUnpackAsAMarkerOfTheirAny) {
  const pb::Any any = field_mask_any();
  const json marker = unpack_to_json(any).value();
  EXPECT_TRUE(is_message_marker(marker));
  EXPECT_EQ(marker, json({{"$ratchet.any",
                           {{"type_url", "type.googleapis.com/google.protobuf.FieldMask"},
                            {"value", base64_encode(any.value())}}}}));
}

TEST(Values, AMarkerPacksAsTheAnyItself) {
  const pb::Any any = field_mask_any();
  Result<pb::Any> packed = pack_json(message_marker(any));
  ASSERT_TRUE(packed.is_ok()) << packed.status().message();
  EXPECT_EQ(packed->type_url(), "type.googleapis.com/google.protobuf.FieldMask");
  EXPECT_EQ(packed->value(), any.value());
  pb::FieldMask back;
  ASSERT_TRUE(packed->UnpackTo(&back));
  EXPECT_EQ(back.paths_size(), 2);
  // Any type URL and bytes travel as they are, even empty bytes (a default message).
  pb::Any foreign;
  foreign.set_type_url("example.com/acme.Order");
  EXPECT_EQ(round_trip(message_marker(foreign)), message_marker(foreign));
}

TEST(Values, MarkersNestedInAListOrObjectTravelInAValue) {
  const json marker = message_marker(field_mask_any());
  const json arguments = json::array({marker, 7, {{"mask", marker}}});
  Result<pb::Any> packed = pack_json(arguments);
  ASSERT_TRUE(packed.is_ok()) << packed.status().message();
  EXPECT_EQ(packed->type_url(), "type.googleapis.com/google.protobuf.Value");
  EXPECT_EQ(unpack_to_json(*packed).value(), arguments);
}

TEST(Values, MalformedMarkersAreRefused) {
  const std::vector<json> malformed = {
      {{"$ratchet.any", "x"}},
      {{"$ratchet.any", {{"type_url", "type.googleapis.com/a.B"}}}},
      {{"$ratchet.any", {{"type_url", 1}, {"value", ""}}}},
      {{"$ratchet.any", {{"type_url", ""}, {"value", ""}}}},
      {{"$ratchet.any", {{"type_url", "type.googleapis.com/a.B"}, {"value", "not base64!"}}}},
      {{"$ratchet.any", {{"type_url", "t/a.B"}, {"value", ""}, {"extra", 1}}}},
  };
  for (const json& marker : malformed) {
    EXPECT_TRUE(is_message_marker(marker)) << marker;
    Result<pb::Any> packed = pack_json(marker);
    ASSERT_FALSE(packed.is_ok()) << marker;
    EXPECT_NE(packed.status().message().find("marker"), std::string::npos);
  }
  // The key among others is ordinary JSON.
  const json ordinary = {{"$ratchet.any", 1}, {"other", 2}};
  EXPECT_FALSE(is_message_marker(ordinary));
  EXPECT_EQ(round_trip(ordinary), ordinary);
}

TEST(Values, CorruptBytesAreAnErrorNotACrash) {
  pb::Any any = pack_string("x");
  any.set_value("\xff\xff\xff");
  EXPECT_FALSE(unpack_to_json(any).is_ok());
  any = pack_json(json::array({1})).value();
  any.set_value("\x32\x05garbage");
  EXPECT_FALSE(unpack_to_json(any).is_ok());
}

TEST(Values, TypeNameIsWhatFollowsTheLastSlash) {
  pb::Any any;
  any.set_type_url("a/b/c.D");
  EXPECT_EQ(type_name_of(any), "c.D");
  any.set_type_url("bare");
  EXPECT_EQ(type_name_of(any), "bare");
}

}  // namespace
}  // namespace ratchet::protocol
