// The versions of the SQLite schema, oldest first. Migration N (1-based) moves a
// database from user_version N-1 to N. The schema and the meaning of each
// column are documented in docs/storage.md; change both together, and never
// edit a migration that has shipped: add a new one.
#pragma once

#include <span>

namespace ratchet::sqlite {

std::span<const char* const> migrations();

}  // namespace ratchet::sqlite
