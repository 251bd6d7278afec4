// A suspended coroutine's state in SQLite: the base (coroutine_states, one row
// per call) and, for C++ journals, the deltas appended after it
// (coroutine_deltas, one row per Poll). protocol/journal_delta.hpp has the
// scheme; docs/storage.md the tables. Used by the call transactions, the
// dashboard's reads and operator repair, inside their transactions.
#pragma once

#include <optional>
#include <string>

#include "common/status.hpp"
#include "protocol/journal_delta.hpp"
#include "storage/call.hpp"
#include "storage/sqlite_db.hpp"

namespace ratchet::sqlite {

// Why the store refuses `state`, a delta on a revision other than the latest
// it holds of call `id` (nullopt: it takes it).
Result<std::optional<std::string>> refuse_delta(Database& db, const std::string& id,
                                                const PollState& state);
// Appends a delta, or replaces the base with a whole state (and its deltas with nothing).
Status save_state(Database& db, const std::string& id, const PollState& state);
Status drop_state(Database& db, const std::string& id);
// The state to send: with `latest_delta`, the latest delta if there is one
// (its sender holds the rest); otherwise the whole state. nullopt: none.
Result<std::optional<std::string>> load_state(Database& db, const std::string& id,
                                              bool latest_delta = false);
// `base` (call `id`'s coroutine_states row) with its deltas applied, or with
// those before the first that does not assemble (protocol::assemble_good_prefix).
Result<protocol::GoodPrefix> with_deltas(Database& db, const std::string& id, std::string base);
// Folds the call's deltas into a whole base at the latest revision, so that
// the next attempt carries the whole journal; false when they do not assemble
// or there are none.
Result<bool> fold_deltas(Database& db, const std::string& id);
// An operator's edit of the whole state: the new base, at the latest revision.
Status replace_state(Database& db, const std::string& id, const std::string& state);

}  // namespace ratchet::sqlite
