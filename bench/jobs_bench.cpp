// The job runner's wall-clock figures, each beside its baseline from the same
// run: `ratchet start --sync -- true` against `/bin/sh -c true`, `ratchet
// status` as the history grows from 1,000 to 1,000,000 jobs, and `ratchet
// clean` over 100,000 jobs. It prints figures; it asserts nothing.
//
// usage: jobs_bench RATCHET_BINARY [--quick]
#include <fcntl.h>
#include <spawn.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;

double run_ms(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  auto start = Clock::now();
  pid_t pid = 0;
  if (posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ) != 0) {
    std::perror("posix_spawn");
    std::exit(1);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  auto elapsed = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  posix_spawn_file_actions_destroy(&actions);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::fprintf(stderr, "command failed: %s\n", argv[0].c_str());
    std::exit(1);
  }
  return elapsed;
}

double median_ms(const std::vector<std::string>& argv, int runs) {
  std::vector<double> times;
  run_ms(argv);  // warm the page cache
  for (int i = 0; i < runs; ++i) times.push_back(run_ms(argv));
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

void exec_sql(sqlite3* db, const char* sql) {
  char* error = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &error) != SQLITE_OK) {
    std::fprintf(stderr, "sql: %s\n", error);
    std::exit(1);
  }
}

// Adds `count` finished jobs to the history (one transaction), spread over run
// keys of 10 jobs each, finished a year ago so that `clean` can take them.
void seed_history(const std::string& db_path, const std::string& logs, int first, int count,
                  bool with_log_files) {
  sqlite3* db = nullptr;
  sqlite3_open(db_path.c_str(), &db);
  exec_sql(db, "BEGIN");
  sqlite3_stmt* insert = nullptr;
  sqlite3_prepare_v2(db,
                     "INSERT INTO runs (id, kind, run_key, status, started_at, updated_at, "
                     "finished_at, command, cwd, env, stdout_file, stderr_file, exit_code, "
                     "boot_id, supervisor_pid, supervisor_start, pid, pid_start) VALUES "
                     "(?1, 'job', ?2, 'SUCCEEDED', ?3, ?3, ?3, '[\"true\"]', '/', '[]', ?4, ?5, "
                     "0, 'seed', 1, 1, 1, 1)",
                     -1, &insert, nullptr);
  const long long year_ago_us = (std::chrono::duration_cast<std::chrono::microseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count()) -
                                365LL * 86400 * 1000000;
  for (int i = first; i < first + count; ++i) {
    char id[64], key[64];
    std::snprintf(id, sizeof id, "seed-%08d", i);
    std::snprintf(key, sizeof key, "seed-key-%07d", i / 10);
    std::string out = logs + "/" + id + ".stdout", err = logs + "/" + id + ".stderr";
    sqlite3_bind_text(insert, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(insert, 2, key, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(insert, 3, year_ago_us + i);
    sqlite3_bind_text(insert, 4, out.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(insert, 5, err.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_step(insert);
    sqlite3_reset(insert);
    if (with_log_files) {
      close(open(out.c_str(), O_CREAT | O_WRONLY, 0600));
      close(open(err.c_str(), O_CREAT | O_WRONLY, 0600));
    }
  }
  sqlite3_finalize(insert);
  exec_sql(db, "COMMIT");
  sqlite3_close(db);
}

struct Home {
  std::string dir, db, logs;
  explicit Home(const char* name) {
    dir = std::filesystem::temp_directory_path() /
          ("ratchet-bench-" + std::string(name) + "-" + std::to_string(getpid()));
    std::filesystem::remove_all(dir);
    db = dir + "/ratchet.db";
    logs = dir + "/logs";
    setenv("RATCHET_HOME", dir.c_str(), 1);
  }
  ~Home() { std::filesystem::remove_all(dir); }
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: jobs_bench RATCHET_BINARY [--quick]\n");
    return 2;
  }
  std::string ratchet = std::filesystem::absolute(argv[1]);
  bool quick = argc > 2 && std::string(argv[2]) == "--quick";
  const int runs = quick ? 21 : 101;

  // Wall-clock figures mean little on a busy machine: the load says how busy.
  std::ifstream loadavg("/proc/loadavg");
  std::string one_minute;
  loadavg >> one_minute;
  std::printf("load average (1 min) at the start: %s on %ld CPUs\n", one_minute.c_str(),
              sysconf(_SC_NPROCESSORS_ONLN));
  std::printf("%-44s %12s %12s %8s\n", "what", "median ms", "baseline ms", "ratio");
  {
    Home home("start");
    double sh = median_ms({"/bin/sh", "-c", "true"}, runs);
    double start = median_ms({ratchet, "start", "--run-key", "K", "--sync", "--", "true"}, runs);
    std::printf("%-44s %12.3f %12.3f %8.2f\n", "start --sync -- true vs /bin/sh -c true", start, sh,
                start / sh);
  }

  std::vector<int> sizes =
      quick ? std::vector<int>{1000, 100000} : std::vector<int>{1000, 100000, 1000000};
  Home home("status");
  run_ms({ratchet, "list", "--limit", "1"});  // creates the store and its schema
  int seeded = 0;
  double status_at_first = 0;
  for (int size : sizes) {
    seed_history(home.db, home.logs, seeded, size - seeded, false);
    seeded = size;
    char key[64];
    std::snprintf(key, sizeof key, "seed-key-%07d", size / 20);
    double by_key = median_ms({ratchet, "status", "--run-key", key}, runs);
    double all_of_key = median_ms({ratchet, "status", "--run-key", key, "--all"}, runs);
    double by_id = median_ms({ratchet, "status", "--job-id", "seed-00000007"}, runs);
    if (status_at_first == 0) status_at_first = by_key;
    char label[64];
    std::snprintf(label, sizeof label, "status --run-key, %d jobs", size);
    std::printf("%-44s %12.3f %12.3f %8.2f\n", label, by_key, status_at_first,
                by_key / status_at_first);
    std::snprintf(label, sizeof label, "status --run-key --all, %d jobs", size);
    std::printf("%-44s %12.3f %12s %8s\n", label, all_of_key, "", "");
    std::snprintf(label, sizeof label, "status --job-id, %d jobs", size);
    std::printf("%-44s %12.3f %12s %8s\n", label, by_id, "", "");
  }

  {
    Home clean_home("clean");
    run_ms({ratchet, "list", "--limit", "1"});
    seed_history(clean_home.db, clean_home.logs, 0, 100000, true);
    double dry = run_ms({ratchet, "clean", "--before", "2100-01-01", "--dry-run"});
    double clean = run_ms({ratchet, "clean", "--before", "2100-01-01"});
    std::printf("%-44s %12.3f %12.3f %8.2f\n", "clean 100000 jobs (vs --dry-run)", clean, dry,
                clean / dry);
  }
  return 0;
}
