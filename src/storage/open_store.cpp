// open_store, built twice: with the PostgreSQL backend (RATCHET_WITH_POSTGRES,
// library ratchet_storage_pg) and without it (ratchet_storage_sqlite_only, for
// the static `ratchet` command, which cannot link libpq).
#include "storage/sqlite_store.hpp"
#include "storage/store.hpp"
#ifdef RATCHET_WITH_POSTGRES
#include "storage/pg_store.hpp"
#endif

namespace ratchet {

#ifdef RATCHET_WITH_POSTGRES
bool postgres_backend_linked() { return true; }
#else
bool postgres_backend_linked() { return false; }
#endif

Result<std::unique_ptr<Store>> open_store(const std::string& location, const Clock& clock,
                                          const StoreOptions& options) {
  if (is_postgres_location(location)) {
#ifdef RATCHET_WITH_POSTGRES
    return open_postgres_store(location, clock, options);
#else
    return unavailable("this executable has no PostgreSQL backend; ratchet-server has");
#endif
  }
  return open_sqlite_store(location, clock, options);
}

}  // namespace ratchet
