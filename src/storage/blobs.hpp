// Values over 64 KiB out of line, stored once by content (docs/storage.md,
// "blobs"). A call's input and output, an inbox entry's output, a coroutine's
// state and each journal delta are kept in their row up to kThreshold bytes;
// a larger one goes to the `blobs` table under its SHA-256, and the row keeps
// '' in the value column and the digest in the column named after it with
// `_blob`. So one large value used by many rows (a fan-out's input, a child's
// output in its parent's inbox) is stored once, and every read gives back the
// bytes exactly as they were written.
//
// A blob is written (insert or ignore) in the transaction of the row that
// refers to it, so no commit leaves a reference without its bytes. It is
// deleted when the last row referring to it goes: the states' and deltas'
// blobs as the call ends or restarts, the runs' and inboxes' by `clean`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.hpp"

namespace ratchet::blobs {

// Values of up to this many bytes stay in their row.
inline constexpr std::size_t kThreshold = 64 * 1024;

// How one value is written: `in_row` goes in the value column; `digest` is
// empty for a value kept in its row, else the SHA-256 of `bytes`, which go to
// blobs. It views the bytes given to store(), which must outlive it.
struct Stored {
  std::string_view bytes;
  std::string_view in_row;
  std::string digest;
};
Stored store(std::string_view bytes);

// How a read of a value whose blob is gone fails: Code::kDataLoss, which each
// backend's Database layer gives for the error ratchet_missing_blob raises (a
// result code of Ratchet's own on SQLite, sqlite_db.cpp; an SQLSTATE of its
// own on PostgreSQL, pg_schema.cpp and pg_db.cpp), with this message for
// humans. Callers test the code: a message can be reworded.
inline constexpr std::string_view kMissingMessage = "a value over 64 KiB is missing from the store";
inline bool is_missing(const Status& error) { return error.code() == Code::kDataLoss; }

// A key for PostgreSQL's advisory locks on one blob (its digest's first 8 bytes).
std::int64_t lock_key(std::string_view digest);

}  // namespace ratchet::blobs

// The SQLSTATE of PostgreSQL's ratchet_missing_blob: of Ratchet's own (class
// RB is no standard's nor PostgreSQL's), so no other error reads as data loss.
#define RATCHET_MISSING_BLOB_SQLSTATE "RB001"

// SQL: a value column read whole, from its row or from blobs. A reference
// whose blob is gone fails the statement with the digest named
// (ratchet_missing_blob: sqlite_db.cpp, pg_schema.cpp), rather than reading
// as NULL: no output, no state, an empty input.
#define RATCHET_STORED(column, reference)                             \
  "CASE WHEN " reference " IS NULL THEN " column                      \
  " ELSE COALESCE((SELECT bytes FROM blobs WHERE digest = " reference \
  "), ratchet_missing_blob(" reference ")) END"

// The value columns, each read whole (unqualified: no query joins two tables
// that both have one of them).
#define RATCHET_INPUT_VALUE RATCHET_STORED("input", "input_blob")
#define RATCHET_OUTPUT_VALUE RATCHET_STORED("output", "output_blob")
#define RATCHET_STATE_VALUE RATCHET_STORED("state", "state_blob")
#define RATCHET_DELTA_VALUE RATCHET_STORED("delta", "delta_blob")

// SQL: the `key` of the rows of `table` (where `condition`) whose `reference`
// names a blob that is gone (a store edited by hand).
#define RATCHET_GONE(key, table, reference, condition)                           \
  "SELECT " key " FROM " table " WHERE " reference " IS NOT NULL AND " condition \
  " AND NOT EXISTS (SELECT 1 FROM blobs WHERE digest = " reference ")"

// SQL: the ids of the calls whose input, coroutine state or deltas, or a
// child result not yet delivered (`undelivered`), refer to a blob that is gone.
#define RATCHET_CALLS_MISSING_BLOBS(undelivered)                                                 \
  RATCHET_GONE("id", "runs", "input_blob", "TRUE")                                               \
  " UNION " RATCHET_GONE(                                                                        \
      "call_id", "coroutine_states", "state_blob",                                               \
      "TRUE") " UNION " RATCHET_GONE("call_id", "coroutine_deltas", "delta_blob",                \
                                     "TRUE") " UNION " RATCHET_GONE("parent_id", "call_results", \
                                                                    "output_blob", undelivered)

// SQL: no row refers to the blob whose digest is `digest` (a parameter). Each
// term is a probe of a partial index (schema.cpp, pg_schema.cpp).
#define RATCHET_BLOB_UNREFERENCED(digest)                                       \
  "NOT EXISTS (SELECT 1 FROM runs WHERE input_blob = " digest                   \
  ") AND NOT EXISTS (SELECT 1 FROM runs WHERE output_blob = " digest            \
  ") AND NOT EXISTS (SELECT 1 FROM call_results WHERE output_blob = " digest    \
  ") AND NOT EXISTS (SELECT 1 FROM coroutine_states WHERE state_blob = " digest \
  ") AND NOT EXISTS (SELECT 1 FROM coroutine_deltas WHERE delta_blob = " digest ")"
