#include "dashboard/views.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include "common/regular_file.hpp"
#include "common/time_format.hpp"
#include "dashboard/render.hpp"
#include "jobs/runner.hpp"
#include "protocol/status_class.hpp"

namespace ratchet::dashboard {
namespace {

using json = nlohmann::json;

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percent_decode(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '+') {
      out += ' ';
    } else if (text[i] == '%' && i + 2 < text.size() && hex_digit(text[i + 1]) >= 0 &&
               hex_digit(text[i + 2]) >= 0) {
      out += static_cast<char>(hex_digit(text[i + 1]) * 16 + hex_digit(text[i + 2]));
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

json optional_micros(const std::optional<Micros>& t) { return t ? json(*t) : json(nullptr); }

const std::string* param(const Params& params, std::string_view name) {
  auto found = params.find(name);
  return found == params.end() || found->second.empty() ? nullptr : &found->second;
}

// A time: microseconds since the epoch, or ISO 8601 (common/time_format.hpp).
Result<Micros> time_param(std::string_view name, const std::string& text) {
  Micros value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error == std::errc() && end == text.data() + text.size()) return value;
  auto parsed = parse_datetime(text);
  if (!parsed.is_ok())
    return invalid_argument(std::string(name) + ": " + parsed.status().message());
  return parsed;
}

Result<RunFilter> run_filter(const Params& params) {
  RunFilter filter;
  if (auto status = param(params, "status")) {
    filter.status = parse_status(*status);
    if (!filter.status) return invalid_argument("status: no such status '" + *status + "'");
  }
  if (auto kind = param(params, "kind")) {
    if (*kind != "job" && *kind != "call") return invalid_argument("kind: 'job' or 'call'");
    filter.kind = *kind == "job" ? RunKind::kJob : RunKind::kCall;
  }
  if (auto name = param(params, "name")) filter.name = *name;
  if (auto key = param(params, "run_key")) filter.run_key = *key;
  if (auto from = param(params, "from")) {
    ASSIGN_OR_RETURN(filter.started_from, time_param("from", *from));
  }
  if (auto to = param(params, "to")) {
    ASSIGN_OR_RETURN(filter.started_before, time_param("to", *to));
  }
  if (auto scope = param(params, "scope")) {
    if (*scope != "roots" && *scope != "all") return invalid_argument("scope: 'roots' or 'all'");
    filter.roots_only = *scope == "roots";
  }
  return filter;
}

json run_json(const RunRow& run) {
  json out = {{"id", run.id},
              {"kind", kind_name(run.kind)},
              {"status", status_name(run.status)},
              {"run_key", run.run_key},
              {"started_at", run.started_at},
              {"finished_at", optional_micros(run.finished_at)},
              {"attempts", run.attempts}};
  if (run.kind == RunKind::kCall) {
    out["function"] = run.function;
    out["parent_id"] = run.parent_id;
    out["root_id"] = run.root_id;
  } else {
    out["command"] = run.command;
    out["exit_code"] = run.exit_code ? json(*run.exit_code) : json(nullptr);
  }
  if (run.error) out["error"] = {{"type", run.error_type}, {"message", *run.error}};
  return out;
}

json node_json(const CallRecord& call) {
  json out = {{"id", call.id},
              {"parent_id", call.parent_id},
              {"function", call.function},
              {"status", status_name(call.status)},
              {"phase", phase_name(call.phase)},
              {"attempts", call.attempts},
              {"correlation_id", call.correlation_id},
              {"started_at", call.started_at},
              {"finished_at", optional_micros(call.finished_at)}};
  if (call.error) {
    // A tree shows the start of each error; the call's own page shows all of it.
    CallError error = *call.error;
    if (error.message.size() > kTreeErrorChars) error.message.resize(kTreeErrorChars);
    out["error"] = render_error(error);
  }
  return out;
}

std::string dispatch_status_name(int number) {
  return std::string(protocol::status_name(static_cast<protocol::DispatchStatus>(number)));
}

json history_json(const HistoryEvent& event) {
  json out = {{"number", event.number},   {"kind", event.kind},
              {"at", event.at},           {"duration", optional_micros(event.duration)},
              {"attempt", event.attempt}, {"outcome", event.outcome},
              {"detail", event.detail},   {"children", event.children},
              {"results", event.results}};
  if (event.call_status != 0) out["status"] = dispatch_status_name(event.call_status);
  return out;
}

template <typename Row, typename ToJson>
json as_json(const std::vector<Row>& rows, ToJson to_json) {
  json out = json::array();
  for (const auto& row : rows) out.push_back(to_json(row));
  return out;
}

// Adds each call's latest attempts and polls to the first kTimelineCalls
// nodes of a tree, and how many there were in all: a call's history numbers
// its events from 1, so the last number counts those the store let go too.
Status add_history(Store& store, json& nodes) {
  std::size_t calls = std::min<std::size_t>(nodes.size(), kTimelineCalls);
  for (std::size_t i = 0; i < calls; ++i) {
    ASSIGN_OR_RETURN(auto events, store.call_history(nodes[i]["id"].get<std::string>(),
                                                     static_cast<int>(kTimelineEvents)));
    nodes[i]["history_total"] = events.empty() ? 0 : events.back().number;
    nodes[i]["history"] = as_json(events, history_json);
  }
  return Status::ok();
}

json action_json(const CallAction& action) {
  return {{"at", action.at},
          {"actor", action.actor},
          {"action", action.action},
          {"detail", action.detail}};
}

Result<CallRecord> find_call(Store& store, const std::string& id) {
  ASSIGN_OR_RETURN(auto call, store.find_call(id));
  if (!call) return not_found("no call with dispatch id " + id);
  return std::move(*call);
}

Result<JobRecord> find_job(Store& store, const std::string& id) {
  ASSIGN_OR_RETURN(auto job, store.find_job(id));
  if (!job) return not_found("no job with id " + id);
  // As `ratchet status` does: a job whose supervisor died is recorded LOST.
  return jobs::refresh_job(store, std::move(*job));
}

}  // namespace

Params parse_query(std::string_view query) {
  Params params;
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    auto eq = pair.find('=');
    std::string name = percent_decode(pair.substr(0, eq));
    std::string value = eq == std::string_view::npos ? "" : percent_decode(pair.substr(eq + 1));
    params.emplace(std::move(name), std::move(value));
  }
  return params;
}

