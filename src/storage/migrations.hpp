// Schema migrations applied by name, the same way on both backends
// (docs/storage.md, "Migrations"). Each backend lists its migrations, oldest
// first (schema.cpp, pg_schema.cpp); a store records the name of each one it
// has applied, and opening it applies, in the list's order, exactly those whose
// names it has not recorded. So two branches that each add a migration at the
// end of the list can be merged in either order: a store made by either build
// opens under the merged one.
//
// Stores from before names kept a version number: version N meant the first N
// migrations of the list as it then was (`numbered` of them). Such a store has
// those names recorded on its first open, then goes on by name; the first
// `numbered` migrations of a list must therefore never move.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/status.hpp"

namespace ratchet {

struct Migration {
  const char* name;  // a stable identifier: what it adds
  const char* sql;
};

// A backend's migrations: the list, and how many of its first ones a store's
// version number from before names counts.
struct MigrationList {
  std::span<const Migration> steps;
  std::size_t numbered = 0;
};

// What a store says it has: the names it recorded, or (a store from before
// names, which has no table of names) its version number.
struct RecordedMigrations {
  bool has_names = false;
  std::vector<std::string> names;
  long long version = 0;
};

// A store's side of migrating, inside the transaction (and lock) that makes
// set-up safe between processes.
class MigrationTarget {
 public:
  virtual ~MigrationTarget() = default;
  // How the store's refusals name it ("the store PATH").
  virtual std::string store() const = 0;
  // Runs `body` in the store's set-up transaction: a write transaction that
  // processes opening the store at once take in turn.
  virtual Status transaction(const std::function<Status()>& body) = 0;
  virtual Result<RecordedMigrations> recorded() = 0;
  // Runs one migration's SQL; a failure is one line naming `what`.
  virtual Status run(const Migration& migration, const std::string& what) = 0;
  // Records `names` as applied (creating the table of names the first time)
  // and `count`, every migration the store now has, as its version number.
  virtual Status record(const std::vector<std::string>& names, std::size_t count) = 0;
};

// Whether every migration of `list` is recorded; an error when the store has
// a name (or a version) this build does not know: a newer ratchet wrote it.
Result<bool> migrations_complete(MigrationTarget& target, const MigrationList& list);

// Applies the migrations the store has not recorded, and records them, in the
// set-up transaction (which reads what is recorded again: another process may
// have done it).
Status apply_migrations(MigrationTarget& target, const MigrationList& list);

}  // namespace ratchet
