#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include "cli/command.hpp"
#include "common/byte_text.hpp"
#include "common/time_format.hpp"
#include "google/protobuf/any.pb.h"
#include "jobs/state_dir.hpp"
#include "protocol/status_class.hpp"
#include "protocol/values.hpp"

namespace ratchet::cli {

int fail(const Status& status) {
  std::string message = status.message();
  for (char& c : message) {
    if (c == '\n') c = ' ';
  }
  std::fprintf(stderr, "ratchet: %s\n", message.c_str());
  return exit_code_for(status.code());
}

namespace {

// `--name=` with nothing after the '=' is an empty value. CLI11 would take the
// next argument as the value instead (`--run-key= --sync` ran with the key
// "--sync"), so it gets `--name ""`, which it reads as meant. Options end at
// `--`, and for a command that takes a COMMAND at its first positional.
std::vector<std::string> spell_out_empty_values(const CLI::App& app, int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc);
  for (std::size_t i = 1; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") break;
    if (!arg.starts_with("-")) {
      if (app.get_prefix_command()) break;
      continue;
    }
    auto equals = arg.find('=');
    std::string name = arg.substr(0, equals);
    const CLI::Option* option = arg.starts_with("--") ? app.get_option_no_throw(name) : nullptr;
    if (!option) continue;
    if (equals == std::string::npos) {
      if (option->get_expected_min() > 0) ++i;  // its value, whatever it looks like
    } else if (equals + 1 == arg.size()) {
      args[i] = name;
      args.insert(args.begin() + static_cast<std::ptrdiff_t>(i) + 1, "");
      ++i;
    }
  }
  return args;
}

AppHook& parse_hook() {
  static AppHook hook;
  return hook;
}

}  // namespace

void set_parse_hook(AppHook hook) { parse_hook() = std::move(hook); }

