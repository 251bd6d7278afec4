// The conversions behind include/ratchet/protobuf.hpp. The marker format lives
// in protocol/values.hpp, which also sends a top-level marker as the Any itself.
#include "ratchet/protobuf.hpp"

#include <google/protobuf/any.pb.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/util/json_util.h>

#include <stdexcept>
#include <string>

#include "protocol/base64.hpp"
#include "protocol/values.hpp"

namespace ratchet::detail {
namespace {

using nlohmann::json;

// 302 is nlohmann's "type must be ..." error: the SDK reports it as a bad input
// (INVALID_ARGUMENT) or a bad result like any other failed conversion.
[[noreturn]] void fail(const std::string& what, const json& value) {
  throw json::type_error::create(302, what, &value);
}

std::string shown(const json& value) {
  std::string text = value.dump(-1, ' ', false, json::error_handler_t::replace);
  return text.size() > 100 ? text.substr(0, 100) + "..." : text;
}

void read_marker(const json& value, google::protobuf::Message& message) {
  const std::string& expected = message.GetDescriptor()->full_name();
  auto any = protocol::any_of_marker(value);
  if (!any.is_ok()) fail(any.status().message(), value);
  const std::string_view got = protocol::type_name_of(*any);
  if (got != expected) {
    fail("expected a protobuf message " + expected + ", got an Any of " + std::string(got), value);
  }
  if (!message.ParseFromString(any->value())) {
    fail("the bytes of a " + expected + " message do not parse", value);
  }
}

// A value as proto3 JSON text. A BytesValue unpacks as a JSON binary, which
// proto3 JSON writes in base64.
std::string proto3_json_text(const json& value) {
  if (value.is_binary()) {
    const auto& bytes = value.get_binary();
    return json(protocol::base64_encode(std::string(bytes.begin(), bytes.end()))).dump();
  }
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

// The message's proto3 JSON form: how the well-known types (Timestamp, Duration,
// wrappers, Struct, Value) arrive after unpacking, and how a client without the
// message's definition can send one.
void read_proto3_json(const json& value, google::protobuf::Message& message) {
  const std::string& expected = message.GetDescriptor()->full_name();
  message.Clear();
  auto status = google::protobuf::util::JsonStringToMessage(proto3_json_text(value), &message);
  if (!status.ok()) {
    fail("expected a protobuf message " + expected + " (an Any of that type, or its proto3 " +
             "JSON form), got " + shown(value) + ": " + std::string(status.message()),
         value);
  }
}

}  // namespace

json message_to_json(const google::protobuf::Message& message) {
  // Fail here rather than send bytes no reader will parse.
  if (!message.IsInitialized()) {
    throw std::invalid_argument("the protobuf message " + message.GetDescriptor()->full_name() +
                                " lacks required fields: " + message.InitializationErrorString());
  }
  google::protobuf::Any any;
  any.PackFrom(message);  // type.googleapis.com/<full name>
  return protocol::message_marker(any);
}

void message_from_json(const json& value, google::protobuf::Message& message) {
  if (protocol::is_message_marker(value)) {
    read_marker(value, message);
  } else {
    read_proto3_json(value, message);
  }
}

}  // namespace ratchet::detail
