#include "dashboard/render.hpp"

#include <google/protobuf/any.pb.h>
#include <google/protobuf/wrappers.pb.h>

#include <algorithm>
#include <cctype>

#include "dispatch/sdk/python/v1/pickled.pb.h"
#include "dispatch/sdk/v1/error.pb.h"
#include "protocol/values.hpp"
#include "ratchet/sdk/v1/journal.pb.h"

namespace ratchet::dashboard {
namespace {

namespace jv1 = ::ratchet::sdk::v1;

constexpr std::string_view kJournalType = "ratchet.sdk.v1.Journal";
constexpr std::size_t kHexPreview = 64;

// Structure only (lead and continuation bytes): enough to tell text from binary.
bool valid_utf8(std::string_view text) {
  for (std::size_t i = 0; i < text.size();) {
    auto c = static_cast<unsigned char>(text[i]);
    std::size_t extra = c < 0x80             ? 0
                        : (c & 0xe0) == 0xc0 ? 1
                        : (c & 0xf0) == 0xe0 ? 2
                        : (c & 0xf8) == 0xf0 ? 3
                                             : 4;
    if (extra == 4) return false;
    for (std::size_t k = 1; k <= extra; ++k) {
      if (i + k >= text.size() || (static_cast<unsigned char>(text[i + k]) & 0xc0) != 0x80) {
        return false;
      }
    }
    i += extra + 1;
  }
  return true;
}

std::string hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string text;
  for (unsigned char c : bytes.substr(0, kHexPreview)) {
    text += kDigits[c >> 4];
    text += kDigits[c & 0xf];
  }
  return text;
}

nlohmann::json bytes_value(std::string_view bytes) {
  return {{"kind", "bytes"}, {"size", bytes.size()}, {"hex", hex(bytes)}};
}

nlohmann::json python_value(std::size_t size) {
  return {{"kind", "python"},
          {"size", size},
          {"summary", "Python object, " + std::to_string(size) + " bytes"}};
}

nlohmann::json message_value(const google::protobuf::Any& any) {
  return {{"kind", "message"},
          {"type", std::string(protocol::type_name_of(any))},
          {"size", any.value().size()}};
}

nlohmann::json text_or_bytes(std::string_view bytes) {
  if (valid_utf8(bytes)) return {{"kind", "text"}, {"text", std::string(bytes)}};
  return bytes_value(bytes);
}

nlohmann::json render_any(const google::protobuf::Any& any) {
  if (any.type_url() == protocol::kPickledTypeUrl) {
    dispatch::sdk::python::v1::Pickled pickled;
    std::size_t size =
        pickled.ParseFromString(any.value()) ? pickled.pickled_value().size() : any.value().size();
    return python_value(size);
  }
  std::string_view type = protocol::type_name_of(any);
  if (type == "google.protobuf.StringValue" || type == "google.protobuf.BytesValue") {
    google::protobuf::BytesValue raw;  // the same wire form as StringValue
    if (raw.ParseFromString(any.value())) return text_or_bytes(raw.value());
    return bytes_value(any.value());
  }
  auto json = protocol::unpack_to_json(any);
  if (!json.is_ok() || protocol::is_message_marker(*json)) return message_value(any);
  return {{"kind", "json"}, {"json", std::move(*json)}};
}

const std::string& name_at(const jv1::Journal& journal, std::uint32_t index) {
  static const std::string unknown = "?";
  return index < static_cast<std::uint32_t>(journal.names_size())
             ? journal.names(static_cast<int>(index))
             : unknown;
}

nlohmann::json render_step(const jv1::Journal& journal, const jv1::Step& step, int number) {
  nlohmann::json out = {{"step", number},
                        {"function", name_at(journal, step.function())},
                        {"completion", step.completion()}};
  switch (step.outcome_case()) {
    case jv1::Step::kOutput: {
      google::protobuf::Any any;
      any.set_type_url(name_at(journal, step.output().type()));
      any.set_value(step.output().value());
      out["state"] = "ok";
      out["output"] = render_any(any);
      break;
    }
    case jv1::Step::kError:
      out["state"] = "error";
      out["error"] = {{"type", step.error().type()}, {"message", step.error().message()}};
      break;
    default:
      out["state"] = "pending";
  }
  return out;
}

nlohmann::json render_journal(const google::protobuf::Any& any) {
  jv1::Journal journal;
  if (!journal.ParseFromString(any.value())) return message_value(any);
  nlohmann::json steps = nlohmann::json::array();
  int number = 0;
  for (const jv1::Step& step : journal.steps())
    steps.push_back(render_step(journal, step, ++number));
  return {{"kind", "journal"},
          {"version", journal.version()},
          {"function", journal.function()},
          {"input", render_any(journal.input())},
          {"completed", journal.completed()},
          {"steps", std::move(steps)}};
}

}  // namespace

nlohmann::json render_value(std::string_view serialized_any) {
  if (serialized_any.empty()) return {{"kind", "none"}};
  google::protobuf::Any any;
  if (!any.ParseFromString(std::string(serialized_any))) return bytes_value(serialized_any);
  return render_any(any);
}

nlohmann::json render_error(const CallError& error) {
  nlohmann::json out = {{"type", error.type}, {"message", error.message}};
  // The endpoint's Error as it came (storage keeps it opaque): a Python error's
  // pickled exception and formatted traceback are in it.
  dispatch::sdk::v1::Error full;
  if (error.encoded.empty() || !full.ParseFromString(error.encoded)) return out;
  if (!full.traceback().empty() && valid_utf8(full.traceback())) {
    out["traceback"] = full.traceback();
  }
  if (!full.value().empty()) out["value"] = python_value(full.value().size());
  return out;
}

nlohmann::json render_coroutine_state(int member, std::string_view state) {
  if (member != 6) return python_value(state.size());
  google::protobuf::Any any;
  if (!any.ParseFromString(std::string(state))) return bytes_value(state);
  if (protocol::type_name_of(any) == kJournalType) return render_journal(any);
  return render_any(any);
}

bool looks_secret(std::string_view name) {
  std::string upper(name);
  std::transform(upper.begin(), upper.end(), upper.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  for (std::string_view word : {"SECRET", "TOKEN", "PASSWORD", "PASSWD", "KEY", "CREDENTIAL",
                                "AUTH", "PRIVATE", "SESSION", "COOKIE", "DSN"}) {
    if (upper.find(word) != std::string::npos) return true;
  }
  return false;
}

nlohmann::json render_env(const std::vector<std::pair<std::string, std::string>>& env) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& [name, value] : env) {
    if (looks_secret(name)) {
      out.push_back({{"name", name}, {"masked", true}});
    } else {
      out.push_back({{"name", name}, {"value", value}});
    }
  }
  return out;
}

std::string dump(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace ratchet::dashboard
