#include "storage/run.hpp"

#include <array>

namespace ratchet {
namespace {

constexpr std::array<std::pair<RunStatus, std::string_view>, 6> kStatusNames{{
    {RunStatus::kStarting, "STARTING"},
    {RunStatus::kRunning, "RUNNING"},
    {RunStatus::kSucceeded, "SUCCEEDED"},
    {RunStatus::kFailed, "FAILED"},
    {RunStatus::kLost, "LOST"},
    {RunStatus::kCancelled, "CANCELLED"},
}};

constexpr std::array<std::pair<JobTrigger, std::string_view>, 4> kTriggerNames{{
    {JobTrigger::kStart, "start"},
    {JobTrigger::kRerun, "rerun"},
    {JobTrigger::kRetry, "retry"},
    {JobTrigger::kImport, "import"},
}};

}  // namespace

std::string_view trigger_name(JobTrigger trigger) {
  for (const auto& [t, name] : kTriggerNames) {
    if (t == trigger) return name;
  }
  return "start";
}

std::optional<JobTrigger> parse_trigger(std::string_view name) {
  for (const auto& [t, n] : kTriggerNames) {
    if (n == name) return t;
  }
  return std::nullopt;
}

std::string_view status_name(RunStatus status) {
  for (const auto& [s, name] : kStatusNames) {
    if (s == status) return name;
  }
  return "UNKNOWN";
}

std::optional<RunStatus> parse_status(std::string_view name) {
  for (const auto& [s, n] : kStatusNames) {
    if (n == name) return s;
  }
  return std::nullopt;
}

std::string_view kind_name(RunKind kind) { return kind == RunKind::kJob ? "job" : "call"; }

}  // namespace ratchet