std::optional<int> parse(CLI::App& app, int argc, char** argv) {
  if (parse_hook()) {
    parse_hook()(app);
    return 0;
  }
  std::vector<std::string> args = spell_out_empty_values(app, argc, argv);
  std::vector<char*> pointers;
  for (auto& arg : args) pointers.push_back(arg.data());
  try {
    app.parse(static_cast<int>(pointers.size()), pointers.data());
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

void add_store_option(CLI::App& app) {
  app.add_option_function<std::string>(
         "--db", [](const std::string& db) { setenv("RATCHET_DB", db.c_str(), 1); },
         "the store: a SQLite file or a postgres:// URL (env RATCHET_DB; default: the state "
         "directory's ratchet.db)")
      ->type_name("FILE|URL");
}

namespace {
std::vector<char*> command_line;
}  // namespace

void remember_command_line(int argc, char** argv) { command_line.assign(argv, argv + argc); }

int run_in_server_executable(int argc, char** argv) {
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  std::string path = "ratchet-server";
  if (n > 0) {
    std::string exe(self, static_cast<std::size_t>(n));
    path = exe.substr(0, exe.rfind('/') + 1) + "ratchet-server";
  }
  std::vector<char*> args;
  args.push_back(const_cast<char*>("ratchet-server"));
  for (int i = 0; i < argc; ++i) args.push_back(argv[i]);
  args.push_back(nullptr);
  std::fflush(stdout);
  execv(path.c_str(), args.data());
  return fail(Status(Code::kUnavailable, "cannot run " + path + ": " + std::strerror(errno) +
                                             " (it is installed beside ratchet)"));
}

Result<jobs::StoreLocation> job_store_location(std::string* log_dir, jobs::StateAccess access) {
  // RATCHET_DB points jobs and `ratchet server` at one store outside the state directory.
  const char* db = std::getenv("RATCHET_DB");
  if (db && is_postgres_location(db) && !postgres_backend_linked() && !command_line.empty()) {
    int exit_code = run_in_server_executable(static_cast<int>(command_line.size()) - 1,
                                             command_line.data() + 1);
    std::exit(exit_code);
  }
  // After the hand-over: ratchet-server must see the caller's umask to keep it.
  jobs::use_private_file_modes();
  ASSIGN_OR_RETURN(jobs::StatePaths paths, jobs::prepare_state_dir(access));
  jobs::StoreLocation location;
  location.db_path = db && *db ? db : paths.db;
  // Jobs commit without fsync (SQLite WAL, synchronous=NORMAL): a commit
  // survives a crash of any process, kill -9 included, and the store stays
  // consistent through a power loss, which may take back the last commits.
  // RATCHET_FSYNC=1 makes every commit wait for the disk as well (~10 ms here).
  const char* fsync = std::getenv("RATCHET_FSYNC");
  location.options.durable = fsync && std::string_view(fsync) == "1";
  location.options.wal_checkpoint_pages = 64;
  if (const char* timeout = std::getenv("RATCHET_LOCK_TIMEOUT"); timeout && *timeout) {
    ASSIGN_OR_RETURN(location.options.lock_timeout,
                     duration_option("RATCHET_LOCK_TIMEOUT", timeout));
  }
  if (log_dir) *log_dir = paths.logs;
  return location;
}

Status run_on_this_host(JobRequest* request) {
  request->host_id = jobs::current_host_id();
  if (const char* lease = std::getenv("RATCHET_JOB_LEASE"); lease && *lease) {
    ASSIGN_OR_RETURN(request->lease, duration_option("RATCHET_JOB_LEASE", lease));
    // Renewed three times per lease, by every supervisor: a lease of 1ms had
    // each of them commit a heartbeat every millisecond.
    if (request->lease < kMicrosPerSecond) {
      return invalid_argument("RATCHET_JOB_LEASE must be at least 1s");
    }
  }
  return Status::ok();
}

Result<std::unique_ptr<Store>> open_job_store(jobs::StateAccess access) {
  ASSIGN_OR_RETURN(jobs::StoreLocation location, job_store_location(nullptr, access));
  return open_store(location.db_path, SystemClock::instance(), location.options);
}

CLI::Option* add_run_key_option(CLI::App& app, std::string* run_key, const std::string& help) {
  return app.add_option("--run-key", *run_key, help)
      ->type_name("KEY")
      ->check([](const std::string& key) {
        return key.empty() ? std::string("must not be empty") : std::string();
      })
      ->transform([](std::string key) { return text_to_bytes(key); }, "", "");
}

std::string key_text(const std::string& run_key) { return bytes_to_text(run_key); }

void JobSelector::add_to(CLI::App& app) {
  // Exactly one of the two. A group, not app.require_option(): that counts
  // every option, so `logs --follow` alone passed and looked up run key "".
  auto* which = app.add_option_group("job", "which job (one of)");
  add_run_key_option(*which, &run_key, "the run key (its newest job)");
  which->add_option("--job-id", job_id, "the job id")->type_name("ID");
  which->require_option(1);
}

Result<RunView> load_run(Store& store, const RunSummary& summary) {
  RunView run;
  if (summary.kind == RunKind::kCall) {
    ASSIGN_OR_RETURN(run.call, store.find_call(summary.id));
    if (!run.call) return not_found("no call with dispatch id " + summary.id);
    return run;
  }
  ASSIGN_OR_RETURN(auto job, store.find_job(summary.id));
  if (!job) return not_found("no job with id " + summary.id);
  ASSIGN_OR_RETURN(run.job, jobs::refresh_job(store, std::move(*job)));
  return run;
}

Result<RunView> find_selected_run(Store& store, const JobSelector& selector) {
  if (!selector.job_id.empty()) {
    ASSIGN_OR_RETURN(auto job, store.find_job(selector.job_id));
    if (job) {
      // Brought up to date like a job found by key: LOST if its supervisor is gone.
      ASSIGN_OR_RETURN(auto current, jobs::refresh_job(store, std::move(*job)));
      return RunView{std::move(current), std::nullopt};
    }
    ASSIGN_OR_RETURN(auto call, store.find_call(selector.job_id));
    if (call) return RunView{std::nullopt, std::move(call)};
    return not_found("no job or call with id " + selector.job_id);
  }
  ASSIGN_OR_RETURN(auto newest, store.runs_for_key(selector.run_key, 1));
  if (newest.empty()) return not_found("no job with run key " + key_text(selector.run_key));
  return load_run(store, newest.front());
}

Result<JobRecord> find_selected_job(Store& store, const JobSelector& selector) {
  std::optional<JobRecord> found;
  if (!selector.job_id.empty()) {
    ASSIGN_OR_RETURN(found, store.find_job(selector.job_id));
    if (!found) return not_found("no job with id " + selector.job_id);
  } else {
    ASSIGN_OR_RETURN(found, store.newest_job_for_key(selector.run_key));
    if (!found) return not_found("no job with run key " + key_text(selector.run_key));
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

nlohmann::ordered_json optional_seconds(const std::optional<Micros>& d) {
  return d ? nlohmann::ordered_json(static_cast<double>(*d) / kMicrosPerSecond) : nullptr;
}

}  // namespace

nlohmann::ordered_json job_json(const JobRecord& job) {
  // The command, its cwd, env and log paths are bytes, as the run key is:
  // shown in the run key's lossless text form (docs/jobs.md), not with U+FFFD.
  nlohmann::ordered_json env = nlohmann::ordered_json::object();
  for (const auto& [name, value] : job.env) env[bytes_to_text(name)] = bytes_to_text(value);
  nlohmann::ordered_json command = nlohmann::ordered_json::array();
  for (const auto& arg : job.command) command.push_back(bytes_to_text(arg));
  nlohmann::ordered_json out;
  out["run_key"] = job.run_key.empty() ? nlohmann::ordered_json(nullptr)
                                       : nlohmann::ordered_json(key_text(job.run_key));
  out["job_id"] = job.id;
  out["pid"] = job.process ? nlohmann::ordered_json(job.process->pid) : nullptr;
  out["command"] = std::move(command);
  out["cwd"] = job.cwd.empty() ? nlohmann::ordered_json(nullptr)
                               : nlohmann::ordered_json(bytes_to_text(job.cwd));
  out["env"] = env;
  out["status"] = status_name(job.status);
  out["exit_code"] = optional_value(job.exit_code);
  out["signal"] = optional_value(job.signal);
  out["error"] = optional_value(job.error);
  out["timeout_seconds"] = optional_seconds(job.timeout);
  out["stdout_file"] = bytes_to_text(job.stdout_file);
  out["stderr_file"] = bytes_to_text(job.stderr_file);
  out["started_at"] = format_local_time(job.started_at);
  out["finished_at"] = optional_time(job.finished_at);
  out["attempt_no"] = job.attempt_no;
  out["rerun_of_job_id"] = optional_value(job.rerun_of_job_id);
  out["rerun_reason"] = optional_value(job.rerun_reason);
  out["started_by"] = trigger_name(job.trigger);
  out["strict"] = job.strict;
  out["strict_override_used"] = job.strict_override_used;
  out["retries"] = job.retries;
  out["retry_delay_seconds"] = job.retries > 0 ? optional_seconds(job.retry_delay) : nullptr;
  out["cancelled_at"] = optional_time(job.cancel_requested_at);
  out["cancel_reason"] = optional_value(job.cancel_reason);
  return out;
}

namespace {

// A stored google.protobuf.Any as JSON when its type is one of the protocol's
// values; otherwise its type and size.
nlohmann::ordered_json any_json(const std::optional<std::string>& bytes) {
  if (!bytes) return nullptr;
  google::protobuf::Any any;
  if (!any.ParseFromString(*bytes)) return {{"bytes", bytes->size()}};
  auto value = protocol::unpack_to_json(any);
  if (value.is_ok()) return nlohmann::ordered_json::parse(value->dump());
  return {{"type_url", any.type_url()}, {"bytes", any.value().size()}};
}

}  // namespace

nlohmann::ordered_json call_json(const CallRecord& call) {
  nlohmann::ordered_json out;
  out["kind"] = "call";
  out["run_key"] = call.run_key.empty() ? nlohmann::ordered_json(nullptr)
                                        : nlohmann::ordered_json(key_text(call.run_key));
  out["dispatch_id"] = call.id;
  out["function"] = call.function;
  out["endpoint"] = call.endpoint;
  out["status"] = status_name(call.status);
  out["phase"] = phase_name(call.phase);
  out["attempts"] = call.attempts;
  auto dispatch_status = protocol::dispatch_status_from_wire(call.call_status);
  out["call_status"] = call.call_status != 0 && dispatch_status
                           ? nlohmann::ordered_json(protocol::status_name(*dispatch_status))
                           : nullptr;
  out["output"] = any_json(call.output);
  out["error"] = call.error ? nlohmann::ordered_json{{"type", call.error->type},
                                                     {"message", call.error->message}}
                            : nullptr;
  out["parent_id"] = call.parent_id.empty() ? nlohmann::ordered_json(nullptr)
                                            : nlohmann::ordered_json(call.parent_id);
  out["root_id"] = call.root_id;
  out["started_at"] = format_local_time(call.started_at);
  out["finished_at"] = optional_time(call.finished_at);
  out["expires_at"] = optional_time(call.expires_at);
  // A waiting coroutine runs again by then at the latest: a sleep's end, or its Poll's max_wait.
  out["wakes_by"] = call.phase == CallPhase::kWaiting && call.poll
                        ? nlohmann::ordered_json(format_local_time(call.poll->deadline))
                        : nullptr;
  out["max_attempts"] = call.max_attempts > 0 ? nlohmann::ordered_json(call.max_attempts) : nullptr;
  return out;
}

std::string current_actor() {
  if (const char* actor = std::getenv("RATCHET_ACTOR"); actor != nullptr && *actor != '\0') {
    return actor;
  }
  // Not getpwuid: `ratchet` is a static binary, where NSS lookups need the
  // shared libraries of the glibc it was linked with.
  std::string user = "uid " + std::to_string(getuid());
  for (const char* variable : {"USER", "LOGNAME"}) {
    const char* name = std::getenv(variable);
    if (name != nullptr && *name != '\0') {
      user = name;
      break;
    }
  }
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  return user + "@" + host;
}

nlohmann::ordered_json history_json(const std::vector<HistoryEvent>& events) {
  auto out = nlohmann::ordered_json::array();
  for (const auto& e : events) {
    nlohmann::ordered_json event;
    event["number"] = e.number;
    event["kind"] = e.kind;
    event["at"] = format_local_time(e.at);
    event["duration_ms"] =
        e.duration ? nlohmann::ordered_json(static_cast<double>(*e.duration) / kMicrosPerMilli)
                   : nullptr;
    event["attempt"] = e.attempt;
    event["outcome"] = e.outcome;
    event["detail"] = e.detail;
    if (e.children > 0) event["children"] = e.children;
    if (e.results > 0) event["results"] = e.results;
    out.push_back(std::move(event));
  }
  return out;
}

nlohmann::ordered_json run_json(const RunView& run) {
  return run.job ? job_json(*run.job) : call_json(*run.call);
}

void print_json(const nlohmann::ordered_json& value) {
  std::string text = value.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
  text.push_back('\n');
  std::fwrite(text.data(), 1, text.size(), stdout);
}

}  // namespace ratchet::cli
