#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "cli/command.hpp"
#include "common/time_format.hpp"
#include "jobs/state_dir.hpp"

namespace ratchet::cli {

int fail(const Status& status) {
  std::string message = status.message();
  for (char& c : message) {
    if (c == '\n') c = ' ';
  }
  std::fprintf(stderr, "ratchet: %s\n", message.c_str());
  return exit_code_for(status.code());
}

std::optional<int> parse(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    return 0;
  } catch (const CLI::ParseError& error) {
    std::string message = error.what();
    if (message.empty()) message = "invalid arguments";
    std::fprintf(stderr, "ratchet %s: %s (see 'ratchet %s --help')\n", app.get_name().c_str(),
                 message.c_str(), app.get_name().c_str());
    return 2;
  }
  return std::nullopt;
}

Result<Micros> duration_option(std::string_view flag, const std::string& text) {
  auto parsed = parse_duration(text);
  if (!parsed.is_ok()) {
    return invalid_argument(std::string(flag) + ": " + parsed.status().message());
  }
  return parsed;
}

Result<jobs::StoreLocation> job_store_location(std::string* log_dir) {
  ASSIGN_OR_RETURN(jobs::StatePaths paths, jobs::prepare_state_dir());
  jobs::StoreLocation location;
  location.db_path = paths.db;
  // Jobs commit without fsync (SQLite WAL, synchronous=NORMAL): a commit
  // survives a crash of any process, kill -9 included, and the store stays
  // consistent through a power loss, which may take back the last commits.
  // RATCHET_FSYNC=1 makes every commit wait for the disk as well (~10 ms here).
  const char* fsync = std::getenv("RATCHET_FSYNC");
  location.options.durable = fsync && std::string_view(fsync) == "1";
  if (const char* timeout = std::getenv("RATCHET_LOCK_TIMEOUT"); timeout && *timeout) {
    ASSIGN_OR_RETURN(location.options.lock_timeout,
                     duration_option("RATCHET_LOCK_TIMEOUT", timeout));
  }
  if (log_dir) *log_dir = paths.logs;
  return location;
}

Result<std::unique_ptr<Store>> open_job_store() {
  ASSIGN_OR_RETURN(jobs::StoreLocation location, job_store_location());
  return open_store(location.db_path, SystemClock::instance(), location.options);
}

void JobSelector::add_to(CLI::App& app) {
  // Exactly one of the two. A group, not app.require_option(): that counts
  // every option, so `logs --follow` alone passed and looked up run key "".
  auto* which = app.add_option_group("job", "which job (one of)");
  which->add_option("--run-key", run_key, "the run key (its newest job)");
  which->add_option("--job-id", job_id, "the job id");
  which->require_option(1);
}

Result<JobRecord> find_selected_job(Store& store, const JobSelector& selector) {
  std::optional<JobRecord> found;
  if (!selector.job_id.empty()) {
    ASSIGN_OR_RETURN(found, store.find_job(selector.job_id));
    if (!found) return not_found("no job with id " + selector.job_id);
  } else {
    ASSIGN_OR_RETURN(found, store.newest_job_for_key(selector.run_key));
    if (!found) return not_found("no job with run key " + selector.run_key);
  }
  return jobs::refresh_job(store, std::move(*found));
}

namespace {

nlohmann::ordered_json optional_time(const std::optional<Micros>& t) {
  return t ? nlohmann::ordered_json(format_local_time(*t)) : nlohmann::ordered_json(nullptr);
}

template <typename T>
nlohmann::ordered_json optional_value(const std::optional<T>& value) {
  return value ? nlohmann::ordered_json(*value) : nlohmann::ordered_json(nullptr);
}

}  // namespace

nlohmann::ordered_json job_json(const JobRecord& job) {
  nlohmann::ordered_json env = nlohmann::ordered_json::object();
  for (const auto& [name, value] : job.env) env[name] = value;
  nlohmann::ordered_json out;
  out["run_key"] = job.run_key;
  out["job_id"] = job.id;
  out["pid"] = job.process ? nlohmann::ordered_json(job.process->pid) : nullptr;
  out["command"] = job.command;
  out["cwd"] = job.cwd;
  out["env"] = env;
  out["status"] = status_name(job.status);
  out["exit_code"] = optional_value(job.exit_code);
  out["signal"] = optional_value(job.signal);
  out["error"] = optional_value(job.error);
  out["timeout_seconds"] =
      job.timeout ? nlohmann::ordered_json(static_cast<double>(*job.timeout) / kMicrosPerSecond)
                  : nullptr;
  out["stdout_file"] = job.stdout_file;
  out["stderr_file"] = job.stderr_file;
  out["started_at"] = format_local_time(job.started_at);
  out["finished_at"] = optional_time(job.finished_at);
  return out;
}

void print_json(const nlohmann::ordered_json& value) {
  std::string text = value.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
  text.push_back('\n');
  std::fwrite(text.data(), 1, text.size(), stdout);
}

}  // namespace ratchet::cli
