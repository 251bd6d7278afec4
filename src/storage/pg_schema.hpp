// The PostgreSQL schema's migrations, oldest first, each by its name, and
// applying them (storage/migrations.hpp). The PostgreSQL schema is its own
// sequence, not SQLite's: it starts at what SQLite's had become. Documented in
// docs/storage.md; never edit a migration that has shipped: add one at the end.
#pragma once

#include "storage/migrations.hpp"

namespace ratchet::pg {

class Connection;

MigrationList migrations();
// The store's side of applying migrations (migrations_complete,
// apply_migrations), on `db`, which it must not outlive.
std::unique_ptr<MigrationTarget> migration_target(Connection& db);

}  // namespace ratchet::pg
