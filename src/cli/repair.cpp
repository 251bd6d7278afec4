#include "cli/repair.hpp"

#include <limits>

#include "common/time_format.hpp"

namespace ratchet::cli {

Result<nlohmann::ordered_json> call_actions_json(Store& store, const std::string& call_id) {
  ASSIGN_OR_RETURN(auto actions, store.call_actions(call_id, std::numeric_limits<int>::max()));
  auto out = nlohmann::ordered_json::array();
  for (const auto& action : actions.latest) {
    out.push_back({{"at", format_local_time(action.at)},
                   {"actor", action.actor},
                   {"action", action.action},
                   {"detail", action.detail}});
  }
  return out;
}

CLI::Option* add_step_option(CLI::App& app, const std::string& name, std::uint64_t* step,
                             const std::string& help) {
  return app.add_option(name, *step, help)
      ->required()
      ->type_name("N")
      ->check([](const std::string& text) {
        const bool digits = !text.empty() && text.size() <= 19 &&
                            text.find_first_not_of("0123456789") == std::string::npos;
        return digits && text.find_first_not_of('0') != std::string::npos
                   ? std::string()
                   : "must be a step number from 1, not " + text;
      });
}

int repair_call(const std::string& call_id, const std::string& action, JournalEditor editor,
                std::uint64_t abandon_from, std::uint64_t abandon_to) {
  auto store = open_job_store();
  if (!store.is_ok()) return fail(store.status());
  CoroutineRepair repair;
  repair.call_id = call_id;
  repair.edit = [&](int member, const std::string& state) -> Result<StateEdit> {
    ASSIGN_OR_RETURN(protocol::JournalEdit edit, editor(member, state));
    return StateEdit{std::move(edit.state), std::move(edit.detail)};
  };
  repair.abandon_from = abandon_from;
  repair.abandon_to = abandon_to;
  repair.action = CallAction{call_id, 0, current_actor(), action, ""};
  auto call = (*store)->repair_coroutine(repair);
  if (!call.is_ok()) return fail(call.status());
  // The detail as recorded: the store adds to the edit's when it repaired a
  // journal from its last good revision.
  auto actions = (*store)->call_actions(call_id, 1);
  if (!actions.is_ok()) return fail(actions.status());
  std::string detail = actions->latest.empty() ? "" : actions->latest.back().detail;
  nlohmann::ordered_json out = call_json(*call);
  out["action"] = {{"action", action}, {"actor", repair.action.actor}, {"detail", detail}};
  print_json(out);
  return 0;
}

}  // namespace ratchet::cli
