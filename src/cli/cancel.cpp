// ratchet cancel (--run-key KEY | --job-id ID) [--grace DUR]
#include <pwd.h>
#include <unistd.h>

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
    ASSIGN_OR_RETURN(cancelled, tx.cancel(call.id, cli_actor()));
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

}  // namespace

int run_cancel(int argc, char** argv) {
  CLI::App app(
      "Cancel a job (SIGTERM its process group, SIGKILL after the grace period) or a "
      "durable call and all its descendants; either ends CANCELLED.",
      "cancel");
  JobSelector selector;
  std::string grace_text = "10s";
  selector.add_to(app);
  app.add_option("--grace", grace_text, "(jobs) time between SIGTERM and SIGKILL")
      ->capture_default_str();
  add_store_option(app);
  if (auto exit_code = parse(app, argc, argv)) return *exit_code;
  auto grace = duration_option("--grace", grace_text);
  if (!grace.is_ok()) return fail(grace.status());

  auto store = open_job_store();
  if (!store.is_ok()) return fail(store.status());
  auto run = find_selected_run(**store, selector);
  if (!run.is_ok()) return fail(run.status());
  if (run->call) return cancel_call(**store, *run->call);
  auto cancelled = jobs::cancel_job(**store, std::move(*run->job), *grace);
  if (!cancelled.is_ok()) return fail(cancelled.status());
  print_json(job_json(*cancelled));
  return 0;
}

}  // namespace ratchet::cli
