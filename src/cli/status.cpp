// ratchet status (--run-key KEY | --job-id ID) [--all]
#include <limits>

#include "cli/command.hpp"
#include "cli/repair.hpp"

namespace ratchet::cli {

int run_status(int argc, char** argv) {
  CLI::App app("Show the newest job of a run key (or the job with an id) as JSON.", "status");
  JobSelector selector;
  bool all = false;
  selector.add_to(app);
  app.add_flag("--all", all,
               "with --run-key: every job of the key, newest first (with --job-id: that job, "
               "as orchesjob does)");
  add_store_option(app);
  if (auto exit_code = parse(app, argc, argv)) return *exit_code;

  auto store = open_job_store(jobs::StateAccess::kRead);
  if (!store.is_ok()) return fail(store.status());
  if (!all || selector.run_key.empty()) {
    auto run = find_selected_run(**store, selector);
    if (!run.is_ok()) return fail(run.status());
    auto out = run_json(*run);
    if (run->call) {
      // What the scheduler did with the call (attempts, polls, expiry), and
      // what people did to it (cancel, retry now, rewind, set-result).
      auto history = (*store)->call_history(run->call->id, std::numeric_limits<int>::max());
      if (!history.is_ok()) return fail(history.status());
      out["history"] = history_json(*history);
      auto actions = call_actions_json(**store, run->call->id);
      if (!actions.is_ok()) return fail(actions.status());
      if (!actions->empty()) out["actions"] = std::move(*actions);
    }
    print_json(out);
    return 0;
  }
  auto runs = (*store)->runs_for_key(selector.run_key, std::numeric_limits<int>::max());
  if (!runs.is_ok()) return fail(runs.status());
  if (runs->empty()) return fail(not_found("no job with run key " + key_text(selector.run_key)));
  auto array = nlohmann::ordered_json::array();
  for (const auto& summary : *runs) {
    auto run = load_run(**store, summary);
    if (!run.is_ok()) return fail(run.status());
    array.push_back(run_json(*run));
  }
  print_json(array);
  return 0;
}

}  // namespace ratchet::cli
