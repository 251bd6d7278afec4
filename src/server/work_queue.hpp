// A few threads for work that must not run on an I/O thread (decoding a
// Dispatch of thousands of calls): a bounded queue, so that a flood is
// refused instead of piling up in memory.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace ratchet::server {

class WorkQueue {
 public:
  WorkQueue(int threads, std::size_t max_queued);
  ~WorkQueue();  // runs what is queued, then joins
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;

  // Queues `job`; false (and `job` dropped) when `max_queued` jobs wait already.
  bool post(std::function<void()> job);

 private:
  void run();

  std::size_t max_queued_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace ratchet::server
