// Log lines about a call carry its id, function and attempt: as a prefix in
// text, as fields of their own in JSON (--log-format json, one object per
// line: time, level, msg, and call_id, function, attempt when about a call).
#pragma once

#include <string>

namespace ratchet::engine {

struct CallLine {
  std::string call_id;
  std::string function;
  int attempt = 0;
  std::string message;
};

enum class LogFormat { kText, kJson };
enum class LogLevel { kInfo, kWarn, kError };

// Sets the format of every logger (spdlog's default included).
void set_log_format(LogFormat format);
void log_call(LogLevel level, const CallLine& line);

}  // namespace ratchet::engine