Result<json> runs_view(Store& store, const Params& params) {
  RunQuery query;
  ASSIGN_OR_RETURN(query.filter, run_filter(params));
  if (auto cursor = param(params, "cursor")) query.cursor = *cursor;
  if (auto limit = param(params, "limit")) {
    int n = 0;
    auto [end, error] = std::from_chars(limit->data(), limit->data() + limit->size(), n);
    if (error != std::errc() || end != limit->data() + limit->size() || n < 1) {
      return invalid_argument("limit: a positive number");
    }
    query.limit = n;
  }
  ASSIGN_OR_RETURN(RunPage page, store.browse_runs(query));
  json runs = json::array();
  for (const auto& run : page.runs) runs.push_back(run_json(run));
  return json{{"runs", std::move(runs)}, {"next_cursor", page.next_cursor}};
}

std::optional<int> diverged_at(const CallRecord& call) {
  // The C++ SDK's INCOMPATIBLE_STATE message, kept as the last error by the
  // restart: "step N diverged: ...".
  if (!call.error || call.error->type != "IncompatibleStateError") return std::nullopt;
  const std::string& message = call.error->message;
  if (!message.starts_with("step ")) return std::nullopt;
  int step = 0;
  auto [end, error] = std::from_chars(message.data() + 5, message.data() + message.size(), step);
  if (error != std::errc() ||
      std::string_view(end, message.data() + message.size()).substr(0, 9) != " diverged") {
    return std::nullopt;
  }
  return step;
}

Result<json> call_view(Store& store, const std::string& id) {
  ASSIGN_OR_RETURN(CallRecord call, find_call(store, id));
  json out = node_json(call);
  if (call.error) out["error"] = render_error(*call.error);
  if (auto step = diverged_at(call)) out["diverged_at"] = *step;
  out["run_key"] = call.run_key;
  out["endpoint"] = call.endpoint;
  out["version"] = call.version;
  out["root_id"] = call.root_id;
  out["expires_at"] = optional_micros(call.expires_at);
  out["ready_at"] = call.ready_at;
  out["lease_owner"] = call.lease_owner;
  out["lease_expires_at"] = optional_micros(call.lease_expires_at);
  out["input"] = render_value(call.input);
  out["output"] = call.output ? render_value(*call.output) : json(nullptr);
  if (is_terminal(call.status)) out["call_status"] = dispatch_status_name(call.call_status);
  if (call.poll) {
    out["poll"] = {{"min_results", call.poll->min_results},
                   {"max_results", call.poll->max_results},
                   {"deadline", call.poll->deadline},
                   {"children_waiting", call.children_waiting},
                   {"results_waiting", call.results_waiting}};
    ASSIGN_OR_RETURN(auto state, store.coroutine_state(call.id));
    if (state) out["coroutine"] = render_coroutine_state(call.poll->member, *state);
  }
  if (call.poll_error) out["poll_error"] = render_error(*call.poll_error);
  return out;
}

