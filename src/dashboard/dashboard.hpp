// The dashboard that `ratchet server` and `ratchet dev` serve at `/`
// (docs/dashboard.md): a page compiled into the binary, and Ratchet's JSON API
// under /ratchet/v1/ that it reads (docs/server.md).
//
// Access: the page and its assets load without a key; everything under
// /ratchet/v1/ needs `Authorization: Bearer <key>`. An API key may read and
// act (cancel a job or a call tree, retry a call now: the latter two through
// the scheduler, as the Control RPCs do); a read key (`--read-key`) may only
// read. A request without a known key is 401, an action with a read key 403.
//
// The store is read on threads of the dashboard's own, each with its own
// connection: the HTTP I/O threads never wait for a query, and the scheduler's
// writes never wait for the dashboard (SQLite in WAL mode: readers do not
// block the writer).
#pragma once

#include <memory>
#include <set>
#include <string>

#include "dashboard/live.hpp"
#include "server/extension.hpp"

namespace ratchet::dashboard {

struct DashboardOptions {
  std::set<std::string> read_keys;  // keys that may read only
  int threads = 2;                  // reader threads, one store connection each
  int queue_limit = 256;            // requests waiting for a thread; more are 503
  LiveOptions live;                 // GET /ratchet/v1/events
};

// The ExtensionFactory that ServerConfig::extension takes.
server::ExtensionFactory make_dashboard(DashboardOptions options);

}  // namespace ratchet::dashboard
