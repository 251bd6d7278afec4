// ratchet retry --job-id ID
#include "cli/command.hpp"

namespace ratchet::cli {

// Through the store, as cancel: a server that is down takes the call at its
// next start, a running one at its next look at the store (at most 1 s).
int run_retry(int argc, char** argv) {
  CLI::App app("Run a durable call waiting out a retry's backoff now.", "retry");
  std::string id;
  app.add_option("--job-id", id, "the call's dispatch id")->required();
  add_store_option(app);
  if (auto exit_code = parse(app, argc, argv)) return *exit_code;

  auto store = open_job_store();
  if (!store.is_ok()) return fail(store.status());
  bool retried = false;
  Status status = (*store)->calls([&](CallTransaction& tx) -> Status {
    ASSIGN_OR_RETURN(retried, tx.retry_now(id, current_actor()));
    return Status::ok();
  });
  if (!status.is_ok()) return fail(status);
  auto call = (*store)->find_call(id);
  if (!call.is_ok()) return fail(call.status());
  if (!retried) {
    return fail(
        Status(Code::kFailedPrecondition, "call " + id + " is not waiting out a backoff (it is " +
                                              std::string(phase_name((*call)->phase)) + ", " +
                                              std::string(status_name((*call)->status)) + ")"));
  }
  auto out = call_json(**call);
  out["retried"] = true;
  print_json(out);
  return 0;
}

}  // namespace ratchet::cli
