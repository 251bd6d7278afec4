// Internal to src/http (includes Asio): a fixed set of I/O threads, one
// io_context each, so that a connection's handlers never run concurrently
// without needing a strand. Include only from .cpp files.
#pragma once

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace ratchet::http::detail {

class IoPool {
 public:
  // Creates `threads` (at least 1) io_contexts; start() runs them.
  explicit IoPool(int threads);
  ~IoPool();  // stop_and_join()
  IoPool(const IoPool&) = delete;
  IoPool& operator=(const IoPool&) = delete;

  // Runs one thread per io_context, named `name` for debuggers and top.
  void start(const std::string& name);
  // Stops the threads now and joins them; never call it from one of them.
  // Pending handlers stay queued until the IoPool is destroyed, which
  // destroys them (and whatever they keep alive).
  void stop_and_join();

  std::size_t size() const { return contexts_.size(); }
  boost::asio::io_context& at(std::size_t i) { return *contexts_[i]; }
  // Round robin over the io_contexts, to spread connections.
  boost::asio::io_context& next();

 private:
  using WorkGuard = boost::asio::executor_work_guard<boost::asio::io_context::executor_type>;
  std::vector<std::unique_ptr<boost::asio::io_context>> contexts_;
  std::vector<WorkGuard> guards_;
  std::vector<std::thread> threads_;
  std::atomic<std::size_t> next_{0};
};

}  // namespace ratchet::http::detail
