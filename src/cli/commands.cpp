// The tables of commands: the job runner's, and the names of the server's.
#include <array>

#include "cli/command.hpp"

namespace ratchet::cli {
namespace {

constexpr std::array kJobCommands{
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
};

constexpr std::array kServerCommandNames{
    Command{"server", "run the scheduler server for durable calls", nullptr},
    Command{"dev", "run a local server for developing an endpoint", nullptr},
    Command{"keygen", "make a key pair for signing requests to endpoints", nullptr},
};

}  // namespace

std::span<const Command> job_commands() { return kJobCommands; }
std::span<const Command> server_command_names() { return kServerCommandNames; }

}  // namespace ratchet::cli
