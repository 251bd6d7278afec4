// `ratchet`: finds the subcommand in the table and runs it.
#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "cli/command.hpp"

namespace ratchet::cli {
namespace {

constexpr std::array kCommands{
    Command{"start", "run a command once per run key", run_start},
    Command{"status", "show a job (or every job of a run key) as JSON", run_status},
    Command{"logs", "print a job's stdout or stderr", run_logs},
    Command{"wait", "block until a job ends", run_wait},
    Command{"cancel", "stop a job's process group", run_cancel},
    Command{"list", "list recent jobs", run_list},
    Command{"clean", "delete finished jobs and their logs", run_clean},
    Command{"server", "run the scheduler server for durable calls", run_server},
    Command{"dev", "run a local server for developing an endpoint", run_dev},
    Command{"keygen", "make a key pair for signing requests to endpoints", run_keygen},
};

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

const Command* closest_command(std::string_view typed) {
  const Command* best = nullptr;
  std::size_t best_distance = 3;  // suggest only near misses
  for (const auto& command : kCommands) {
    std::size_t distance = edit_distance(typed, command.name);
    if (command.name.starts_with(typed) && typed.size() >= 2) distance = 1;
    if (distance < best_distance) {
      best = &command;
      best_distance = distance;
    }
  }
  return best;
}

void print_usage(FILE* out) {
  std::fprintf(out,
               "ratchet: durable execution for C++\n\n"
               "usage: ratchet <command> [options]\n\ncommands:\n");
  for (const auto& command : kCommands) {
    std::fprintf(out, "  %-8s %s\n", std::string(command.name).c_str(),
                 std::string(command.summary).c_str());
  }
  std::fprintf(out, "\n'ratchet <command> --help' describes a command.\n");
}

}  // namespace

std::span<const Command> commands() { return kCommands; }

}  // namespace ratchet::cli

int main(int argc, char** argv) {
  using namespace ratchet::cli;
  if (argc < 2) {
    print_usage(stderr);
    return 2;
  }
  std::string_view name = argv[1];
  if (name == "--help" || name == "-h" || name == "help") {
    print_usage(stdout);
    return 0;
  }
  if (name == "--version") {
    std::printf("ratchet 0.1.0\n");
    return 0;
  }
  for (const auto& command : commands()) {
    if (command.name == name) return command.run(argc - 1, argv + 1);
  }
  if (const Command* suggestion = closest_command(name)) {
    std::fprintf(stderr, "ratchet: unknown command '%s'; did you mean '%s'?\n", argv[1],
                 std::string(suggestion->name).c_str());
  } else {
    std::fprintf(stderr, "ratchet: unknown command '%s' (see 'ratchet --help')\n", argv[1]);
  }
  return 2;
}
