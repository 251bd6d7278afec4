// The blobs of values over 64 KiB in PostgreSQL (storage/blobs.hpp has the
// scheme). Writers of a fleet run at once, so a sweep must not delete a blob
// that a transaction still open is referring to: each writer of a blob holds
// the blob's advisory lock shared until it commits, and a sweep deletes only
// the blobs whose lock it gets exclusively, checking for references after it
// has the lock (a statement begun then sees every committed reference).
// A blob a sweep cannot lock stays, for a later sweep.
#pragma once

#include <string>
#include <vector>

#include "common/status.hpp"
#include "storage/blobs.hpp"
#include "storage/pg_db.hpp"

namespace ratchet::pg {

// Adds `value` as two parameters: the value column's, then its reference's.
Params& add_stored(Params& params, const blobs::Stored& value);
// Writes the blob of `value` if it goes out of line (insert or ignore).
Status put_blob(Connection& db, const blobs::Stored& value);
// The digests of the blobs `sql` (one text parameter, `id`) names.
Result<std::vector<std::string>> blob_references(Connection& db, const char* sql,
                                                 const std::string& id);
// Deletes those of `digests` that no row refers to any more; how many.
Result<int> sweep_blobs(Connection& db, const std::vector<std::string>& digests);
// Deletes every blob no row refers to; how many.
Result<int> sweep_all_blobs(Connection& db);

}  // namespace ratchet::pg
