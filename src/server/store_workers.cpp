#include "server/store_workers.hpp"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <algorithm>

namespace ratchet::server {

StoreWorkers::StoreWorkers(std::string db_path, StoreOptions options, const Clock& clock,
                           int threads, int queue_limit, std::string name)
    : db_path_(std::move(db_path)),
      options_(std::move(options)),
      clock_(clock),
      limit_(queue_limit),
      name_(std::move(name)) {
  options_.instance.clear();  // no scheduler instance of a fleet: it takes no leases
  for (int i = 0; i < std::max(1, threads); ++i) threads_.emplace_back([this] { run(); });
}

StoreWorkers::~StoreWorkers() { stop(); }

bool StoreWorkers::post(Job job) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || static_cast<int>(jobs_.size()) >= limit_) return false;
    jobs_.push_back(std::move(job));
  }
  wake_.notify_one();
  return true;
}

void StoreWorkers::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
}

void StoreWorkers::run() {
  pthread_setname_np(pthread_self(), name_.substr(0, 15).c_str());
  auto store = open_store(db_path_, clock_, options_);
  if (!store.is_ok()) spdlog::error("{}: {}", name_, store.status().message());
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    if (store.is_ok()) {
      job(store->get());
    } else {
      job(store.status());
    }
  }
}

}  // namespace ratchet::server
