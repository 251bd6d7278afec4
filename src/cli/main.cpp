// `ratchet`: the job runner's commands run here; the server's commands run in
// the `ratchet-server` executable installed beside it, so that the commands a
// script runs many times a second start without loading the server's
// libraries (protobuf, OpenSSL, Boost.Asio).

#include <array>

#include "cli/command.hpp"

namespace ratchet::cli {
namespace {

constexpr auto kCommands =
    join_tables(kJobCommands, with_runner(kServerCommands, run_in_server_executable));

}  // namespace
}  // namespace ratchet::cli

int main(int argc, char** argv) {
  ratchet::cli::remember_command_line(argc, argv);
  return ratchet::cli::run_command_table(ratchet::cli::kCommands, argc, argv);
}
