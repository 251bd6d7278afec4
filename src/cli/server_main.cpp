// `ratchet-server`: the server's commands (`ratchet server`, `ratchet dev`,
// `ratchet keygen` and `ratchet migrate` run this executable), and the job
// commands on a PostgreSQL store, which `ratchet` hands on to it (it has the
// PostgreSQL backend, which the static `ratchet` cannot link).
#include <array>

#include "cli/command.hpp"

namespace ratchet::cli {
namespace {

constexpr auto kCommands = join_tables(
    std::array{
        Command{"server", "run the scheduler server for durable calls", run_server},
        Command{"dev", "run a local server for developing an endpoint", run_dev},
        Command{"keygen", "make a key pair for signing requests to endpoints", run_keygen},
        Command{"migrate", "copy a SQLite store into PostgreSQL", run_migrate},
    },
    kJobCommands);

}  // namespace
}  // namespace ratchet::cli

int main(int argc, char** argv) {
  ratchet::cli::remember_command_line(argc, argv);
  return ratchet::cli::run_command_table(ratchet::cli::kCommands, argc, argv);
}
