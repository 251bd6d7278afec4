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

// The base's revision, then each delta's, in order (the base's is the lowest).
Result<std::vector<std::uint64_t>> revisions_of(Connection& db, const std::string& id) {
  ASSIGN_OR_RETURN(Rows rows, db.query("SELECT revision FROM coroutine_states WHERE call_id = $1 "
                                       "UNION ALL SELECT revision FROM coroutine_deltas WHERE "
                                       "call_id = $1 ORDER BY 1",
                                       Params().add(id)));
  std::vector<std::uint64_t> revisions;
  for (int i = 0; i < rows.size(); ++i) {
    revisions.push_back(static_cast<std::uint64_t>(rows[i].int64(0)));
  }
  return revisions;
}

// The deltas from revision `from` on, and the blobs they refer to.
struct DeltaRows {
  std::vector<std::string> deltas;
  std::vector<std::string> blobs;
};
Result<DeltaRows> deltas_from(Connection& db, const std::string& id, std::uint64_t from) {
  ASSIGN_OR_RETURN(Rows rows, db.query("SELECT " RATCHET_DELTA_VALUE ", delta_blob FROM "
                                       "coroutine_deltas WHERE call_id = $1 AND revision >= $2 "
                                       "ORDER BY revision",
                                       Params().add(id).add(static_cast<std::int64_t>(from))));
  DeltaRows found;
  for (int i = 0; i < rows.size(); ++i) {
    found.deltas.push_back(rows[i].text(0));
    if (!rows[i].is_null(1)) found.blobs.push_back(rows[i].text(1));
  }
  return found;
}

// Replaces the deltas from revision `from` on with `merged`, at the latest revision.
Status replace_deltas(Connection& db, const std::string& id, std::uint64_t from,
                      std::uint64_t latest, const DeltaRows& rows, const std::string& merged) {
  RETURN_IF_ERROR(db.run("DELETE FROM coroutine_deltas WHERE call_id = $1 AND revision >= $2",
                         Params().add(id).add(static_cast<std::int64_t>(from)))
                      .status());
  const blobs::Stored stored = blobs::store(merged);
  RETURN_IF_ERROR(put_blob(db, stored));
  Params params;
  params.add(id).add(static_cast<std::int64_t>(latest));
  RETURN_IF_ERROR(db.run("INSERT INTO coroutine_deltas (call_id, revision, delta, delta_blob) "
                         "VALUES ($1, $2, $3, $4)",
                         add_stored(params, stored))
                      .status());
  return sweep_blobs(db, rows.blobs).status();
}

// Whether merging the deltas from index `first` of the coroutine's `count`
// would hide good revisions: the first delta that does not assemble is one of
// them, after the first (protocol::may_hide_good_revisions).
Result<bool> merge_hides_good_revisions(Connection& db, const std::string& id, std::size_t first,
                                        std::size_t count) {
  ASSIGN_OR_RETURN(Rows stored, db.query("SELECT " RATCHET_STATE_VALUE " FROM "
                                         "coroutine_states WHERE call_id = $1",
                                         Params().add(id)));
  ASSIGN_OR_RETURN(auto good, with_deltas(db, id, stored.empty() ? "" : stored[0].text(0)));
  return first < good.deltas && good.deltas < count;
}

// Merges the stored deltas before a new one is appended (protocol::merge_from),
// or folds them into a new base; deltas that do not merge are left as they
// are, and so are deltas whose merge would hide good revisions (a broken
// SDK's: the last good revision never moves back).
Status compact_deltas(Connection& db, const std::string& id) {
  ASSIGN_OR_RETURN(auto revisions, revisions_of(db, id));
  const std::size_t first = protocol::merge_from(revisions);
  if (first + 1 >= revisions.size()) return Status::ok();
  ASSIGN_OR_RETURN(DeltaRows rows, deltas_from(db, id, revisions[first + 1]));
  std::optional<std::string> base;
  if (first == 0) {
    ASSIGN_OR_RETURN(Rows stored, db.query("SELECT " RATCHET_STATE_VALUE " FROM "
                                           "coroutine_states WHERE call_id = $1",
                                           Params().add(id)));
    if (!stored.empty()) base = stored[0].text(0);
  }
  auto compacted = protocol::compact(base, rows.deltas);
  if (!compacted) return Status::ok();
  if (!compacted->base && protocol::may_hide_good_revisions(rows.deltas)) {
    ASSIGN_OR_RETURN(bool hides, merge_hides_good_revisions(db, id, first, revisions.size() - 1));
    if (hides) return Status::ok();
  }
  if (compacted->base) {
    PollState whole;
    whole.state = std::move(compacted->state);
    whole.revision = revisions.back();
    return save_state(db, id, whole);
  }
  return replace_deltas(db, id, revisions[first + 1], revisions.back(), rows, compacted->state);
}

}  // namespace

Result<std::optional<std::string>> refuse_delta(Connection& db, const std::string& id,
                                                const PollState& state) {
  if (!state.delta) return std::optional<std::string>();
  ASSIGN_OR_RETURN(std::uint64_t latest, latest_revision(db, id));
  return records::refuse_delta(state, latest);
}

Status save_state(Connection& db, const std::string& id, const PollState& state) {
  if (state.delta) RETURN_IF_ERROR(compact_deltas(db, id));
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

Result<protocol::GoodPrefix> with_deltas(Connection& db, const std::string& id, std::string base) {
  ASSIGN_OR_RETURN(auto deltas, deltas_of(db, id));
  return protocol::assemble_good_prefix(base, deltas);
}

Result<bool> fold_deltas(Connection& db, const std::string& id) {
  ASSIGN_OR_RETURN(auto revisions, revisions_of(db, id));
  // No deltas: what went was the base itself, and a JournalNotHeld to it is
  // no missing frame (a base of the delta's type): the attempt counts.
  if (revisions.size() < 2) return false;
  ASSIGN_OR_RETURN(auto whole, load_state(db, id));
  // A BrokenJournal when the deltas do not assemble.
  if (!whole || !protocol::journal_revision(*whole)) return false;
  PollState state;
  state.state = std::move(*whole);
  state.revision = revisions.back();
  RETURN_IF_ERROR(save_state(db, id, state));
  return true;
}

Status replace_state(Connection& db, const std::string& id, const std::string& state) {
  ASSIGN_OR_RETURN(std::uint64_t latest, latest_revision(db, id));
  PollState whole;
  whole.state = state;
  // An edit of a journal whose later deltas were broken is at the revision it
  // was assembled to, so that the SDK's next delta applies to it.
  whole.revision = protocol::journal_revision(state).value_or(latest);
  return save_state(db, id, whole);
}

}  // namespace ratchet::pg
