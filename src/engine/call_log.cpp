#include "engine/call_log.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <nlohmann/json.hpp>

#include "common/time_format.hpp"

namespace ratchet::engine {
namespace {

std::atomic<LogFormat> format{LogFormat::kText};
// The call the line being logged is about: spdlog's loggers here are
// synchronous, so the formatter runs on the thread that logs.
thread_local const CallLine* current_call = nullptr;

// spdlog's level names are fmt::string_views, which nlohmann::json would
// take for arrays of characters.
std::string level_name(spdlog::level::level_enum level) {
  auto name = spdlog::level::to_string_view(level);
  return std::string(name.data(), name.size());
}

class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    auto micros =
        std::chrono::duration_cast<std::chrono::microseconds>(msg.time.time_since_epoch()).count();
    nlohmann::json line{{"time", format_local_time(micros)},
                        {"level", level_name(msg.level)},
                        {"msg", std::string_view(msg.payload.data(), msg.payload.size())}};
    if (current_call) {
      line["call_id"] = current_call->call_id;
      line["function"] = current_call->function;
      line["attempt"] = current_call->attempt;
    }
    // Invalid UTF-8 (an error message from an endpoint) is replaced, not thrown.
    std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    text += '\n';
    dest.append(text.data(), text.data() + text.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }
};

}  // namespace

void set_log_format(LogFormat f) {
  format = f;
  if (f == LogFormat::kJson) spdlog::set_formatter(std::make_unique<JsonFormatter>());
}

void log_call(LogLevel log_level, const CallLine& line) {
  auto level = log_level == LogLevel::kInfo   ? spdlog::level::info
               : log_level == LogLevel::kWarn ? spdlog::level::warn
                                              : spdlog::level::err;
  if (format == LogFormat::kText) {
    spdlog::log(level, "call {} ({}, attempt {}) {}", line.call_id, line.function, line.attempt,
                line.message);
    return;
  }
  current_call = &line;
  spdlog::log(level, "{}", line.message);
  current_call = nullptr;
}

}  // namespace ratchet::engine
