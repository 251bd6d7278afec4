// ratchet clean --before DATETIME [--dry-run]
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "cli/command.hpp"
#include "common/time_format.hpp"

namespace ratchet::cli {
namespace {

// Removes a log file; a file that is already gone is fine.
bool remove_log(const std::string& path) {
  if (path.empty() || unlink(path.c_str()) == 0 || errno == ENOENT) return true;
  std::fprintf(stderr, "ratchet: cannot delete %s: %s\n", path.c_str(), std::strerror(errno));
  return false;
}

}  // namespace

int run_clean(int argc, char** argv) {
  CLI::App app(
      "Delete finished jobs (and calls) whose finished_at is before DATETIME, with "
      "their log files. Never a STARTING or RUNNING one.",
      "clean");
  std::string before;
  bool dry_run = false;
  app.add_option("--before", before,
                 "ISO 8601 date or date-time; without an offset it is local time")
      ->type_name("DATETIME")
      ->required();
  app.add_flag("--dry-run", dry_run, "list on stderr what would go; delete nothing");
  add_store_option(app);
  if (auto exit_code = parse(app, argc, argv)) return *exit_code;
  auto cutoff = parse_datetime(before);
  if (!cutoff.is_ok()) return fail(cutoff.status());

  auto store = open_job_store();
  if (!store.is_ok()) return fail(store.status());
  auto runs = (*store)->terminal_runs_before(*cutoff);
  if (!runs.is_ok()) return fail(runs.status());

  int errors = 0;
  std::vector<std::string> ids;
  ids.reserve(runs->size());
  for (const auto& run : *runs) {
    if (dry_run) {
      std::fprintf(stderr, "would delete %s %s (run key %s, %s, finished %s)\n",
                   std::string(kind_name(run.kind)).c_str(), run.id.c_str(),
                   key_text(run.run_key).c_str(), std::string(status_name(run.status)).c_str(),
                   format_local_time(*run.finished_at).c_str());
      ids.push_back(run.id);
      continue;
    }
    bool removed = remove_log(run.stdout_file);
    removed = remove_log(run.stderr_file) && removed;
    if (removed) {
      ids.push_back(run.id);
    } else {
      ++errors;  // keep the record while its logs cannot be removed
    }
  }
  int deleted = static_cast<int>(ids.size());
  if (!dry_run && !ids.empty()) {
    auto removed = (*store)->delete_terminal_runs(ids);
    if (!removed.is_ok()) return fail(removed.status());
    deleted = *removed;
  }
  print_json({{"deleted", deleted}, {"errors", errors}});
  return 0;
}

}  // namespace ratchet::cli
