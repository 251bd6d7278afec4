#include "storage/pg_states.hpp"

#include <vector>

#include "protocol/journal_delta.hpp"
#include "storage/pg_blobs.hpp"
#include "storage/records.hpp"

namespace ratchet::pg {
namespace {

Result<std::uint64_t> latest_revision(Connection& db, const std::string& id) {
  ASSIGN_OR_RETURN(Rows rows,
                   db.query("SELECT COALESCE((SELECT MAX(revision) FROM coroutine_deltas WHERE "
                            "call_id = $1), (SELECT revision FROM coroutine_states WHERE "
                            "call_id = $1), 0)",
                            Params().add(id)));
  return static_cast<std::uint64_t>(rows[0].int64(0));
}

Result<std::vector<std::string>> deltas_of(Connection& db, const std::string& id) {
  ASSIGN_OR_RETURN(Rows rows, db.query("SELECT " RATCHET_DELTA_VALUE " FROM "
                                       "coroutine_deltas WHERE call_id = $1 ORDER BY revision",
                                       Params().add(id)));
  std::vector<std::string> deltas;
  deltas.reserve(static_cast<std::size_t>(rows.size()));
  for (int i = 0; i < rows.size(); ++i) deltas.push_back(rows[i].text(0));
  return deltas;
}

// Deletes the call's deltas, and the blobs only they referred to.
Status drop_deltas(Connection& db, const std::string& id) {
  ASSIGN_OR_RETURN(auto digests, blob_references(db,
                                                 "SELECT delta_blob FROM coroutine_deltas WHERE "
                                                 "call_id = $1 AND delta_blob IS NOT NULL",
                                                 id));
  RETURN_IF_ERROR(
      db.run("DELETE FROM coroutine_deltas WHERE call_id = $1", Params().add(id)).status());
  return sweep_blobs(db, digests).status();
}

// The blob of the call's base, if it has one out of line.
Result<std::vector<std::string>> base_blob(Connection& db, const std::string& id) {
  return blob_references(db,
                         "SELECT state_blob FROM coroutine_states WHERE call_id = $1 AND "
                         "state_blob IS NOT NULL",
                         id);
}

}  // namespace

Result<std::optional<std::string>> refuse_delta(Connection& db, const std::string& id,
                                                const PollState& state) {
  if (!state.delta) return std::optional<std::string>();
  ASSIGN_OR_RETURN(std::uint64_t latest, latest_revision(db, id));
  return records::refuse_delta(state, latest);
}

Status save_state(Connection& db, const std::string& id, const PollState& state) {
  const auto revision = static_cast<std::int64_t>(state.revision);
  const blobs::Stored stored = blobs::store(state.state);
  RETURN_IF_ERROR(put_blob(db, stored));
  if (state.delta) {
    Params params;
    params.add(id).add(revision);
    return db
        .run(
            "INSERT INTO coroutine_deltas (call_id, revision, delta, delta_blob) VALUES ($1, "
            "$2, $3, $4)",
            add_stored(params, stored))
        .status();
  }
  ASSIGN_OR_RETURN(auto replaced, base_blob(db, id));
  Params params;
  params.add(id).add(revision);
  RETURN_IF_ERROR(db.run("INSERT INTO coroutine_states (call_id, revision, state, state_blob) "
                         "VALUES ($1, $2, $3, $4) ON CONFLICT (call_id) DO UPDATE SET state = "
                         "excluded.state, revision = excluded.revision, state_blob = "
                         "excluded.state_blob",
                         add_stored(params, stored))
                      .status());
  RETURN_IF_ERROR(sweep_blobs(db, replaced).status());
  return drop_deltas(db, id);
}

Status drop_state(Connection& db, const std::string& id) {
  ASSIGN_OR_RETURN(Rows dropped, db.query("DELETE FROM coroutine_states WHERE call_id = $1 "
                                          "RETURNING state_blob",
                                          Params().add(id)));
  std::vector<std::string> digests;
  if (!dropped.empty() && !dropped[0].is_null(0)) digests.push_back(dropped[0].text(0));
  RETURN_IF_ERROR(sweep_blobs(db, digests).status());
  return drop_deltas(db, id);
}

Result<std::string> state_to_send(Connection& db, const std::string& id, std::string base,
                                  bool latest_delta) {
  if (latest_delta) {
    ASSIGN_OR_RETURN(Rows rows, db.query("SELECT " RATCHET_DELTA_VALUE " FROM "
                                         "coroutine_deltas WHERE call_id = $1 "
                                         "ORDER BY revision DESC LIMIT 1",
                                         Params().add(id)));
    if (!rows.empty()) return rows[0].text(0);
  }
  ASSIGN_OR_RETURN(auto deltas, deltas_of(db, id));
  return protocol::assemble_or_broken(base, deltas);
}

Result<std::optional<std::string>> load_state(Connection& db, const std::string& id,
                                              bool latest_delta) {
  ASSIGN_OR_RETURN(Rows rows, db.query("SELECT " RATCHET_STATE_VALUE " FROM "
                                       "coroutine_states WHERE call_id = $1",
                                       Params().add(id)));
  if (rows.empty()) return std::optional<std::string>();
  ASSIGN_OR_RETURN(std::string state, state_to_send(db, id, rows[0].text(0), latest_delta));
  return std::optional<std::string>(std::move(state));
}

Result<std::string> with_deltas(Connection& db, const std::string& id, std::string base) {
  ASSIGN_OR_RETURN(auto deltas, deltas_of(db, id));
  return protocol::assemble_journal(base, deltas);
}

Status replace_state(Connection& db, const std::string& id, const std::string& state) {
  ASSIGN_OR_RETURN(std::uint64_t latest, latest_revision(db, id));
  PollState whole;
  whole.state = state;
  whole.revision = latest;
  return save_state(db, id, whole);
}

}  // namespace ratchet::pg
