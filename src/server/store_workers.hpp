// Threads that each own a connection to the server's store and run queued
// jobs on it, so that a request which reads or writes the store never blocks
// an I/O thread. A bounded queue: post() refuses when it is full.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.hpp"
#include "storage/store.hpp"

namespace ratchet::server {

class StoreWorkers {
 public:
  using Job = std::function<void(Result<Store*>)>;

  // `name` names the threads (15 characters at most) and their log lines.
  StoreWorkers(std::string db_path, StoreOptions options, const Clock& clock, int threads,
               int queue_limit, std::string name);
  ~StoreWorkers();
  StoreWorkers(const StoreWorkers&) = delete;
  StoreWorkers& operator=(const StoreWorkers&) = delete;

  // False when too many jobs are waiting already, or after stop().
  bool post(Job job);
  // Runs the jobs already queued, then joins the threads. Idempotent.
  void stop();

 private:
  void run();

  std::string db_path_;
  StoreOptions options_;
  const Clock& clock_;
  int limit_;
  std::string name_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job> jobs_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace ratchet::server
