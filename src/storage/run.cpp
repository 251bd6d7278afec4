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

// The name of `value` in `table`, or `fallback`.
template <typename Enum, std::size_t N>
std::string_view name_in(const std::array<std::pair<Enum, std::string_view>, N>& table, Enum value,
                         std::string_view fallback) {
  for (const auto& [v, name] : table) {
    if (v == value) return name;
  }
  return fallback;
}

template <typename Enum, std::size_t N>
std::optional<Enum> value_in(const std::array<std::pair<Enum, std::string_view>, N>& table,
                             std::string_view name) {
  for (const auto& [v, n] : table) {
    if (n == name) return v;
  }
  return std::nullopt;
}

}  // namespace

std::string_view trigger_name(JobTrigger trigger) {
  return name_in(kTriggerNames, trigger, "start");
}

std::optional<JobTrigger> parse_trigger(std::string_view name) {
  return value_in(kTriggerNames, name);
}

std::string_view status_name(RunStatus status) { return name_in(kStatusNames, status, "UNKNOWN"); }

std::optional<RunStatus> parse_status(std::string_view name) {
  return value_in(kStatusNames, name);
}

std::string_view kind_name(RunKind kind) { return kind == RunKind::kJob ? "job" : "call"; }

}  // namespace ratchet
