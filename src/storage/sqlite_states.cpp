#include "storage/sqlite_states.hpp"

#include <vector>

#include "protocol/journal_delta.hpp"
#include "storage/records.hpp"

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
                   db.prepare("SELECT delta FROM coroutine_deltas WHERE call_id = ?1 "
                              "ORDER BY revision"));
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

Status drop_deltas(Database& db, const std::string& id) {
  ASSIGN_OR_RETURN(Statement * drop, db.prepare("DELETE FROM coroutine_deltas WHERE call_id = ?1"));
  drop->bind(1, id);
  return drop->run().status();
}

}  // namespace

Result<std::optional<std::string>> refuse_delta(Database& db, const std::string& id,
                                                const PollState& state) {
  if (!state.delta) return std::optional<std::string>();
  ASSIGN_OR_RETURN(std::uint64_t latest, latest_revision(db, id));
  return records::refuse_delta(state, latest);
}

Status save_state(Database& db, const std::string& id, const PollState& state) {
  if (state.delta) {
    ASSIGN_OR_RETURN(Statement * append,
                     db.prepare("INSERT INTO coroutine_deltas (call_id, revision, delta) "
                                "VALUES (?1, ?2, ?3)"));
    append->bind(1, id).bind(2, static_cast<std::int64_t>(state.revision));
    append->bind_blob(3, state.state);
    return append->run().status();
  }
  ASSIGN_OR_RETURN(Statement * save,
                   db.prepare("INSERT INTO coroutine_states (call_id, state, revision) VALUES "
                              "(?1, ?2, ?3) ON CONFLICT (call_id) DO UPDATE SET state = "
                              "excluded.state, revision = excluded.revision"));
  save->bind(1, id).bind_blob(2, state.state).bind(3, static_cast<std::int64_t>(state.revision));
  RETURN_IF_ERROR(save->run().status());
  return drop_deltas(db, id);
}

Status drop_state(Database& db, const std::string& id) {
  ASSIGN_OR_RETURN(Statement * drop, db.prepare("DELETE FROM coroutine_states WHERE call_id = ?1"));
  drop->bind(1, id);
  RETURN_IF_ERROR(drop->run().status());
  return drop_deltas(db, id);
}

Result<std::optional<std::string>> load_state(Database& db, const std::string& id,
                                              bool latest_delta) {
  if (latest_delta) {
    ASSIGN_OR_RETURN(auto delta, one_blob(db,
                                          "SELECT delta FROM coroutine_deltas WHERE call_id = ?1 "
                                          "ORDER BY revision DESC LIMIT 1",
                                          id));
    if (delta) return delta;
  }
  ASSIGN_OR_RETURN(auto base,
                   one_blob(db, "SELECT state FROM coroutine_states WHERE call_id = ?1", id));
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
