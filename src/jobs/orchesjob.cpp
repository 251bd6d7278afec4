#include "jobs/orchesjob.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>

#include "common/regular_file.hpp"
#include "common/time_format.hpp"
#include "jobs/process.hpp"
#include "storage/sqlite_db.hpp"

namespace ratchet::jobs {
namespace {

constexpr int kBusyTimeoutMs = 10000;

// One row of orchesjob's `jobs` table, as it stores it.
struct Row {
  std::int64_t rowid = 0;
  // What SQLite's typeof() says of the columns read as numbers or text (its
  // columns take any type, and a text exit code would read as 0).
  bool id_is_text = false, exit_code_is_integer = false, pids_are_integers = false,
       command_is_text = false;
  std::string job_id;
  std::optional<std::string> run_key;
  std::optional<std::int64_t> worker_pid, target_pid;
  std::string command;
  std::string status;
  std::optional<std::int64_t> exit_code;
  std::optional<std::string> started_at, finished_at;
};

// The JSON array of strings orchesjob 1.0 writes; nullopt for anything else.
std::optional<std::vector<std::string>> parse_command(const std::string& text) {
  auto array = nlohmann::json::parse(text, nullptr, false);
  if (!array.is_array() || array.empty()) return std::nullopt;
  std::vector<std::string> command;
  for (const auto& arg : array) {
    if (!arg.is_string()) return std::nullopt;
    command.push_back(arg.get<std::string>());
  }
  return command;
}

std::optional<Micros> parse_time(const std::optional<std::string>& text) {
  if (!text) return std::nullopt;
  auto parsed = parse_datetime(*text);
  return parsed.is_ok() ? std::optional<Micros>(*parsed) : std::nullopt;
}

// What is wrong with a row that orchesjob 1.0 would not have written, or ""
// (its run key resolved from run_keys already). Such a row is refused, not
// guessed at: a bad time once became "now", an unknown status LOST.
std::string row_problem(const Row& row) {
  if (!row.id_is_text) return "a job_id that is not text";
  if (!row.run_key || row.run_key->empty()) return "no run key (in jobs or run_keys)";
  if (!parse_status(row.status)) return "an unknown status '" + row.status + "'";
  if (!row.started_at) return "no started_at";
  if (!parse_time(row.started_at)) {
    return "a started_at that is not ISO 8601 ('" + *row.started_at + "')";
  }
  if (row.finished_at && !parse_time(row.finished_at)) {
    return "a finished_at that is not ISO 8601 ('" + *row.finished_at + "')";
  }
  if (!row.exit_code_is_integer) return "an exit_code that is not an integer";
  if (!row.pids_are_integers) return "a pid that is not an integer";
  if (!row.command_is_text || !parse_command(row.command)) {
    return "a command that is not a JSON array of strings";
  }
  return "";
}

// STARTING or RUNNING: not known to be over.
bool unfinished(const Row& row) {
  auto status = parse_status(row.status);
  return !status || !is_terminal(*status);
}

bool process_runs(const std::optional<std::int64_t>& pid) {
  return pid && *pid > 0 && *pid <= INT32_MAX && identify_process(static_cast<int>(*pid));
}

Result<std::vector<Row>> read_rows(sqlite::Database& db,
                                   std::map<std::string, std::string>* key_of_job) {
  std::vector<Row> rows;
  RETURN_IF_ERROR(db.exec("BEGIN"));  // one consistent snapshot of both tables
  ASSIGN_OR_RETURN(sqlite::Statement * jobs,
                   db.prepare("SELECT job_id, run_key, worker_pid, target_pid, command, status, "
                              "exit_code, started_at, finished_at, rowid, "
                              "typeof(job_id) = 'text', typeof(exit_code) IN ('integer', 'null'), "
                              "typeof(worker_pid) IN ('integer', 'null') AND "
                              "typeof(target_pid) IN ('integer', 'null'), typeof(command) = 'text' "
                              "FROM jobs ORDER BY rowid"));
  while (true) {
    ASSIGN_OR_RETURN(bool has_row, jobs->step());
    if (!has_row) break;
    rows.push_back(Row{jobs->int64(9), jobs->int64(10) != 0, jobs->int64(11) != 0,
                       jobs->int64(12) != 0, jobs->int64(13) != 0, jobs->text(0),
                       jobs->optional_text(1), jobs->optional_int64(2), jobs->optional_int64(3),
                       jobs->text(4), jobs->text(5), jobs->optional_int64(6),
                       jobs->optional_text(7), jobs->optional_text(8)});
  }
  jobs->reset();
  auto keys = db.prepare("SELECT run_key, job_id FROM run_keys");
  if (keys.is_ok()) {  // a job without a run key may still be named by this table
    while (true) {
      auto has_row = (*keys)->step();
      if (!has_row.is_ok() || !*has_row) break;
      (*key_of_job)[(*keys)->text(1)] = (*keys)->text(0);
    }
    (*keys)->reset();
  }
  (void)db.exec("COMMIT");
  return rows;
}

// The job as Ratchet records it; `ran_away` when orchesjob left it STARTING
// or RUNNING and nothing of it runs any more.
JobRecord convert(const Row& row, const std::string& log_dir, Micros now, bool* ran_away) {
  JobRecord job;
  job.id = row.job_id;
  job.run_key = row.run_key.value_or("");
  job.command = *parse_command(row.command);  // checked by row_problem()
  job.trigger = JobTrigger::kImport;
  job.stdout_file = log_dir + "/" + job.id + ".stdout";
  job.stderr_file = log_dir + "/" + job.id + ".stderr";
  job.finished_at = parse_time(row.finished_at);
  job.started_at = *parse_time(row.started_at);
  *ran_away = unfinished(row);
  if (*ran_away) {
    job.status = RunStatus::kLost;
    job.error = "orchesjob left it " + row.status + " and nothing of it ran when it was imported";
    job.finished_at = job.finished_at.value_or(now);
    return job;
  }
  job.status = *parse_status(row.status);
  if (row.exit_code && *row.exit_code == -1) {
    job.error = "could not be launched (orchesjob did not record why)";
  } else if (row.exit_code && *row.exit_code < 0) {
    job.signal = signal_name(static_cast<int>(-*row.exit_code));
    job.error = "killed by " + *job.signal;
  } else if (row.exit_code) {
    job.exit_code = static_cast<int>(*row.exit_code);
    if (*job.exit_code != 0) job.error = "exited with code " + std::to_string(*job.exit_code);
  }
  if (job.status == RunStatus::kCancelled) job.error = "cancelled by orchesjob";
  return job;
}

// Oldest first: the store numbers each key's jobs in the order it is given
// them (Store::import_jobs).
void sort_by_start(std::vector<JobRecord>* jobs) {
  std::stable_sort(jobs->begin(), jobs->end(), [](const JobRecord& a, const JobRecord& b) {
    return a.started_at < b.started_at;
  });
}

Status copy_file(const std::string& from, const std::string& to, bool* copied) {
  *copied = false;
  // Regular files only, on both sides: a FIFO would block the import.
  auto opened = open_regular_file(from, O_RDONLY);
  if (!opened.is_ok()) {
    if (opened.status().code() == Code::kNotFound) return Status::ok();
    return internal_error("cannot read orchesjob's log " + opened.status().message());
  }
  int in = *opened;
  auto created = open_regular_file(to, O_WRONLY | O_CREAT | O_TRUNC);
  if (!created.is_ok()) {
    close(in);
    return internal_error("cannot write the log " + created.status().message());
  }
  int out = *created;
  ssize_t n = 0;
  while ((n = sendfile(out, in, nullptr, 1 << 20)) > 0) {
  }
  int error = errno;
  close(in);
  if (close(out) != 0 && n == 0) n = -1, error = errno;
  if (n < 0) return internal_error("cannot copy " + from + ": " + std::strerror(error));
  *copied = true;
  return Status::ok();
}

}  // namespace

Result<OrchesjobHistory> read_orchesjob_history(const std::string& dir, const std::string& log_dir,
                                                Micros now) {
  const std::string db_path = dir + "/orchesjob.db";
  struct stat info {};
  if (stat(db_path.c_str(), &info) != 0 || !S_ISREG(info.st_mode)) {
    return not_found("no orchesjob state directory at " + dir + " (" + db_path + " is missing)");
  }
  ASSIGN_OR_RETURN(auto db, sqlite::Database::open_read_only(db_path, kBusyTimeoutMs));
  std::map<std::string, std::string> key_of_job;
  auto rows = read_rows(*db, &key_of_job);
  if (!rows.is_ok()) {
    return Status(rows.status().code(),
                  "cannot read orchesjob's history in " + db_path + ": " + rows.status().message());
  }
  for (const Row& row : *rows) {
    // The id names the job's log files here and in Ratchet's logs/: an empty
    // one, or one with a '/' ("../../x"), would copy (and `clean` delete)
    // files outside it.
    if (row.job_id.empty() || row.job_id.find('/') != std::string::npos || row.job_id == "." ||
        row.job_id == "..") {
      return Status(Code::kDataLoss, "orchesjob's history in " + db_path +
                                         " has a job id that "
                                         "cannot name a log file ('" +
                                         row.job_id + "'); nothing was imported");
    }
  }
  for (Row& row : *rows) {
    if (!row.run_key && key_of_job.count(row.job_id)) row.run_key = key_of_job[row.job_id];
    std::string problem = row_problem(row);
    if (!problem.empty()) {
      return Status(Code::kDataLoss, "orchesjob's history in " + db_path + ": the job in row " +
                                         std::to_string(row.rowid) + " ('" + row.job_id +
                                         "') has " + problem +
                                         "; nothing was imported (correct or delete that row)");
    }
  }
  for (const Row& row : *rows) {
    if (!unfinished(row)) continue;
    for (const auto& pid : {row.worker_pid, row.target_pid}) {
      if (process_runs(pid)) {
        return failed_precondition("orchesjob's job " + row.job_id + " is still " + row.status +
                                   " (pid " + std::to_string(*pid) +
                                   " is alive); import once it has ended");
      }
    }
  }
  OrchesjobHistory history;
  for (const Row& row : *rows) {
    bool ran_away = false;
    history.jobs.push_back(convert(row, log_dir, now, &ran_away));
    if (ran_away) ++history.lost;
  }
  sort_by_start(&history.jobs);
  return history;
}

Result<int> copy_orchesjob_logs(const std::string& dir, const JobRecord& job) {
  int copied = 0;
  for (const auto& [stream, to] :
       {std::pair{"stdout", &job.stdout_file}, std::pair{"stderr", &job.stderr_file}}) {
    bool done = false;
    RETURN_IF_ERROR(copy_file(dir + "/logs/" + job.id + "." + stream, *to, &done));
    copied += done ? 1 : 0;
  }
  return copied;
}

}  // namespace ratchet::jobs
