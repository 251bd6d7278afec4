// ratchet import --from-orchesjob DIR
#include <unistd.h>

#include "cli/command.hpp"
#include "jobs/orchesjob.hpp"

namespace ratchet::cli {

int run_import(int argc, char** argv) {
  CLI::App app(
      "Copy the history of an orchesjob state directory (orchesjob.db and logs/) into "
      "Ratchet's store: every job with its run key, status, exit code, times and logs. "
      "Refused while one of its jobs runs, for a row orchesjob would not have written (the "
      "message names it), and for a run key Ratchet has already run a job of (import before "
      "running a key in Ratchet): nothing is imported then. Jobs already imported are left "
      "as they are.",
      "import");
  std::string dir;
  app.add_option("--from-orchesjob", dir, "orchesjob's state directory")
      ->type_name("DIR")
      ->required();
  app.footer(
      "ORCHESJOB_HOME is not read: what is imported is named on the command line, so that a "
      "variable left in an environment cannot change it.");
  add_store_option(app);
  if (auto exit_code = parse(app, argc, argv)) return *exit_code;

  std::string log_dir;
  auto location = job_store_location(&log_dir);
  if (!location.is_ok()) return fail(location.status());
  auto history = jobs::read_orchesjob_history(dir, log_dir, SystemClock::instance().now());
  if (!history.is_ok()) return fail(history.status());
  auto store = open_store(location->db_path, SystemClock::instance(), location->options);
  if (!store.is_ok()) return fail(store.status());

  std::vector<JobRecord> fresh;
  int logs = 0;
  for (auto& job : history->jobs) {
    auto known = (*store)->find_job(job.id);
    if (!known.is_ok()) return fail(known.status());
    if (known->has_value()) continue;
    auto copied = jobs::copy_orchesjob_logs(dir, job);
    if (!copied.is_ok()) return fail(copied.status());
    logs += *copied;
    fresh.push_back(std::move(job));
  }
  auto imported = (*store)->import_jobs(fresh);
  if (!imported.is_ok()) {
    // Nothing was imported (a key Ratchet already ran, say): nor are its logs.
    for (const auto& job : fresh) {
      unlink(job.stdout_file.c_str());
      unlink(job.stderr_file.c_str());
    }
    return fail(imported.status());
  }
  nlohmann::ordered_json out;
  out["from"] = dir;
  out["imported"] = *imported;
  out["skipped"] = static_cast<int>(history->jobs.size()) - *imported;
  out["lost"] = history->lost;
  out["logs_copied"] = logs;
  print_json(out);
  return 0;
}

}  // namespace ratchet::cli
