#include "storage/sqlite_states.hpp"

#include <vector>

#include "protocol/journal_delta.hpp"
#include "storage/records.hpp"
#include "storage/sqlite_blobs.hpp"

namespace ratchet::sqlite {
namespace {

Result<std::optional<std::string>> one_blob(Database& db, const char* sql, const std::string& id) {
  ASSIGN_OR_RETURN(Statement * query, db.prepare(sql));
  query->bind(1, id);
  ASSIGN_OR_RETURN(bool row, query->step());
  std::optional<std::string> value;
  if (row) value = query->text(0);
  query->reset();
  return value;
}

Result<std::uint64_t> latest_revision(Database& db, const std::string& id) {
  ASSIGN_OR_RETURN(Statement * query,
                   db.prepare("SELECT COALESCE((SELECT MAX(revision) FROM coroutine_deltas WHERE "
                              "call_id = ?1), (SELECT revision FROM coroutine_states WHERE "
                              "call_id = ?1), 0)"));
  query->bind(1, id);
  ASSIGN_OR_RETURN(bool row, query->step());
  std::uint64_t revision = row ? static_cast<std::uint64_t>(query->int64(0)) : 0;
  query->reset();
  return revision;
}

Result<std::vector<std::string>> deltas_of(Database& db, const std::string& id) {
  ASSIGN_OR_RETURN(Statement * query,
                   db.prepare("SELECT " RATCHET_DELTA_VALUE " FROM "
                              "coroutine_deltas WHERE call_id = ?1 ORDER BY revision"));
  query->bind(1, id);
  std::vector<std::string> deltas;
  while (true) {
    ASSIGN_OR_RETURN(bool row, query->step());
    if (!row) break;
    deltas.push_back(query->text(0));
  }
  query->reset();
  return deltas;
}

// Deletes the call's deltas, and the blobs only they referred to.
Status drop_deltas(Database& db, const std::string& id) {
  ASSIGN_OR_RETURN(auto digests, blob_references(db,
                                                 "SELECT delta_blob FROM coroutine_deltas WHERE "
                                                 "call_id = ?1 AND delta_blob IS NOT NULL",
                                                 id));
  ASSIGN_OR_RETURN(Statement * drop, db.prepare("DELETE FROM coroutine_deltas WHERE call_id = ?1"));
  drop->bind(1, id);
  RETURN_IF_ERROR(drop->run().status());
  return sweep_blobs(db, digests).status();
}

// The blob of the call's base, if it has one out of line.
Result<std::vector<std::string>> base_blob(Database& db, const std::string& id) {
  return blob_references(db,
                         "SELECT state_blob FROM coroutine_states WHERE call_id = ?1 AND "
                         "state_blob IS NOT NULL",
                         id);
}

}  // namespace

Result<std::optional<std::string>> refuse_delta(Database& db, const std::string& id,
                                                const PollState& state) {
  if (!state.delta) return std::optional<std::string>();
  ASSIGN_OR_RETURN(std::uint64_t latest, latest_revision(db, id));
  return records::refuse_delta(state, latest);
}

Status save_state(Database& db, const std::string& id, const PollState& state) {
  const blobs::Stored stored = blobs::store(state.state);
  RETURN_IF_ERROR(put_blob(db, stored));
  if (state.delta) {
    ASSIGN_OR_RETURN(Statement * append,
                     db.prepare("INSERT INTO coroutine_deltas (call_id, revision, delta, "
                                "delta_blob) VALUES (?1, ?2, ?3, ?4)"));
    append->bind(1, id).bind(2, static_cast<std::int64_t>(state.revision));
    bind_stored(*append, 3, 4, stored);
    return append->run().status();
  }
  ASSIGN_OR_RETURN(auto replaced, base_blob(db, id));
  ASSIGN_OR_RETURN(Statement * save,
                   db.prepare("INSERT INTO coroutine_states (call_id, state, revision, "
                              "state_blob) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (call_id) DO "
                              "UPDATE SET state = excluded.state, revision = excluded.revision, "
                              "state_blob = excluded.state_blob"));
  save->bind(1, id).bind(3, static_cast<std::int64_t>(state.revision));
  bind_stored(*save, 2, 4, stored);
  RETURN_IF_ERROR(save->run().status());
  RETURN_IF_ERROR(sweep_blobs(db, replaced).status());
  return drop_deltas(db, id);
}

Status drop_state(Database& db, const std::string& id) {
  ASSIGN_OR_RETURN(auto dropped, blob_references(db,
                                                 "DELETE FROM coroutine_states WHERE call_id = ?1 "
                                                 "RETURNING state_blob",
                                                 id));
  // A base kept in its row returns NULL: no blob to sweep.
  std::erase(dropped, std::string());
  RETURN_IF_ERROR(sweep_blobs(db, dropped).status());
  return drop_deltas(db, id);
}

Result<std::optional<std::string>> load_state(Database& db, const std::string& id,
                                              bool latest_delta) {
  if (latest_delta) {
    ASSIGN_OR_RETURN(auto delta, one_blob(db,
                                          "SELECT " RATCHET_DELTA_VALUE " FROM "
                                          "coroutine_deltas WHERE call_id = ?1 "
                                          "ORDER BY revision DESC LIMIT 1",
                                          id));
    if (delta) return delta;
  }
  ASSIGN_OR_RETURN(auto base, one_blob(db,
                                       "SELECT " RATCHET_STATE_VALUE " FROM "
                                       "coroutine_states WHERE call_id = ?1",
                                       id));
  if (!base) return base;
  ASSIGN_OR_RETURN(auto deltas, deltas_of(db, id));
  return std::optional<std::string>(protocol::assemble_or_broken(*base, deltas));
}

Result<std::string> with_deltas(Database& db, const std::string& id, std::string base) {
  ASSIGN_OR_RETURN(auto deltas, deltas_of(db, id));
  return protocol::assemble_journal(base, deltas);
}

Status replace_state(Database& db, const std::string& id, const std::string& state) {
  ASSIGN_OR_RETURN(std::uint64_t latest, latest_revision(db, id));
  PollState whole;
  whole.state = state;
  whole.revision = latest;
  return save_state(db, id, whole);
}

}  // namespace ratchet::sqlite
