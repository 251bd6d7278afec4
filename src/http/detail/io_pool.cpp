#include "http/detail/io_pool.hpp"

#include <pthread.h>

#include <cstdio>
#include <exception>

#include "common/spin_before_sleep.hpp"

namespace ratchet::http::detail {
namespace {

// Runs the handlers as io_context::run() does, but after each one the thread
// polls (the sockets too) for as long as SpinBeforeSleep lets it before it
// sleeps in epoll: the next bytes of a request or a reply often come within
// microseconds, and an awake thread takes them without a wake-up.
void run_spinning(boost::asio::io_context& io, SpinBeforeSleep& spin) {
  if (spin.window().count() <= 0) {
    io.run();
    return;
  }
  auto last_event = SpinBeforeSleep::Steady::now();
  while (!io.stopped()) {
    if (io.poll() > 0 || (!spin.spin_once_since(last_event) && io.run_one() > 0)) {
      last_event = SpinBeforeSleep::Steady::now();
    }
  }
}

// An exception that escapes a handler unwinds the run; left to escape the
// thread it would end the process (std::terminate). It is logged and the
// thread goes on with the next handler: one failed operation must not take
// down every connection of a service.
void run_until_stopped(boost::asio::io_context& io, const std::string& name) {
  for (;;) {
    try {
      run_spinning(io, SpinBeforeSleep::process());
      return;  // stopped, or out of work
    } catch (const std::exception& e) {
      std::fprintf(stderr, "ratchet: an I/O handler of %s failed: %s\n", name.c_str(), e.what());
    } catch (...) {
      std::fprintf(stderr, "ratchet: an I/O handler of %s failed with a non-standard exception\n",
                   name.c_str());
    }
  }
}

}  // namespace

IoPool::IoPool(int threads) {
  int n = threads < 1 ? 1 : threads;
  for (int i = 0; i < n; ++i) {
    contexts_.push_back(std::make_unique<boost::asio::io_context>(1));
    guards_.emplace_back(contexts_.back()->get_executor());
  }
}

IoPool::~IoPool() {
  stop_and_join();
  // Destroy the contexts in order of creation; each destroys its own pending
  // handlers (and the objects they keep alive). The acceptor lives on the
  // first, and its pending accept holds a socket of another context: that
  // context must still exist when the first one destroys the accept.
  for (auto& context : contexts_) context.reset();
  contexts_.clear();
}

void IoPool::start(const std::string& name) {
  std::string thread_name = name.substr(0, 15);  // the kernel's limit
  for (auto& context : contexts_) {
    threads_.emplace_back([io = context.get(), thread_name] {
      pthread_setname_np(pthread_self(), thread_name.c_str());
      run_until_stopped(*io, thread_name);
    });
  }
}

void IoPool::stop_and_join() {
  for (auto& guard : guards_) guard.reset();
  for (auto& context : contexts_) context->stop();
  for (auto& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
  threads_.clear();
}

boost::asio::io_context& IoPool::next() {
  return *contexts_[next_.fetch_add(1, std::memory_order_relaxed) % contexts_.size()];
}

}  // namespace ratchet::http::detail
