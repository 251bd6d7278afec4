// Threads that each own a connection to the server's store and run queued
// jobs on it, so that a request which reads or writes the store never blocks
// an I/O thread. A bounded queue (WorkQueue): post() refuses when it is full.
#pragma once

#include <string>

#include "common/clock.hpp"
#include "server/work_queue.hpp"
#include "storage/store.hpp"

namespace ratchet::server {

class StoreWorkers {
 public:
  using Job = std::function<void(Result<Store*>)>;

  // `name` names the threads (15 characters at most) and their log lines.
  StoreWorkers(std::string db_path, StoreOptions options, const Clock& clock, int threads,
               int queue_limit, std::string name);

  // False when too many jobs are waiting already, or after stop().
  bool post(Job job);
  // Runs the jobs already queued, then joins the threads. Idempotent.
  void stop() { queue_.stop(); }

 private:
  WorkQueue<Result<std::unique_ptr<Store>>> queue_;
};

}  // namespace ratchet::server
