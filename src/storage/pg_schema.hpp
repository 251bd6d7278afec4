// The versions of the PostgreSQL schema, oldest first: migration N (1-based)
// moves a database from version N-1 to N (the version is the one row of
// `ratchet_schema`). The PostgreSQL schema is its own sequence, not SQLite's:
// it starts at what SQLite's had become. Documented in docs/storage.md; never
// edit a migration that has shipped: add one.
#pragma once

#include <span>

namespace ratchet::pg {

std::span<const char* const> migrations();

}  // namespace ratchet::pg
