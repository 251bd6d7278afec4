// ratchet clean --before DATETIME [--dry-run]
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "cli/command.hpp"
#include "common/time_format.hpp"

namespace ratchet::cli {
namespace {

// A run's log files are moved aside (logs/.clean-<name>) before its record is
// deleted, and deleted after it: a record whose delete fails (a full disk, a
// store locked past its timeout) gets its logs back, and a log that cannot be
// moved (permission) keeps its record, so the next clean tries again.
std::string aside(const std::string& path) {
  auto slash = path.rfind('/');
  return path.substr(0, slash + 1) + ".clean-" + path.substr(slash + 1);
}

// Moves the run's logs aside, adding them to `moved`; a file already gone is
// fine. False, with every log of the run back in place, if one cannot be moved.
bool move_logs_aside(const RunSummary& run, std::vector<std::string>* moved) {
  std::size_t before = moved->size();
  for (const std::string* path : {&run.stdout_file, &run.stderr_file}) {
    if (path->empty()) continue;
    if (rename(path->c_str(), aside(*path).c_str()) == 0) {
      moved->push_back(*path);
    } else if (errno == ENOENT) {
      // Moved aside already by a clean that was killed before its delete:
      // this one finishes its work (or puts the log back).
      if (access(aside(*path).c_str(), F_OK) == 0) moved->push_back(*path);
    } else {
      std::fprintf(stderr, "ratchet: cannot delete %s: %s\n", path->c_str(), std::strerror(errno));
      for (std::size_t i = before; i < moved->size(); ++i) {
        (void)rename(aside((*moved)[i]).c_str(), (*moved)[i].c_str());
      }
      moved->resize(before);
      return false;
    }
  }
  return true;
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
  std::vector<std::string> ids, moved;
  ids.reserve(runs->size());
  for (const auto& run : *runs) {
    if (dry_run) {
      // One line per run: the key as a JSON string, since a key may hold a newline.
      std::fprintf(stderr, "would delete %s %s (run key %s, %s, finished %s)\n",
                   std::string(kind_name(run.kind)).c_str(), run.id.c_str(),
                   nlohmann::json(key_text(run.run_key)).dump().c_str(),
                   std::string(status_name(run.status)).c_str(),
                   format_local_time(*run.finished_at).c_str());
      ids.push_back(run.id);
      continue;
    }
    if (move_logs_aside(run, &moved)) {
      ids.push_back(run.id);
    } else {
      ++errors;  // keep the record while its logs cannot be removed
    }
  }
  int deleted = static_cast<int>(ids.size());
  if (!dry_run && !ids.empty()) {
    auto removed = (*store)->delete_terminal_runs(ids);
    if (!removed.is_ok()) {
      for (const auto& path : moved) (void)rename(aside(path).c_str(), path.c_str());
      return fail(removed.status());
    }
    deleted = *removed;
    for (const auto& path : moved) (void)unlink(aside(path).c_str());
  }
  print_json({{"deleted", deleted}, {"errors", errors}});
  return 0;
}

}  // namespace ratchet::cli
