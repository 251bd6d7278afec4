// ratchet start --run-key KEY [--sync] [--strict] [--retries N [--retry-delay DUR]]
//               [--timeout DUR] [--cwd DIR] [--env K=V]... [--] COMMAND...
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

#include "cli/command.hpp"
#include "jobs/state_dir.hpp"

namespace ratchet::cli {
namespace {

Status parse_env(const std::vector<std::string>& pairs, JobRequest* request) {
  for (const auto& pair : pairs) {
    auto equals = pair.find('=');
    if (equals == std::string::npos || equals == 0) {
      return invalid_argument("--env expects NAME=VALUE, got '" + pair + "'");
    }
    std::string name = pair.substr(0, equals), value = pair.substr(equals + 1);
    // A name given twice is set once, to its last value (as `env A=1 A=2`
    // does): two entries would give the command the first or the second
    // depending on how it reads its environment.
    auto same = std::find_if(request->env.begin(), request->env.end(),
                             [&](const auto& entry) { return entry.first == name; });
    if (same != request->env.end()) {
      same->second = std::move(value);
    } else {
      request->env.emplace_back(std::move(name), std::move(value));
    }
  }
  return Status::ok();
}

Status resolve_cwd(const std::string& given, JobRequest* request) {
  if (given.empty()) {
    char buffer[PATH_MAX];
    if (!getcwd(buffer, sizeof buffer)) {
      // Most often a directory deleted under the caller (a CI workspace).
      return internal_error(std::string("cannot read the current directory: ") +
                            std::strerror(errno) + " (give the job one with --cwd DIR)");
    }
    request->cwd = buffer;
    return Status::ok();
  }
  char resolved[PATH_MAX];
  struct stat info {};
  if (!realpath(given.c_str(), resolved) || stat(resolved, &info) != 0 || !S_ISDIR(info.st_mode)) {
    return invalid_argument("--cwd: '" + given + "' is not a directory");
  }
  request->cwd = resolved;
  return Status::ok();
}

}  // namespace

int print_start(const jobs::StartOutcome& outcome, bool sync, bool strict) {
  auto json = nlohmann::ordered_json::object();
  json["accepted"] = outcome.accepted;
  json["existing"] = outcome.existing;
  json["mode"] = sync ? "sync" : "async";
  json["strict"] = strict;
  json["strict_override_used"] = false;
  json.update(job_json(outcome.job));
  // What this start did, not what the job's own start did.
  json["strict"] = strict;
  json["strict_override_used"] = !outcome.existing && outcome.job.strict_override_used;
  print_json(json);
  if (sync && outcome.job.status != RunStatus::kSucceeded) return kExitJobNotSucceeded;
  return 0;
}

Result<jobs::StartOutcome> finish_sync_start(jobs::StartOutcome outcome) {
  if (!outcome.existing || is_terminal(outcome.job.status)) return outcome;
  // Another start owns the job: wait for its end (its last attempt's) as if
  // it were ours.
  ASSIGN_OR_RETURN(auto store, open_job_store(jobs::StateAccess::kRead));
  ASSIGN_OR_RETURN(outcome.job, jobs::wait_for_job(*store, std::move(outcome.job), std::nullopt,
                                                   /*follow_retries=*/true));
  return outcome;
}

int run_start(int argc, char** argv) {
  CLI::App app(
      "Run COMMAND once for the run key: if the key's newest job is STARTING or "
      "RUNNING, print it (\"existing\": true) and start nothing. With --strict, a key "
      "that has had any job runs nothing more (unless unlocked); with --retries, a "
      "FAILED command runs again. Prints the job as JSON.",
      "start");
  std::string run_key, timeout, cwd, retry_delay;
  std::vector<std::string> env;
  bool sync = false, strict = false;
  int retries = 0;
  add_run_key_option(app, &run_key, "the idempotency key")->required();
  app.add_flag("--sync", sync, "wait for the job to end; exit 6 unless it SUCCEEDED");
  app.add_flag("--strict", strict,
               "run the key once ever: if it has had any job, print that job "
               "(\"accepted\": false) unless 'ratchet unlock' allowed one more run");
  app.add_option("--retries", retries,
                 "run a FAILED command again, up to N more times, each attempt a job of the key")
      ->type_name("N")
      ->check(CLI::Range(0, 1000));
  auto* retry_delay_option =
      app.add_option("--retry-delay", retry_delay,
                     "the pause before the first retry (default 1s), doubled for each next one "
                     "(with jitter, at most 5m or this)")
          ->type_name("DUR");
  auto* timeout_option =
      app.add_option("--timeout", timeout, "stop the job after this long (e.g. 30s, 5m)")
          ->type_name("DUR");
  auto* cwd_option =
      app.add_option("--cwd", cwd, "the directory to run in (default: the current one)")
          ->type_name("DIR");
  app.add_option("--env", env, "NAME=VALUE for the command's environment")
      ->type_name("NAME=VALUE")
      ->allow_extra_args(false);
  app.prefix_command();
  app.footer("COMMAND and its arguments follow the options, after an optional --.");
  add_store_option(app);
  if (auto exit_code = parse(app, argc, argv)) return *exit_code;

  JobRequest request;
  request.run_key = run_key;
  request.command = app.remaining();
  if (!request.command.empty() && request.command.front() == "--") {
    request.command.erase(request.command.begin());
  } else if (!request.command.empty() && request.command.front().starts_with("-")) {
    // prefix_command() stops at the first argument it does not know, so an
    // unknown flag would otherwise become the command.
    return fail(invalid_argument("start: unknown option '" + request.command.front() +
                                 "' (a COMMAND that starts with '-' goes after --)"));
  }
  if (request.command.empty()) {
    return fail(
        invalid_argument("start: missing COMMAND (ratchet start --run-key KEY -- COMMAND)"));
  }
  request.strict = strict;
  request.retries = retries;
  // A DUR given empty (`--timeout "$UNSET"`) is a bad DUR, not no DUR.
  if (retry_delay_option->count() > 0) {
    auto parsed = duration_option("--retry-delay", retry_delay);
    if (!parsed.is_ok()) return fail(parsed.status());
    request.retry_delay = *parsed;
  }
  if (timeout_option->count() > 0) {
    auto parsed = duration_option("--timeout", timeout);
    if (!parsed.is_ok()) return fail(parsed.status());
    if (*parsed <= 0) return fail(invalid_argument("--timeout must be longer than zero"));
    request.timeout = *parsed;
  }
  if (Status s = parse_env(env, &request); !s.is_ok()) return fail(s);
  if (cwd_option->count() > 0 && cwd.empty()) {
    return fail(invalid_argument("--cwd: '' is not a directory"));
  }
  if (Status s = resolve_cwd(cwd, &request); !s.is_ok()) return fail(s);

  auto location = job_store_location(&request.log_dir);
  if (!location.is_ok()) return fail(location.status());
  if (Status s = run_on_this_host(&request); !s.is_ok()) return fail(s);
  auto outcome = jobs::start_job(*location, std::move(request), sync);
  if (outcome.is_ok() && sync) outcome = finish_sync_start(std::move(*outcome));
  if (!outcome.is_ok()) return fail(outcome.status());
  return print_start(*outcome, sync, strict);
}

}  // namespace ratchet::cli
