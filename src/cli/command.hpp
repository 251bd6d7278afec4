// The `ratchet` command line: a table of subcommands, one file each, sharing a
// few helpers for argument errors, the job store and JSON output.
#pragma once

#include <CLI/CLI.hpp>
#include <array>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "common/status.hpp"
#include "jobs/runner.hpp"
#include "jobs/state_dir.hpp"
#include "storage/store.hpp"

namespace ratchet::cli {

struct Command {
  std::string_view name;
  std::string_view summary;
  int (*run)(int argc, char** argv) = nullptr;
};

// Runs the subcommand argv[1] from `table`; usage, --help, --version, and
// "did you mean" for a near miss.
int run_command_table(std::span<const Command> table, int argc, char** argv);

// What `ratchet --help` says besides the commands, and ratchet(1) with it.
struct HelpEntry {
  std::string_view name;
  std::string_view text;
};
std::span<const HelpEntry> exit_code_help();
std::span<const HelpEntry> environment_help();

// While a hook is set, parse() hands it the command's CLI::App instead of
// parsing, and the command returns 0 without doing anything: how
// ratchet-docgen reads every command's options, from the definitions that
// `--help` prints, to write the man pages and the shell completions.
using AppHook = std::function<void(const CLI::App&)>;
void set_parse_hook(AppHook hook);

int run_start(int argc, char** argv);
int run_status(int argc, char** argv);
int run_logs(int argc, char** argv);
int run_clean(int argc, char** argv);
int run_cancel(int argc, char** argv);
int run_abort(int argc, char** argv);
int run_unlock(int argc, char** argv);
int run_rerun(int argc, char** argv);
int run_import(int argc, char** argv);
int run_retry(int argc, char** argv);
int run_wait(int argc, char** argv);
int run_list(int argc, char** argv);
int run_server(int argc, char** argv);
int run_dev(int argc, char** argv);
int run_keygen(int argc, char** argv);
int run_migrate(int argc, char** argv);
int run_rewind(int argc, char** argv);
int run_set_result(int argc, char** argv);

// The job commands: `ratchet` runs them, and so does `ratchet-server` (for a
// PostgreSQL store, which `ratchet` hands on to it).
inline constexpr std::array kJobCommands{
    Command{"start", "run a command once per run key", run_start},
    Command{"status", "show a job or call (or every one of a run key) as JSON", run_status},
    Command{"logs", "print a job's stdout or stderr", run_logs},
    Command{"wait", "block until a job ends", run_wait},
    Command{"cancel", "stop a job's process group, or a call and its descendants", run_cancel},
    Command{"abort", "another name for cancel (orchesjob's)", run_abort},
    Command{"unlock", "let a strict run key run once more", run_unlock},
    Command{"rerun", "run a job's command again as a new job of its key", run_rerun},
    Command{"retry", "run a durable call waiting out a backoff now", run_retry},
    Command{"list", "list recent jobs and calls", run_list},
    Command{"clean", "delete finished jobs and calls, with their logs", run_clean},
    Command{"import", "copy an orchesjob state directory's history into the store", run_import},
    Command{"rewind", "resume a C++ coroutine from step N of its journal", run_rewind},
    Command{"set-result", "set a step's result in a C++ coroutine's journal", run_set_result},
};

// The server's commands, run by ratchet-server (`ratchet` hands them on to it
// through with_runner(): the static `ratchet` links none of their functions).
inline constexpr std::array kServerCommands{
    Command{"server", "run the scheduler server for durable calls", run_server},
    Command{"dev", "run a local server for developing an endpoint", run_dev},
    Command{"keygen", "make a key pair for signing requests to endpoints", run_keygen},
    Command{"migrate", "copy a SQLite store into PostgreSQL", run_migrate},
};

// Two tables as one, `first`'s commands first.
template <std::size_t N, std::size_t M>
constexpr std::array<Command, N + M> join_tables(const std::array<Command, N>& first,
                                                 const std::array<Command, M>& second) {
  std::array<Command, N + M> all{};
  for (std::size_t i = 0; i < N; ++i) all[i] = first[i];
  for (std::size_t i = 0; i < M; ++i) all[N + i] = second[i];
  return all;
}

// `table` with every command run by `run`.
template <std::size_t N>
constexpr std::array<Command, N> with_runner(const std::array<Command, N>& table,
                                             int (*run)(int argc, char** argv)) {
  std::array<Command, N> all = table;
  for (auto& command : all) command.run = run;
  return all;
}

// Exit codes that are not the exit code of a Status (JOBS.md).
constexpr int kExitJobNotSucceeded = 6;

// Prints "ratchet: <message>" on stderr and returns the status's exit code.
int fail(const Status& status);

// Parses with CLI11: --help prints the help (nullopt, exit 0 follows); a parse
// error becomes a one-line message and exit 2.
std::optional<int> parse(CLI::App& app, int argc, char** argv);

// --db: the store of a job command, a SQLite file or a postgres:// URL (it sets
// RATCHET_DB, which the job's supervisor inherits).
void add_store_option(CLI::App& app);

// Keeps the command line this process was started with, for
// run_in_server_executable.
void remember_command_line(int argc, char** argv);
// Replaces this process with `ratchet-server` (installed beside `ratchet`) on
// the same command line; returns only on failure, with its exit code.
int run_in_server_executable(int argc, char** argv);

// Where the jobs' state lives, from the environment (RATCHET_HOME, RATCHET_DB,
// RATCHET_LOCK_TIMEOUT), with the directory created if needed (kRead: one the
// command cannot write will do). What the job commands create from then on is
// private (jobs::use_private_file_modes). A PostgreSQL store in an executable
// without its backend (the static `ratchet`) re-runs the whole command in
// ratchet-server, which has it.
Result<jobs::StoreLocation> job_store_location(
    std::string* log_dir = nullptr, jobs::StateAccess access = jobs::StateAccess::kWrite);
Result<std::unique_ptr<Store>> open_job_store(jobs::StateAccess access = jobs::StateAccess::kWrite);

// The job's supervisor runs on this host (jobs::current_host_id()), renewing
// a lease of RATCHET_JOB_LEASE (default 30s) that other hosts sharing the store
// go by.
Status run_on_this_host(JobRequest* request);

// `--run-key KEY`: not empty, and given as JSON shows it (common/byte_text.hpp)
// or as its raw bytes.
CLI::Option* add_run_key_option(CLI::App& app, std::string* run_key, const std::string& help);
// A run key as JSON and messages show it.
std::string key_text(const std::string& run_key);

// `--run-key KEY | --job-id ID` as most subcommands take it.
struct JobSelector {
  std::string run_key;
  std::string job_id;
  void add_to(CLI::App& app);
};
// A run as the CLI shows it: a job or a durable call, from the one history.
struct RunView {
  std::optional<JobRecord> job;
  std::optional<CallRecord> call;
};
// The run a summary names, jobs brought up to date (LOST when their supervisor is gone).
Result<RunView> load_run(Store& store, const RunSummary& summary);
// The selected run (the newest of the key); kNotFound if none.
Result<RunView> find_selected_run(Store& store, const JobSelector& selector);
// The selected job; kNotFound if none, or if it is a durable call.
Result<JobRecord> find_selected_job(Store& store, const JobSelector& selector);

// The JSON of a job (JOBS.md, "The JSON of a job").
nlohmann::ordered_json job_json(const JobRecord& job);
// The JSON of a durable call: function, status, attempts, last error, ids, timings.
nlohmann::ordered_json call_json(const CallRecord& call);
nlohmann::ordered_json run_json(const RunView& run);
// Prints a JSON value on stdout.
void print_json(const nlohmann::ordered_json& value);

// Who a command acts as, in a call's actions: USER@HOST of whoever runs it
// (RATCHET_ACTOR overrides it).
std::string current_actor();
// A call's history as `status` shows it (the events kept, oldest first).
nlohmann::ordered_json history_json(const std::vector<HistoryEvent>& events);
// How `start` and `rerun` print what they did, and their exit code.
int print_start(const jobs::StartOutcome& outcome, bool sync, bool strict);
// With --sync, a start that found the key's job live waits for its end.
Result<jobs::StartOutcome> finish_sync_start(jobs::StartOutcome outcome);

// Parses a DUR option value; kInvalidArgument with a clear message otherwise.
Result<Micros> duration_option(std::string_view flag, const std::string& text);

}  // namespace ratchet::cli
