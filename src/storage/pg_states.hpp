// A suspended coroutine's state in PostgreSQL: the base (coroutine_states) and
// a C++ journal's deltas after it (coroutine_deltas), as SQLite keeps them
// (sqlite_states.hpp has the contract; protocol/journal_delta.hpp the scheme).
#pragma once

#include <optional>
#include <string>

#include "common/status.hpp"
#include "protocol/journal_delta.hpp"
#include "storage/call.hpp"
#include "storage/pg_db.hpp"

namespace ratchet::pg {

Result<std::optional<std::string>> refuse_delta(Connection& db, const std::string& id,
                                                const PollState& state);
Status save_state(Connection& db, const std::string& id, const PollState& state);
Status drop_state(Connection& db, const std::string& id);
// With `latest_delta`, the latest delta if there is one; otherwise the whole state.
Result<std::optional<std::string>> load_state(Connection& db, const std::string& id,
                                              bool latest_delta = false);
// What to send of call `id` whose base is `base`: with `latest_delta`, the
// latest delta if there is one; otherwise the whole state.
Result<std::string> state_to_send(Connection& db, const std::string& id, std::string base,
                                  bool latest_delta);
// `base` (call `id`'s coroutine_states row) with its deltas applied, or with
// those before the first that does not assemble (protocol::assemble_good_prefix).
Result<protocol::GoodPrefix> with_deltas(Connection& db, const std::string& id, std::string base);
// Folds the call's deltas into a whole base at the latest revision, so that
// the next attempt carries the whole journal; false when they do not assemble
// or there are none.
Result<bool> fold_deltas(Connection& db, const std::string& id);
Status replace_state(Connection& db, const std::string& id, const std::string& state);

}  // namespace ratchet::pg
