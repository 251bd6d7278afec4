// `ratchet-server`: the server's commands (`ratchet server`, `ratchet dev`,
// `ratchet keygen` and `ratchet migrate` run this executable), and the job
// commands on a PostgreSQL store, which `ratchet` hands on to it (it has the
// PostgreSQL backend, which the static `ratchet` cannot link).
#include <array>

#include "cli/command.hpp"

namespace ratchet::cli {
namespace {

constexpr auto kCommands = join_tables(kServerCommands, kJobCommands);

}  // namespace
}  // namespace ratchet::cli

int main(int argc, char** argv) {
  ratchet::cli::remember_command_line(argc, argv);
  return ratchet::cli::run_command_table(ratchet::cli::kCommands, argc, argv);
}