Result<json> tree_view(Store& store, const std::string& id, Micros now) {
  ASSIGN_OR_RETURN(CallRecord root, find_call(store, id));
  json nodes = json::array({node_json(root)});
  bool truncated = false;
  std::vector<std::string> level{root.id};
  for (int depth = 1; depth <= 2 && !level.empty(); ++depth) {
    int left = kTreeNodes - static_cast<int>(nodes.size());
    if (left <= 0) {
      truncated = true;
      break;
    }
    // A level in one read, bounded twice: each parent reads at most what the
    // tree has room for, plus one child that says it has more, and the level
    // at most `left` plus one per parent (the most rows not shown), which
    // reaches every child shown and the one past the parent that fills it.
    int per_parent = std::min(kTreeChildren, left) + 1;
    ASSIGN_OR_RETURN(auto children, store.child_calls_of(level, per_parent,
                                                         left + static_cast<int>(level.size())));
    std::vector<std::string> next;
    auto child = children.begin();
    std::size_t parent_node = nodes.size() - level.size();
    for (const auto& parent : level) {
      int room = std::min<int>(kTreeChildren, kTreeNodes - static_cast<int>(nodes.size()));
      if (room <= 0) {
        truncated = true;
        break;
      }
      std::size_t parent_at = parent_node++;  // an index: the pushes below move the nodes
      for (int shown = 0; child != children.end() && child->parent_id == parent; ++child) {
        if (shown == room) {
          truncated = true;
          nodes[parent_at]["more_children"] = true;
          continue;
        }
        ++shown;
        nodes.push_back(node_json(*child));
        nodes.back()["depth"] = depth;
        next.push_back(child->id);
      }
    }
    level = std::move(next);
  }
  nodes[0]["depth"] = 0;
  RETURN_IF_ERROR(add_history(store, nodes));
  ASSIGN_OR_RETURN(auto actions, store.call_actions(root.id, static_cast<int>(kTimelineActions)));
  return json{{"root_id", root.root_id},
              {"now", now},
              {"truncated", truncated},
              {"timeline_calls", std::min<std::size_t>(nodes.size(), kTimelineCalls)},
              {"nodes", std::move(nodes)},
              {"actions_total", actions.total},
              {"actions", as_json(actions.latest, action_json)}};
}

Result<json> job_view(Store& store, const std::string& id) {
  ASSIGN_OR_RETURN(JobRecord job, find_job(store, id));
  json out = {{"id", job.id},
              {"kind", "job"},
              {"run_key", job.run_key},
              {"status", status_name(job.status)},
              {"command", job.command},
              {"cwd", job.cwd},
              {"env", render_env(job.env)},
              {"pid", job.process ? json(job.process->pid) : json(nullptr)},
              {"exit_code", job.exit_code ? json(*job.exit_code) : json(nullptr)},
              {"signal", job.signal ? json(*job.signal) : json(nullptr)},
              {"error", job.error ? json(*job.error) : json(nullptr)},
              {"timeout_us", optional_micros(job.timeout)},
              {"started_at", job.started_at},
              {"finished_at", optional_micros(job.finished_at)},
              {"cancel_requested_at", optional_micros(job.cancel_requested_at)}};
  // A job's attempts are the runs of its key: `ratchet start` runs a key again
  // once its last job has ended.
  ASSIGN_OR_RETURN(auto runs, store.runs_for_key(job.run_key, 50));
  json attempts = json::array();
  for (const auto& run : runs) {
    if (run.kind != RunKind::kJob) continue;
    attempts.push_back({{"id", run.id},
                        {"status", status_name(run.status)},
                        {"started_at", run.started_at},
                        {"finished_at", optional_micros(run.finished_at)}});
  }
  out["attempts"] = std::move(attempts);
  return out;
}

Result<json> logs_view(Store& store, const std::string& id, const Params& params) {
  ASSIGN_OR_RETURN(JobRecord job, find_job(store, id));
  std::string stream = param(params, "stream") ? *param(params, "stream") : "stdout";
  if (stream != "stdout" && stream != "stderr") return invalid_argument("stream: stdout or stderr");
  std::int64_t offset = 0;
  if (auto text = param(params, "offset")) {
    auto [end, error] = std::from_chars(text->data(), text->data() + text->size(), offset);
    if (error != std::errc() || end != text->data() + text->size() || offset < 0) {
      return invalid_argument("offset: a byte offset (0 or more)");
    }
  }
  const std::string& path = stream == "stdout" ? job.stdout_file : job.stderr_file;
  std::string data;
  // Never a FIFO put in the log's place: open() would block the server's thread.
  auto fd = open_regular_file(path, O_RDONLY);
  if (!fd.is_ok() && fd.status().code() != Code::kNotFound) {
    return unavailable("cannot read the " + stream + " log " + fd.status().message());
  }
  if (fd.is_ok()) {
    data.resize(kLogChunk);
    ssize_t n = pread(*fd, data.data(), data.size(), offset);
    close(*fd);
    data.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  }
  return json{{"stream", stream},
              {"offset", offset},
              {"next_offset", offset + static_cast<std::int64_t>(data.size())},
              {"data", std::move(data)},
              {"status", status_name(job.status)},
              {"ended", is_terminal(job.status)}};
}

Result<json> health_view(Store& store, Micros now) {
  constexpr Micros kWindow = 60 * kMicrosPerSecond;
  ASSIGN_OR_RETURN(HealthCounts health, store.health_counts(now - kWindow));
  json finished = json::array();
  for (const auto& row : health.finished_since) {
    finished.push_back({{"name", row.name}, {"count", row.count}});
  }
  // Rates, queues and endpoints come from the scheduler's figures (health.hpp).
  return json{{"now", now},
              {"window_seconds", kWindow / kMicrosPerSecond},
              {"jobs_running", health.jobs_running},
              {"calls_running", health.calls_running},
              {"calls_waiting", health.calls_waiting},
              {"finished", std::move(finished)}};
}

}  // namespace ratchet::dashboard
