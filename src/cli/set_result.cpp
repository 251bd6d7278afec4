// ratchet set-result --job-id ID --step N (--output JSON [--any-type] | --error MESSAGE
//                    [--error-type TYPE])
#include "cli/repair.hpp"

namespace ratchet::cli {

int run_set_result(int argc, char** argv) {
  CLI::App app(
      "Give step N of a waiting or held C++ coroutine a result (its running call, if any, is "
      "abandoned); the coroutine then resumes. Recorded as an action.",
      "set-result");
  std::string id;
  std::uint64_t step = 0;
  std::string output;
  std::string error;
  std::string error_type = "PermanentError";
  app.add_option("--job-id", id, "the coroutine's dispatch id")->required();
  add_step_option(app, "--step", &step,
                  "the step whose result to set");  // not -3 read as the largest unsigned number
  auto* output_option = app.add_option("--output", output, "the step's value, as JSON");
  auto* error_option = app.add_option("--error", error, "the step fails with this message");
  app.add_option("--error-type", error_type, "the error's type, e.g. TemporaryError")
      ->capture_default_str();
  bool any_type = false;
  app.add_flag("--any-type", any_type,
               "set an --output of another type than the step's recorded result");
  output_option->excludes(error_option);
  add_store_option(app);
  if (auto exit_code = parse(app, argc, argv)) return *exit_code;
  if (output_option->count() == 0 && error_option->count() == 0) {
    return fail(invalid_argument("set-result: give --output JSON or --error MESSAGE"));
  }
  protocol::StepResult result;
  if (output_option->count() > 0) result.output_json = output;
  result.error_type = error_type;
  result.error_message = error;
  result.any_type = any_type;
  auto editor = [step, result](int member, const std::string& state) {
    return protocol::set_journal_result(member, state, step, result);
  };
  return repair_call(id, "set-result", editor, step, step);
}

}  // namespace ratchet::cli
