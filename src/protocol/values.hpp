// Values as the Dispatch protocol carries them: a google.protobuf.Any per input and output
// (PROTOCOL.md, "Values"). What C++ sends is what the Python SDK reads natively:
//
//   JSON null                  -> google.protobuf.Empty
//   bool, integer, double      -> BoolValue, Int64Value, DoubleValue
//   string, binary             -> StringValue, BytesValue
//   array or object            -> google.protobuf.Value (never a bare Struct or ListValue)
//
// Unpacking reads those, and leniently also Int32Value, UInt32Value, UInt64Value,
// FloatValue, Struct, ListValue, Timestamp and Duration (as RFC 3339 / "1.5s" strings).
// Numbers inside a google.protobuf.Value are doubles on the wire: integers beyond 2^53
// cannot be packed there exactly and are refused, and integral doubles within 2^53 unpack
// as JSON integers, so {"n": 3} round-trips as 3, not 3.0.
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
// Deeper arrays/objects are refused, to bound recursion on hostile input.
inline constexpr int kMaxValueDepth = 64;

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

// The JSON form of a packed value; BytesValue becomes a JSON binary. Fails for a type URL
// this function does not read (for example a Pickled Python object) or a body that does
// not parse as its type.
Result<nlohmann::json> unpack_to_json(const google::protobuf::Any& any);

// google.protobuf.Value <-> JSON, the conversions behind the above.
Result<google::protobuf::Value> json_to_value(const nlohmann::json& value);
Result<nlohmann::json> value_to_json(const google::protobuf::Value& value);

// The full message name an Any holds: what follows the last '/' of its type URL.
std::string_view type_name_of(const google::protobuf::Any& any);

}  // namespace ratchet::protocol
