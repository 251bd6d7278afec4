#include "storage/pg_repair.hpp"

#include "protocol/journal_delta.hpp"
#include "storage/blobs.hpp"
#include "storage/pg_calls.hpp"
#include "storage/pg_states.hpp"
#include "storage/records.hpp"

namespace ratchet::pg {
namespace {

// Drops the children of `repair`'s range (their results never reach the
// call), then counts what the call still waits for.
Status abandon_children(Connection& db, Micros now, const CoroutineRepair& repair) {
  if (repair.abandon_from != 0) {
    Params range;
    range.add(repair.call_id)
        .add(static_cast<std::int64_t>(repair.abandon_from))
        .add(static_cast<std::int64_t>(repair.abandon_to));
    RETURN_IF_ERROR(db.run("UPDATE call_results SET delivered = true WHERE parent_id = $1 AND "
                           "NOT delivered AND correlation_id BETWEEN $2 AND $3",
                           range)
                        .status());
    RETURN_IF_ERROR(db.run("INSERT INTO call_results (parent_id, child_id, correlation_id, "
                           "arrived_at, delivered) SELECT parent_id, id, correlation_id, $4, "
                           "true FROM runs WHERE parent_id = $1 AND phase != 'DONE' AND "
                           "correlation_id BETWEEN $2 AND $3 ON CONFLICT DO NOTHING",
                           Params(range).add(now))
                        .status());
  }
  return db
      .run(
          "UPDATE runs SET results_waiting = (SELECT count(*) FROM call_results WHERE "
          "parent_id = $1 AND NOT delivered), children_waiting = (SELECT count(*) FROM "
          "call_results WHERE parent_id = $1 AND NOT delivered) + (SELECT count(*) FROM runs c "
          "WHERE c.parent_id = $1 AND c.phase != 'DONE' AND NOT EXISTS (SELECT 1 FROM "
          "call_results r WHERE r.parent_id = $1 AND r.child_id = c.id)) WHERE id = $1",
          Params().add(repair.call_id))
      .status();
}

Status apply_repair(Connection& db, Micros now, const CoroutineRepair& repair) {
  ASSIGN_OR_RETURN(Rows rows, db.query("SELECT r.phase, r.state_member, " RATCHET_STATE_VALUE
                                       " FROM runs r LEFT JOIN "
                                       "coroutine_states s ON s.call_id = r.id WHERE r.id = $1 AND "
                                       "r.kind = 'call' FOR UPDATE OF r",
                                       Params().add(repair.call_id)));
  if (rows.empty()) return not_found("no call with id " + repair.call_id);
  CallPhase phase = records::parse_phase(rows[0].text(0));
  int member = static_cast<int>(rows[0].optional_int64(1).value_or(0));
  std::optional<std::string> state = rows[0].optional_text(2);
  RETURN_IF_ERROR(records::check_repairable(repair.call_id, phase));
  if (!state) {
    return failed_precondition("call " + repair.call_id +
                               " has no coroutine state: it is not a suspended coroutine");
  }
  ASSIGN_OR_RETURN(auto whole, with_deltas(db, repair.call_id, std::move(*state)));
  ASSIGN_OR_RETURN(StateEdit edited, repair.edit(member, whole.journal));
  RETURN_IF_ERROR(replace_state(db, repair.call_id, edited.state));
  RETURN_IF_ERROR(abandon_children(db, now, repair));
  // A held call's time left counts again from now (as SQLite's, sqlite_repair.cpp).
  RETURN_IF_ERROR(db.run("UPDATE runs SET phase = 'READY', ready_at = $2, attempts = 0, "
                         "error_type = NULL, error = NULL, error_proto = NULL, poll_error = NULL, "
                         "expires_at = CASE WHEN phase = 'HELD' THEN expires_at + ($2 - "
                         "updated_at) ELSE expires_at END, updated_at = $2 "
                         "WHERE id = $1",
                         Params().add(repair.call_id).add(now))
                      .status());
  CallAction action = repair.action;
  action.detail = records::repair_detail(std::move(edited.detail), whole.journal, whole.broken);
  return record_action(db, now, action);
}

}  // namespace

Status record_action(Connection& db, Micros now, const CallAction& action) {
  return db
      .run(
          "INSERT INTO call_actions (call_id, at, actor, action, detail) VALUES ($1, $2, $3, "
          "$4, $5)",
          Params()
              .add(action.call_id)
              .add(now)
              .add(action.actor)
              .add(action.action)
              .add(action.detail))
      .status();
}

// Byte order (COLLATE "C"), as SQLite's: the database's collation may sort ids
// otherwise, and a client pages by comparing them. The index
// coroutine_states_in_byte_order serves that order (the key's index, in the
// database's collation, cannot), so a page reads `limit` open coroutines along
// it, not the table whole and sorted.
const char* open_coroutines_sql() {
  return "SELECT r.id, r.function, r.phase, r.state_member, " RATCHET_STATE_VALUE
         ", r.endpoint FROM runs r JOIN coroutine_states s ON s.call_id = r.id WHERE "
         "s.call_id COLLATE \"C\" > $4 AND r.phase != 'DONE' AND (r.function = "
         "ANY(string_to_array($1, chr(31))) OR r.endpoint = NULLIF($3, '')) ORDER BY "
         "s.call_id COLLATE \"C\" LIMIT $2";
}

Result<std::vector<OpenCoroutine>> open_coroutines(Connection& db,
                                                   const std::vector<std::string>& functions,
                                                   const std::string& endpoint,
                                                   const std::string& after, int limit) {
  ASSIGN_OR_RETURN(
      Rows rows,
      db.query(open_coroutines_sql(),
               Params().add(join(functions, '\x1f')).add(limit).add(endpoint).add(after)));
  std::vector<OpenCoroutine> open;
  for (int i = 0; i < rows.size(); ++i) {
    Row row = rows[i];
    open.push_back(OpenCoroutine{row.text(0), row.text(1), records::parse_phase(row.text(2)),
                                 static_cast<int>(row.optional_int64(3).value_or(0)), row.text(4),
                                 row.text(5)});
  }
  for (auto& coroutine : open) {
    ASSIGN_OR_RETURN(auto whole, with_deltas(db, coroutine.id, std::move(coroutine.state)));
    // A journal that does not assemble is listed as broken, with the reason.
    coroutine.state = whole.broken.empty() ? std::move(whole.journal)
                                           : protocol::broken_journal_state(whole.broken);
  }
  return open;
}

Result<CallRecord> repair_coroutine(Connection& db, Micros now, const CoroutineRepair& repair,
                                    const std::string& notify) {
  RETURN_IF_ERROR(db.transaction([&] { return apply_repair(db, now, repair); }, notify));
  ASSIGN_OR_RETURN(auto call, find_call(db, repair.call_id));
  if (!call) return not_found("no call with id " + repair.call_id);
  return *call;
}

Result<CallActions> call_actions(Connection& db, const std::string& call_id, int latest) {
  // Newest first to stop at `latest`, then turned around.
  ASSIGN_OR_RETURN(Rows rows, db.query("SELECT call_id, at, actor, action, detail, (SELECT "
                                       "count(*) FROM call_actions WHERE call_id = $1) FROM "
                                       "call_actions WHERE call_id = $1 ORDER BY at DESC, seq "
                                       "DESC LIMIT $2",
                                       Params().add(call_id).add(latest)));
  CallActions actions;
  for (int i = rows.size() - 1; i >= 0; --i) {
    Row row = rows[i];
    actions.latest.push_back(
        CallAction{row.text(0), row.int64(1), row.text(2), row.text(3), row.text(4)});
    actions.total = row.int64(5);
  }
  return actions;
}

}  // namespace ratchet::pg
