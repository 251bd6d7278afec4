#include "storage/sqlite_blobs.hpp"

namespace ratchet::sqlite {

void bind_stored(Statement& statement, int value_index, int reference_index,
                 const blobs::Stored& value) {
  statement.bind_blob(value_index, value.in_row);
  if (value.digest.empty()) {
    statement.bind_null(reference_index);
  } else {
    statement.bind_blob(reference_index, value.digest);
  }
}

Status put_blob(Database& db, const blobs::Stored& value) {
  if (value.digest.empty()) return Status::ok();
  ASSIGN_OR_RETURN(Statement * insert,
                   db.prepare("INSERT INTO blobs (digest, bytes) VALUES (?1, ?2) "
                              "ON CONFLICT (digest) DO NOTHING"));
  insert->bind_blob(1, value.digest).bind_blob(2, value.bytes);
  return insert->run().status();
}

Result<std::vector<std::string>> blob_references(Database& db, const char* sql,
                                                 const std::string& id) {
  ASSIGN_OR_RETURN(Statement * query, db.prepare(sql));
  query->bind(1, id);
  std::vector<std::string> digests;
  while (true) {
    ASSIGN_OR_RETURN(bool row, query->step());
    if (!row) break;
    digests.push_back(query->text(0));
  }
  query->reset();
  return digests;
}

Result<int> sweep_blobs(Database& db, const std::vector<std::string>& digests) {
  if (digests.empty()) return 0;
  ASSIGN_OR_RETURN(
      Statement * sweep,
      db.prepare("DELETE FROM blobs WHERE digest = ?1 AND " RATCHET_BLOB_UNREFERENCED("?1")));
  int deleted = 0;
  for (const auto& digest : digests) {
    sweep->reset();
    sweep->bind_blob(1, digest);
    ASSIGN_OR_RETURN(int gone, sweep->run());
    deleted += gone;
  }
  return deleted;
}

Result<int> sweep_all_blobs(Database& db) {
  ASSIGN_OR_RETURN(
      Statement * sweep,
      db.prepare("DELETE FROM blobs WHERE " RATCHET_BLOB_UNREFERENCED("blobs.digest")));
  return sweep->run();
}

}  // namespace ratchet::sqlite
