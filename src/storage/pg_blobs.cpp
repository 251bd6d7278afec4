#include "storage/pg_blobs.hpp"

namespace ratchet::pg {

Params& add_stored(Params& params, const blobs::Stored& value) {
  params.add_bytes(value.in_row);
  return value.digest.empty() ? params.add_null() : params.add_bytes(value.digest);
}

Status put_blob(Connection& db, const blobs::Stored& value) {
  if (value.digest.empty()) return Status::ok();
  RETURN_IF_ERROR(
      db.run("SELECT pg_advisory_xact_lock_shared($1)", Params().add(blobs::lock_key(value.digest)))
          .status());
  return db
      .run("INSERT INTO blobs (digest, bytes) VALUES ($1, $2) ON CONFLICT (digest) DO NOTHING",
           Params().add_bytes(value.digest).add_bytes(value.bytes))
      .status();
}

Result<std::vector<std::string>> blob_references(Connection& db, const char* sql,
                                                 const std::string& id) {
  ASSIGN_OR_RETURN(Rows rows, db.query(sql, Params().add(id)));
  std::vector<std::string> digests;
  for (int i = 0; i < rows.size(); ++i) digests.push_back(rows[i].text(0));
  return digests;
}

Result<int> sweep_blobs(Connection& db, const std::vector<std::string>& digests) {
  int deleted = 0;
  for (const auto& digest : digests) {
    ASSIGN_OR_RETURN(Rows locked, db.query("SELECT (CASE WHEN pg_try_advisory_xact_lock($1) "
                                           "THEN 1 ELSE 0 END)::bigint",
                                           Params().add(blobs::lock_key(digest))));
    if (locked[0].int64(0) == 0) continue;  // being written: not garbage now
    ASSIGN_OR_RETURN(
        int gone, db.run("DELETE FROM blobs WHERE digest = $1 AND " RATCHET_BLOB_UNREFERENCED("$1"),
                         Params().add_bytes(digest)));
    deleted += gone;
  }
  return deleted;
}

Result<int> sweep_all_blobs(Connection& db) {
  ASSIGN_OR_RETURN(
      Rows garbage,
      db.query("SELECT digest FROM blobs WHERE " RATCHET_BLOB_UNREFERENCED("blobs.digest")));
  std::vector<std::string> digests;
  for (int i = 0; i < garbage.size(); ++i) digests.push_back(garbage[i].text(0));
  return sweep_blobs(db, digests);
}

}  // namespace ratchet::pg
