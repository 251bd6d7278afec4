// The SQLite backend of Store: one file in WAL mode, a busy timeout so that
// lock waits are bounded (then kBusy), and the schema migrated on first use.
#pragma once

#include <memory>
#include <string>

#include "storage/store.hpp"

namespace ratchet {

Result<std::unique_ptr<Store>> open_sqlite_store(const std::string& path, const Clock& clock,
                                                 const StoreOptions& options);

}  // namespace ratchet
