// ratchet unlock --run-key KEY [--reason TEXT] [--ttl DUR]
#include "cli/command.hpp"
#include "common/time_format.hpp"

namespace ratchet::cli {

int run_unlock(int argc, char** argv) {
  CLI::App app(
      "Let the next 'start --strict' of a run key run once more (then the key is locked "
      "again). Refused while the key's job is live.",
      "unlock");
  std::string run_key, reason, ttl_text;
  add_run_key_option(app, &run_key, "the run key")->required();
  app.add_option("--reason", reason, "why; recorded on the next job as its rerun_reason");
  auto* ttl_option =
      app.add_option("--ttl", ttl_text,
                     "the unlock lapses if no strict start uses it within this long (default: it "
                     "waits until used)")
          ->type_name("DUR");
  add_store_option(app);
  if (auto exit_code = parse(app, argc, argv)) return *exit_code;
  std::optional<Micros> ttl;
  if (ttl_option->count() > 0) {  // given empty, it is a bad DUR
    auto parsed = duration_option("--ttl", ttl_text);
    if (!parsed.is_ok()) return fail(parsed.status());
    if (*parsed <= 0) return fail(invalid_argument("--ttl must be longer than zero"));
    ttl = *parsed;
  }

  auto store = open_job_store();
  if (!store.is_ok()) return fail(store.status());
  std::optional<std::string> why;
  if (!reason.empty()) why = reason;
  auto unlocked = (*store)->unlock_key(run_key, why, ttl, jobs::check_job_alive);
  if (!unlocked.is_ok()) {
    if (unlocked.status().code() != Code::kNotFound) return fail(unlocked.status());
    return fail(not_found("no job with run key " + key_text(run_key) + "; nothing to unlock"));
  }
  nlohmann::ordered_json out;
  out["run_key"] = key_text(run_key);
  out["unlocked"] = true;
  out["reason"] = why ? nlohmann::ordered_json(*why) : nullptr;
  out["unlocked_at"] = format_local_time(unlocked->created_at);
  out["expires_at"] = unlocked->expires_at
                          ? nlohmann::ordered_json(format_local_time(*unlocked->expires_at))
                          : nullptr;
  out["job_id"] = unlocked->newest.id;
  out["status"] = status_name(unlocked->newest.status);
  print_json(out);
  return 0;
}

}  // namespace ratchet::cli
