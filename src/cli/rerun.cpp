// ratchet rerun (--run-key KEY | --job-id ID) [--sync] [--reason TEXT]
#include "cli/command.hpp"

namespace ratchet::cli {
namespace {

Status refuse_active(const JobRecord& job) {
  return failed_precondition("Cannot rerun active job " + job.id + " (it is " +
                             std::string(status_name(job.status)) +
                             "); wait for it or cancel it first");
}

// The job to run again, as the request that ran it.
Result<JobRequest> request_to_rerun(const JobSelector& selector, const std::string& reason,
                                    std::string* log_dir) {
  ASSIGN_OR_RETURN(auto location, job_store_location(log_dir));
  ASSIGN_OR_RETURN(auto store,
                   open_store(location.db_path, SystemClock::instance(), location.options));
  ASSIGN_OR_RETURN(JobRecord job, find_selected_job(*store, selector));
  if (!is_terminal(job.status)) return refuse_active(job);
  if (job.run_key.empty() || job.command.empty()) {
    return failed_precondition("job " + job.id + " has no run key or command to run again");
  }
  JobRequest request;
  request.run_key = job.run_key;
  request.command = job.command;
  request.cwd = job.cwd;
  request.env = job.env;
  request.timeout = job.timeout;
  request.trigger = JobTrigger::kRerun;
  request.rerun_of_job_id = job.id;
  if (!reason.empty()) request.rerun_reason = reason;
  RETURN_IF_ERROR(run_on_this_host(&request));
  return request;
}

}  // namespace

int run_rerun(int argc, char** argv) {
  CLI::App app(
      "Run a job's command again, with its cwd, env and timeout, as a new job of its run "
      "key (its rerun_of_job_id names the job). Refused while the key's job is live; a "
      "strict key needs no unlock for it.",
      "rerun");
  JobSelector selector;
  std::string reason;
  bool sync = false;
  selector.add_to(app);
  app.add_flag("--sync", sync, "wait for the new job to end; exit 6 unless it SUCCEEDED");
  app.add_option("--reason", reason, "why; recorded as the new job's rerun_reason");
  add_store_option(app);
  if (auto exit_code = parse(app, argc, argv)) return *exit_code;

  std::string log_dir;
  auto request = request_to_rerun(selector, reason, &log_dir);
  if (!request.is_ok()) return fail(request.status());
  request->log_dir = log_dir;
  auto location = job_store_location();
  if (!location.is_ok()) return fail(location.status());
  auto outcome = jobs::start_job(*location, std::move(*request), sync);
  if (!outcome.is_ok()) return fail(outcome.status());
  // Another start won the key between the check above and the start.
  if (outcome->existing) return fail(refuse_active(outcome->job));
  return print_start(*outcome, sync, false);
}

}  // namespace ratchet::cli
