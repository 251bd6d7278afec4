// Running a table of subcommands: lookup, usage, and "did you mean" for typos.
#include <algorithm>
#include <cstdio>
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

void print_usage(std::span<const Command> table, FILE* out) {
  std::fprintf(out,
               "ratchet: durable execution for C++\n\n"
               "usage: ratchet <command> [options]\n\ncommands:\n");
  for (const auto& command : table) {
    std::fprintf(out, "  %-10s %s\n", std::string(command.name).c_str(),
                 std::string(command.summary).c_str());
  }
  std::fprintf(out, "\n'ratchet <command> --help' describes a command.\n");
}

}  // namespace

int run_command_table(std::span<const Command> table, int argc, char** argv) {
  if (argc < 2) {
    print_usage(table, stderr);
    return 2;
  }
  std::string_view name = argv[1];
  if (name == "--help" || name == "-h" || name == "help") {
    print_usage(table, stdout);
    return 0;
  }
  if (name == "--version") {
    std::printf("ratchet 0.1.0\n");
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

}  // namespace ratchet::cli
