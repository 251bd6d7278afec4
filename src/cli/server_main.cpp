// `ratchet-server`: the server's commands (`ratchet server`, `ratchet dev` and
// `ratchet keygen` run this executable).
#include "cli/server_setup.hpp"

int main(int argc, char** argv) {
  return ratchet::cli::run_command_table(ratchet::cli::server_commands(), argc, argv);
}
