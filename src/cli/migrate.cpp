// ratchet migrate --from SQLITE_PATH --to postgres://...
#include "storage/migrate.hpp"

#include <unistd.h>

#include <cstdio>

#include "cli/command.hpp"
#include "jobs/process.hpp"

namespace ratchet::cli {
namespace {

// A store in use could change under the copy, or be written after it (a
// server's results, a job's outcome) and those writes would be lost.
Status refuse_if_in_use(const std::string& path) {
  for (const char* suffix : {"", "-wal"}) {
    auto users = jobs::processes_using(path + suffix);
    if (!users.empty()) {
      return failed_precondition("the store " + path + " is in use by pid " +
                                 std::to_string(users.front().pid) + " (" + users.front().command +
                                 "): stop the servers and jobs that use it, then migrate");
    }
  }
  return Status::ok();
}

// "\r" progress on a terminal; nothing otherwise (the JSON at the end says it all).
void show_progress(const MigrationProgress& progress) {
  static bool terminal = isatty(STDERR_FILENO) != 0;
  if (!terminal || progress.total == 0) return;
  std::fprintf(stderr, "\rratchet migrate: %lld of %lld rows (%d%%), copying %s...   ",
               static_cast<long long>(progress.done), static_cast<long long>(progress.total),
               static_cast<int>(progress.done * 100 / progress.total), progress.table.c_str());
  if (progress.done == progress.total) std::fputc('\n', stderr);
  std::fflush(stderr);
}

}  // namespace

int run_migrate(int argc, char** argv) {
  CLI::App app(
      "Copy a whole SQLite store (jobs and calls, finished and in flight) into an empty "
      "PostgreSQL database; then run the servers with --db on it.",
      "migrate");
  std::string from, to;
  app.add_option("--from", from, "the SQLite store")->required()->type_name("FILE");
  app.add_option("--to", to, "the PostgreSQL store (postgres://...)")->required()->type_name("URL");
  if (auto exit_code = parse(app, argc, argv)) return *exit_code;
  if (!is_postgres_location(to)) {
    return fail(invalid_argument("--to must be a postgres:// URL, got '" + to + "'"));
  }
  if (is_postgres_location(from) || access(from.c_str(), R_OK) != 0) {
    return fail(not_found("--from: no SQLite store at '" + from + "'"));
  }
  if (Status s = refuse_if_in_use(from); !s.is_ok()) return fail(s);
  auto counts = copy_sqlite_to_postgres(from, to, SystemClock::instance(), show_progress);
  if (!counts.is_ok()) return fail(counts.status());
  nlohmann::ordered_json out;
  out["from"] = from;
  out["to"] = display_location(to);
  out["runs"] = counts->runs;
  out["call_results"] = counts->call_results;
  out["coroutine_states"] = counts->coroutine_states;
  out["blobs"] = counts->blobs;
  print_json(out);
  return 0;
}

}  // namespace ratchet::cli
