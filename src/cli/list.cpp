// ratchet list [--status STATUS] [--limit N]
#include "cli/command.hpp"

namespace ratchet::cli {

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
