#include "storage/pg_calls.hpp"

#include <algorithm>
#include <limits>

#include "common/ids.hpp"
#include "storage/pg_blobs.hpp"
#include "storage/pg_repair.hpp"
#include "storage/pg_states.hpp"
#include "storage/records.hpp"

namespace ratchet::pg {
namespace {

#define CALL_COLUMNS RATCHET_CALL_COLUMNS

// The conditions under which the lease holder may write.
#define LEASED_UNDER_EPOCH "id = $1 AND lease_epoch = $2 AND phase = 'LEASED'"

// A claimed coroutine's stored state, as leased() needs it: none on the first
// attempt after a Poll that left a delta, which goes back instead of the base
// (state_to_send); reading the base there would read the whole journal of a
// compacted coroutine on every step, to discard it.
#define CLAIMED_STATE                                                                     \
  "(SELECT CASE WHEN runs.attempts = 1 AND EXISTS (SELECT 1 FROM coroutine_deltas WHERE " \
  "call_id = runs.id) THEN NULL ELSE " RATCHET_STATE_VALUE                                \
  " END FROM coroutine_states WHERE call_id = runs.id)"

using records::error_at;
using records::read_call;

// The fair claim's two parts (call.hpp, "fair claims"): the urgent calls, then
// the ready calls of one queue. Each locks the rows it returns and skips the
// rows another server's transaction has locked, so servers claiming at once
// take different calls without waiting.
constexpr const char* kClaimUrgent =
    "WITH expired AS (SELECT id FROM runs WHERE phase = 'LEASED' AND lease_expires_at <= $1 "
    "  ORDER BY lease_expires_at LIMIT $4 FOR UPDATE SKIP LOCKED), "
    "orphaned AS (SELECT id FROM runs WHERE phase = 'LEASED' AND lease_owner IN "
    "  (SELECT id FROM instances WHERE heartbeat_at <= $5) LIMIT $4 FOR UPDATE SKIP LOCKED), "
    "woken AS (SELECT id FROM runs WHERE phase = 'WAITING' AND poll_deadline <= $1 "
    "  ORDER BY poll_deadline LIMIT $4 FOR UPDATE SKIP LOCKED) "
    "UPDATE runs SET phase = 'LEASED', status = 'RUNNING', lease_owner = $2, "
    "lease_epoch = lease_epoch + 1, lease_expires_at = $3, attempts = attempts + 1, "
    "updated_at = $1 WHERE id IN (SELECT id FROM (SELECT id FROM expired UNION ALL "
    "SELECT id FROM orphaned UNION ALL SELECT id FROM woken) due LIMIT $4) "
    "RETURNING " CALL_COLUMNS ", " CLAIMED_STATE ", seq";
constexpr const char* kClaimQueue =
    "WITH ready AS (SELECT id FROM runs WHERE phase = 'READY' AND endpoint = $5 AND "
    "  function = $6 AND ready_at <= $1 ORDER BY ready_at LIMIT $4 FOR UPDATE SKIP LOCKED) "
    "UPDATE runs SET phase = 'LEASED', status = 'RUNNING', lease_owner = $2, "
    "lease_epoch = lease_epoch + 1, lease_expires_at = $3, attempts = attempts + 1, "
    "updated_at = $1 WHERE id IN (SELECT id FROM ready) "
    "RETURNING " CALL_COLUMNS ", " CLAIMED_STATE ", seq";
// The columns the claims return after CALL_COLUMNS: the state, then seq.
constexpr int kClaimStateColumn = records::kCallColumnCount;

// Up to `max_results` undelivered results of each claimed coroutine, in arrival
// order; the ids and limits come as comma-separated lists (ids are UUIDs).
constexpr const char* kWaitingResults =
    "SELECT p.id, r.child_id, r.correlation_id, " RATCHET_OUTPUT_VALUE
    ", "
    "r.error_type, r.error_message, "
    "r.error_proto "
    "FROM unnest(string_to_array($1, ','), string_to_array($2, ',')::bigint[]) AS p(id, lim) "
    "CROSS JOIN LATERAL (SELECT * FROM call_results WHERE parent_id = p.id AND NOT delivered "
    "ORDER BY arrived_at, seq LIMIT p.lim) r";

class CallTx final : public PgCallTransaction {
 public:
  CallTx(Connection& db, const Clock& clock, const FleetTiming& timing)
      : db_(db), now_(clock.now()), timing_(timing) {}

