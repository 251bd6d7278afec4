#include "storage/sqlite_calls.hpp"

#include <algorithm>
#include <limits>

#include "common/ids.hpp"
#include "storage/records.hpp"
#include "storage/sqlite_blobs.hpp"
#include "storage/sqlite_repair.hpp"
#include "storage/sqlite_states.hpp"

namespace ratchet::sqlite {
namespace {

#define CALL_COLUMNS RATCHET_CALL_COLUMNS

// The conditions under which the lease holder may write.
#define LEASED_UNDER_EPOCH "id = ?1 AND lease_epoch = ?2 AND phase = 'LEASED'"

using records::error_at;
using records::error_to_json;
using records::read_call;

class SqliteCallTransaction final : public CallTransaction {
 public:
  SqliteCallTransaction(Database& db, const Clock& clock, Micros instance_timeout)
      : db_(db), now_(clock.now()), dead_line_(saturating_add(now_, -instance_timeout)) {}

  Result<std::string> dispatch(const NewCall& call) override;
  Result<bool> finish(const std::string& id, std::int64_t epoch, const CallEnd& end,
                      const std::vector<std::string>& delivered) override;
  Result<bool> retry(const std::string& id, std::int64_t epoch, Micros ready_at,
                     const CallError& reason) override;
  Result<bool> resend_whole(const std::string& id, std::int64_t epoch) override;
  Result<std::vector<std::string>> hold_missing_blobs(const std::string& why) override;
  Result<std::optional<std::string>> refused_delta(const std::string& id,
                                                   const PollState& state) override {
    return refuse_delta(db_, id, state);
  }
  Result<bool> tail_call(const std::string& id, std::int64_t epoch, const std::string& function,
                         const std::string& input,
                         const std::vector<std::string>& delivered) override;
  Result<bool> suspend(const std::string& id, std::int64_t epoch, const PollState& state,
                       const std::vector<NewCall>& children,
                       const std::vector<std::string>& delivered) override;
  Result<bool> reject_children(const std::string& id, std::int64_t epoch, const PollState& state,
                               const CallError& error,
                               const std::vector<std::string>& delivered) override;
  Result<bool> restart(const std::string& id, std::int64_t epoch, Micros ready_at,
                       const CallError& reason) override;
  Result<bool> hold(const std::string& id, std::int64_t epoch, const CallError& report) override;
  Result<std::optional<Micros>> next_due() override;
  Result<std::optional<Micros>> next_due_after(Micros after) override;
  Result<bool> release(const std::string& id, std::int64_t epoch) override;
  Result<std::vector<ClaimedCall>> claim_urgent(const std::string& owner, Micros lease_until,
                                                int limit) override;
  Result<std::vector<QueueKey>> due_queues(const QueueKey& after, int limit) override;
  Result<std::vector<ClaimedCall>> claim_queue(const QueueKey& queue, const std::string& owner,
                                               Micros lease_until, int limit) override;
  Status record_history(const std::vector<HistoryEvent>& events) override;
  Result<std::vector<std::string>> cancel(const std::string& id, const std::string& actor) override;
  Result<bool> retry_now(const std::string& id, const std::string& actor) override;
  Result<std::vector<std::string>> expire(const CallEnd& end, int limit) override;
  Result<std::optional<Micros>> next_expiry() override;
  Result<QueueFigures> queue_figures() override;

 private:
  Result<std::vector<ClaimedCall>> lease_ids(const std::vector<std::string>& ids,
                                             const std::string& owner, Micros lease_until);
  Result<std::optional<QueueKey>> next_due_queue(const std::optional<QueueKey>& after);
  Result<bool> exists(const std::string& id);
  Status end_call(const std::string& id, const char* status, const CallEnd& end);
  Result<std::vector<std::string>> due_ids(const char* sql, int limit, bool orphans = false);
  Result<std::vector<ChildResult>> waiting_results(const std::string& parent_id, int limit);
  Status consume(const std::string& id, const std::vector<std::string>& delivered);
  Status discard_inbox(const std::string& id);
  Status deliver_to_parent(const std::string& id);
  Status wake_if_ready(const std::string& id);
  // Runs `sql` with ?1 `id` and ?2 now: the rows it changed.
  Result<int> run_now(const char* sql, const std::string& id);
  // The first column of the row `sql` (?1: `id`) finds, as text; "" for none.
  Result<std::string> text_of(const char* sql, const std::string& id);
  Status drop_state(const std::string& id) { return sqlite::drop_state(db_, id); }
  // A delta on a revision the store does not hold: the attempt is retried, and
  // its retry carries the whole journal. nullopt when `state` is taken.
  Result<std::optional<bool>> refuse(const std::string& id, std::int64_t epoch,
                                     const PollState& state);

