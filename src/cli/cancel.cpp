// ratchet cancel (--run-key KEY | --job-id ID) [--grace DUR | --grace-seconds N] [--reason TEXT]
// ratchet abort: the same, by orchesjob's name for it.
#include "cli/command.hpp"

namespace ratchet::cli {
namespace {

// A durable call is cancelled in the store, not through the server's RPC:
// it works whether or not the server that runs the call is up (the record is
// the truth), and a running server needs no telling: the calls end DONE at
// once, so whatever reply is in flight is fenced off, and the server finds the
// woken parent at its next look at the store (at most its safety poll, 1 s).
int cancel_call(Store& store, const CallRecord& call) {
  std::vector<std::string> cancelled;
  Status status = store.calls([&](CallTransaction& tx) -> Status {
    ASSIGN_OR_RETURN(cancelled, tx.cancel(call.id, current_actor()));
    return Status::ok();
  });
  if (!status.is_ok()) return fail(status);
  if (cancelled.empty()) {
    return fail(Status(Code::kFailedPrecondition, "call " + call.id + " already ended " +
                                                      std::string(status_name(call.status)) +
                                                      "; nothing was cancelled"));
  }
  auto now = store.find_call(call.id);
  if (!now.is_ok() || !*now) return fail(now.is_ok() ? not_found("call " + call.id) : now.status());
  auto out = call_json(**now);
  out["cancelled"] = cancelled;
  print_json(out);
  return 0;
}

int cancel_named(const char* name, int argc, char** argv) {
  CLI::App app(
      "Cancel a job (SIGTERM its process group, SIGKILL after the grace period; it ends "
      "CANCELLED, with the reason and time recorded) or a durable call and all its "
      "descendants (they end CANCELLED).",
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
  auto run = find_selected_run(**store, selector);
  if (!run.is_ok()) return fail(run.status());
  if (run->call) return cancel_call(**store, *run->call);
  std::optional<std::string> why;
  if (!reason.empty()) why = reason;
  auto cancelled = jobs::cancel_job(**store, std::move(*run->job), *grace_time, why);
  if (!cancelled.is_ok()) return fail(cancelled.status());
  print_json(job_json(*cancelled));
  return 0;
}

}  // namespace

int run_cancel(int argc, char** argv) { return cancel_named("cancel", argc, argv); }
int run_abort(int argc, char** argv) { return cancel_named("abort", argc, argv); }

}  // namespace ratchet::cli
