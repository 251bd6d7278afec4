// The PostgreSQL backend of Store: one database shared by a fleet of servers
// and job supervisors on any number of hosts. The schema is pg_schema.cpp's
// (docs/storage.md), migrated on first use under an advisory lock. A
// connection that broke is re-established by the next operation, so a server
// carries on once the database is back; while it is down, operations fail
// with kBusy. Calls are claimed with FOR UPDATE SKIP LOCKED, so servers never
// wait on each other's claims; every write after a claim is fenced by the
// lease epoch. Transactions that make calls due send a NOTIFY, which other
// servers' watch_calls() turn into a wake-up (a hint: they poll too).
#pragma once

#include <memory>
#include <string>

#include "storage/store.hpp"

namespace ratchet {

Result<std::unique_ptr<Store>> open_postgres_store(const std::string& url, const Clock& clock,
                                                   const StoreOptions& options);

}  // namespace ratchet
