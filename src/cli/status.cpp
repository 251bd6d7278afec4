// ratchet status (--run-key KEY | --job-id ID) [--all]
#include "cli/command.hpp"

namespace ratchet::cli {

int run_status(int argc, char** argv) {
  CLI::App app("Show the newest job of a run key (or the job with an id) as JSON.", "status");
  JobSelector selector;
  bool all = false;
  selector.add_to(app);
  app.add_flag("--all", all, "with --run-key: every job of the key, newest first");
  if (auto exit_code = parse(app, argc, argv)) return *exit_code;
  if (all && selector.run_key.empty()) {
    return fail(invalid_argument("status: --all goes with --run-key"));
  }

  auto store = open_job_store();
  if (!store.is_ok()) return fail(store.status());
  if (!all) {
    auto job = find_selected_job(**store, selector);
    if (!job.is_ok()) return fail(job.status());
    print_json(job_json(*job));
    return 0;
  }
  auto jobs = (*store)->jobs_for_key(selector.run_key);
  if (!jobs.is_ok()) return fail(jobs.status());
  if (jobs->empty()) return fail(not_found("no job with run key " + selector.run_key));
  auto array = nlohmann::ordered_json::array();
  for (auto& job : *jobs) {
    auto current = jobs::refresh_job(**store, std::move(job));
    if (!current.is_ok()) return fail(current.status());
    array.push_back(job_json(*current));
  }
  print_json(array);
  return 0;
}

}  // namespace ratchet::cli
