// Runs programs as real child processes for end-to-end tests: argv, extra
// environment variables, captured stdout/stderr and exit status, always with a
// deadline so a test can never hang on a child that does not finish.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace ratchet::testing {

// Polls `condition` every few milliseconds until it holds or `timeout` passes:
// for events that send no notification of their own (a process exiting, a
// request at an endpoint, a log line).
inline bool eventually(const std::function<bool()>& condition,
                       std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

using Env = std::vector<std::pair<std::string, std::string>>;

struct ProcessResult {
  int exit_code = -1;      // the exit status, or -1 when a signal ended the process
  int term_signal = 0;     // the signal that ended it, or 0
  bool timed_out = false;  // the deadline passed: the process was SIGKILLed
  std::string out;
  std::string err;
};

// A started child whose output has not been collected yet. Move-only; a child
// still running when it is destroyed is SIGKILLed and reaped.
class Process {
 public:
  // Starts argv[0] (searched in PATH) with the current environment plus `env`
  // (which overrides variables of the same name) and stdin on /dev/null.
  static Process spawn(const std::vector<std::string>& argv, const Env& env = {},
                       const std::string& cwd = {});

  Process(Process&& other) noexcept;
  Process& operator=(Process&& other) = delete;
  Process(const Process&) = delete;
  ~Process();

  pid_t pid() const { return pid_; }

  // Reads stdout until it contains `needle` or `timeout` passes; true if it does.
  // What was read stays part of the final result's `out`.
  bool read_stdout_until(const std::string& needle, std::chrono::milliseconds timeout);
  // What stdout has given so far (by read_stdout_until).
  const std::string& stdout_so_far() const { return out_; }

  // Collects all output and the exit status. If the process is not done by
  // `timeout`, it is SIGKILLed and the result says `timed_out`.
  ProcessResult finish(std::chrono::milliseconds timeout = std::chrono::seconds(30));

 private:
  Process(pid_t pid, int out_fd, int err_fd) : pid_(pid), out_fd_(out_fd), err_fd_(err_fd) {}
  // Reads what is available (blocking up to `timeout` in poll); false once both
  // pipes are at EOF.
  bool pump(std::chrono::milliseconds timeout);

  pid_t pid_ = -1;
  int out_fd_ = -1;
  int err_fd_ = -1;
  std::string out_;
  std::string err_;
};

// spawn() + finish().
ProcessResult run_process(const std::vector<std::string>& argv, const Env& env = {},
                          std::chrono::milliseconds timeout = std::chrono::seconds(30));

}  // namespace ratchet::testing
