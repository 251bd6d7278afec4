#include "protocol/values.hpp"

#include <google/protobuf/duration.pb.h>
#include <google/protobuf/empty.pb.h>
#include <google/protobuf/timestamp.pb.h>
#include <google/protobuf/util/time_util.h>
#include <google/protobuf/wrappers.pb.h>

#include <array>
#include <cmath>
#include <optional>
#include <string>
#include <string_view>

#include "protocol/base64.hpp"

namespace ratchet::protocol {
namespace {

namespace pb = google::protobuf;
using nlohmann::json;

// Doubles represent every integer of at most this magnitude exactly.
constexpr std::int64_t kMaxExactInteger = std::int64_t{1} << 53;

template <typename Message>
pb::Any pack_message(const Message& message) {
  pb::Any any;
  any.PackFrom(message);  // type.googleapis.com/<full name>
  return any;
}

template <typename Wrapper, typename T>
pb::Any pack_wrapper(T value) {
  Wrapper wrapper;
  wrapper.set_value(value);
  return pack_message(wrapper);
}

Status too_deep() {
  return invalid_argument("value nested deeper than " + std::to_string(kMaxValueDepth) + " levels");
}

Status check_utf8(std::string_view text, const char* what) {
  if (is_utf8(text)) return Status::ok();
  return invalid_argument(std::string(what) +
                          " is not UTF-8, which a protobuf string must be: send bytes as "
                          "bytes (a JSON binary value, e.g. nlohmann::json::binary)");
}

Result<pb::Value> to_value(const json& value, int depth);

Result<pb::Value> list_to_value(const json& array, int depth) {
  pb::Value out;
  pb::ListValue* list = out.mutable_list_value();
  for (const json& element : array) {
    ASSIGN_OR_RETURN(*list->add_values(), to_value(element, depth + 1));
  }
  return out;
}

Result<pb::Value> object_to_value(const json& object, int depth) {
  pb::Value out;
  auto* fields = out.mutable_struct_value()->mutable_fields();
  for (const auto& [key, element] : object.items()) {
    RETURN_IF_ERROR(check_utf8(key, "an object's key"));
    ASSIGN_OR_RETURN((*fields)[key], to_value(element, depth + 1));
  }
  return out;
}

// An integer as a Value's number (a double), refused when the double would not be exact.
Result<pb::Value> integer_to_value(const json& integer) {
  bool exact;
  if (integer.is_number_unsigned()) {
    exact = integer.get<std::uint64_t>() <= static_cast<std::uint64_t>(kMaxExactInteger);
  } else {
    const auto n = integer.get<std::int64_t>();
    exact = n >= -kMaxExactInteger && n <= kMaxExactInteger;
  }
  if (!exact) {
    return invalid_argument("integer " + integer.dump() +
                            " cannot be held exactly by a google.protobuf.Value (a double)");
  }
  pb::Value out;
  out.set_number_value(integer.get<double>());
  return out;
}

Result<pb::Value> to_value(const json& value, int depth) {
  if (depth > kMaxValueDepth) return too_deep();
  pb::Value out;
  switch (value.type()) {
    case json::value_t::null:
      out.set_null_value(pb::NULL_VALUE);
      return out;
    case json::value_t::boolean:
      out.set_bool_value(value.get<bool>());
      return out;
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
      return integer_to_value(value);
    case json::value_t::number_float:
      out.set_number_value(value.get<double>());
      return out;
    case json::value_t::string:
      RETURN_IF_ERROR(check_utf8(value.get_ref<const std::string&>(), "a string"));
      out.set_string_value(value.get_ref<const std::string&>());
      return out;
    case json::value_t::array:
      return list_to_value(value, depth);
    case json::value_t::object:
      return object_to_value(value, depth);
    case json::value_t::binary:
      return invalid_argument("binary data cannot be held by a google.protobuf.Value");
    case json::value_t::discarded:
      break;
  }
  return invalid_argument("a discarded JSON value cannot be packed");
}

Result<json> from_value(const pb::Value& value, int depth);

json number_to_json(double number) {
  const bool integral = std::isfinite(number) && std::trunc(number) == number &&
                        std::fabs(number) <= static_cast<double>(kMaxExactInteger);
  if (integral) return static_cast<std::int64_t>(number);
  return number;
}

Result<json> struct_to_json(const pb::Struct& object, int depth) {
  if (depth > kMaxValueDepth) return too_deep();
  json out = json::object();
  for (const auto& [key, element] : object.fields()) {
    ASSIGN_OR_RETURN(out[key], from_value(element, depth + 1));
  }
  return out;
}

Result<json> list_to_json(const pb::ListValue& list, int depth) {
  if (depth > kMaxValueDepth) return too_deep();
  json out = json::array();
  for (const pb::Value& element : list.values()) {
    ASSIGN_OR_RETURN(json converted, from_value(element, depth + 1));
    out.push_back(std::move(converted));
  }
  return out;
}

Result<json> from_value(const pb::Value& value, int depth) {
  if (depth > kMaxValueDepth) return too_deep();
  switch (value.kind_case()) {
    case pb::Value::kNullValue:
    case pb::Value::KIND_NOT_SET:
      return json(nullptr);
    case pb::Value::kNumberValue:
      return number_to_json(value.number_value());
    case pb::Value::kStringValue:
      return json(value.string_value());
    case pb::Value::kBoolValue:
      return json(value.bool_value());
    case pb::Value::kStructValue:
      return struct_to_json(value.struct_value(), depth);
    case pb::Value::kListValue:
      return list_to_json(value.list_value(), depth);
  }
  return invalid_argument("google.protobuf.Value of an unknown kind");
}

json bytes_to_json(const std::string& bytes) {
  return json::binary(std::vector<std::uint8_t>(bytes.begin(), bytes.end()));
}

Result<json> timestamp_to_json(const pb::Timestamp& t) {
  if (t.seconds() < pb::util::TimeUtil::kTimestampMinSeconds ||
      t.seconds() > pb::util::TimeUtil::kTimestampMaxSeconds || t.nanos() < 0 ||
      t.nanos() > 999'999'999) {
    return invalid_argument("google.protobuf.Timestamp out of range");
  }
  return json(pb::util::TimeUtil::ToString(t));
}

Result<json> duration_to_json(const pb::Duration& d) {
  const bool signs_agree =
      d.seconds() == 0 || d.nanos() == 0 || (d.seconds() < 0) == (d.nanos() < 0);
  if (d.seconds() < pb::util::TimeUtil::kDurationMinSeconds ||
      d.seconds() > pb::util::TimeUtil::kDurationMaxSeconds || d.nanos() < -999'999'999 ||
      d.nanos() > 999'999'999 || !signs_agree) {
    return invalid_argument("google.protobuf.Duration out of range");
  }
  return json(pb::util::TimeUtil::ToString(d));
}

Result<json> empty_to_json(const pb::Empty&) { return json(); }
Result<json> bytes_value_to_json(const pb::BytesValue& w) { return bytes_to_json(w.value()); }
Result<json> top_value_to_json(const pb::Value& v) { return from_value(v, 0); }
Result<json> top_struct_to_json(const pb::Struct& s) { return struct_to_json(s, 0); }
Result<json> top_list_to_json(const pb::ListValue& l) { return list_to_json(l, 0); }

template <typename Wrapper>
Result<json> wrapper_to_json(const Wrapper& w) {
  return json(w.value());
}

// Unpacks `any` as a Message and converts that with `Convert`.
template <typename Message, Result<json> (*Convert)(const Message&)>
Result<json> unpack_with(const pb::Any& any) {
  Message message;
  if (!any.UnpackTo(&message)) {
    return invalid_argument("the bytes of a " + Message::descriptor()->full_name() +
                            " value do not parse");
  }
  return Convert(message);
}

using Unpacker = Result<json> (*)(const pb::Any&);

struct UnpackerEntry {
  std::string_view type_name;
  Unpacker unpack;
};

// Every type unpack_to_json reads, by full message name.
constexpr std::array<UnpackerEntry, 15> kUnpackers{{
    {"google.protobuf.Empty", unpack_with<pb::Empty, empty_to_json>},
    {"google.protobuf.BoolValue", unpack_with<pb::BoolValue, wrapper_to_json>},
    {"google.protobuf.Int64Value", unpack_with<pb::Int64Value, wrapper_to_json>},
    {"google.protobuf.Int32Value", unpack_with<pb::Int32Value, wrapper_to_json>},
    {"google.protobuf.UInt64Value", unpack_with<pb::UInt64Value, wrapper_to_json>},
    {"google.protobuf.UInt32Value", unpack_with<pb::UInt32Value, wrapper_to_json>},
    {"google.protobuf.DoubleValue", unpack_with<pb::DoubleValue, wrapper_to_json>},
    {"google.protobuf.FloatValue", unpack_with<pb::FloatValue, wrapper_to_json>},
    {"google.protobuf.StringValue", unpack_with<pb::StringValue, wrapper_to_json>},
    {"google.protobuf.BytesValue", unpack_with<pb::BytesValue, bytes_value_to_json>},
    {"google.protobuf.Value", unpack_with<pb::Value, top_value_to_json>},
    {"google.protobuf.Struct", unpack_with<pb::Struct, top_struct_to_json>},
    {"google.protobuf.ListValue", unpack_with<pb::ListValue, top_list_to_json>},
    {"google.protobuf.Timestamp", unpack_with<pb::Timestamp, timestamp_to_json>},
    {"google.protobuf.Duration", unpack_with<pb::Duration, duration_to_json>},
}};

std::string_view pickled_type_name() {
  return kPickledTypeUrl.substr(kPickledTypeUrl.rfind('/') + 1);
}

}  // namespace

bool is_utf8(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    const auto lead = static_cast<unsigned char>(text[i]);
    std::size_t length = lead < 0x80                    ? 1
                         : lead >= 0xC2 && lead <= 0xDF ? 2
                         : lead >= 0xE0 && lead <= 0xEF ? 3
                         : lead >= 0xF0 && lead <= 0xF4 ? 4
                                                        : 0;
    if (length == 0 || i + length > text.size()) return false;
    unsigned char low = 0x80, high = 0xBF;  // the second byte's range
    if (lead == 0xE0) low = 0xA0;
    if (lead == 0xED) high = 0x9F;
    if (lead == 0xF0) low = 0x90;
    if (lead == 0xF4) high = 0x8F;
    for (std::size_t k = 1; k < length; ++k) {
      const auto byte = static_cast<unsigned char>(text[i + k]);
      if (byte < (k == 1 ? low : 0x80) || byte > (k == 1 ? high : 0xBF)) return false;
    }
    i += length;
  }
  return true;
}

