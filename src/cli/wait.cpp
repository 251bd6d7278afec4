// ratchet wait (--run-key KEY | --job-id ID) [--timeout DUR]
#include "cli/command.hpp"

namespace ratchet::cli {

int run_wait(int argc, char** argv) {
  CLI::App app("Block until the job ends, then print it; exit 6 unless it SUCCEEDED.", "wait");
  JobSelector selector;
  std::string timeout_text;
  selector.add_to(app);
  auto* timeout_option =
      app.add_option("--timeout", timeout_text, "give up after this long (exit 1)")
          ->type_name("DUR");
  app.footer(
      "With --run-key, a job that 'start --retries' runs again is waited for through its "
      "last attempt.");
  add_store_option(app);
  if (auto exit_code = parse(app, argc, argv)) return *exit_code;
  std::optional<Micros> timeout;
  if (timeout_option->count() > 0) {  // given empty, it is a bad DUR
    auto parsed = duration_option("--timeout", timeout_text);
    if (!parsed.is_ok()) return fail(parsed.status());
    timeout = *parsed;
  }

  auto store = open_job_store(jobs::StateAccess::kRead);
  if (!store.is_ok()) return fail(store.status());
  auto job = find_selected_job(**store, selector);
  if (!job.is_ok()) return fail(job.status());
  bool follow_retries = !selector.run_key.empty();
  auto ended = jobs::wait_for_job(**store, std::move(*job), timeout, follow_retries);
  if (!ended.is_ok()) return fail(ended.status());
  print_json(job_json(*ended));
  return ended->status == RunStatus::kSucceeded ? 0 : kExitJobNotSucceeded;
}

}  // namespace ratchet::cli
