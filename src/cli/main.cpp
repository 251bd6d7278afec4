// `ratchet`: the job runner's commands run here; the server's commands run in
// the `ratchet-server` executable installed beside it, so that the commands a
// script runs many times a second start without loading the server's
// libraries (protobuf, OpenSSL, Boost.Asio).
#include <unistd.h>

#include <array>
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

constexpr std::array kCommands{
    Command{"start", "run a command once per run key", run_start},
    Command{"status", "show a job or call (or every one of a run key) as JSON", run_status},
    Command{"logs", "print a job's stdout or stderr", run_logs},
    Command{"wait", "block until a job ends", run_wait},
    Command{"cancel", "stop a job's process group", run_cancel},
    Command{"abort", "another name for cancel (orchesjob's)", run_abort},
    Command{"unlock", "let a strict run key run once more", run_unlock},
    Command{"rerun", "run a job's command again as a new job of its key", run_rerun},
    Command{"list", "list recent jobs and calls", run_list},
    Command{"clean", "delete finished jobs and calls, with their logs", run_clean},
    Command{"import", "copy an orchesjob state directory's history into the store", run_import},
    Command{"server", "run the scheduler server for durable calls", run_in_server_executable},
    Command{"dev", "run a local server for developing an endpoint", run_in_server_executable},
    Command{"keygen", "make a key pair for signing requests to endpoints",
            run_in_server_executable},
};

}  // namespace
}  // namespace ratchet::cli

int main(int argc, char** argv) {
  return ratchet::cli::run_command_table(ratchet::cli::kCommands, argc, argv);
}