pb::Any pack_null() { return pack_message(pb::Empty()); }
pb::Any pack_bool(bool value) { return pack_wrapper<pb::BoolValue>(value); }
pb::Any pack_int64(std::int64_t value) { return pack_wrapper<pb::Int64Value>(value); }
pb::Any pack_double(double value) { return pack_wrapper<pb::DoubleValue>(value); }
pb::Any pack_string(std::string_view value) {
  return pack_wrapper<pb::StringValue>(std::string(value));
}
pb::Any pack_bytes(std::string_view value) {
  return pack_wrapper<pb::BytesValue>(std::string(value));
}

Result<pb::Value> json_to_value(const json& value) { return to_value(value, 0); }
Result<json> value_to_json(const pb::Value& value) { return from_value(value, 0); }

Result<pb::Any> pack_json_as_value(const json& value) {
  ASSIGN_OR_RETURN(pb::Value converted, json_to_value(value));
  return pack_message(converted);
}

Result<pb::Any> pack_json(const json& value) {
  switch (value.type()) {
    case json::value_t::null:
      return pack_null();
    case json::value_t::boolean:
      return pack_bool(value.get<bool>());
    case json::value_t::number_integer:
      return pack_int64(value.get<std::int64_t>());
    case json::value_t::number_unsigned:
      // Above int64 (half of ratchet::random()'s values): its own wrapper,
      // which every reader here and dispatch-py's unpack as the same integer.
      if (value.get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX)) {
        return pack_wrapper<pb::UInt64Value>(value.get<std::uint64_t>());
      }
      return pack_int64(value.get<std::int64_t>());
    case json::value_t::number_float:
      return pack_double(value.get<double>());
    case json::value_t::string:
      RETURN_IF_ERROR(check_utf8(value.get_ref<const std::string&>(), "a string"));
      return pack_string(value.get_ref<const std::string&>());
    case json::value_t::binary: {
      const auto& bytes = value.get_binary();
      return pack_bytes(std::string(bytes.begin(), bytes.end()));
    }
    default:
      if (is_message_marker(value)) return any_of_marker(value);
      return pack_json_as_value(value);
  }
}

