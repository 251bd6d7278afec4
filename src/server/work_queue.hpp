// Threads for work that must not run on an I/O thread (decoding a Dispatch of
// thousands of calls, reading the store for the dashboard or ListOpen): a
// bounded queue, so that a flood is refused instead of piling up in memory.
// Each thread may keep something of its own that its jobs are given (a store
// connection: StoreWorkers), made on that thread when it starts.
#pragma once

#include <pthread.h>

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

namespace ratchet::server {

template <typename Context = std::monostate>
class WorkQueue {
 public:
  using Job = std::function<void(Context&)>;

  // `name` names the threads (15 characters at most); `open` makes each
  // thread's context, on that thread.
  WorkQueue(
      int threads, std::size_t max_queued, std::string name = "ratchet-work",
      std::function<Context()> open = [] { return Context(); })
      : max_queued_(max_queued), name_(std::move(name)), open_(std::move(open)) {
    for (int i = 0; i < (threads < 1 ? 1 : threads); ++i) {
      threads_.emplace_back([this] { run(); });
    }
  }
  ~WorkQueue() { stop(); }
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;

  // Queues `job`; false (and `job` dropped) when `max_queued` jobs wait
  // already, or after stop().
  bool post(Job job) {
    {
      std::lock_guard lock(mutex_);
      if (stopping_ || jobs_.size() >= max_queued_) return false;
      jobs_.push_back(std::move(job));
    }
    wake_.notify_one();
    return true;
  }
  // A job that needs no context.
  bool post(std::function<void()> job) {
    return post([job = std::move(job)](Context&) { job(); });
  }

  // Runs the jobs already queued, then joins the threads. Idempotent.
  void stop() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    for (auto& thread : threads_) {
      if (thread.joinable()) thread.join();
    }
  }

 private:
  void run() {
    pthread_setname_np(pthread_self(), name_.substr(0, 15).c_str());
    Context context = open_();
    for (;;) {
      Job job;
      {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
        if (jobs_.empty()) return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      job(context);
    }
  }

  std::size_t max_queued_;
  std::string name_;
  std::function<Context()> open_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job> jobs_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace ratchet::server
