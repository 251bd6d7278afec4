// The PostgreSQL implementation of CallTransaction; see call.hpp for the
// contract and docs/storage.md for the columns.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "common/clock.hpp"
#include "storage/call.hpp"
#include "storage/pg_db.hpp"

namespace ratchet::pg {

// How long an instance may go without a heartbeat before the calls it leased
// are taken over by others (an instance that stops gracefully marks itself
// gone at once).
struct FleetTiming {
  Micros heartbeat_every = 2 * kMicrosPerSecond;
  Micros dead_after = 8 * kMicrosPerSecond;
};

class PgCallTransaction : public CallTransaction {
 public:
  // Whether the transaction made a call due now that another server might run.
  virtual bool made_work() const = 0;
};

std::unique_ptr<PgCallTransaction> make_call_transaction(Connection& db, const Clock& clock,
                                                         const FleetTiming& timing);
Result<std::optional<CallRecord>> find_call(Connection& db, const std::string& id);
// A call's latest `latest` history events, oldest first (Store::call_history).
Result<std::vector<HistoryEvent>> call_history(Connection& db, const std::string& id, int latest);

}  // namespace ratchet::pg
