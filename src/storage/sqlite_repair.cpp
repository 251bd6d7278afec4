#include "storage/sqlite_repair.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "protocol/journal_delta.hpp"
#include "storage/blobs.hpp"
#include "storage/records.hpp"
#include "storage/sqlite_calls.hpp"
#include "storage/sqlite_states.hpp"

namespace ratchet::sqlite {
namespace {

// Drops the children of `repair`'s range: their results, arrived or to come,
// never reach the call. Then counts what the call still waits for.
Status abandon_children(Database& db, Micros now, const CoroutineRepair& repair) {
  if (repair.abandon_from != 0) {
    ASSIGN_OR_RETURN(Statement * arrived,
                     db.prepare("UPDATE call_results SET delivered = 1 WHERE parent_id = ?1 AND "
                                "delivered = 0 AND correlation_id BETWEEN ?2 AND ?3"));
    arrived->bind(1, repair.call_id)
        .bind(2, static_cast<std::int64_t>(repair.abandon_from))
        .bind(3, static_cast<std::int64_t>(repair.abandon_to));
    RETURN_IF_ERROR(arrived->run().status());
    // A delivered row makes the child's own delivery (INSERT OR IGNORE) a no-op.
    ASSIGN_OR_RETURN(Statement * running,
                     db.prepare("INSERT OR IGNORE INTO call_results (parent_id, child_id, "
                                "correlation_id, arrived_at, delivered) SELECT parent_id, id, "
                                "correlation_id, ?4, 1 FROM runs WHERE parent_id = ?1 AND "
                                "phase != 'DONE' AND correlation_id BETWEEN ?2 AND ?3"));
    running->bind(1, repair.call_id)
        .bind(2, static_cast<std::int64_t>(repair.abandon_from))
        .bind(3, static_cast<std::int64_t>(repair.abandon_to))
        .bind(4, now);
    RETURN_IF_ERROR(running->run().status());
  }
  ASSIGN_OR_RETURN(
      Statement * count,
      db.prepare("UPDATE runs SET results_waiting = (SELECT count(*) FROM call_results WHERE "
                 "parent_id = ?1 AND delivered = 0), children_waiting = (SELECT count(*) FROM "
                 "call_results WHERE parent_id = ?1 AND delivered = 0) + (SELECT count(*) FROM "
                 "runs c WHERE c.parent_id = ?1 AND c.phase != 'DONE' AND NOT EXISTS (SELECT 1 "
                 "FROM call_results r WHERE r.parent_id = ?1 AND r.child_id = c.id)) "
                 "WHERE id = ?1"));
  count->bind(1, repair.call_id);
  return count->run().status();
}

Status apply_repair(Database& db, Micros now, const CoroutineRepair& repair) {
  ASSIGN_OR_RETURN(
      Statement * read,
      db.prepare("SELECT r.phase, r.state_member, " RATCHET_STATE_VALUE " FROM runs r LEFT JOIN "
                 "coroutine_states s ON s.call_id = r.id WHERE r.id = ?1 AND "
                 "r.kind = 'call'"));
  read->bind(1, repair.call_id);
  ASSIGN_OR_RETURN(bool found, read->step());
  if (!found) return not_found("no call with id " + repair.call_id);
  CallPhase phase = records::parse_phase(read->text(0));
  int member = static_cast<int>(read->optional_int64(1).value_or(0));
  std::optional<std::string> state = read->optional_text(2);
  read->reset();
  RETURN_IF_ERROR(records::check_repairable(repair.call_id, phase));
  if (!state) {
    return failed_precondition("call " + repair.call_id +
                               " has no coroutine state: it is not a suspended coroutine");
  }
  ASSIGN_OR_RETURN(auto whole, with_deltas(db, repair.call_id, std::move(*state)));
  ASSIGN_OR_RETURN(StateEdit edited, repair.edit(member, whole.journal));
  RETURN_IF_ERROR(replace_state(db, repair.call_id, edited.state));
  RETURN_IF_ERROR(abandon_children(db, now, repair));
  // A held call did not expire while it waited for its operator: the time it
  // had left when held counts again from now (a HELD row's updated_at is when
  // it was held: nothing else writes it). SET reads the row as it was.
  ASSIGN_OR_RETURN(
      Statement * ready,
      db.prepare("UPDATE runs SET phase = 'READY', ready_at = ?2, attempts = 0, "
                 "error_type = NULL, error = NULL, error_proto = NULL, poll_error = NULL, "
                 "expires_at = CASE WHEN phase = 'HELD' THEN expires_at + (?2 - updated_at) "
                 "ELSE expires_at END, updated_at = ?2 WHERE id = ?1"));
  ready->bind(1, repair.call_id).bind(2, now);
  RETURN_IF_ERROR(ready->run().status());
  CallAction action = repair.action;
  action.detail = records::repair_detail(std::move(edited.detail), whole.journal, whole.broken);
  return record_action(db, now, action);
}

}  // namespace

Status record_action(Database& db, Micros now, const CallAction& action) {
  ASSIGN_OR_RETURN(Statement * insert,
                   db.prepare("INSERT INTO call_actions (call_id, at, actor, action, detail) "
                              "VALUES (?1, ?2, ?3, ?4, ?5)"));
  insert->bind(1, action.call_id).bind(2, now).bind(3, action.actor);
  insert->bind(4, action.action).bind(5, action.detail);
  return insert->run().status();
}

Result<std::vector<OpenCoroutine>> open_coroutines(Database& db,
                                                   const std::vector<std::string>& functions,
                                                   const std::string& endpoint,
                                                   const std::string& after, int limit) {
  // Along coroutine_states' key from `after` (CROSS JOIN keeps that table
  // outside): it holds a row for each open coroutine only (deleted when the
  // call ends), so a page reads its rows and those of other functions between
  // them, never the finished runs.
  ASSIGN_OR_RETURN(
      Statement * query,
      db.prepare("SELECT r.id, r.function, r.phase, r.state_member, " RATCHET_STATE_VALUE
                 ", r.endpoint FROM coroutine_states s CROSS JOIN runs r ON r.id = s.call_id "
                 "WHERE s.call_id > ?4 AND r.phase != 'DONE' AND (r.function IN (SELECT value "
                 "FROM json_each(?1)) OR r.endpoint = ?3) ORDER BY s.call_id LIMIT ?2"));
  query->bind(1, nlohmann::json(functions).dump()).bind(2, limit).bind(4, after);
  // No endpoint: NULL, which no row's endpoint equals.
  if (endpoint.empty()) {
    query->bind_null(3);
  } else {
    query->bind(3, endpoint);
  }
  std::vector<OpenCoroutine> open;
  while (true) {
    ASSIGN_OR_RETURN(bool row, query->step());
    if (!row) break;
    open.push_back(OpenCoroutine{
        query->text(0), query->text(1), records::parse_phase(query->text(2)),
        static_cast<int>(query->optional_int64(3).value_or(0)), query->text(4), query->text(5)});
  }
  query->reset();
  for (auto& coroutine : open) {
    ASSIGN_OR_RETURN(auto whole, with_deltas(db, coroutine.id, std::move(coroutine.state)));
    // A journal that does not assemble is listed as broken, with the reason.
    coroutine.state = whole.broken.empty() ? std::move(whole.journal)
                                           : protocol::broken_journal_state(whole.broken);
  }
  return open;
}

Result<CallRecord> repair_coroutine(Database& db, Micros now, const CoroutineRepair& repair) {
  RETURN_IF_ERROR(db.write_transaction([&] { return apply_repair(db, now, repair); }));
  ASSIGN_OR_RETURN(auto call, find_call(db, repair.call_id));
  if (!call) return not_found("no call with id " + repair.call_id);
  return *call;
}

Result<CallActions> call_actions(Database& db, const std::string& call_id, int latest) {
  // Newest first to stop at `latest`, then turned around; the count in all
  // from the index alone.
  ASSIGN_OR_RETURN(Statement * query,
                   db.prepare("SELECT call_id, at, actor, action, detail, (SELECT count(*) FROM "
                              "call_actions WHERE call_id = ?1) FROM call_actions WHERE "
                              "call_id = ?1 ORDER BY at DESC, rowid DESC LIMIT ?2"));
  query->bind(1, call_id).bind(2, latest);
  CallActions actions;
  while (true) {
    ASSIGN_OR_RETURN(bool row, query->step());
    if (!row) break;
    actions.latest.push_back(CallAction{query->text(0), query->int64(1), query->text(2),
                                        query->text(3), query->text(4)});
    actions.total = query->int64(5);
  }
  query->reset();
  std::reverse(actions.latest.begin(), actions.latest.end());
  return actions;
}

}  // namespace ratchet::sqlite
