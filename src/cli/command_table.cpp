// Running a table of subcommands: lookup, usage, and "did you mean" for typos.
#include <fcntl.h>
#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "cli/command.hpp"

namespace ratchet::cli {
namespace {

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1] ? 1 : 0)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

const Command* closest_command(std::span<const Command> table, std::string_view typed) {
  const Command* best = nullptr;
  std::size_t best_distance = 3;  // suggest only near misses
  for (const auto& command : table) {
    std::size_t distance = edit_distance(typed, command.name);
    if (command.name.starts_with(typed) && typed.size() >= 2) distance = 1;
    if (distance < best_distance) {
      best = &command;
      best_distance = distance;
    }
  }
  return best;
}

constexpr HelpEntry kExitCodes[] = {
    {"0", "success (for start --sync and wait: the job SUCCEEDED)"},
    {"1", "error (a one-line message on stderr)"},
    {"2", "invalid arguments"},
    {"3", "job, run key or log file not found"},
    {"4", "inconsistent state (e.g. cancel of a job that ended, unlock of a live one)"},
    {"5", "the store stayed locked past RATCHET_LOCK_TIMEOUT"},
    {"6", "start --sync, rerun --sync, wait: the job ended but did not succeed"},
};

constexpr HelpEntry kEnvironment[] = {
    {"RATCHET_HOME",
     "the state directory (default /var/lib/ratchet for root, else "
     "$XDG_STATE_HOME/ratchet or ~/.local/state/ratchet)"},
    {"RATCHET_DB", "a store outside the state directory (shared with ratchet server)"},
    {"RATCHET_LOCK_TIMEOUT", "how long a writer waits for the store's lock (default 10s)"},
    {"RATCHET_FSYNC", "1: every commit waits for the disk"},
};

void print_entries(FILE* out, const char* title, std::span<const HelpEntry> entries, int width) {
  std::fprintf(out, "\n%s:\n", title);
  for (const auto& [name, text] : entries) {
    std::fprintf(out, "  %-*s %s\n", width, std::string(name).c_str(), std::string(text).c_str());
  }
}

void print_usage(std::span<const Command> table, FILE* out) {
  std::fprintf(out,
               "ratchet: durable execution for C++\n\n"
               "usage: ratchet <command> [options]\n\ncommands:\n");
  for (const auto& command : table) {
    std::fprintf(out, "  %-10s %s\n", std::string(command.name).c_str(),
                 std::string(command.summary).c_str());
  }
  print_entries(out, "exit codes", kExitCodes, 2);
  print_entries(out, "environment", kEnvironment, 20);
  std::fprintf(out, "\n'ratchet <command> --help' describes a command.\n");
}

// A closed stdin, stdout or stderr would be taken by the next file this
// process opens: the report pipe of `start` would become its stderr, and the
// supervisor's /dev/null would replace it. They are /dev/null instead.
void open_standard_streams() {
  for (int fd = 0; fd <= 2; ++fd) {
    if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF) continue;
    int null_fd = open("/dev/null", O_RDWR);
    if (null_fd >= 0 && null_fd != fd) close(null_fd);  // fd was taken meanwhile: cannot happen
  }
}

// A command's answer that could not be written (a full disk behind `>`)
// is an error, not a success with nothing printed.
int check_stdout(int exit_code) {
  int error = std::fflush(stdout) == 0 ? 0 : errno;
  if (error == 0 && !std::ferror(stdout)) return exit_code;
  std::fprintf(stderr, "ratchet: cannot write to stdout%s%s\n", error ? ": " : "",
               error ? std::strerror(error) : "");
  return 1;
}

int run_named(std::span<const Command> table, int argc, char** argv) {
  std::string_view name = argv[1];
  if (name == "--help" || name == "-h" || name == "help") {
    print_usage(table, stdout);
    return 0;
  }
  if (name == "--version") {
    std::printf("ratchet %s\n", RATCHET_VERSION);
    return 0;
  }
  for (const auto& command : table) {
    if (command.name == name) return command.run(argc - 1, argv + 1);
  }
  if (const Command* suggestion = closest_command(table, name)) {
    std::fprintf(stderr, "ratchet: unknown command '%s'; did you mean '%s'?\n", argv[1],
                 std::string(suggestion->name).c_str());
  } else {
    std::fprintf(stderr, "ratchet: unknown command '%s' (see 'ratchet --help')\n", argv[1]);
  }
  return 2;
}

}  // namespace

std::span<const HelpEntry> exit_code_help() { return kExitCodes; }
std::span<const HelpEntry> environment_help() { return kEnvironment; }

int run_command_table(std::span<const Command> table, int argc, char** argv) {
  open_standard_streams();
  // A write past the caller's file size limit (ulimit -f) fails with EFBIG
  // instead of killing the process: the store reports it as a full disk (a
  // one-line error, or a supervisor that keeps its job's outcome until the
  // store takes it). The job's command gets the signal's default back.
  signal(SIGXFSZ, SIG_IGN);
  if (argc < 2) {
    print_usage(table, stderr);
    return 2;
  }
  return check_stdout(run_named(table, argc, argv));
}

}  // namespace ratchet::cli
