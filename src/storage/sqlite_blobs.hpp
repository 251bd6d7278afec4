// The blobs of values over 64 KiB in SQLite (storage/blobs.hpp has the scheme).
// SQLite has one writer at a time, so a sweep's check that nothing refers to
// a blob holds until it commits.
#pragma once

#include <string>
#include <vector>

#include "common/status.hpp"
#include "storage/blobs.hpp"
#include "storage/sqlite_db.hpp"

namespace ratchet::sqlite {

// Binds `value` to a value column (`value_index`) and its reference (`reference_index`).
void bind_stored(Statement& statement, int value_index, int reference_index,
                 const blobs::Stored& value);
// Writes the blob of `value` if it goes out of line (insert or ignore).
Status put_blob(Database& db, const blobs::Stored& value);
// The digests of the blobs `sql` (one text parameter, `id`) names: the
// references of rows about to be deleted.
Result<std::vector<std::string>> blob_references(Database& db, const char* sql,
                                                 const std::string& id);
// Deletes those of `digests` that no row refers to any more; how many.
Result<int> sweep_blobs(Database& db, const std::vector<std::string>& digests);
// Deletes every blob no row refers to; how many.
Result<int> sweep_all_blobs(Database& db);

}  // namespace ratchet::sqlite
