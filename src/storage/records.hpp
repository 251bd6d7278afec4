// What both backends share about rows: the column lists of a job, a call and
// a summary, and reading a row into its record. `Row` is a backend's row type
// (sqlite::Statement, pg::Row): is_null, int64, text, optional_int64,
// optional_text by column index.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/byte_text.hpp"
#include "storage/blobs.hpp"
#include "storage/browse.hpp"
#include "storage/call.hpp"
#include "storage/run.hpp"

namespace ratchet::records {

// The columns of a job, in the order read_job() expects them.
#define RATCHET_JOB_COLUMNS                                                                   \
  "id, run_key, status, command, cwd, env, timeout_us, stdout_file, stderr_file, "            \
  "started_at, finished_at, boot_id, supervisor_pid, supervisor_start, "                      \
  "pid, pid_start, heartbeat_at, cancel_requested_at, cancel_grace_us, exit_code, signal, "   \
  "error, host_id, lease_expires_at, attempt_no, rerun_of_job_id, rerun_reason, started_by, " \
  "strict, strict_override_used, retries, retry_delay_us, cancel_reason"

#define RATCHET_SUMMARY_COLUMNS \
  "id, kind, run_key, status, started_at, finished_at, stdout_file, stderr_file"

// The columns of a line of the dashboard's runs list, read by read_run_row().
#define RATCHET_RUN_ROW_COLUMNS                                                       \
  "id, kind, run_key, status, started_at, finished_at, function, command, attempts, " \
  "error_type, error, exit_code, parent_id, root_id"

#define RATCHET_CALL_COLUMNS                                                                    \
  "id, run_key, status, phase, function, endpoint, version, " RATCHET_INPUT_VALUE               \
  ", " RATCHET_OUTPUT_VALUE                                                                     \
  ", "                                                                                          \
  "error_type, "                                                                                \
  "error, call_status, parent_id, root_id, correlation_id, attempts, started_at, finished_at, " \
  "expires_at, ready_at, lease_owner, lease_epoch, lease_expires_at, state_member, "            \
  "poll_min, poll_max, poll_deadline, poll_error, children_waiting, results_waiting, "          \
  "error_proto, max_attempts"

// How many columns RATCHET_CALL_COLUMNS names: a query that selects more after
// them reads those from this index on. Commas inside parentheses (a column's
// expression, RATCHET_STORED's COALESCE) separate arguments, not columns.
constexpr int count_columns(std::string_view list) {
  int commas = 0;
  int depth = 0;
  for (char c : list) {
    depth += (c == '(') - (c == ')');
    commas += c == ',' && depth == 0;
  }
  return commas + 1;
}
static_assert(count_columns("a, f(b, c), d") == 3);
inline constexpr int kCallColumnCount = count_columns(RATCHET_CALL_COLUMNS);

#define RATCHET_TERMINAL_STATUSES "('SUCCEEDED', 'FAILED', 'LOST', 'CANCELLED')"

std::string env_to_json(const std::vector<std::pair<std::string, std::string>>& env);
std::vector<std::pair<std::string, std::string>> env_from_json(const std::string& text);
std::string command_to_json(const std::vector<std::string>& command);
std::vector<std::string> command_from_json(const std::string& text);
std::string error_to_json(const CallError& error);
std::optional<CallError> error_from_json(const std::optional<std::string>& text);
CallPhase parse_phase(const std::string& name);
// A history event's detail as stored: an error message can be megabytes; the
// history keeps its first KiB.
std::string history_detail(const std::string& detail);
// How `cancel` ends `call` (the cancelled call `root` itself, or one of its
// descendants), and the action that says so (its time is the writer's).
CallEnd cancelled_end(const std::string& call, const std::string& root, const std::string& actor);
CallAction cancelled_action(const std::string& call, const std::string& root,
                            const std::string& actor);
// The history event of a call that expired at `now`, ending with `end`.
HistoryEvent expired_event(const std::string& call, const CallEnd& end, Micros now);
// The action of a retry now.
CallAction retried_now_action(const std::string& call, const std::string& actor);
// Why call `id` in `phase` cannot be repaired now (Store::repair_coroutine), or OK.
Status check_repairable(const std::string& id, CallPhase phase);
// A repair's detail, saying so when it worked from `journal`, a journal's last
// good revision, because its later deltas do not assemble (`broken`: why).
std::string repair_detail(std::string detail, const std::string& journal,
                          const std::string& broken);
// Why a store refuses `state` when it holds revision `latest` of the call's
// journal: a delta applies only to the latest (nullopt: it is taken).
std::optional<std::string> refuse_delta(const PollState& state, std::uint64_t latest);
// The record of a job just started (STARTING) by `request` at `now`.
JobRecord new_job(const JobRequest& request, std::string id, Micros now);

// A process's pid and start time as the row keeps them (NULL without one).
std::optional<std::int64_t> pid_of(const std::optional<ProcessIdentity>& process);
std::optional<std::int64_t> start_of(const std::optional<ProcessIdentity>& process);

template <typename Row>
std::optional<ProcessIdentity> identity_at(const Row& row, int pid_column, int start_column,
                                           const std::string& boot_id) {
  if (row.is_null(pid_column)) return std::nullopt;
  return ProcessIdentity{static_cast<int>(row.int64(pid_column)), row.int64(start_column), boot_id};
}

template <typename Row>
JobRecord read_job(const Row& row) {
  JobRecord job;
  job.id = row.text(0);
  job.run_key = row.text(1);
  job.status = parse_status(row.text(2)).value_or(RunStatus::kLost);
  job.command = command_from_json(row.text(3));
  job.cwd = text_to_bytes(row.text(4));  // stored as text (PostgreSQL's must be UTF-8)
  job.env = env_from_json(row.text(5));
  job.timeout = row.optional_int64(6);
  job.stdout_file = row.text(7);
  job.stderr_file = row.text(8);
  job.started_at = row.int64(9);
  job.finished_at = row.optional_int64(10);
  std::string boot_id = row.text(11);
  job.supervisor = identity_at(row, 12, 13, boot_id);
  job.process = identity_at(row, 14, 15, boot_id);
  job.heartbeat_at = row.optional_int64(16);
  job.cancel_requested_at = row.optional_int64(17);
  job.cancel_grace = row.optional_int64(18).value_or(0);
  if (auto code = row.optional_int64(19)) job.exit_code = static_cast<int>(*code);
  job.signal = row.optional_text(20);
  job.error = row.optional_text(21);
  job.host_id = row.text(22);
  job.lease_expires_at = row.optional_int64(23);
  job.attempt_no = static_cast<int>(row.optional_int64(24).value_or(1));
  job.rerun_of_job_id = row.optional_text(25);
  job.rerun_reason = row.optional_text(26);
  job.trigger = parse_trigger(row.optional_text(27).value_or("")).value_or(JobTrigger::kStart);
  job.strict = row.int64(28) != 0;
  job.strict_override_used = row.int64(29) != 0;
  job.retries = static_cast<int>(row.int64(30));
  job.retry_delay = row.optional_int64(31);
  job.cancel_reason = row.optional_text(32);
  return job;
}

// The columns every list of runs starts with: id, kind, run_key, status,
// started_at, finished_at (RunSummary and RunRow alike).
template <typename Row, typename Run>
void read_run_head(const Row& row, Run& run) {
  run.id = row.text(0);
  run.kind = row.text(1) == "call" ? RunKind::kCall : RunKind::kJob;
  run.run_key = row.text(2);
  run.status = parse_status(row.text(3)).value_or(RunStatus::kLost);
  run.started_at = row.int64(4);
  run.finished_at = row.optional_int64(5);
}

template <typename Row>
RunSummary read_summary(const Row& row) {
  RunSummary run;
  read_run_head(row, run);
  run.stdout_file = row.text(6);
  run.stderr_file = row.text(7);
  return run;
}

template <typename Row>
RunRow read_run_row(const Row& row) {
  RunRow run;
  read_run_head(row, run);
  run.function = row.text(6);
  run.command = command_from_json(row.text(7));
  run.attempts = static_cast<int>(row.int64(8));
  run.error_type = row.text(9);
  run.error = row.optional_text(10);
  if (auto code = row.optional_int64(11)) run.exit_code = static_cast<int>(*code);
  run.parent_id = row.text(12);
  run.root_id = row.text(13);
  return run;
}

// The error in a row: type, message, and the endpoint's serialized Error (see CallError).
template <typename Row>
std::optional<CallError> error_at(const Row& row, int type_column, int message_column,
                                  int encoded_column) {
  if (row.is_null(type_column)) return std::nullopt;
  return CallError{row.text(type_column), row.text(message_column), row.text(encoded_column)};
}

template <typename Row>
CallRecord read_call(const Row& row) {
  CallRecord call;
  call.id = row.text(0);
  call.run_key = row.text(1);
  call.status = parse_status(row.text(2)).value_or(RunStatus::kFailed);
  call.phase = parse_phase(row.text(3));
  call.function = row.text(4);
  call.endpoint = row.text(5);
  call.version = row.text(6);
  call.input = row.text(7);
  call.output = row.optional_text(8);
  call.error = error_at(row, 9, 10, 30);
  call.call_status = static_cast<int>(row.optional_int64(11).value_or(0));
  call.parent_id = row.text(12);
  call.root_id = row.text(13);
  call.correlation_id = static_cast<std::uint64_t>(row.int64(14));
  call.attempts = static_cast<int>(row.int64(15));
  call.started_at = row.int64(16);
  call.finished_at = row.optional_int64(17);
  call.expires_at = row.optional_int64(18);
  call.ready_at = row.optional_int64(19).value_or(0);
  call.lease_owner = row.text(20);
  call.lease_epoch = row.int64(21);
  call.lease_expires_at = row.optional_int64(22);
  if (!row.is_null(23)) {  // the state itself is in coroutine_states
    call.poll = PollState{static_cast<int>(row.int64(23)),
                          {},
                          static_cast<int>(row.int64(24)),
                          static_cast<int>(row.int64(25)),
                          row.int64(26)};
  }
  call.poll_error = error_from_json(row.optional_text(27));
  call.children_waiting = static_cast<int>(row.int64(28));
  call.results_waiting = static_cast<int>(row.int64(29));
  call.max_attempts = static_cast<int>(row.optional_int64(31).value_or(0));
  return call;
}

}  // namespace ratchet::records
