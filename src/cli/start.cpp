// ratchet start --run-key KEY [--sync] [--timeout DUR] [--cwd DIR] [--env K=V]... [--] COMMAND...
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>

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
    request->env.emplace_back(pair.substr(0, equals), pair.substr(equals + 1));
  }
  return Status::ok();
}

Status resolve_cwd(const std::string& given, JobRequest* request) {
  if (given.empty()) {
    char buffer[PATH_MAX];
    if (!getcwd(buffer, sizeof buffer)) return internal_error("cannot read the current directory");
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

int print_outcome(const jobs::StartOutcome& outcome, bool sync) {
  auto json = nlohmann::ordered_json::object();
  json["accepted"] = true;
  json["existing"] = outcome.existing;
  json["mode"] = sync ? "sync" : "async";
  json.update(job_json(outcome.job));
  print_json(json);
  if (sync && outcome.job.status != RunStatus::kSucceeded) return kExitJobNotSucceeded;
  return 0;
}

}  // namespace

int run_start(int argc, char** argv) {
  CLI::App app(
      "Run COMMAND once for the run key: if the key's newest job is STARTING or "
      "RUNNING, print it (\"existing\": true) and start nothing.",
      "start");
  std::string run_key, timeout, cwd;
  std::vector<std::string> env;
  bool sync = false;
  app.add_option("--run-key", run_key, "the idempotency key")->required();
  app.add_flag("--sync", sync, "wait for the job to end; exit 6 unless it SUCCEEDED");
  app.add_option("--timeout", timeout, "stop the job after this long (e.g. 30s, 5m)");
  app.add_option("--cwd", cwd, "the directory to run in (default: the current one)");
  app.add_option("--env", env, "NAME=VALUE for the command's environment (repeatable)")
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
  if (run_key.empty()) return fail(invalid_argument("start: --run-key must not be empty"));
  if (!timeout.empty()) {
    auto parsed = duration_option("--timeout", timeout);
    if (!parsed.is_ok()) return fail(parsed.status());
    if (*parsed <= 0) return fail(invalid_argument("--timeout must be longer than zero"));
    request.timeout = *parsed;
  }
  if (Status s = parse_env(env, &request); !s.is_ok()) return fail(s);
  if (Status s = resolve_cwd(cwd, &request); !s.is_ok()) return fail(s);

  auto location = job_store_location(&request.log_dir);
  if (!location.is_ok()) return fail(location.status());
  request.host_id = jobs::current_host_id();
  if (const char* lease = std::getenv("RATCHET_JOB_LEASE"); lease && *lease) {
    auto parsed = duration_option("RATCHET_JOB_LEASE", lease);
    if (!parsed.is_ok()) return fail(parsed.status());
    if (*parsed <= 0) return fail(invalid_argument("RATCHET_JOB_LEASE must be longer than zero"));
    request.lease = *parsed;
  }
  auto outcome = jobs::start_job(*location, std::move(request), sync);
  if (!outcome.is_ok()) return fail(outcome.status());
  if (sync && outcome->existing && !is_terminal(outcome->job.status)) {
    // Another start owns the job: wait for its end as if it were ours.
    auto store = open_job_store();
    if (!store.is_ok()) return fail(store.status());
    auto ended = jobs::wait_for_job(**store, outcome->job, std::nullopt);
    if (!ended.is_ok()) return fail(ended.status());
    outcome->job = std::move(*ended);
  }
  return print_outcome(*outcome, sync);
}

}  // namespace ratchet::cli
