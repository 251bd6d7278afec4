// The dashboard's JSON read API (docs/server.md, "Ratchet's extension: the
// dashboard API"): one function per view, each reading through the Store
// interface only, so that every backend serves the same views.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "common/status.hpp"
#include "storage/store.hpp"

namespace ratchet::dashboard {

// A request's query parameters, percent-decoded.
using Params = std::map<std::string, std::string, std::less<>>;
Params parse_query(std::string_view query);

// GET /ratchet/v1/runs: {"runs": [...], "next_cursor": "..."}.
Result<nlohmann::json> runs_view(Store& store, const Params& params);
// GET /ratchet/v1/calls/{id}: the call, its values rendered, its coroutine state.
Result<nlohmann::json> call_view(Store& store, const std::string& id);
// The journal step a coroutine's replay diverged at, from the last error its
// restart kept (the C++ SDK's "step N diverged: ..."); nullopt otherwise.
std::optional<int> diverged_at(const CallRecord& call);
// GET /ratchet/v1/calls/{id}/tree: the call, its children and grandchildren;
// the first kTimelineCalls of them with their latest attempts and polls
// (call_history), and the call's actions (call_actions): the timeline.
Result<nlohmann::json> tree_view(Store& store, const std::string& id, Micros now);
// GET /ratchet/v1/jobs/{id}: the job (secret-looking env values masked) and
// the other runs of its key.
Result<nlohmann::json> job_view(Store& store, const std::string& id);
// GET /ratchet/v1/jobs/{id}/logs?stream=stdout|stderr&offset=N: the bytes of
// the log from `offset` (at most 256 KiB), and whether the job has ended.
Result<nlohmann::json> logs_view(Store& store, const std::string& id, const Params& params);
// GET /ratchet/v1/health: what the store knows (runs running, waiting, and
// finished in the last minute by status); the dashboard adds the scheduler's
// figures (health.hpp).
Result<nlohmann::json> health_view(Store& store, Micros now);

// The limits of one tree: children per call, and calls in all.
inline constexpr int kTreeChildren = 1000;
inline constexpr int kTreeNodes = 5000;
// The limits of its timeline: calls drawn with their attempts and polls, the
// latest events of each, and the call's latest actions.
inline constexpr std::size_t kTimelineCalls = 200;
inline constexpr std::size_t kTimelineEvents = 50;
inline constexpr std::size_t kTimelineActions = 100;
inline constexpr std::size_t kTreeErrorChars = 1000;
inline constexpr std::size_t kLogChunk = 256 * 1024;

}  // namespace ratchet::dashboard
