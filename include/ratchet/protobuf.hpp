// Protobuf messages as arguments and results (opt-in: include this header and link
// protobuf, e.g. CMake's protobuf::libprotobuf):
//
//   #include <ratchet/protobuf.hpp>
//   auto ship = dispatch.function("ship", [](acme::Order order) -> ratchet::Task<acme::Receipt> {
//     ...
//   });
//
// Every type derived from google::protobuf::Message gets an nlohmann::json
// conversion, so it works wherever a JSON-like value does (arguments, results,
// Call<T>, containers). A message travels as a google.protobuf.Any of its own
// type, as the Python SDK sends messages (docs/sdk.md, "Protobuf messages").
//
// Reading a message accepts:
//   - an Any of exactly the message's type (its JSON form is the marker object
//     {"$ratchet.any": {"type_url": ..., "value": <base64 bytes>}}, which is
//     also how a message nested in a list or object travels);
//   - otherwise the message's proto3 JSON form, so a function taking a
//     google.protobuf.Timestamp reads a Timestamp, and one taking acme.Order
//     reads {"id": "x", "amount": 3} sent as a google.protobuf.Value.
// Anything else is a conversion error: INVALID_ARGUMENT for a function's input,
// InvalidResponseError for an awaited result.
#pragma once

#include <google/protobuf/message.h>

#include <nlohmann/json.hpp>
#include <type_traits>

namespace ratchet::detail {

// Defined in the SDK (src/sdk/protobuf.cpp). message_from_json throws
// nlohmann::json::type_error when `value` is not a `message` of its type.
nlohmann::json message_to_json(const google::protobuf::Message& message);
void message_from_json(const nlohmann::json& value, google::protobuf::Message& message);

}  // namespace ratchet::detail

namespace nlohmann {

template <typename T>
struct adl_serializer<T, std::enable_if_t<std::is_base_of_v<google::protobuf::Message, T>>> {
  static void to_json(json& value, const T& message) {
    value = ratchet::detail::message_to_json(message);
  }
  static void from_json(const json& value, T& message) {
    ratchet::detail::message_from_json(value, message);
  }
};

}  // namespace nlohmann
