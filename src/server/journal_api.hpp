// Ratchet's Journal service (proto/ratchet/v1/journal_service.proto; docs/server.md):
// ListOpen answers the open coroutines of given functions with their recorded
// state, for `--ratchet-check`. The Api authenticates a request and hands it
// here; the store is read on a worker thread of its own, never an I/O thread.
#pragma once

#include <string>
#include <string_view>

#include "common/clock.hpp"
#include "http/server.hpp"
#include "server/store_workers.hpp"
#include "storage/store.hpp"

namespace ratchet::server {

// The most coroutines one ListOpen answers.
inline constexpr int kListOpenLimit = 1000;

// The ListOpenResponse bytes for a ListOpenRequest's bytes: a page in dispatch
// id order after the request's `after`; kInvalidArgument for a body that is
// not one (no function, a bad name). Pure but for the
// store's read: the fuzzers' and tests' way in.
Result<std::string> list_open(Store& store, std::string_view body);

class JournalApi {
 public:
  JournalApi(std::string db_path, StoreOptions options, const Clock& clock);
  // Answers on a worker thread (503 when too many requests wait).
  void handle(const http::Request& request, http::Responder responder);
  void stop() { workers_.stop(); }

 private:
  StoreWorkers workers_;
};

}  // namespace ratchet::server
