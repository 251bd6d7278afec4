// ratchet list [--status STATUS] [--limit N]
#include <climits>

#include "cli/command.hpp"

namespace ratchet::cli {
namespace {

// A job whose supervisor died is RUNNING in the store until a command reads
// it: `list --status LOST` missed it while `list` showed it LOST, and
// `--status RUNNING --limit N` gave fewer than N. So with a filter, the live
// jobs (as many as are running) are brought up to date before the query.
Status refresh_live_jobs(Store& store) {
  for (RunStatus live : {RunStatus::kStarting, RunStatus::kRunning}) {
    ASSIGN_OR_RETURN(auto runs, store.list_runs(live, INT_MAX));
    for (const auto& summary : runs) {
      if (summary.kind == RunKind::kJob) RETURN_IF_ERROR(load_run(store, summary).status());
    }
  }
  return Status::ok();
}

}  // namespace

int run_list(int argc, char** argv) {
  CLI::App app("List recent jobs and durable calls, newest first, as a JSON array.", "list");
  std::string status_text;
  int limit = 50;
  app.add_option("--status", status_text, "only jobs in this status (any case)")
      ->type_name("STATUS")
      ->check(CLI::IsMember({"STARTING", "RUNNING", "SUCCEEDED", "FAILED", "LOST", "CANCELLED"},
                            CLI::ignore_case));
  app.add_option("--limit", limit, "at most this many jobs")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  add_store_option(app);
  if (auto exit_code = parse(app, argc, argv)) return *exit_code;
  std::optional<RunStatus> status;
  if (!status_text.empty()) {
    std::string upper = status_text;
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    status = parse_status(upper);
    if (!status) return fail(invalid_argument("list: unknown --status '" + status_text + "'"));
  }

  auto store = open_job_store(jobs::StateAccess::kRead);
  if (!store.is_ok()) return fail(store.status());
  if (status) {
    if (Status s = refresh_live_jobs(**store); !s.is_ok()) return fail(s);
  }
  auto runs = (*store)->list_runs(status, limit);
  if (!runs.is_ok()) return fail(runs.status());
  auto array = nlohmann::ordered_json::array();
  for (const auto& summary : *runs) {
    auto run = load_run(**store, summary);
    if (!run.is_ok()) return fail(run.status());
    if (status && run->job && run->job->status != *status) continue;  // found LOST just now
    array.push_back(run_json(*run));
  }
  print_json(array);
  return 0;
}

}  // namespace ratchet::cli
