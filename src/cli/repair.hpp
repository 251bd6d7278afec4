// What `ratchet rewind` and `ratchet set-result` share: who acts, and
// applying an edit of a coroutine's journal through the store, recorded as an
// action on the call (storage/repair.hpp, docs/sdk.md "Operator repair").
#pragma once

#include <functional>
#include <string>

#include "cli/command.hpp"
#include "protocol/journal_edit.hpp"

namespace ratchet::cli {

// The operator actions recorded on a call (`ratchet status` shows them), oldest first.
Result<nlohmann::ordered_json> call_actions_json(Store& store, const std::string& call_id);

// A required step-number option (steps are numbered from 1): "-1" or "0" is a
// usage error, not the largest unsigned number CLI11 would read "-1" as.
CLI::Option* add_step_option(CLI::App& app, const std::string& name, std::uint64_t* step,
                             const std::string& help);

using JournalEditor =
    std::function<Result<protocol::JournalEdit>(int member, const std::string& state)>;

// Edits the journal of call `call_id` with `editor`, abandoning the children
// of correlation ids [abandon_from, abandon_to] (0: none), and records the
// action `action`; prints the call (and the action) as JSON. The exit code.
int repair_call(const std::string& call_id, const std::string& action, JournalEditor editor,
                std::uint64_t abandon_from, std::uint64_t abandon_to);

}  // namespace ratchet::cli