  Database& db_;
  Micros now_;
  Micros dead_line_;  // an instance whose last heartbeat is no later is gone
};

// A once-ever key's newest call: the one created last (rowid), not the one
// with the latest started_at (the wall clock can step back). Calls have no
// attempt_no: on runs_by_key_created (run_key, attempt_no, rowid) the key's
// calls are read newest first, with no sort.
constexpr const char* kNewestCallOfKey =
    "SELECT id FROM runs WHERE kind = 'call' AND run_key = ?1 AND attempt_no IS NULL "
    "ORDER BY rowid DESC LIMIT 1";

Result<std::string> SqliteCallTransaction::dispatch(const NewCall& call) {
  if (!call.run_key.empty()) {
    ASSIGN_OR_RETURN(
        Statement * live,
        db_.prepare(call.run_key_once ? kNewestCallOfKey
                                      : "SELECT id FROM runs WHERE kind = 'call' AND run_key = ?1 "
                                        "AND status IN ('STARTING', 'RUNNING')"));
    live->bind(1, call.run_key);
    ASSIGN_OR_RETURN(bool found, live->step());
    std::string existing = found ? live->text(0) : std::string();
    live->reset();
    if (found) return existing;
  }
  std::string id = new_uuid();
  const blobs::Stored input = blobs::store(call.input);
  RETURN_IF_ERROR(put_blob(db_, input));
  ASSIGN_OR_RETURN(Statement * insert,
                   db_.prepare("INSERT INTO runs (id, kind, run_key, status, started_at, "
                               "updated_at, function, endpoint, version, input, parent_id, "
                               "root_id, correlation_id, expires_at, phase, ready_at, "
                               "max_attempts, input_blob) VALUES "
                               "(?1, 'call', NULLIF(?2, ''), 'STARTING', ?3, ?3, ?4, ?5, ?6, ?7, "
                               "NULLIF(?8, ''), ?9, ?10, ?11, 'READY', ?3, NULLIF(?12, 0), ?13)"));
  insert->bind(1, id)
      .bind(2, call.run_key)
      .bind(3, now_)
      .bind(4, call.function)
      .bind(5, call.endpoint)
      .bind(6, call.version)
      .bind(8, call.parent_id)
      .bind(9, call.root_id.empty() ? id : call.root_id)
      .bind(10, static_cast<std::int64_t>(call.correlation_id))
      .bind(11, call.expires_at)
      .bind(12, call.max_attempts);
  bind_stored(*insert, 7, 13, input);
  RETURN_IF_ERROR(insert->run().status());
  return id;
}

Result<std::vector<std::string>> SqliteCallTransaction::due_ids(const char* sql, int limit,
                                                                bool orphans) {
  ASSIGN_OR_RETURN(Statement * query, db_.prepare(sql));
  query->bind(1, now_).bind(2, limit);
  if (orphans) query->bind(3, dead_line_);
  std::vector<std::string> ids;
  while (true) {
    ASSIGN_OR_RETURN(bool row, query->step());
    if (!row) break;
    ids.push_back(query->text(0));
  }
  return ids;
}

Result<std::vector<ChildResult>> SqliteCallTransaction::waiting_results(
    const std::string& parent_id, int limit) {
  ASSIGN_OR_RETURN(
      Statement * query,
      db_.prepare("SELECT child_id, correlation_id, " RATCHET_OUTPUT_VALUE ", "
                  "error_type, "
                  "error_message, error_proto FROM call_results WHERE parent_id = ?1 AND "
                  "delivered = 0 ORDER BY arrived_at, rowid LIMIT ?2"));
  query->bind(1, parent_id).bind(2, limit);
  std::vector<ChildResult> results;
  while (true) {
    ASSIGN_OR_RETURN(bool row, query->step());
    if (!row) break;
    results.push_back(ChildResult{query->text(0), static_cast<std::uint64_t>(query->int64(1)),
                                  query->optional_text(2), error_at(*query, 3, 4, 5)});
  }
  return results;
}

Result<std::vector<ClaimedCall>> SqliteCallTransaction::claim_urgent(const std::string& owner,
                                                                     Micros lease_until,
                                                                     int limit) {
  ASSIGN_OR_RETURN(auto ids, due_ids(claim_urgent_sql(), limit, true));
  return lease_ids(ids, owner, lease_until);
}

Result<std::optional<QueueKey>> SqliteCallTransaction::next_due_queue(
    const std::optional<QueueKey>& after) {
  // One seek of calls_ready_by_queue per queue (a loose index scan): the
  // cost grows with the number of queues, not with the calls in them.
  ASSIGN_OR_RETURN(
      Statement * query,
      db_.prepare(after ? "SELECT endpoint, function FROM runs WHERE phase = 'READY' AND "
                          "(endpoint, function) > (?1, ?2) AND ready_at <= ?3 "
                          "ORDER BY endpoint, function LIMIT 1"
                        : "SELECT endpoint, function FROM runs WHERE phase = 'READY' AND "
                          "ready_at <= ?3 ORDER BY endpoint, function LIMIT 1"));
  if (after) query->bind(1, after->endpoint).bind(2, after->function);
  query->bind(3, now_);
  ASSIGN_OR_RETURN(bool row, query->step());
  std::optional<QueueKey> next;
  if (row) next = QueueKey{query->text(0), query->text(1)};
  query->reset();
  return next;
}

Result<std::vector<QueueKey>> SqliteCallTransaction::due_queues(const QueueKey& after, int limit) {
  // From just after `after` to the last queue, then from the first to `after`.
  std::vector<QueueKey> queues;
  std::optional<QueueKey> cursor = after;
  bool wrapped = false;
  while (static_cast<int>(queues.size()) < limit) {
    ASSIGN_OR_RETURN(auto next, next_due_queue(cursor));
    if (!next && !wrapped) {
      wrapped = true;
      cursor.reset();
      continue;
    }
    if (!next || (wrapped && *next > after)) break;
    queues.push_back(*next);
    cursor = *next;
    if (wrapped && *next == after) break;
  }
  return queues;
}

Result<std::vector<ClaimedCall>> SqliteCallTransaction::claim_queue(const QueueKey& queue,
                                                                    const std::string& owner,
                                                                    Micros lease_until, int limit) {
  ASSIGN_OR_RETURN(Statement * query,
                   db_.prepare("SELECT id FROM runs WHERE phase = 'READY' AND endpoint = ?1 AND "
                               "function = ?2 AND ready_at <= ?3 ORDER BY ready_at LIMIT ?4"));
  query->bind(1, queue.endpoint).bind(2, queue.function).bind(3, now_).bind(4, limit);
  std::vector<std::string> ids;
  while (true) {
    ASSIGN_OR_RETURN(bool row, query->step());
    if (!row) break;
    ids.push_back(query->text(0));
  }
  return lease_ids(ids, owner, lease_until);
}

Result<std::vector<ClaimedCall>> SqliteCallTransaction::lease_ids(
    const std::vector<std::string>& ids, const std::string& owner, Micros lease_until) {
  std::vector<ClaimedCall> claimed;
  claimed.reserve(ids.size());
  // An UPDATE and a SELECT rather than UPDATE ... RETURNING: SQLite runs a
  // RETURNING clause as a trigger that fills a temporary table, so that such
  // an UPDATE opens a statement journal and a b-tree of its own each time,
  // which cost more than a second lookup by the primary key.
  ASSIGN_OR_RETURN(Statement * lease,
                   db_.prepare("UPDATE runs SET phase = 'LEASED', status = 'RUNNING', "
                               "lease_owner = ?2, lease_epoch = lease_epoch + 1, "
                               "lease_expires_at = ?3, attempts = attempts + 1, updated_at = ?4 "
                               "WHERE id = ?1"));
  ASSIGN_OR_RETURN(Statement * leased,
                   db_.prepare("SELECT " CALL_COLUMNS " FROM runs WHERE id = ?1"));
  for (const auto& id : ids) {
    lease->reset();
    lease->bind(1, id).bind(2, owner).bind(3, lease_until).bind(4, now_);
    ASSIGN_OR_RETURN(int changed, lease->run());
    if (changed == 0) continue;
    leased->reset();
    leased->bind(1, id);
    ASSIGN_OR_RETURN(bool row, leased->step());
    if (!row) continue;
    ClaimedCall item{read_call(*leased), {}};
    leased->reset();
    if (item.call.poll) {
      // The first attempt after a Poll goes where the Poll came from, which
      // holds the journal a delta applies to; any other may go elsewhere.
      ASSIGN_OR_RETURN(auto state, load_state(db_, id, item.call.attempts == 1));
      item.call.poll->state = state.value_or("");
      ASSIGN_OR_RETURN(item.results, waiting_results(id, std::max(1, item.call.poll->max_results)));
    }
    claimed.push_back(std::move(item));
  }
  return claimed;
}

Status SqliteCallTransaction::consume(const std::string& id,
                                      const std::vector<std::string>& delivered) {
  if (delivered.empty()) return Status::ok();
  ASSIGN_OR_RETURN(Statement * mark,
                   db_.prepare("UPDATE call_results SET delivered = 1 WHERE parent_id = ?1 AND "
                               "child_id = ?2 AND delivered = 0"));
  int consumed = 0;
  for (const auto& child : delivered) {
    mark->reset();
    mark->bind(1, id).bind(2, child);
    ASSIGN_OR_RETURN(int changed, mark->run());
    consumed += changed;
  }
  ASSIGN_OR_RETURN(Statement * count,
                   db_.prepare("UPDATE runs SET results_waiting = MAX(0, results_waiting - ?2), "
                               "children_waiting = MAX(0, children_waiting - ?2) WHERE id = ?1"));
  count->bind(1, id).bind(2, consumed);
  return count->run().status();
}

Status SqliteCallTransaction::discard_inbox(const std::string& id) {
  ASSIGN_OR_RETURN(Statement * mark, db_.prepare("UPDATE call_results SET delivered = 1 WHERE "
                                                 "parent_id = ?1 AND delivered = 0"));
  mark->bind(1, id);
  RETURN_IF_ERROR(mark->run().status());
  // The children still running are abandoned too: the call starts afresh and
  // reuses its correlation ids, so their results must never reach it. A result
  // already marked delivered makes deliver_to_parent's INSERT OR IGNORE a no-op.
  return run_now(
             "INSERT OR IGNORE INTO call_results (parent_id, child_id, correlation_id, "
             "arrived_at, delivered) SELECT parent_id, id, correlation_id, ?2, 1 FROM runs WHERE "
             "parent_id = ?1 AND phase != 'DONE'",
             id)
      .status();
}

// Puts a finished call's result in its parent's inbox and wakes the parent if
// that was what it waited for.
Status SqliteCallTransaction::deliver_to_parent(const std::string& id) {
  ASSIGN_OR_RETURN(int inserted,
                   run_now("INSERT OR IGNORE INTO call_results (parent_id, child_id, "
                           "correlation_id, output, output_blob, error_type, error_message, "
                           "error_proto, arrived_at) SELECT parent_id, id, correlation_id, "
                           "output, output_blob, error_type, error, error_proto, ?2 FROM "
                           "runs WHERE id = ?1 AND parent_id IS NOT NULL",
                           id));
  if (inserted == 0) return Status::ok();
  // The row just copied has a parent. No RETURNING (see lease_ids).
  ASSIGN_OR_RETURN(std::string parent, text_of("SELECT parent_id FROM runs WHERE id = ?1", id));
  // Counted, and woken if that was what it waited for (wake_if_ready), in
  // one statement: SQLite reads the right-hand sides from the row before it.
  return run_now(
             "UPDATE runs SET results_waiting = results_waiting + 1, ready_at = CASE WHEN phase "
             "= 'WAITING' AND results_waiting + 1 >= poll_min THEN ?2 ELSE ready_at END, phase = "
             "CASE WHEN phase = 'WAITING' AND results_waiting + 1 >= poll_min THEN 'READY' ELSE "
             "phase END WHERE id = ?1",
             parent)
      .status();
}

Result<int> SqliteCallTransaction::run_now(const char* sql, const std::string& id) {
  ASSIGN_OR_RETURN(Statement * statement, db_.prepare(sql));
  statement->bind(1, id).bind(2, now_);
  return statement->run();
}

Result<std::string> SqliteCallTransaction::text_of(const char* sql, const std::string& id) {
  ASSIGN_OR_RETURN(Statement * query, db_.prepare(sql));
  query->bind(1, id);
  ASSIGN_OR_RETURN(bool row, query->step());
  std::string text = row ? query->text(0) : std::string();
  query->reset();
  return text;
}

Status SqliteCallTransaction::wake_if_ready(const std::string& id) {
  return run_now(
             "UPDATE runs SET phase = 'READY', ready_at = ?2 WHERE id = ?1 AND phase = 'WAITING' "
             "AND results_waiting >= poll_min",
             id)
      .status();
}

Result<bool> SqliteCallTransaction::finish(const std::string& id, std::int64_t epoch,
                                           const CallEnd& end,
                                           const std::vector<std::string>& delivered) {
  ASSIGN_OR_RETURN(Statement * update,
                   db_.prepare("UPDATE runs SET status = ?3, phase = 'DONE', output = ?4, "
                               "output_blob = ?10, "
                               "error_type = ?5, error = ?6, error_proto = ?9, "
                               "call_status = ?7, finished_at = ?8, "
                               "updated_at = ?8, lease_owner = NULL, lease_expires_at = NULL, "
                               "state_member = NULL, poll_min = NULL, "
                               "poll_max = NULL, poll_deadline = NULL, poll_error = NULL "
                               "WHERE " LEASED_UNDER_EPOCH));
  update->bind(1, id).bind(2, epoch).bind(3, end.succeeded ? "SUCCEEDED" : "FAILED");
  const blobs::Stored output =
      blobs::store(end.output ? std::string_view(*end.output) : std::string_view());
  if (end.output) bind_stored(*update, 4, 10, output);
  if (end.error) update->bind(5, end.error->type).bind(6, end.error->message);
  if (end.error && !end.error->encoded.empty()) update->bind_blob(9, end.error->encoded);
  update->bind(7, end.call_status).bind(8, now_);
  ASSIGN_OR_RETURN(int changed, update->run());
  if (changed == 0) return false;
  if (end.output) RETURN_IF_ERROR(put_blob(db_, output));
  RETURN_IF_ERROR(drop_state(id));
  RETURN_IF_ERROR(consume(id, delivered));
  RETURN_IF_ERROR(deliver_to_parent(id));
  return true;
}

Result<bool> SqliteCallTransaction::retry(const std::string& id, std::int64_t epoch,
                                          Micros ready_at, const CallError& reason) {
  ASSIGN_OR_RETURN(Statement * update,
                   db_.prepare("UPDATE runs SET phase = 'READY', ready_at = ?3, error_type = ?4, "
                               "error = ?5, error_proto = ?7, lease_owner = NULL, "
                               "lease_expires_at = NULL, updated_at = ?6 "
                               "WHERE " LEASED_UNDER_EPOCH));
  update->bind(1, id).bind(2, epoch).bind(3, ready_at).bind(4, reason.type);
  update->bind(5, reason.message).bind(6, now_);
  if (!reason.encoded.empty()) update->bind_blob(7, reason.encoded);
  ASSIGN_OR_RETURN(int changed, update->run());
  return changed == 1;
}

Result<bool> SqliteCallTransaction::resend_whole(const std::string& id, std::int64_t epoch) {
  ASSIGN_OR_RETURN(bool released, release(id, epoch));
  if (!released) return false;
  ASSIGN_OR_RETURN(bool folded, fold_deltas(db_, id));
  if (!folded) return true;
  ASSIGN_OR_RETURN(Statement * uncount,
                   db_.prepare("UPDATE runs SET attempts = attempts - 1 WHERE id = ?1"));
  uncount->bind(1, id);
  RETURN_IF_ERROR(uncount->run().status());
  return true;
}

Result<std::vector<std::string>> SqliteCallTransaction::hold_missing_blobs(const std::string& why) {
  ASSIGN_OR_RETURN(
      Statement * hold,
      db_.prepare("UPDATE runs SET phase = 'HELD', attempts = 0, error_type = 'MissingBlob', "
                  "error = ?1, error_proto = NULL, lease_owner = NULL, lease_expires_at = NULL, "
                  "updated_at = ?2 WHERE kind = 'call' AND phase NOT IN ('DONE', 'HELD') AND id "
                  "IN (" RATCHET_CALLS_MISSING_BLOBS("delivered = 0") ") RETURNING id"));
  hold->bind(1, why).bind(2, now_);
  std::vector<std::string> held;
  while (true) {
    ASSIGN_OR_RETURN(bool row, hold->step());
    if (!row) break;
    held.push_back(hold->text(0));
  }
  hold->reset();
  return held;
}

Result<bool> SqliteCallTransaction::tail_call(const std::string& id, std::int64_t epoch,
                                              const std::string& function, const std::string& input,
                                              const std::vector<std::string>& delivered) {
  ASSIGN_OR_RETURN(Statement * update,
                   db_.prepare("UPDATE runs SET function = ?3, input = ?4, input_blob = ?6, "
                               "phase = 'READY', "
                               "ready_at = ?5, attempts = 0, error_type = NULL, error = NULL, "
                               "error_proto = NULL, "
                               "lease_owner = NULL, lease_expires_at = NULL, "
                               "state_member = NULL, poll_min = NULL, "
                               "poll_max = NULL, poll_deadline = NULL, poll_error = NULL, "
                               "children_waiting = 0, results_waiting = 0, updated_at = ?5 "
                               "WHERE " LEASED_UNDER_EPOCH));
  const blobs::Stored stored = blobs::store(input);
  update->bind(1, id).bind(2, epoch).bind(3, function).bind(5, now_);
  bind_stored(*update, 4, 6, stored);
  ASSIGN_OR_RETURN(int changed, update->run());
  if (changed == 0) return false;
  RETURN_IF_ERROR(put_blob(db_, stored));
  (void)delivered;  // the new function starts afresh: the whole inbox is stale
  RETURN_IF_ERROR(drop_state(id));
  RETURN_IF_ERROR(discard_inbox(id));
  return true;
}

Result<bool> SqliteCallTransaction::suspend(const std::string& id, std::int64_t epoch,
                                            const PollState& state,
                                            const std::vector<NewCall>& children,
                                            const std::vector<std::string>& delivered) {
  ASSIGN_OR_RETURN(auto refused, refuse(id, epoch, state));
  if (refused) return *refused;
  ASSIGN_OR_RETURN(
      Statement * update,
      db_.prepare("UPDATE runs SET phase = 'WAITING', attempts = 0, state_member = ?3, "
                  "poll_min = ?4, poll_max = ?5, poll_deadline = ?6, poll_error = NULL, "
                  "lease_owner = NULL, lease_expires_at = NULL, children_waiting = "
                  "children_waiting + ?7, updated_at = ?8 WHERE " LEASED_UNDER_EPOCH));
  update->bind(1, id).bind(2, epoch).bind(3, state.member);
  update->bind(4, state.min_results).bind(5, state.max_results).bind(6, state.deadline);
  update->bind(7, static_cast<int>(children.size())).bind(8, now_);
  ASSIGN_OR_RETURN(int changed, update->run());
  if (changed == 0) return false;
  RETURN_IF_ERROR(save_state(db_, id, state));
  RETURN_IF_ERROR(consume(id, delivered));
  std::string root_id;
  if (!children.empty()) {
    ASSIGN_OR_RETURN(root_id, text_of("SELECT root_id FROM runs WHERE id = ?1", id));
  }
  for (NewCall child : children) {
    child.parent_id = id;
    child.root_id = root_id;
    child.run_key.clear();
    RETURN_IF_ERROR(dispatch(child).status());
  }
  RETURN_IF_ERROR(wake_if_ready(id));
  return true;
}

Result<bool> SqliteCallTransaction::reject_children(const std::string& id, std::int64_t epoch,
                                                    const PollState& state, const CallError& error,
                                                    const std::vector<std::string>& delivered) {
  ASSIGN_OR_RETURN(auto refused, refuse(id, epoch, state));
  if (refused) return *refused;
  ASSIGN_OR_RETURN(Statement * update,
                   db_.prepare("UPDATE runs SET phase = 'READY', ready_at = ?3, state_member = "
                               "?4, poll_min = ?5, poll_max = ?6, poll_deadline = ?3, "
                               "poll_error = ?7, lease_owner = NULL, lease_expires_at = NULL, "
                               "updated_at = ?3 WHERE " LEASED_UNDER_EPOCH));
  update->bind(1, id).bind(2, epoch).bind(3, now_).bind(4, state.member);
  update->bind(5, state.min_results).bind(6, state.max_results).bind(7, error_to_json(error));
  ASSIGN_OR_RETURN(int changed, update->run());
  if (changed == 0) return false;
  RETURN_IF_ERROR(save_state(db_, id, state));
  RETURN_IF_ERROR(consume(id, delivered));
  return true;
}

Result<bool> SqliteCallTransaction::restart(const std::string& id, std::int64_t epoch,
                                            Micros ready_at, const CallError& reason) {
  ASSIGN_OR_RETURN(Statement * update,
                   db_.prepare("UPDATE runs SET phase = 'READY', ready_at = ?3, "
                               "state_member = NULL, poll_min = NULL, "
                               "poll_max = NULL, poll_deadline = NULL, poll_error = NULL, "
                               "children_waiting = 0, results_waiting = 0, lease_owner = NULL, "
                               "lease_expires_at = NULL, updated_at = ?4, error_type = ?5, "
                               "error = ?6, error_proto = ?7 "
                               "WHERE " LEASED_UNDER_EPOCH));
  update->bind(1, id).bind(2, epoch).bind(3, ready_at).bind(4, now_);
  update->bind(5, reason.type).bind(6, reason.message);
  if (!reason.encoded.empty()) update->bind_blob(7, reason.encoded);
  ASSIGN_OR_RETURN(int changed, update->run());
  if (changed == 0) return false;
  RETURN_IF_ERROR(drop_state(id));
  RETURN_IF_ERROR(discard_inbox(id));
  return true;
}

Result<bool> SqliteCallTransaction::hold(const std::string& id, std::int64_t epoch,
                                         const CallError& report) {
  // The state and the inbox stay: a repair resumes from them, and the results
  // this attempt carried are delivered again then.
  ASSIGN_OR_RETURN(
      Statement * update,
      db_.prepare("UPDATE runs SET phase = 'HELD', attempts = 0, error_type = ?3, "
                  "error = ?4, error_proto = ?6, lease_owner = NULL, "
                  "lease_expires_at = NULL, updated_at = ?5 WHERE " LEASED_UNDER_EPOCH));
  update->bind(1, id).bind(2, epoch).bind(3, report.type).bind(4, report.message).bind(5, now_);
  if (!report.encoded.empty()) update->bind_blob(6, report.encoded);
  ASSIGN_OR_RETURN(int changed, update->run());
  return changed == 1;
}

Result<std::optional<bool>> SqliteCallTransaction::refuse(const std::string& id, std::int64_t epoch,
                                                          const PollState& state) {
  ASSIGN_OR_RETURN(auto reason, refuse_delta(db_, id, state));
  if (!reason) return std::optional<bool>();
  ASSIGN_OR_RETURN(bool retried, retry(id, epoch, now_, CallError{"JournalDeltaRefused", *reason}));
  return std::optional<bool>(retried);
}

Result<std::optional<Micros>> SqliteCallTransaction::next_due() {
  ASSIGN_OR_RETURN(Statement * query, db_.prepare(next_due_sql()));
  ASSIGN_OR_RETURN(bool row, query->step());
  std::optional<Micros> earliest;
  if (row && !query->is_null(0)) earliest = query->int64(0);
  query->reset();
  return earliest;
}

Result<std::optional<Micros>> SqliteCallTransaction::next_due_after(Micros after) {
  ASSIGN_OR_RETURN(Statement * query,
                   db_.prepare("SELECT MIN(due) FROM (SELECT MIN(ready_at) AS due FROM runs WHERE "
                               "phase = 'READY' AND ready_at > ?1 UNION ALL SELECT "
                               "MIN(poll_deadline) FROM runs WHERE phase = 'WAITING' AND "
                               "poll_deadline > ?1 UNION ALL SELECT MIN(lease_expires_at) FROM "
                               "runs WHERE phase = 'LEASED' AND lease_expires_at > ?1)"));
  query->bind(1, after);
  ASSIGN_OR_RETURN(bool row, query->step());
  std::optional<Micros> earliest;
  if (row && !query->is_null(0)) earliest = query->int64(0);
  query->reset();
  return earliest;
}

Result<bool> SqliteCallTransaction::release(const std::string& id, std::int64_t epoch) {
  ASSIGN_OR_RETURN(Statement * update,
                   db_.prepare("UPDATE runs SET phase = 'READY', ready_at = ?3, lease_owner = "
                               "NULL, lease_expires_at = NULL, updated_at = ?3 "
                               "WHERE " LEASED_UNDER_EPOCH));
  update->bind(1, id).bind(2, epoch).bind(3, now_);
  ASSIGN_OR_RETURN(int changed, update->run());
  return changed == 1;
}

Status SqliteCallTransaction::record_history(const std::vector<HistoryEvent>& events) {
  if (events.empty()) return Status::ok();
  // The number is read, then written (no RETURNING: see lease_ids); the
  // events of one call come together (a Poll's attempt and poll), and the
  // second follows the first without a read.
  ASSIGN_OR_RETURN(Statement * last,
                   db_.prepare("SELECT COALESCE(MAX(number), 0) FROM call_history WHERE "
                               "call_id = ?1"));
  ASSIGN_OR_RETURN(
      Statement * insert,
      db_.prepare("INSERT INTO call_history (call_id, number, kind, at, duration_us, attempt, "
                  "call_status, outcome, detail, children, results) VALUES (?1, ?11, ?2, ?3, "
                  "?4, ?5, ?6, ?7, ?8, ?9, ?10)"));
  // The event that leaves the tail window goes, unless it is in the head.
  ASSIGN_OR_RETURN(Statement * trim,
                   db_.prepare("DELETE FROM call_history WHERE call_id = ?1 AND number = ?2"));
  const std::string* previous = nullptr;
  std::int64_t number = 0;
  for (const auto& e : events) {
    if (previous && *previous == e.call_id) {
      ++number;
    } else {
      last->reset();
      last->bind(1, e.call_id);
      ASSIGN_OR_RETURN(bool row, last->step());
      number = (row ? last->int64(0) : 0) + 1;
      last->reset();
    }
    previous = &e.call_id;
    insert->reset();
    insert->bind(1, e.call_id).bind(2, e.kind).bind(3, e.at).bind(4, e.duration);
    insert->bind(5, e.attempt).bind(6, e.call_status).bind(7, e.outcome);
    insert->bind(8, records::history_detail(e.detail)).bind(9, e.children).bind(10, e.results);
    insert->bind(11, number);
    RETURN_IF_ERROR(insert->run().status());
    // Nothing leaves while the history is shorter than its two windows.
    if (number - kHistoryTail <= kHistoryHead) continue;
    trim->reset();
    trim->bind(1, e.call_id).bind(2, number - kHistoryTail);
    RETURN_IF_ERROR(trim->run().status());
  }
  return Status::ok();
}

Result<bool> SqliteCallTransaction::exists(const std::string& id) {
  ASSIGN_OR_RETURN(Statement * query,
                   db_.prepare("SELECT 1 FROM runs WHERE id = ?1 AND kind = 'call'"));
  query->bind(1, id);
  ASSIGN_OR_RETURN(bool row, query->step());
  query->reset();
  return row;
}

// Ends a call that is not done, whatever its phase: its lease, if any, is
// fenced off (finish() and the others require phase LEASED).
Status SqliteCallTransaction::end_call(const std::string& id, const char* status,
                                       const CallEnd& end) {
  // The last attempt's error, if any, stays in the message: it is often why.
  // The endpoint's error bytes go: this error is the server's (call.hpp).
  ASSIGN_OR_RETURN(
      Statement * update,
      db_.prepare("UPDATE runs SET status = ?2, phase = 'DONE', error_type = ?3, "
                  "error = ?4 || COALESCE(' (last error: ' || error_type || ': ' || "
                  "error || ')', ''), error_proto = NULL, call_status = ?5, finished_at = ?6, "
                  "updated_at = ?6, "
                  "lease_owner = NULL, lease_expires_at = NULL, "
                  "state_member = NULL, poll_min = NULL, poll_max = NULL, "
                  "poll_deadline = NULL, poll_error = NULL "
                  "WHERE id = ?1 AND phase != 'DONE'"));
  update->bind(1, id).bind(2, status).bind(3, end.error ? end.error->type : "");
  update->bind(4, end.error ? end.error->message : "").bind(5, end.call_status).bind(6, now_);
  RETURN_IF_ERROR(update->run().status());
  return drop_state(id);
}

Result<std::vector<std::string>> SqliteCallTransaction::cancel(const std::string& id,
                                                               const std::string& actor) {
  ASSIGN_OR_RETURN(bool found, exists(id));
  if (!found) return not_found("no call with dispatch id " + id);
  // The call's whole tree, its finished branches included: a finished
  // coroutine may have left children running.
  ASSIGN_OR_RETURN(Statement * tree,
                   db_.prepare("WITH RECURSIVE tree(id) AS (SELECT ?1 UNION SELECT runs.id FROM "
                               "runs JOIN tree ON runs.parent_id = tree.id) SELECT runs.id FROM "
                               "runs JOIN tree USING (id) WHERE runs.phase != 'DONE'"));
  tree->bind(1, id);
  std::vector<std::string> live;
  while (true) {
    ASSIGN_OR_RETURN(bool row, tree->step());
    if (!row) break;
    live.push_back(tree->text(0));
  }
  // The call itself first, as documented.
  auto self = std::find(live.begin(), live.end(), id);
  if (self == live.end()) return live;  // done already: nothing to cancel
  std::iter_swap(live.begin(), self);
  for (const auto& each : live) {
    RETURN_IF_ERROR(end_call(each, "CANCELLED", records::cancelled_end(each, id, actor)));
    RETURN_IF_ERROR(record_action(db_, now_, records::cancelled_action(each, id, actor)));
  }
  // Only the call's own parent may still wait: the others' parents are cancelled.
  RETURN_IF_ERROR(deliver_to_parent(id));
  return live;
}

Result<bool> SqliteCallTransaction::retry_now(const std::string& id, const std::string& actor) {
  ASSIGN_OR_RETURN(int changed,
                   run_now("UPDATE runs SET ready_at = ?2, updated_at = ?2 WHERE id = ?1 AND "
                           "kind = 'call' AND phase = 'READY' AND ready_at > ?2",
                           id));
  if (changed == 0) {
    ASSIGN_OR_RETURN(bool found, exists(id));
    if (!found) return not_found("no call with dispatch id " + id);
    return false;
  }
  RETURN_IF_ERROR(record_action(db_, now_, records::retried_now_action(id, actor)));
  return true;
}

// A HELD call does not expire: it waits for its operator (a repair moves its
// expires_at on by the time it was held). `phase != 'DONE'` stays as written:
// it is what lets SQLite use the partial index calls_expiring.
Result<std::vector<std::string>> SqliteCallTransaction::expire(const CallEnd& end, int limit) {
  ASSIGN_OR_RETURN(auto ids, due_ids("SELECT id FROM runs WHERE expires_at IS NOT NULL AND "
                                     "phase != 'DONE' AND phase != 'HELD' AND expires_at <= ?1 "
                                     "ORDER BY expires_at LIMIT ?2",
                                     limit));
  std::vector<HistoryEvent> events;
  for (const auto& id : ids) {
    RETURN_IF_ERROR(end_call(id, "FAILED", end));
    events.push_back(records::expired_event(id, end, now_));
    RETURN_IF_ERROR(deliver_to_parent(id));
  }
  RETURN_IF_ERROR(record_history(events));
  return ids;
}

Result<std::optional<Micros>> SqliteCallTransaction::next_expiry() {
  ASSIGN_OR_RETURN(Statement * query,
                   db_.prepare("SELECT MIN(expires_at) FROM runs WHERE expires_at IS NOT NULL "
                               "AND phase != 'DONE' AND phase != 'HELD'"));
  ASSIGN_OR_RETURN(bool row, query->step());
  std::optional<Micros> earliest;
  if (row && !query->is_null(0)) earliest = query->int64(0);
  query->reset();
  return earliest;
}

Result<QueueFigures> SqliteCallTransaction::queue_figures() {
  QueueFigures figures;
  ASSIGN_OR_RETURN(Statement * ready,
                   db_.prepare("SELECT function, COUNT(*) FROM runs WHERE phase = 'READY' AND "
                               "ready_at <= ?1 GROUP BY endpoint, function"));
  ready->bind(1, now_);
  while (true) {
    ASSIGN_OR_RETURN(bool row, ready->step());
    if (!row) break;
    figures.ready[ready->text(0)] += ready->int64(1);
  }
  ASSIGN_OR_RETURN(Statement * waiting,
                   db_.prepare("SELECT COUNT(*) FROM runs WHERE phase = 'WAITING'"));
  ASSIGN_OR_RETURN(bool row, waiting->step());
  figures.waiting = row ? waiting->int64(0) : 0;
  waiting->reset();
  return figures;
}

}  // namespace

// Most urgent first: expired leases, leases of instances that are gone
// (silent past the timeout, or marked gone: storage/instance.hpp), waiting
// coroutines past their deadline; as PostgreSQL's claim. One statement, as a
// turn asks at every turn: SQLite runs the arms of a UNION ALL in their order
// and stops at the limit, so the later arms take only what is left.
const char* claim_urgent_sql() {
  return "SELECT id FROM (SELECT id FROM runs WHERE phase = 'LEASED' AND lease_expires_at <= ?1 "
         "ORDER BY lease_expires_at LIMIT ?2) "
         "UNION ALL SELECT id FROM (SELECT id FROM runs WHERE phase = 'LEASED' AND "
         "lease_expires_at > ?1 AND lease_owner IN (SELECT id FROM instances WHERE "
         "heartbeat_at <= ?3) LIMIT ?2) "
         "UNION ALL SELECT id FROM (SELECT id FROM runs WHERE phase = 'WAITING' AND "
         "poll_deadline <= ?1 ORDER BY poll_deadline LIMIT ?2) LIMIT ?2";
}

// The earliest time a call falls due (ready, past its poll deadline, or its
// lease expired): one statement of three index seeks.
const char* next_due_sql() {
  return "SELECT MIN(due) FROM (SELECT MIN(ready_at) AS due FROM runs WHERE phase = 'READY' "
         "UNION ALL SELECT MIN(poll_deadline) FROM runs WHERE phase = 'WAITING' "
         "UNION ALL SELECT MIN(lease_expires_at) FROM runs WHERE phase = 'LEASED')";
}

std::unique_ptr<CallTransaction> make_call_transaction(Database& db, const Clock& clock,
                                                       Micros instance_timeout) {
  return std::make_unique<SqliteCallTransaction>(db, clock, instance_timeout);
}

Result<std::optional<CallRecord>> find_call(Database& db, const std::string& id) {
  ASSIGN_OR_RETURN(Statement * query, db.prepare("SELECT " CALL_COLUMNS " FROM runs WHERE id = ?1 "
                                                 "AND kind = 'call'"));
  query->bind(1, id);
  ASSIGN_OR_RETURN(bool row, query->step());
  std::optional<CallRecord> call;
  if (row) call = read_call(*query);
  query->reset();
  return call;
}

// A child call's columns for the dashboard's tree: without input and output
// (NULL in their places), as a fan-out's children may carry megabytes each and
// a tree shows neither.
#define CHILD_CALL_COLUMNS                                           \
  "id, run_key, status, phase, function, endpoint, version, "        \
  "NULL, NULL, error_type, error, call_status, parent_id, root_id, " \
  "correlation_id, attempts, started_at, finished_at, expires_at, "  \
  "ready_at, lease_owner, lease_epoch, lease_expires_at, "           \
  "state_member, poll_min, poll_max, poll_deadline, poll_error, "    \
  "children_waiting, results_waiting, error_proto, max_attempts"

namespace {

// child_calls_of reads its parents this many at a time: SQLite has no array
// parameter without an extension (carray) or parsing text (json_each), so a
// chunk is a list of placeholders, those past the last parent left NULL (which
// is no call's parent).
constexpr int kParentsPerQuery = 100;

}  // namespace

// ?1 is the limit per parent, ?2 the limit in all, ?3... the parents: one arm
// per parent, each the first ?1 of its children along calls_by_parent_started,
// so that no parent's children are read past the limit. SQLite runs the arms
// of a UNION ALL one after the other, in their order, and stops at ?2: the
// parents after the one that fills it are not read.
const std::string& child_calls_of_sql() {
  static const std::string sql = [] {
    std::string arms;
    for (int i = 1; i <= kParentsPerQuery; ++i) {
      if (i > 1) arms += " UNION ALL ";
      arms += "SELECT * FROM (SELECT " CHILD_CALL_COLUMNS " FROM runs WHERE parent_id = ?" +
              std::to_string(i + 2) + " ORDER BY started_at, rowid LIMIT ?1)";
    }
    return arms + " LIMIT ?2";
  }();
  return sql;
}

namespace {

// Appends the rows of `query` to `calls`.
Status read_calls(Statement& query, std::vector<CallRecord>& calls) {
  while (true) {
    ASSIGN_OR_RETURN(bool row, query.step());
    if (!row) break;
    calls.push_back(read_call(query));
  }
  query.reset();
  return Status::ok();
}

}  // namespace

Result<std::vector<CallRecord>> child_calls(Database& db, const std::string& parent_id, int limit) {
  ASSIGN_OR_RETURN(Statement * query,
                   db.prepare("SELECT " CHILD_CALL_COLUMNS " FROM runs WHERE parent_id = ?1 "
                              "ORDER BY started_at, rowid LIMIT ?2"));
  query->bind(1, parent_id).bind(2, limit);
  std::vector<CallRecord> children;
  RETURN_IF_ERROR(read_calls(*query, children));
  return children;
}

Result<std::vector<CallRecord>> child_calls_of(Database& db,
                                               const std::vector<std::string>& parent_ids,
                                               int limit_per_parent, int limit_total) {
  std::vector<CallRecord> children;
  for (std::size_t first = 0; first < parent_ids.size(); first += kParentsPerQuery) {
    int room = limit_total - static_cast<int>(children.size());
    if (room <= 0) break;
    ASSIGN_OR_RETURN(Statement * query, db.prepare(child_calls_of_sql().c_str()));
    query->bind(1, limit_per_parent).bind(2, room);
    for (int i = 0; i < kParentsPerQuery; ++i) {
      if (first + i < parent_ids.size()) query->bind(i + 3, parent_ids[first + i]);
    }
    RETURN_IF_ERROR(read_calls(*query, children));
  }
  return children;
}

Result<std::vector<HistoryEvent>> call_history(Database& db, const std::string& id, int latest) {
  // Newest first to stop at `latest`, then turned around.
  ASSIGN_OR_RETURN(Statement * query,
                   db.prepare("SELECT number, kind, at, duration_us, attempt, call_status, "
                              "outcome, detail, children, results FROM call_history WHERE "
                              "call_id = ?1 ORDER BY number DESC LIMIT ?2"));
  query->bind(1, id).bind(2, latest);
  std::vector<HistoryEvent> events;
  while (true) {
    ASSIGN_OR_RETURN(bool row, query->step());
    if (!row) break;
    HistoryEvent e;
    e.call_id = id;
    e.number = query->int64(0);
    e.kind = query->text(1);
    e.at = query->int64(2);
    e.duration = query->optional_int64(3);
    e.attempt = static_cast<int>(query->int64(4));
    e.call_status = static_cast<int>(query->int64(5));
    e.outcome = query->text(6);
    e.detail = query->text(7);
    e.children = static_cast<int>(query->int64(8));
    e.results = static_cast<int>(query->int64(9));
    events.push_back(std::move(e));
  }
  query->reset();
  std::reverse(events.begin(), events.end());
  return events;
}

Result<std::optional<std::string>> coroutine_state(Database& db, const std::string& call_id) {
  return load_state(db, call_id);
}

}  // namespace ratchet::sqlite
