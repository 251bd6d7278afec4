// What the SDK benchmarks share: a `ratchet server` in this process on a
// durable SQLite store, and the options of a service of the SDK that it calls.
#pragma once

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "ratchet/ratchet.hpp"
#include "server/server.hpp"

namespace ratchet::bench {

struct SdkBenchServer {
  std::unique_ptr<server::Server> server;
  std::string db_path;
  std::string public_key;  // what a service verifies the server's requests with
  std::uint16_t port = 0;
};

// Starts a server on `dir`/ratchet.db (fsync on unless `durable` is false), API
// key "bench", signing with a fresh key; nullopt, with its reason on stderr,
// when it cannot.
inline std::optional<SdkBenchServer> start_sdk_bench_server(const std::string& dir,
                                                            bool durable = true) {
  std::filesystem::create_directories(dir);
  server::ServerConfig config;
  config.port = 0;
  config.db_path = dir + "/ratchet.db";
  config.durable = durable;
  config.api.api_keys = {"bench"};
  config.signing_key = *protocol::SigningKey::generate();
  SdkBenchServer started;
  started.db_path = config.db_path;
  started.public_key = config.signing_key->public_key_base64();
  auto server = server::Server::start(config);
  if (!server.is_ok()) {
    std::fprintf(stderr, "server: %s\n", server.status().message().c_str());
    return std::nullopt;
  }
  started.port = (*server)->port();
  started.server = std::move(*server);
  return started;
}

// A service that calls the server on `server_port` and listens on a free
// loopback port, keeping `cache_size` coroutine frames.
inline Options sdk_bench_service_options(std::uint16_t server_port, const std::string& public_key,
                                         std::size_t cache_size) {
  Options o;
  o.api_key = "bench";
  o.api_url = "http://127.0.0.1:" + std::to_string(server_port);
  o.endpoint_addr = "127.0.0.1:0";
  o.endpoint_url = "";
  o.verification_key = public_key;
  o.trace = false;
  o.frame_cache_size = cache_size;
  return o;
}

}  // namespace ratchet::bench
