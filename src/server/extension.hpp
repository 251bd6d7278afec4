// An extension of `ratchet server`: what it serves over HTTP beside the
// Dispatch API (the dashboard, src/dashboard). The server routes every request
// for a path the API does not own to it (server.cpp, the one routing table),
// and stops it before the scheduler, so it may use the scheduler until then.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "common/clock.hpp"
#include "engine/scheduler.hpp"
#include "http/server.hpp"
#include "storage/store.hpp"

namespace ratchet::server {

class Extension {
 public:
  virtual ~Extension() = default;
  // An http::Server handler: it must not block the I/O thread.
  virtual void handle(http::Request request, http::Responder responder) = 0;
  // A refusal decided from the header alone, before the body is read
  // (http::ServerOptions::header_check); none lets the body be read.
  virtual std::optional<http::Response> check_header(const http::Request& header) const = 0;
  // Ends the extension's own work; requests still queued are answered.
  virtual void stop() = 0;
};

// What an extension is made with, once the server's store and scheduler exist.
struct ExtensionContext {
  std::string db_path;  // the server's store, for connections of the extension's own
  StoreOptions store_options;
  const std::set<std::string>& api_keys;
  engine::Scheduler& scheduler;
  const Clock& clock;
};

using ExtensionFactory =
    std::function<Result<std::unique_ptr<Extension>>(const ExtensionContext& context)>;

}  // namespace ratchet::server
