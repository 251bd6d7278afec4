// ratchet cancel (--run-key KEY | --job-id ID) [--grace DUR | --grace-seconds N] [--reason TEXT]
// ratchet abort: the same, by orchesjob's name for it.
#include "cli/command.hpp"

namespace ratchet::cli {
namespace {

int cancel_named(const char* name, int argc, char** argv) {
  CLI::App app(
      "SIGTERM the job's process group, SIGKILL after the grace period; the job ends "
      "CANCELLED, with the reason and time recorded (cancel_reason, cancelled_at).",
      name);
  JobSelector selector;
  std::string grace_text = "10s", reason;
  double grace_seconds = -1;
  selector.add_to(app);
  auto* grace = app.add_option("--grace", grace_text, "time between SIGTERM and SIGKILL")
                    ->type_name("DUR")
                    ->capture_default_str();
  app.add_option("--grace-seconds", grace_seconds, "the same, in seconds (orchesjob's flag)")
      ->type_name("N")
      ->check(CLI::Range(0.0, 1e9))
      ->excludes(grace);
  app.add_option("--reason", reason, "why, recorded as the job's cancel_reason")->type_name("TEXT");
  if (name == std::string_view("abort")) app.footer("'abort' is another name for 'cancel'.");
  add_store_option(app);
  if (auto exit_code = parse(app, argc, argv)) return *exit_code;
  if (grace_seconds >= 0) grace_text = std::to_string(grace_seconds) + "s";
  auto grace_time = duration_option("--grace", grace_text);
  if (!grace_time.is_ok()) return fail(grace_time.status());

  auto store = open_job_store();
  if (!store.is_ok()) return fail(store.status());
  auto job = find_selected_job(**store, selector);
  if (!job.is_ok()) return fail(job.status());
  std::optional<std::string> why;
  if (!reason.empty()) why = reason;
  auto cancelled = jobs::cancel_job(**store, std::move(*job), *grace_time, why);
  if (!cancelled.is_ok()) return fail(cancelled.status());
  print_json(job_json(*cancelled));
  return 0;
}

}  // namespace

int run_cancel(int argc, char** argv) { return cancel_named("cancel", argc, argv); }
int run_abort(int argc, char** argv) { return cancel_named("abort", argc, argv); }

}  // namespace ratchet::cli
