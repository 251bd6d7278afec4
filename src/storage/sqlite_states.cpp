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

// The base's revision, then each delta's, in order (the base's is the lowest).
Result<std::vector<std::uint64_t>> revisions_of(Database& db, const std::string& id) {
  ASSIGN_OR_RETURN(Statement * query,
                   db.prepare("SELECT revision FROM coroutine_states WHERE call_id = ?1 UNION "
                              "ALL SELECT revision FROM coroutine_deltas WHERE call_id = ?1 "
                              "ORDER BY 1"));
  query->bind(1, id);
  std::vector<std::uint64_t> revisions;
  while (true) {
    ASSIGN_OR_RETURN(bool row, query->step());
    if (!row) break;
    revisions.push_back(static_cast<std::uint64_t>(query->int64(0)));
  }
  query->reset();
  return revisions;
}

// The deltas from revision `from` on, and the blobs they refer to.
struct DeltaRows {
  std::vector<std::string> deltas;
  std::vector<std::string> blobs;
};
Result<DeltaRows> deltas_from(Database& db, const std::string& id, std::uint64_t from) {
  ASSIGN_OR_RETURN(Statement * query,
                   db.prepare("SELECT " RATCHET_DELTA_VALUE ", delta_blob FROM coroutine_deltas "
                              "WHERE call_id = ?1 AND revision >= ?2 ORDER BY revision"));
  query->bind(1, id).bind(2, static_cast<std::int64_t>(from));
  DeltaRows rows;
  while (true) {
    ASSIGN_OR_RETURN(bool row, query->step());
    if (!row) break;
    rows.deltas.push_back(query->text(0));
    if (auto blob = query->optional_text(1)) rows.blobs.push_back(std::move(*blob));
  }
  query->reset();
  return rows;
}

// Replaces the deltas from revision `from` on with `merged`, at the latest revision.
Status replace_deltas(Database& db, const std::string& id, std::uint64_t from, std::uint64_t latest,
                      const DeltaRows& rows, const std::string& merged) {
  ASSIGN_OR_RETURN(Statement * drop, db.prepare("DELETE FROM coroutine_deltas WHERE call_id = ?1 "
                                                "AND revision >= ?2"));
  drop->bind(1, id).bind(2, static_cast<std::int64_t>(from));
  RETURN_IF_ERROR(drop->run().status());
  const blobs::Stored stored = blobs::store(merged);
  RETURN_IF_ERROR(put_blob(db, stored));
  ASSIGN_OR_RETURN(Statement * insert,
                   db.prepare("INSERT INTO coroutine_deltas (call_id, revision, delta, "
                              "delta_blob) VALUES (?1, ?2, ?3, ?4)"));
  insert->bind(1, id).bind(2, static_cast<std::int64_t>(latest));
  bind_stored(*insert, 3, 4, stored);
  RETURN_IF_ERROR(insert->run().status());
  return sweep_blobs(db, rows.blobs).status();
}

// Whether merging the deltas from index `first` of the coroutine's `count`
// would hide good revisions: the first delta that does not assemble is one of
// them, after the first (protocol::may_hide_good_revisions).
Result<bool> merge_hides_good_revisions(Database& db, const std::string& id, std::size_t first,
                                        std::size_t count) {
  ASSIGN_OR_RETURN(auto base, one_blob(db,
                                       "SELECT " RATCHET_STATE_VALUE " FROM "
                                       "coroutine_states WHERE call_id = ?1",
                                       id));
  ASSIGN_OR_RETURN(auto good, with_deltas(db, id, base.value_or("")));
  return first < good.deltas && good.deltas < count;
}

// Merges the stored deltas before a new one is appended (protocol::merge_from),
// or folds them into a new base; deltas that do not merge are left as they
// are, and so are deltas whose merge would hide good revisions (a broken
// SDK's: the last good revision never moves back).
Status compact_deltas(Database& db, const std::string& id) {
  ASSIGN_OR_RETURN(auto revisions, revisions_of(db, id));
  const std::size_t first = protocol::merge_from(revisions);
  if (first + 1 >= revisions.size()) return Status::ok();
  ASSIGN_OR_RETURN(DeltaRows rows, deltas_from(db, id, revisions[first + 1]));
  std::optional<std::string> base;
  if (first == 0) {
    ASSIGN_OR_RETURN(base, one_blob(db,
                                    "SELECT " RATCHET_STATE_VALUE " FROM "
                                    "coroutine_states WHERE call_id = ?1",
                                    id));
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

Result<std::optional<std::string>> refuse_delta(Database& db, const std::string& id,
                                                const PollState& state) {
  if (!state.delta) return std::optional<std::string>();
  ASSIGN_OR_RETURN(std::uint64_t latest, latest_revision(db, id));
  return records::refuse_delta(state, latest);
}

Status save_state(Database& db, const std::string& id, const PollState& state) {
  if (state.delta) RETURN_IF_ERROR(compact_deltas(db, id));
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
  // Most calls that end are not coroutines: one look says so. No RETURNING
  // on the DELETE (see lease_ids in sqlite_calls.cpp).
  ASSIGN_OR_RETURN(Statement * any,
                   db.prepare("SELECT EXISTS (SELECT 1 FROM coroutine_states WHERE call_id = ?1) "
                              "OR EXISTS (SELECT 1 FROM coroutine_deltas WHERE call_id = ?1)"));
  any->bind(1, id);
  ASSIGN_OR_RETURN(bool row, any->step());
  bool has_state = row && any->int64(0) != 0;
  any->reset();
  if (!has_state) return Status::ok();
  ASSIGN_OR_RETURN(auto dropped, base_blob(db, id));
  ASSIGN_OR_RETURN(Statement * drop, db.prepare("DELETE FROM coroutine_states WHERE call_id = ?1"));
  drop->bind(1, id);
  RETURN_IF_ERROR(drop->run().status());
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

Result<protocol::GoodPrefix> with_deltas(Database& db, const std::string& id, std::string base) {
  ASSIGN_OR_RETURN(auto deltas, deltas_of(db, id));
  return protocol::assemble_good_prefix(base, deltas);
}

Result<bool> fold_deltas(Database& db, const std::string& id) {
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

Status replace_state(Database& db, const std::string& id, const std::string& state) {
  ASSIGN_OR_RETURN(std::uint64_t latest, latest_revision(db, id));
  PollState whole;
  whole.state = state;
  // An edit of a journal whose later deltas were broken is at the revision it
  // was assembled to, so that the SDK's next delta applies to it.
  whole.revision = protocol::journal_revision(state).value_or(latest);
  return save_state(db, id, whole);
}

}  // namespace ratchet::sqlite
