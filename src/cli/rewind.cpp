// ratchet rewind --job-id ID --to-step N
#include <limits>

#include "cli/repair.hpp"

namespace ratchet::cli {

int run_rewind(int argc, char** argv) {
  CLI::App app(
      "Resume a waiting or held C++ coroutine from step N of its journal: steps N and after "
      "are forgotten (their running calls abandoned) and run again. Recorded as an action.",
      "rewind");
  std::string id;
  std::uint64_t to_step = 0;
  app.add_option("--job-id", id, "the coroutine's dispatch id")->required();
  add_step_option(app, "--to-step", &to_step, "the first step to run again (1: from the input)");
  add_store_option(app);
  if (auto exit_code = parse(app, argc, argv)) return *exit_code;
  auto editor = [to_step](int member, const std::string& state) {
    return protocol::rewind_journal(member, state, to_step);
  };
  return repair_call(id, "rewind", editor, to_step,
                     static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()));
}

}  // namespace ratchet::cli
