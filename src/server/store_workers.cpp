#include "server/store_workers.hpp"

#include <spdlog/spdlog.h>

namespace ratchet::server {

StoreWorkers::StoreWorkers(std::string db_path, StoreOptions options, const Clock& clock,
                           int threads, int queue_limit, std::string name)
    : queue_(threads, static_cast<std::size_t>(std::max(0, queue_limit)), name,
             [db_path = std::move(db_path), options = std::move(options), &clock, name] {
               StoreOptions readers = options;
               readers.instance.clear();  // no scheduler instance of a fleet: it takes no leases
               auto store = open_store(db_path, clock, readers);
               if (!store.is_ok()) spdlog::error("{}: {}", name, store.status().message());
               return store;
             }) {}

bool StoreWorkers::post(Job job) {
  return queue_.post([job = std::move(job)](Result<std::unique_ptr<Store>>& store) {
    if (store.is_ok()) {
      job(store->get());
    } else {
      job(store.status());
    }
  });
}

}  // namespace ratchet::server
