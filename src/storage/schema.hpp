// The SQLite schema's migrations, oldest first, each by its name, and applying
// them (storage/migrations.hpp). The schema and the meaning of each column are
// documented in docs/storage.md; change both together, and never edit a
// migration that has shipped: add a new one at the end of the list.
#pragma once

#include "storage/migrations.hpp"

namespace ratchet::sqlite {

class Database;

MigrationList migrations();
// The store's side of applying migrations (migrations_complete,
// apply_migrations), on `db`, which it must not outlive.
std::unique_ptr<MigrationTarget> migration_target(Database& db);

}  // namespace ratchet::sqlite
