// `ratchet server`: the store, the scheduler, the endpoint client and the API
// wired together, started and stopped as one.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "engine/scheduler.hpp"
#include "protocol/signing.hpp"
#include "server/api.hpp"
#include "server/extension.hpp"
#include "server/http_endpoint_client.hpp"

namespace ratchet::server {

struct ServerConfig {
  std::string host = "127.0.0.1";
  std::uint16_t port = 4450;
  std::string db_path;
  bool durable = true;  // fsync every commit (they are batched)
  std::optional<protocol::SigningKey> signing_key;
  ApiOptions api;
  engine::SchedulerOptions scheduler;
  EndpointClientOptions endpoint;
  int io_threads = 1;
  // What serves the paths the Dispatch API does not own (none: 404).
  ExtensionFactory extension;
  // stop() waits this long for the replies of the calls in flight, then
  // releases their leases (a deploy: docs/server.md).
  Micros shutdown_grace = 10 * kMicrosPerSecond;
  // Disk kept in reserve beside the store for when the disk fills (StoreOptions).
  std::int64_t disk_reserve_bytes = 8 * 1024 * 1024;
  // Who runs this server, and how to tell whether another server of this host
  // still runs (StoreOptions): a restart takes over a crashed one's calls at once.
  InstanceIdentity identity;
  ProcessProbe process_alive;
  // API connections served at once (http::ServerOptions::max_connections),
  // lowered at start when the limit on open files leaves no room for them.
  std::size_t max_connections = 4096;
  // Log lines as JSON objects (engine/call_log.hpp) rather than text.
  bool log_json = false;
};

class Server {
 public:
  // Raises the soft limit on open files to the hard one first (each connection
  // is a descriptor: the usual soft limit of 1,024 is a denial of service).
  static Result<std::unique_ptr<Server>> start(ServerConfig config);
  ~Server();
  std::uint16_t port() const;
  // Stops accepting, lets in-flight API requests end, drains the scheduler
  // (replies of calls in flight for up to `shutdown_grace`, then their leases
  // are released) and stops it.
  void stop();

  struct Parts;

 private:
  explicit Server(std::unique_ptr<Parts> parts);
  std::unique_ptr<Parts> parts_;
};

// Blocks until SIGINT or SIGTERM. Call block_shutdown_signals() first, before
// any thread starts, so that the signals come here.
void block_shutdown_signals();
int wait_for_shutdown_signal();

// Sends the server's logs to stderr.
void log_to_stderr();

}  // namespace ratchet::server
