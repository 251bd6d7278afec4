// ratchet cancel (--run-key KEY | --job-id ID) [--grace DUR]
#include "cli/command.hpp"

namespace ratchet::cli {

int run_cancel(int argc, char** argv) {
  CLI::App app(
      "SIGTERM the job's process group, SIGKILL after the grace period; the job ends "
      "CANCELLED.",
      "cancel");
  JobSelector selector;
  std::string grace_text = "10s";
  selector.add_to(app);
  app.add_option("--grace", grace_text, "time between SIGTERM and SIGKILL")->capture_default_str();
  add_store_option(app);
  if (auto exit_code = parse(app, argc, argv)) return *exit_code;
  auto grace = duration_option("--grace", grace_text);
  if (!grace.is_ok()) return fail(grace.status());

  auto store = open_job_store();
  if (!store.is_ok()) return fail(store.status());
  auto job = find_selected_job(**store, selector);
  if (!job.is_ok()) return fail(job.status());
  auto cancelled = jobs::cancel_job(**store, std::move(*job), *grace);
  if (!cancelled.is_ok()) return fail(cancelled.status());
  print_json(job_json(*cancelled));
  return 0;
}

}  // namespace ratchet::cli
