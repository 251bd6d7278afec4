#include "support/run_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

extern char** environ;

namespace ratchet::testing {
namespace {

using Steady = std::chrono::steady_clock;

std::vector<std::string> merged_environment(const Env& extra) {
  std::vector<std::string> merged;
  for (char** entry = environ; *entry; ++entry) {
    std::string_view text(*entry);
    std::string_view name = text.substr(0, text.find('='));
    bool overridden = false;
    for (const auto& [key, value] : extra) overridden = overridden || key == name;
    if (!overridden) merged.emplace_back(text);
  }
  for (const auto& [key, value] : extra) merged.push_back(key + "=" + value);
  return merged;
}

std::vector<char*> pointers(std::vector<std::string>& strings) {
  std::vector<char*> result;
  for (auto& s : strings) result.push_back(s.data());
  result.push_back(nullptr);
  return result;
}

int millis_until(Steady::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Steady::now());
  return left.count() < 0 ? 0 : static_cast<int>(left.count());
}

}  // namespace

Process Process::spawn(const std::vector<std::string>& argv, const Env& env,
                       const std::string& cwd) {
  // Everything the child needs is built before fork: it only calls
  // async-signal-safe functions afterwards.
  std::vector<std::string> args = argv;
  std::vector<std::string> environment = merged_environment(env);
  std::vector<char*> arg_pointers = pointers(args);
  std::vector<char*> env_pointers = pointers(environment);
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  if (pipe2(err, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error(std::string("fork failed: ") + std::strerror(errno));
  if (pid == 0) {
    int null_fd = open("/dev/null", O_RDONLY);
    dup2(null_fd, 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    if (!cwd.empty() && chdir(cwd.c_str()) != 0) _exit(126);
    execvpe(arg_pointers[0], arg_pointers.data(), env_pointers.data());
    const char message[] = "run_process: exec failed\n";
    (void)!write(2, message, sizeof message - 1);
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  return Process(pid, out[0], err[0]);
}

Process::Process(Process&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      out_fd_(std::exchange(other.out_fd_, -1)),
      err_fd_(std::exchange(other.err_fd_, -1)),
      out_(std::move(other.out_)),
      err_(std::move(other.err_)) {}

Process::~Process() {
  if (out_fd_ >= 0) close(out_fd_);
  if (err_fd_ >= 0) close(err_fd_);
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

bool Process::pump(std::chrono::milliseconds timeout) {
  pollfd fds[2] = {{out_fd_, POLLIN, 0}, {err_fd_, POLLIN, 0}};
  if (out_fd_ < 0 && err_fd_ < 0) return false;
  int n = poll(fds, 2, static_cast<int>(timeout.count()));
  if (n < 0 && errno != EINTR) throw std::runtime_error("poll failed");
  if (n <= 0) return true;
  int* fd_of[2] = {&out_fd_, &err_fd_};
  std::string* sink_of[2] = {&out_, &err_};
  for (int i = 0; i < 2; ++i) {
    if (*fd_of[i] < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    char buffer[65536];
    ssize_t got = read(*fd_of[i], buffer, sizeof buffer);
    if (got > 0) {
      sink_of[i]->append(buffer, static_cast<std::size_t>(got));
    } else if (got == 0 || errno != EINTR) {
      close(*fd_of[i]);
      *fd_of[i] = -1;
    }
  }
  return out_fd_ >= 0 || err_fd_ >= 0;
}

bool Process::read_stdout_until(const std::string& needle, std::chrono::milliseconds timeout) {
  auto deadline = Steady::now() + timeout;
  while (out_.find(needle) == std::string::npos) {
    if (Steady::now() >= deadline || out_fd_ < 0) return false;
    pump(std::chrono::milliseconds(millis_until(deadline)));
  }
  return true;
}

ProcessResult Process::finish(std::chrono::milliseconds timeout) {
  ProcessResult result;
  auto deadline = Steady::now() + timeout;
  while (Steady::now() < deadline && pump(std::chrono::milliseconds(millis_until(deadline)))) {
  }
  int status = 0;
  // The pipes can close before the process exits (or stay open in a child it
  // left behind), so the exit is awaited against the same deadline.
  while (true) {
    pid_t done = waitpid(pid_, &status, WNOHANG);
    if (done == pid_) break;
    if (done < 0 && errno != EINTR) break;
    if (Steady::now() >= deadline) {
      result.timed_out = true;
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      break;
    }
    usleep(2000);  // only while a process that closed its output is exiting
  }
  pid_ = -1;
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.term_signal = WTERMSIG(status);
  result.out = std::move(out_);
  result.err = std::move(err_);
  return result;
}

ProcessResult run_process(const std::vector<std::string>& argv, const Env& env,
                          std::chrono::milliseconds timeout) {
  return Process::spawn(argv, env).finish(timeout);
}

}  // namespace ratchet::testing
