// Moving up: a copy of a whole SQLite store into a PostgreSQL one, jobs and
// calls, finished and in flight, row for row (docs/storage.md, "Moving to
// PostgreSQL").
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "common/clock.hpp"
#include "common/status.hpp"

namespace ratchet {

struct MigrationProgress {
  std::string table;  // the table being copied
  std::int64_t copied = 0;
  std::int64_t total = 0;  // rows of every table together
  std::int64_t done = 0;   // rows copied so far, every table together
};

struct MigrationCounts {
  std::int64_t runs = 0;
  std::int64_t call_results = 0;
  std::int64_t coroutine_states = 0;
  std::int64_t blobs = 0;  // values over 64 KiB, each once (storage/blobs.hpp)
};

// Copies the store at `sqlite_path` into the empty PostgreSQL store at
// `pg_url` (its schema is created if needed) in one PostgreSQL transaction,
// holding the SQLite store's write lock throughout so that the copy is one
// consistent instant of it. Calls that were leased by a server of the old
// store become claimable at once. kFailedPrecondition when the target already
// holds a history; nothing is written then, nor after any failure.
Result<MigrationCounts> copy_sqlite_to_postgres(
    const std::string& sqlite_path, const std::string& pg_url, const Clock& clock,
    const std::function<void(const MigrationProgress&)>& progress);

}  // namespace ratchet
