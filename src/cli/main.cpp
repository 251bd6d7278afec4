// `ratchet`: the job runner's commands run here; the server's commands run in
// the `ratchet-server` executable installed beside it, so that the commands a
// script runs many times a second start without loading the server's
// libraries (protobuf, OpenSSL, Boost.Asio).

#include <array>

#include "cli/command.hpp"

namespace ratchet::cli {
namespace {

constexpr std::array kCommands{
    Command{"start", "run a command once per run key", run_start},
    Command{"status", "show a job or call (or every one of a run key) as JSON", run_status},
    Command{"logs", "print a job's stdout or stderr", run_logs},
    Command{"wait", "block until a job ends", run_wait},
    Command{"cancel", "stop a job's process group", run_cancel},
    Command{"list", "list recent jobs and calls", run_list},
    Command{"clean", "delete finished jobs and calls, with their logs", run_clean},
    Command{"server", "run the scheduler server for durable calls", run_in_server_executable},
    Command{"dev", "run a local server for developing an endpoint", run_in_server_executable},
    Command{"keygen", "make a key pair for signing requests to endpoints",
            run_in_server_executable},
    Command{"migrate", "copy a SQLite store into PostgreSQL", run_in_server_executable},
};

}  // namespace
}  // namespace ratchet::cli

int main(int argc, char** argv) {
  ratchet::cli::remember_command_line(argc, argv);
  return ratchet::cli::run_command_table(ratchet::cli::kCommands, argc, argv);
}