  bool made_work() const override { return made_work_; }

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
  Result<std::vector<ClaimedCall>> leased(Rows rows);
  // Runs a claim ($1 now, $2 owner, $3 lease until, $4 limit, $5 the
  // heartbeat before which an instance is dead) and reads what it leased.
  Result<std::vector<ClaimedCall>> claim_by(const char* sql, const std::string& owner,
                                            Micros lease_until, int limit);
  Result<bool> exists(const std::string& id);
  Status end_call(const std::string& id, const char* status, const CallEnd& end);
  Status attach_results(std::vector<ClaimedCall>& claimed);
  Status consume(const std::string& id, const std::vector<std::string>& delivered);
  Status discard_inbox(const std::string& id);
  Status deliver_to_parent(const std::string& id);
  Status wake_if_ready(const std::string& id);
  Status drop_state(const std::string& id) { return pg::drop_state(db_, id); }
  // A delta on a revision the store does not hold: the attempt is retried, and
  // its retry carries the whole journal. nullopt when `state` is taken.
  Result<std::optional<bool>> refuse(const std::string& id, std::int64_t epoch,
                                     const PollState& state);

  Connection& db_;
  Micros now_;
  FleetTiming timing_;
  bool made_work_ = false;
};

Result<std::string> CallTx::dispatch(const NewCall& call) {
  if (call.run_key_once && !call.run_key.empty()) {
    // Once ever: the key's newest call, whatever its status: the one created
    // last (seq), not the one with the latest started_at (the wall clock can
    // step back). Calls have no attempt_no: the order is runs_by_key_created's,
    // read with no sort. None yet: insert as below, where a concurrent first
    // dispatch of the key meets the index.
    ASSIGN_OR_RETURN(Rows newest,
                     db_.query("SELECT id FROM runs WHERE kind = 'call' AND run_key = $1 AND "
                               "attempt_no IS NULL ORDER BY attempt_no DESC NULLS LAST, "
                               "seq DESC LIMIT 1",
                               Params().add(call.run_key)));
    if (!newest.empty()) return newest[0].text(0);
  }
  std::string id = new_uuid();
  const blobs::Stored input = blobs::store(call.input);
  // With a run key whose call is live, the unique index turns the insert into
  // nothing (waiting for a concurrent dispatch of the key to commit first),
  // and the live call's id is returned instead.
  ASSIGN_OR_RETURN(
      Rows inserted,
      db_.query("INSERT INTO runs (id, kind, run_key, status, started_at, updated_at, function, "
                "endpoint, version, input, parent_id, root_id, correlation_id, expires_at, phase, "
                "ready_at, max_attempts, input_blob) VALUES ($1, 'call', NULLIF($2, ''), "
                "'STARTING', $3, $3, $4, $5, $6, $7, NULLIF($8, ''), $9, $10, $11, 'READY', $3, "
                "NULLIF($12, 0), $13) "
                "ON CONFLICT (kind, run_key) "
                "WHERE run_key IS NOT NULL AND status IN ('STARTING', 'RUNNING') DO NOTHING "
                "RETURNING id",
                Params()
                    .add(id)
                    .add(call.run_key)
                    .add(now_)
                    .add(call.function)
                    .add(call.endpoint)
                    .add(call.version)
                    .add_bytes(input.in_row)
                    .add(call.parent_id)
                    .add(call.root_id.empty() ? id : call.root_id)
                    .add(static_cast<std::int64_t>(call.correlation_id))
                    .add(call.expires_at)
                    .add(static_cast<std::int64_t>(call.max_attempts))
                    .add_bytes_or_null(input.digest)));
  if (!inserted.empty()) {
    RETURN_IF_ERROR(put_blob(db_, input));
    made_work_ = true;
    return id;
  }
  ASSIGN_OR_RETURN(Rows live, db_.query("SELECT id FROM runs WHERE kind = 'call' AND run_key = $1 "
                                        "AND status IN ('STARTING', 'RUNNING')",
                                        Params().add(call.run_key)));
  if (live.empty()) return internal_error("the live call of run key " + call.run_key + " vanished");
  return live[0].text(0);
}

Result<std::vector<ClaimedCall>> CallTx::claim_by(const char* sql, const std::string& owner,
                                                  Micros lease_until, int limit) {
  ASSIGN_OR_RETURN(Rows rows, db_.query(sql, Params()
                                                 .add(now_)
                                                 .add(owner)
                                                 .add(lease_until)
                                                 .add(limit)
                                                 .add(now_ - timing_.dead_after)));
  return leased(std::move(rows));
}

Result<std::vector<ClaimedCall>> CallTx::leased(Rows rows) {
  // UPDATE ... RETURNING comes in no particular order: creation order, as SQLite.
  std::vector<std::pair<std::int64_t, ClaimedCall>> ordered;
  ordered.reserve(static_cast<std::size_t>(rows.size()));
  for (int i = 0; i < rows.size(); ++i) {
    ClaimedCall item{read_call(rows[i]), {}};
    if (item.call.poll) {
      // The first attempt after a Poll goes where the Poll came from, which
      // holds the journal a delta applies to; any other may go elsewhere.
      ASSIGN_OR_RETURN(item.call.poll->state,
                       state_to_send(db_, item.call.id, rows[i].text(kClaimStateColumn),
                                     item.call.attempts == 1));
    }
    ordered.emplace_back(rows[i].int64(kClaimStateColumn + 1), std::move(item));
  }
  std::sort(ordered.begin(), ordered.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<ClaimedCall> claimed;
  claimed.reserve(ordered.size());
  for (auto& [seq, item] : ordered) claimed.push_back(std::move(item));
  RETURN_IF_ERROR(attach_results(claimed));
  return claimed;
}

Status CallTx::attach_results(std::vector<ClaimedCall>& claimed) {
  std::vector<std::string> ids, limits;
  for (const auto& item : claimed) {
    if (!item.call.poll) continue;
    ids.push_back(item.call.id);
    limits.push_back(std::to_string(std::max(1, item.call.poll->max_results)));
  }
  if (ids.empty()) return Status::ok();
  ASSIGN_OR_RETURN(Rows rows,
                   db_.query(kWaitingResults, Params().add(join(ids)).add(join(limits))));
  for (int i = 0; i < rows.size(); ++i) {
    Row row = rows[i];
    std::string parent = row.text(0);
    for (auto& item : claimed) {
      if (item.call.id != parent) continue;
      item.results.push_back(ChildResult{row.text(1), static_cast<std::uint64_t>(row.int64(2)),
                                         row.optional_text(3), error_at(row, 4, 5, 6)});
    }
  }
  return Status::ok();
}

Status CallTx::consume(const std::string& id, const std::vector<std::string>& delivered) {
  if (delivered.empty()) return Status::ok();
  ASSIGN_OR_RETURN(int consumed,
                   db_.run("UPDATE call_results SET delivered = true WHERE parent_id = $1 AND "
                           "child_id = ANY(string_to_array($2, ',')) AND NOT delivered",
                           Params().add(id).add(join(delivered))));
  return db_
      .run(
          "UPDATE runs SET results_waiting = GREATEST(0, results_waiting - $2), "
          "children_waiting = GREATEST(0, children_waiting - $2) WHERE id = $1",
          Params().add(id).add(consumed))
      .status();
}

Status CallTx::discard_inbox(const std::string& id) {
  RETURN_IF_ERROR(db_.run("UPDATE call_results SET delivered = true WHERE parent_id = $1 AND "
                          "NOT delivered",
                          Params().add(id))
                      .status());
  // The children still running are abandoned too: the call starts afresh and
  // reuses its correlation ids, so their results must never reach it. A result
  // already marked delivered makes deliver_to_parent's insert a no-op.
  return db_
      .run(
          "INSERT INTO call_results (parent_id, child_id, correlation_id, arrived_at, "
          "delivered) SELECT parent_id, id, correlation_id, $2, true FROM runs WHERE "
          "parent_id = $1 AND phase != 'DONE' ON CONFLICT DO NOTHING",
          Params().add(id).add(now_))
      .status();
}

// Puts a finished call's result in its parent's inbox and wakes the parent if
// that was what it waited for.
Status CallTx::deliver_to_parent(const std::string& id) {
  ASSIGN_OR_RETURN(int inserted,
                   db_.run("INSERT INTO call_results (parent_id, child_id, correlation_id, "
                           "output, output_blob, error_type, error_message, error_proto, "
                           "arrived_at) SELECT parent_id, id, correlation_id, output, "
                           "output_blob, error_type, error, "
                           "error_proto, $2 FROM runs WHERE id = $1 AND parent_id IS NOT NULL "
                           "ON CONFLICT DO NOTHING",
                           Params().add(id).add(now_)));
  if (inserted == 0) return Status::ok();
  // Counting the result and waking the parent are one statement: the parent's
  // row is locked once.
  ASSIGN_OR_RETURN(
      Rows woken,
      db_.query("UPDATE runs SET results_waiting = results_waiting + 1, "
                "phase = CASE WHEN phase = 'WAITING' AND results_waiting + 1 >= poll_min "
                "THEN 'READY' ELSE phase END, "
                "ready_at = CASE WHEN phase = 'WAITING' AND results_waiting + 1 >= poll_min "
                "THEN $2 ELSE ready_at END "
                "WHERE id = (SELECT parent_id FROM runs WHERE id = $1) RETURNING phase",
                Params().add(id).add(now_)));
  if (!woken.empty() && woken[0].text(0) == "READY") made_work_ = true;
  return Status::ok();
}

Status CallTx::wake_if_ready(const std::string& id) {
  ASSIGN_OR_RETURN(int woken,
                   db_.run("UPDATE runs SET phase = 'READY', ready_at = $2 WHERE id = $1 AND "
                           "phase = 'WAITING' AND results_waiting >= poll_min",
                           Params().add(id).add(now_)));
  if (woken > 0) made_work_ = true;
  return Status::ok();
}

Result<bool> CallTx::finish(const std::string& id, std::int64_t epoch, const CallEnd& end,
                            const std::vector<std::string>& delivered) {
  Params params;
  params.add(id).add(epoch).add(end.succeeded ? "SUCCEEDED" : "FAILED");
  const blobs::Stored output =
      blobs::store(end.output ? std::string_view(*end.output) : std::string_view());
  end.output ? add_stored(params, output) : params.add_null().add_null();
  if (end.error) {
    params.add(end.error->type).add(end.error->message);
  } else {
    params.add_null().add_null();
  }
  params.add(end.call_status).add(now_);
  params.add_bytes_or_null(end.error ? end.error->encoded : std::string());
  ASSIGN_OR_RETURN(
      Rows done,
      db_.query("UPDATE runs SET status = $3, phase = 'DONE', output = $4, output_blob = $5, "
                "error_type = $6, error = $7, error_proto = $10, call_status = $8, "
                "finished_at = $9, "
                "updated_at = $9, "
                "lease_owner = NULL, lease_expires_at = NULL, state_member = NULL, "
                "poll_min = NULL, poll_max = NULL, poll_deadline = NULL, poll_error = NULL "
                "WHERE " LEASED_UNDER_EPOCH " RETURNING parent_id IS NOT NULL, "
                "(SELECT count(*) FROM coroutine_states WHERE call_id = $1)",
                params));
  if (done.empty()) return false;
  RETURN_IF_ERROR(put_blob(db_, output));
  bool has_parent = done[0].int64(0) != 0;
  if (done[0].int64(1) > 0) RETURN_IF_ERROR(drop_state(id));
  RETURN_IF_ERROR(consume(id, delivered));
  if (has_parent) RETURN_IF_ERROR(deliver_to_parent(id));
  return true;
}

Result<bool> CallTx::release(const std::string& id, std::int64_t epoch) {
  ASSIGN_OR_RETURN(int changed,
                   db_.run("UPDATE runs SET phase = 'READY', ready_at = $3, lease_owner = NULL, "
                           "lease_expires_at = NULL, updated_at = $3 WHERE " LEASED_UNDER_EPOCH,
                           Params().add(id).add(epoch).add(now_)));
  if (changed == 1) made_work_ = true;
  return changed == 1;
}

Result<bool> CallTx::retry(const std::string& id, std::int64_t epoch, Micros ready_at,
                           const CallError& reason) {
  ASSIGN_OR_RETURN(int changed,
                   db_.run("UPDATE runs SET phase = 'READY', ready_at = $3, error_type = $4, "
                           "error = $5, error_proto = $7, lease_owner = NULL, "
                           "lease_expires_at = NULL, "
                           "updated_at = $6 WHERE " LEASED_UNDER_EPOCH,
                           Params()
                               .add(id)
                               .add(epoch)
                               .add(ready_at)
                               .add(reason.type)
                               .add(reason.message)
                               .add(now_)
                               .add_bytes_or_null(reason.encoded)));
  if (changed == 1 && ready_at <= now_) made_work_ = true;
  return changed == 1;
}

Result<bool> CallTx::resend_whole(const std::string& id, std::int64_t epoch) {
  ASSIGN_OR_RETURN(bool released, release(id, epoch));
  if (!released) return false;
  ASSIGN_OR_RETURN(bool folded, fold_deltas(db_, id));
  if (!folded) return true;
  RETURN_IF_ERROR(
      db_.run("UPDATE runs SET attempts = attempts - 1 WHERE id = $1", Params().add(id)).status());
  return true;
}

Result<std::vector<std::string>> CallTx::hold_missing_blobs(const std::string& why) {
  ASSIGN_OR_RETURN(
      Rows rows,
      db_.query("UPDATE runs SET phase = 'HELD', attempts = 0, error_type = 'MissingBlob', "
                "error = $1, error_proto = NULL, lease_owner = NULL, lease_expires_at = NULL, "
                "updated_at = $2 WHERE kind = 'call' AND phase NOT IN ('DONE', 'HELD') AND id "
                "IN (" RATCHET_CALLS_MISSING_BLOBS("NOT delivered") ") RETURNING id",
                Params().add(why).add(now_)));
  std::vector<std::string> held;
  for (int i = 0; i < rows.size(); ++i) held.push_back(rows[i].text(0));
  return held;
}

Result<bool> CallTx::tail_call(const std::string& id, std::int64_t epoch,
                               const std::string& function, const std::string& input,
                               const std::vector<std::string>& delivered) {
  const blobs::Stored stored = blobs::store(input);
  ASSIGN_OR_RETURN(int changed,
                   db_.run("UPDATE runs SET function = $3, input = $4, input_blob = $6, "
                           "phase = 'READY', "
                           "ready_at = $5, attempts = 0, error_type = NULL, error = NULL, "
                           "error_proto = NULL, lease_owner = NULL, lease_expires_at = NULL, "
                           "state_member = NULL, "
                           "poll_min = NULL, poll_max = NULL, poll_deadline = NULL, "
                           "poll_error = NULL, children_waiting = 0, results_waiting = 0, "
                           "updated_at = $5 WHERE " LEASED_UNDER_EPOCH,
                           Params()
                               .add(id)
                               .add(epoch)
                               .add(function)
                               .add_bytes(stored.in_row)
                               .add(now_)
                               .add_bytes_or_null(stored.digest)));
  if (changed == 0) return false;
  RETURN_IF_ERROR(put_blob(db_, stored));
  (void)delivered;  // the new function starts afresh: the whole inbox is stale
  made_work_ = true;
  RETURN_IF_ERROR(drop_state(id));
  RETURN_IF_ERROR(discard_inbox(id));
  return true;
}

Result<bool> CallTx::suspend(const std::string& id, std::int64_t epoch, const PollState& state,
                             const std::vector<NewCall>& children,
                             const std::vector<std::string>& delivered) {
  ASSIGN_OR_RETURN(auto refused, refuse(id, epoch, state));
  if (refused) return *refused;
  ASSIGN_OR_RETURN(Rows updated,
                   db_.query("UPDATE runs SET phase = 'WAITING', attempts = 0, state_member = $3, "
                             "poll_min = $4, poll_max = $5, poll_deadline = $6, poll_error = NULL, "
                             "lease_owner = NULL, lease_expires_at = NULL, children_waiting = "
                             "children_waiting + $7, updated_at = $8 WHERE " LEASED_UNDER_EPOCH
                             " RETURNING root_id",
                             Params()
                                 .add(id)
                                 .add(epoch)
                                 .add(state.member)
                                 .add(state.min_results)
                                 .add(state.max_results)
                                 .add(state.deadline)
                                 .add(static_cast<int>(children.size()))
                                 .add(now_)));
  if (updated.empty()) return false;
  std::string root_id = updated[0].text(0);
  RETURN_IF_ERROR(save_state(db_, id, state));
  RETURN_IF_ERROR(consume(id, delivered));
  for (NewCall child : children) {
    child.parent_id = id;
    child.root_id = root_id;
    child.run_key.clear();
    RETURN_IF_ERROR(dispatch(child).status());
  }
  RETURN_IF_ERROR(wake_if_ready(id));
  return true;
}

Result<bool> CallTx::reject_children(const std::string& id, std::int64_t epoch,
                                     const PollState& state, const CallError& error,
                                     const std::vector<std::string>& delivered) {
  ASSIGN_OR_RETURN(auto refused, refuse(id, epoch, state));
  if (refused) return *refused;
  ASSIGN_OR_RETURN(int changed,
                   db_.run("UPDATE runs SET phase = 'READY', ready_at = $3, state_member = $4, "
                           "poll_min = $5, poll_max = $6, poll_deadline = $3, poll_error = $7, "
                           "lease_owner = NULL, lease_expires_at = NULL, updated_at = $3 "
                           "WHERE " LEASED_UNDER_EPOCH,
                           Params()
                               .add(id)
                               .add(epoch)
                               .add(now_)
                               .add(state.member)
                               .add(state.min_results)
                               .add(state.max_results)
                               .add(records::error_to_json(error))));
  if (changed == 0) return false;
  made_work_ = true;
  RETURN_IF_ERROR(save_state(db_, id, state));
  RETURN_IF_ERROR(consume(id, delivered));
  return true;
}

Result<bool> CallTx::restart(const std::string& id, std::int64_t epoch, Micros ready_at,
                             const CallError& reason) {
  ASSIGN_OR_RETURN(int changed,
                   db_.run("UPDATE runs SET phase = 'READY', ready_at = $3, state_member = NULL, "
                           "poll_min = NULL, poll_max = NULL, poll_deadline = NULL, "
                           "poll_error = NULL, children_waiting = 0, results_waiting = 0, "
                           "lease_owner = NULL, lease_expires_at = NULL, updated_at = $4, "
                           "error_type = $5, error = $6, error_proto = $7 "
                           "WHERE " LEASED_UNDER_EPOCH,
                           Params()
                               .add(id)
                               .add(epoch)
                               .add(ready_at)
                               .add(now_)
                               .add(reason.type)
                               .add(reason.message)
                               .add_bytes_or_null(reason.encoded)));
  if (changed == 0) return false;
  if (ready_at <= now_) made_work_ = true;
  RETURN_IF_ERROR(drop_state(id));
  RETURN_IF_ERROR(discard_inbox(id));
  return true;
}

Result<bool> CallTx::hold(const std::string& id, std::int64_t epoch, const CallError& report) {
  // The state and the inbox stay: a repair resumes from them, and the results
  // this attempt carried are delivered again then.
  ASSIGN_OR_RETURN(int changed,
                   db_.run("UPDATE runs SET phase = 'HELD', attempts = 0, error_type = $3, "
                           "error = $4, error_proto = $6, lease_owner = NULL, "
                           "lease_expires_at = NULL, updated_at = $5 WHERE " LEASED_UNDER_EPOCH,
                           Params()
                               .add(id)
                               .add(epoch)
                               .add(report.type)
                               .add(report.message)
                               .add(now_)
                               .add_bytes_or_null(report.encoded)));
  return changed == 1;
}

Result<std::optional<bool>> CallTx::refuse(const std::string& id, std::int64_t epoch,
                                           const PollState& state) {
  ASSIGN_OR_RETURN(auto reason, refuse_delta(db_, id, state));
  if (!reason) return std::optional<bool>();
  ASSIGN_OR_RETURN(bool retried, retry(id, epoch, now_, CallError{"JournalDeltaRefused", *reason}));
  return std::optional<bool>(retried);
}

Result<std::optional<Micros>> CallTx::next_due() {
  // Leases of instances that stopped heartbeating are due when they are seen
  // dead; the safety poll finds those.
  ASSIGN_OR_RETURN(Rows rows,
                   db_.query("SELECT LEAST((SELECT MIN(ready_at) FROM runs WHERE phase = 'READY'), "
                             "(SELECT MIN(poll_deadline) FROM runs WHERE phase = 'WAITING'), "
                             "(SELECT MIN(lease_expires_at) FROM runs WHERE phase = 'LEASED'))"));
  if (rows.empty() || rows[0].is_null(0)) return std::optional<Micros>();
  return std::optional<Micros>(rows[0].int64(0));
}

Result<std::optional<Micros>> CallTx::next_due_after(Micros after) {
  ASSIGN_OR_RETURN(
      Rows rows,
      db_.query("SELECT LEAST((SELECT MIN(ready_at) FROM runs WHERE phase = 'READY' AND ready_at > "
                "$1), (SELECT MIN(poll_deadline) FROM runs WHERE phase = 'WAITING' AND "
                "poll_deadline > $1), (SELECT MIN(lease_expires_at) FROM runs WHERE phase = "
                "'LEASED' AND lease_expires_at > $1))",
                Params().add(after)));
  if (rows.empty() || rows[0].is_null(0)) return std::optional<Micros>();
  return std::optional<Micros>(rows[0].int64(0));
}

Result<std::vector<ClaimedCall>> CallTx::claim_urgent(const std::string& owner, Micros lease_until,
                                                      int limit) {
  return claim_by(kClaimUrgent, owner, lease_until, limit);
}

Result<std::vector<QueueKey>> CallTx::due_queues(const QueueKey& after, int limit) {
  // A loose index scan of calls_ready_by_queue (one probe per queue).
  ASSIGN_OR_RETURN(
      Rows rows,
      db_.query("WITH RECURSIVE q(endpoint, function) AS ("
                "(SELECT endpoint, function FROM runs WHERE phase = 'READY' "
                "ORDER BY endpoint, function LIMIT 1) UNION ALL "
                "SELECT n.endpoint, n.function FROM q CROSS JOIN LATERAL "
                "(SELECT endpoint, function FROM runs WHERE phase = 'READY' AND "
                "(endpoint, function) > (q.endpoint, q.function) "
                "ORDER BY endpoint, function LIMIT 1) n) "
                "SELECT endpoint, function FROM q WHERE EXISTS (SELECT 1 FROM runs WHERE "
                "phase = 'READY' AND endpoint = q.endpoint AND function = q.function AND "
                "ready_at <= $1)",
                Params().add(now_)));
  std::vector<QueueKey> all;
  for (int i = 0; i < rows.size(); ++i) all.push_back(QueueKey{rows[i].text(0), rows[i].text(1)});
  // From just after `after`, wrapping around, in byte order (the scan walks
  // the database's collation, whose order may differ).
  std::sort(all.begin(), all.end());
  auto start = std::upper_bound(all.begin(), all.end(), after);
  std::rotate(all.begin(), start, all.end());
  if (static_cast<int>(all.size()) > limit) all.resize(static_cast<std::size_t>(limit));
  return all;
}

Result<std::vector<ClaimedCall>> CallTx::claim_queue(const QueueKey& queue,
                                                     const std::string& owner, Micros lease_until,
                                                     int limit) {
  ASSIGN_OR_RETURN(Rows rows, db_.query(kClaimQueue, Params()
                                                         .add(now_)
                                                         .add(owner)
                                                         .add(lease_until)
                                                         .add(limit)
                                                         .add(queue.endpoint)
                                                         .add(queue.function)));
  return leased(std::move(rows));
}

Status CallTx::record_history(const std::vector<HistoryEvent>& events) {
  // One round trip an event: the event that leaves the tail window goes in
  // the same statement, unless it is in the head. The DELETE sees the rows
  // from before the INSERT, which is all it needs (the one it deletes is old).
  for (const auto& e : events) {
    RETURN_IF_ERROR(
        db_.run("WITH added AS (INSERT INTO call_history (call_id, number, kind, at, "
                "duration_us, attempt, call_status, outcome, detail, children, results) VALUES "
                "($1, (SELECT COALESCE(MAX(number), 0) + 1 FROM call_history WHERE call_id = "
                "$1), $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING number) "
                "DELETE FROM call_history USING added WHERE call_history.call_id = $1 AND "
                "call_history.number = added.number - $11 AND call_history.number > $12",
                Params()
                    .add(e.call_id)
                    .add(e.kind)
                    .add(e.at)
                    .add(e.duration)
                    .add(e.attempt)
                    .add(e.call_status)
                    .add(e.outcome)
                    .add(records::history_detail(e.detail))
                    .add(e.children)
                    .add(e.results)
                    .add(kHistoryTail)
                    .add(kHistoryHead))
            .status());
  }
  return Status::ok();
}

Result<bool> CallTx::exists(const std::string& id) {
  ASSIGN_OR_RETURN(
      Rows rows, db_.query("SELECT 1 FROM runs WHERE id = $1 AND kind = 'call'", Params().add(id)));
  return !rows.empty();
}

Status CallTx::end_call(const std::string& id, const char* status, const CallEnd& end) {
  // The last attempt's error, if any, stays in the message: it is often why.
  // The endpoint's error bytes go: this error is the server's (call.hpp).
  RETURN_IF_ERROR(db_.run("UPDATE runs SET status = $2, phase = 'DONE', error_type = $3, "
                          "error = $4 || COALESCE(' (last error: ' || error_type || ': ' || "
                          "error || ')', ''), error_proto = NULL, call_status = $5, "
                          "finished_at = $6, "
                          "updated_at = $6, lease_owner = NULL, lease_expires_at = NULL, "
                          "state_member = NULL, poll_min = NULL, poll_max = NULL, "
                          "poll_deadline = NULL, poll_error = NULL "
                          "WHERE id = $1 AND phase != 'DONE'",
                          Params()
                              .add(id)
                              .add(status)
                              .add(end.error ? end.error->type : "")
                              .add(end.error ? end.error->message : "")
                              .add(end.call_status)
                              .add(now_))
                      .status());
  return drop_state(id);
}

Result<std::vector<std::string>> CallTx::cancel(const std::string& id, const std::string& actor) {
  ASSIGN_OR_RETURN(bool found, exists(id));
  if (!found) return not_found("no call with dispatch id " + id);
  ASSIGN_OR_RETURN(Rows rows,
                   db_.query("WITH RECURSIVE tree(id) AS (SELECT $1::text UNION SELECT runs.id "
                             "FROM runs JOIN tree ON runs.parent_id = tree.id) SELECT runs.id "
                             "FROM runs JOIN tree USING (id) WHERE runs.phase != 'DONE' "
                             "FOR UPDATE OF runs",
                             Params().add(id)));
  std::vector<std::string> live;
  for (int i = 0; i < rows.size(); ++i) live.push_back(rows[i].text(0));
  auto self = std::find(live.begin(), live.end(), id);
  if (self == live.end()) return live;  // done already: nothing to cancel
  std::iter_swap(live.begin(), self);
  for (const auto& each : live) {
    RETURN_IF_ERROR(end_call(each, "CANCELLED", records::cancelled_end(each, id, actor)));
    RETURN_IF_ERROR(record_action(db_, now_, records::cancelled_action(each, id, actor)));
  }
  RETURN_IF_ERROR(deliver_to_parent(id));
  return live;
}

Result<bool> CallTx::retry_now(const std::string& id, const std::string& actor) {
  ASSIGN_OR_RETURN(int changed,
                   db_.run("UPDATE runs SET ready_at = $2, updated_at = $2 WHERE id = $1 AND "
                           "kind = 'call' AND phase = 'READY' AND ready_at > $2",
                           Params().add(id).add(now_)));
  if (changed == 0) {
    ASSIGN_OR_RETURN(bool found, exists(id));
    if (!found) return not_found("no call with dispatch id " + id);
    return false;
  }
  made_work_ = true;
  RETURN_IF_ERROR(record_action(db_, now_, records::retried_now_action(id, actor)));
  return true;
}

Result<std::vector<std::string>> CallTx::expire(const CallEnd& end, int limit) {
  ASSIGN_OR_RETURN(Rows rows,
                   db_.query("SELECT id FROM runs WHERE expires_at IS NOT NULL AND phase != "
                             "'DONE' AND phase != 'HELD' AND expires_at <= $1 ORDER BY "
                             "expires_at LIMIT $2 FOR UPDATE SKIP LOCKED",
                             Params().add(now_).add(limit)));
  std::vector<std::string> ids;
  std::vector<HistoryEvent> events;
  for (int i = 0; i < rows.size(); ++i) {
    std::string id = rows[i].text(0);
    RETURN_IF_ERROR(end_call(id, "FAILED", end));
    events.push_back(records::expired_event(id, end, now_));
    RETURN_IF_ERROR(deliver_to_parent(id));
    ids.push_back(std::move(id));
  }
  RETURN_IF_ERROR(record_history(events));
  return ids;
}

Result<std::optional<Micros>> CallTx::next_expiry() {
  ASSIGN_OR_RETURN(Rows rows, db_.query("SELECT MIN(expires_at) FROM runs WHERE expires_at IS "
                                        "NOT NULL AND phase != 'DONE' AND phase != 'HELD'"));
  if (rows.empty() || rows[0].is_null(0)) return std::optional<Micros>();
  return std::optional<Micros>(rows[0].int64(0));
}

Result<QueueFigures> CallTx::queue_figures() {
  QueueFigures figures;
  ASSIGN_OR_RETURN(Rows ready, db_.query("SELECT function, COUNT(*) FROM runs WHERE phase = "
                                         "'READY' AND ready_at <= $1 GROUP BY function",
                                         Params().add(now_)));
  for (int i = 0; i < ready.size(); ++i) figures.ready[ready[i].text(0)] = ready[i].int64(1);
  ASSIGN_OR_RETURN(Rows waiting, db_.query("SELECT COUNT(*) FROM runs WHERE phase = 'WAITING'"));
  figures.waiting = waiting.empty() ? 0 : waiting[0].int64(0);
  return figures;
}

}  // namespace

std::unique_ptr<PgCallTransaction> make_call_transaction(Connection& db, const Clock& clock,
                                                         const FleetTiming& timing) {
  return std::make_unique<CallTx>(db, clock, timing);
}

Result<std::vector<HistoryEvent>> call_history(Connection& db, const std::string& id, int latest) {
  // Newest first to stop at `latest`, then turned around.
  ASSIGN_OR_RETURN(Rows rows,
                   db.query("SELECT number, kind, at, duration_us, attempt, call_status, "
                            "outcome, detail, children, results FROM call_history WHERE "
                            "call_id = $1 ORDER BY number DESC LIMIT $2",
                            Params().add(id).add(latest)));
  std::vector<HistoryEvent> events;
  for (int i = rows.size() - 1; i >= 0; --i) {
    Row row = rows[i];
    events.push_back(HistoryEvent{id, row.text(1), row.int64(0), row.int64(2),
                                  row.optional_int64(3), static_cast<int>(row.int64(4)),
                                  static_cast<int>(row.int64(5)), row.text(6), row.text(7),
                                  static_cast<int>(row.int64(8)), static_cast<int>(row.int64(9))});
  }
  return events;
}

Result<std::optional<CallRecord>> find_call(Connection& db, const std::string& id) {
  ASSIGN_OR_RETURN(Rows rows, db.query("SELECT " CALL_COLUMNS " FROM runs WHERE id = $1 AND "
                                       "kind = 'call'",
                                       Params().add(id)));
  if (rows.empty()) return std::optional<CallRecord>();
  return std::optional<CallRecord>(read_call(rows[0]));
}

}  // namespace ratchet::pg
