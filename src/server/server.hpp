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
  // API connections served at once (http::ServerOptions::max_connections),
  // lowered at start when the limit on open files leaves no room for them.
  std::size_t max_connections = 4096;
};

class Server {
 public:
  // Raises the soft limit on open files to the hard one first (each connection
  // is a descriptor: the usual soft limit of 1,024 is a denial of service).
  static Result<std::unique_ptr<Server>> start(ServerConfig config);
  ~Server();
  std::uint16_t port() const;
  // Stops accepting, lets in-flight API requests end, stops the scheduler.
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
