// Values as the Dispatch protocol carries them: a google.protobuf.Any per input and output
// (PROTOCOL.md, "Values"). What C++ sends is what the Python SDK reads natively:
//
//   JSON null                  -> google.protobuf.Empty
//   bool, integer, double      -> BoolValue, Int64Value, DoubleValue
//   string, binary             -> StringValue, BytesValue
//   array or object            -> google.protobuf.Value (never a bare Struct or ListValue)
//   message marker (below)     -> an Any of the message's own type
//
// Unpacking reads those, and leniently also Int32Value, UInt32Value, UInt64Value,
// FloatValue, Struct, ListValue, Timestamp and Duration (as RFC 3339 / "1.5s" strings).
// Numbers inside a google.protobuf.Value are doubles on the wire: integers beyond 2^53
// cannot be packed there exactly and are refused, and integral doubles within 2^53 unpack
// as JSON integers, so {"n": 3} round-trips as 3, not 3.0.
//
// Protobuf messages. A message's JSON form is a reserved one-key object carrying the parts
// of its Any, the bytes in base64 (docs/sdk.md, "Protobuf messages as values"):
//
//   {"$ratchet.any": {"type_url": "type.googleapis.com/acme.Order", "value": "CgN4eXo="}}
//
// pack_json sends such a marker as the Any itself, so a message travels as an Any of its
// own type, as the Python SDK sends messages; unpack_to_json turns an Any of a type it does
// not read otherwise into a marker (a pickled Python object stays an error). Inside a list
// or object a marker is plain JSON and travels in the google.protobuf.Value as it is, so
// a std::vector of messages, or a message among several arguments, round-trips too.
//
// Errors are Status values (kInvalidArgument), never exceptions; nesting is bounded.
#pragma once

#include <google/protobuf/any.pb.h>
#include <google/protobuf/struct.pb.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/status.hpp"

namespace ratchet::protocol {

inline constexpr std::string_view kTypeUrlPrefix = "type.googleapis.com/";
inline constexpr std::string_view kPickledTypeUrl =
    "buf.build/stealthrocket/dispatch-proto/dispatch.sdk.python.v1.Pickled";
// The one key of a message marker.
inline constexpr std::string_view kMessageMarkerKey = "$ratchet.any";
// Deeper arrays/objects are refused, to bound recursion on hostile input.
inline constexpr int kMaxValueDepth = 64;

// Whether `text` is well-formed UTF-8 (no overlong forms, surrogates or code
// points past U+10FFFF), as protobuf's string fields must be: a reader refuses
// a message whose string is not. pack_json refuses such strings.
bool is_utf8(std::string_view text);

// Packs a JSON value by its type, per the table above.
Result<google::protobuf::Any> pack_json(const nlohmann::json& value);
// Packs any JSON value as a google.protobuf.Value (scalars included).
Result<google::protobuf::Any> pack_json_as_value(const nlohmann::json& value);

google::protobuf::Any pack_null();
google::protobuf::Any pack_bool(bool value);
google::protobuf::Any pack_int64(std::int64_t value);
google::protobuf::Any pack_double(double value);
google::protobuf::Any pack_string(std::string_view value);
google::protobuf::Any pack_bytes(std::string_view value);

// The JSON form of a packed value; BytesValue becomes a JSON binary, a type it does not
// otherwise read a message marker. Fails for a Pickled Python object or a body that does
// not parse as its type.
Result<nlohmann::json> unpack_to_json(const google::protobuf::Any& any);

// True when `value` is an object whose only key is kMessageMarkerKey (well formed or not).
bool is_message_marker(const nlohmann::json& value);
// The marker of an Any, whatever its type.
nlohmann::json message_marker(const google::protobuf::Any& any);
// The Any a marker carries; kInvalidArgument when it is not a well-formed marker.
Result<google::protobuf::Any> any_of_marker(const nlohmann::json& marker);

// google.protobuf.Value <-> JSON, the conversions behind the above.
Result<google::protobuf::Value> json_to_value(const nlohmann::json& value);
Result<nlohmann::json> value_to_json(const google::protobuf::Value& value);

// The full message name an Any holds: what follows the last '/' of its type URL.
std::string_view type_name_of(const google::protobuf::Any& any);

}  // namespace ratchet::protocol
