// The SQLite schema's migrations, oldest first, each by its name, and applying
// them (storage/migrations.hpp). The schema and the meaning of each column are
// documented in docs/storage.md; change both together, and never edit a
// migration that has shipped: add a new one at the end of the list.
#pragma once

#include "storage/migrations.hpp"

namespace ratchet::sqlite {

class Database;

MigrationList migrations();
// Whether the store has every migration of `list` recorded; an error for a
// store a newer ratchet wrote.
Result<bool> schema_complete(Database& db, const MigrationList& list);
// Applies, in one write transaction, the migrations of `list` the store has
// not recorded, and records them.
Status migrate(Database& db, const MigrationList& list);

}  // namespace ratchet::sqlite
