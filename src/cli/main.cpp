// `ratchet`: the job runner's commands run here; the server's commands run in
// the `ratchet-server` executable installed beside it, so that the commands a
// script runs many times a second start without loading the server's
// libraries (protobuf, OpenSSL, Boost.Asio).
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "cli/command.hpp"

namespace ratchet::cli {
namespace {

// Runs `ratchet-server <command> ARGS...` from the directory of this executable.
int run_in_server_executable(int argc, char** argv) {
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  std::string path = "ratchet-server";
  if (n > 0) {
    std::string exe(self, static_cast<std::size_t>(n));
    path = exe.substr(0, exe.rfind('/') + 1) + "ratchet-server";
  }
  std::vector<char*> args;
  args.push_back(const_cast<char*>("ratchet-server"));
  for (int i = 0; i < argc; ++i) args.push_back(argv[i]);
  args.push_back(nullptr);
  std::fflush(stdout);
  execv(path.c_str(), args.data());
  return fail(Status(Code::kUnavailable, "cannot run " + path + ": " + std::strerror(errno) +
                                             " (it is installed beside ratchet)"));
}

// The job commands, then the server's, which run in ratchet-server.
std::vector<Command> all_commands() {
  std::vector<Command> table(job_commands().begin(), job_commands().end());
  for (Command command : server_command_names()) {
    command.run = run_in_server_executable;
    table.push_back(command);
  }
  return table;
}

}  // namespace
}  // namespace ratchet::cli

int main(int argc, char** argv) {
  return ratchet::cli::run_command_table(ratchet::cli::all_commands(), argc, argv);
}
