// `ratchet-server`: the server's commands (`ratchet server`, `ratchet dev` and
// `ratchet keygen` run this executable).
#include <array>

#include "cli/command.hpp"

namespace ratchet::cli {
namespace {

constexpr std::array kCommands{
    Command{"server", "run the scheduler server for durable calls", run_server},
    Command{"dev", "run a local server for developing an endpoint", run_dev},
    Command{"keygen", "make a key pair for signing requests to endpoints", run_keygen},
};

}  // namespace
}  // namespace ratchet::cli

int main(int argc, char** argv) {
  return ratchet::cli::run_command_table(ratchet::cli::kCommands, argc, argv);
}
