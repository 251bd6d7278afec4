#include "storage/records.hpp"

#include <nlohmann/json.hpp>

#include "common/byte_text.hpp"
#include "protocol/journal_delta.hpp"

namespace ratchet::records {
namespace {

constexpr std::string_view kPhaseNames[] = {"READY", "LEASED", "WAITING", "DONE", "HELD"};

}  // namespace

// A job's command and env are bytes (a Latin-1 file name, say), and JSON text
// is UTF-8: they are kept in the run key's lossless text form
// (common/byte_text.hpp). dump() threw on the raw bytes, which killed the
// job's supervisor.
std::string env_to_json(const std::vector<std::pair<std::string, std::string>>& env) {
  nlohmann::json array = nlohmann::json::array();
  for (const auto& [name, value] : env)
    array.push_back({bytes_to_text(name), bytes_to_text(value)});
  return array.dump();
}

std::vector<std::pair<std::string, std::string>> env_from_json(const std::string& text) {
  std::vector<std::pair<std::string, std::string>> env;
  auto array = nlohmann::json::parse(text, nullptr, false);
  if (!array.is_array()) return env;
  for (const auto& pair : array) {
    if (pair.is_array() && pair.size() == 2 && pair[0].is_string() && pair[1].is_string()) {
      env.emplace_back(text_to_bytes(pair[0].get<std::string>()),
                       text_to_bytes(pair[1].get<std::string>()));
    }
  }
  return env;
}

std::string command_to_json(const std::vector<std::string>& command) {
  nlohmann::json array = nlohmann::json::array();
  for (const auto& arg : command) array.push_back(bytes_to_text(arg));
  return array.dump();
}

std::vector<std::string> command_from_json(const std::string& text) {
  auto array = nlohmann::json::parse(text, nullptr, false);
  std::vector<std::string> command;
  if (!array.is_array()) return command;
  for (const auto& arg : array) {
    if (arg.is_string()) command.push_back(text_to_bytes(arg.get<std::string>()));
  }
  return command;
}

std::string error_to_json(const CallError& error) {
  return nlohmann::json{{"type", error.type}, {"message", error.message}}.dump();
}

std::optional<CallError> error_from_json(const std::optional<std::string>& text) {
  if (!text) return std::nullopt;
  auto json = nlohmann::json::parse(*text, nullptr, false);
  if (!json.is_object()) return std::nullopt;
  return CallError{json.value("type", ""), json.value("message", "")};
}

CallPhase parse_phase(const std::string& name) {
  for (int i = 0; i < static_cast<int>(std::size(kPhaseNames)); ++i) {
    if (kPhaseNames[i] == name) return static_cast<CallPhase>(i);
  }
  return CallPhase::kDone;
}

std::optional<std::int64_t> pid_of(const std::optional<ProcessIdentity>& process) {
  return process ? std::optional<std::int64_t>(process->pid) : std::nullopt;
}

std::optional<std::int64_t> start_of(const std::optional<ProcessIdentity>& process) {
  return process ? std::optional<std::int64_t>(process->start_ticks) : std::nullopt;
}

Status check_repairable(const std::string& id, CallPhase phase) {
  if (phase == CallPhase::kLeased) {
    return failed_precondition("call " + id +
                               " is running now (LEASED): repair it while it waits or is held "
                               "(try again in a moment)");
  }
  if (phase == CallPhase::kDone) return failed_precondition("call " + id + " has finished");
  return Status::ok();
}

std::string repair_detail(std::string detail, const std::string& journal,
                          const std::string& broken) {
  if (broken.empty()) return detail;
  const auto revision = protocol::journal_revision(journal);
  return detail + " (on revision " + std::to_string(revision.value_or(0)) +
         ", the last that assembles: the deltas after it were dropped, " + broken + ")";
}

JobRecord new_job(const JobRequest& request, std::string id, Micros now) {
  JobRecord job;
  job.id = std::move(id);
  job.run_key = request.run_key;
  job.status = RunStatus::kStarting;
  job.command = request.command;
  job.cwd = request.cwd;
  job.env = request.env;
  job.timeout = request.timeout;
  job.stdout_file = request.log_dir + "/" + job.id + ".stdout";
  job.stderr_file = request.log_dir + "/" + job.id + ".stderr";
  job.started_at = now;
  job.supervisor = request.supervisor;
  job.host_id = request.host_id;
  job.lease_expires_at = now + request.lease;
  job.rerun_of_job_id = request.rerun_of_job_id;
  job.rerun_reason = request.rerun_reason;
  job.trigger = request.trigger;
  job.strict = request.strict;
  job.retries = request.retries;
  job.retry_delay = request.retry_delay;
  return job;
}

std::string history_detail(const std::string& detail) {
  constexpr std::size_t kMaxDetail = 1024;
  return detail.size() <= kMaxDetail ? detail : detail.substr(0, kMaxDetail) + "...";
}

namespace {
std::string cancelled_why(const std::string& call, const std::string& root,
                          const std::string& actor) {
  return call == root ? "cancelled by " + actor
                      : "cancelled by " + actor + " with its ancestor " + root;
}
}  // namespace

CallEnd cancelled_end(const std::string& call, const std::string& root, const std::string& actor) {
  CallEnd end;
  end.succeeded = false;
  end.call_status = 7;  // PERMANENT_ERROR: a cancelled call is never retried
  end.error = CallError{std::string(kCancelledErrorType),
                        "call " + call + " was " + cancelled_why(call, root, actor)};
  return end;
}

CallAction cancelled_action(const std::string& call, const std::string& root,
                            const std::string& actor) {
  return CallAction{call, 0, actor, "cancel",
                    call == root ? "ended CANCELLED with its descendants"
                                 : "ended CANCELLED with its ancestor " + root};
}

HistoryEvent expired_event(const std::string& call, const CallEnd& end, Micros now) {
  return HistoryEvent{call,
                      "expired",
                      0,
                      now,
                      {},
                      0,
                      end.call_status,
                      "failed",
                      end.error ? end.error->message : "",
                      0,
                      0};
}

CallAction retried_now_action(const std::string& call, const std::string& actor) {
  return CallAction{call, 0, actor, "retry-now", "the rest of its retry backoff skipped"};
}

std::optional<std::string> refuse_delta(const PollState& state, std::uint64_t latest) {
  // A delta applies to a C++ journal the store holds (revision 1 or later).
  if (!state.delta ||
      (latest != 0 && latest == state.base_revision && state.revision == latest + 1)) {
    return std::nullopt;
  }
  return "a journal delta from revision " + std::to_string(state.base_revision) + " to " +
         std::to_string(state.revision) + ", but the server holds revision " +
         std::to_string(latest) + ": the next attempt carries the whole journal";
}

}  // namespace ratchet::records

namespace ratchet {

std::string_view phase_name(CallPhase phase) {
  return records::kPhaseNames[static_cast<int>(phase)];
}

}  // namespace ratchet