bool is_message_marker(const json& value) {
  return value.is_object() && value.size() == 1 && value.contains(kMessageMarkerKey);
}

json message_marker(const pb::Any& any) {
  json parts = {{"type_url", any.type_url()}, {"value", base64_encode(any.value())}};
  return {{kMessageMarkerKey, std::move(parts)}};
}

Result<pb::Any> any_of_marker(const json& marker) {
  static const std::string kShape =
      "{\"" + std::string(kMessageMarkerKey) +
      "\": {\"type_url\": \"type.googleapis.com/<message>\", \"value\": \"<base64>\"}}";
  if (!is_message_marker(marker)) return invalid_argument("a message marker must be " + kShape);
  const json& parts = marker.at(kMessageMarkerKey);
  const bool well_formed = parts.is_object() && parts.size() == 2 && parts.contains("type_url") &&
                           parts["type_url"].is_string() && parts.contains("value") &&
                           parts["value"].is_string();
  if (!well_formed) return invalid_argument("malformed message marker: it must be " + kShape);
  const auto& type_url = parts["type_url"].get_ref<const std::string&>();
  if (type_url.empty()) return invalid_argument("malformed message marker: empty type_url");
  std::optional<std::string> bytes = base64_decode(parts["value"].get_ref<const std::string&>());
  if (!bytes) return invalid_argument("malformed message marker: its value is not base64");
  pb::Any any;
  any.set_type_url(type_url);
  any.set_value(std::move(*bytes));
  return any;
}

std::string_view type_name_of(const pb::Any& any) {
  const std::string& url = any.type_url();
  const std::size_t slash = url.rfind('/');
  return slash == std::string::npos ? std::string_view(url)
                                    : std::string_view(url).substr(slash + 1);
}

Result<json> unpack_to_json(const pb::Any& any) {
  const std::string_view name = type_name_of(any);
  for (const UnpackerEntry& entry : kUnpackers) {
    if (entry.type_name == name) return entry.unpack(any);
  }
  if (name == pickled_type_name()) {
    return invalid_argument("a pickled Python object (" + any.type_url() +
                            ") cannot be read from C++: have the Python side pass JSON-like "
                            "values");
  }
  if (name.empty()) return invalid_argument("a value without a type URL cannot be read");
  // Some other protobuf message: whoever reads the JSON decides whether it is the message
  // it expects (ratchet/protobuf.hpp).
  return message_marker(any);
}

}  // namespace ratchet::protocol
