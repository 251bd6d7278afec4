#include <array>

#include "cli/command.hpp"
#include "cli/server_setup.hpp"

namespace ratchet::cli {

std::span<const Command> server_commands() {
  static const std::array<Command, 3> table = [] {
    std::array<Command, 3> commands{};
    int (*const functions[])(int, char**) = {run_server, run_dev, run_keygen};
    for (std::size_t i = 0; i < commands.size(); ++i) {
      commands[i] = server_command_names()[i];
      commands[i].run = functions[i];
    }
    return commands;
  }();
  return table;
}

}  // namespace ratchet::cli
