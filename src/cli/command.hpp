// The `ratchet` command line: a table of subcommands, one file each, sharing a
// few helpers for argument errors, the job store and JSON output.
#pragma once

#include <CLI/CLI.hpp>
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
  int (*run)(int argc, char** argv);
};

// Runs the subcommand argv[1] from `table`; usage, --help, --version, and
// "did you mean" for a near miss.
int run_command_table(std::span<const Command> table, int argc, char** argv);

// The job runner's commands, run by `ratchet` itself.
std::span<const Command> job_commands();
// The server's commands, which `ratchet` runs by executing `ratchet-server`
// (their `run` is null here; ratchet-server has the functions).
std::span<const Command> server_command_names();

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
int run_wait(int argc, char** argv);
int run_list(int argc, char** argv);
int run_server(int argc, char** argv);
int run_dev(int argc, char** argv);
int run_keygen(int argc, char** argv);

// Exit codes that are not the exit code of a Status (JOBS.md).
constexpr int kExitJobNotSucceeded = 6;

// Prints "ratchet: <message>" on stderr and returns the status's exit code.
int fail(const Status& status);

// Parses with CLI11: --help prints the help (nullopt, exit 0 follows); a parse
// error becomes a one-line message and exit 2.
std::optional<int> parse(CLI::App& app, int argc, char** argv);

// Where the jobs' state lives, from the environment (RATCHET_HOME,
// RATCHET_LOCK_TIMEOUT), with the directory created if needed (kRead: one the
// command cannot write will do). What the job commands create from then on is
// private (jobs::use_private_file_modes).
Result<jobs::StoreLocation> job_store_location(
    std::string* log_dir = nullptr, jobs::StateAccess access = jobs::StateAccess::kWrite);
Result<std::unique_ptr<Store>> open_job_store(jobs::StateAccess access = jobs::StateAccess::kWrite);

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

// How `start` and `rerun` print what they did, and their exit code.
int print_start(const jobs::StartOutcome& outcome, bool sync, bool strict);
// With --sync, a start that found the key's job live waits for its end.
Result<jobs::StartOutcome> finish_sync_start(jobs::StartOutcome outcome);

// Parses a DUR option value; kInvalidArgument with a clear message otherwise.
Result<Micros> duration_option(std::string_view flag, const std::string& text);

}  // namespace ratchet::cli
