// The PostgreSQL schema's migrations, oldest first, each by its name, and
// applying them (storage/migrations.hpp). The PostgreSQL schema is its own
// sequence, not SQLite's: it starts at what SQLite's had become. Documented in
// docs/storage.md; never edit a migration that has shipped: add one at the end.
#pragma once

#include "storage/migrations.hpp"

namespace ratchet::pg {

class Connection;

MigrationList migrations();
// Whether the store has every migration of `list` recorded; an error for a
// store a newer ratchet wrote.
Result<bool> schema_complete(Connection& db, const MigrationList& list);
// Applies, in one transaction under an advisory lock (processes opening a new
// database at once), the migrations of `list` the store has not recorded.
Status migrate(Connection& db, const MigrationList& list);

}  // namespace ratchet::pg
