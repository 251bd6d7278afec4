#include "jobs/supervisor.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "common/time_format.hpp"
#include "jobs/process.hpp"

extern char** environ;

namespace ratchet::jobs {
namespace {

using Steady = std::chrono::steady_clock;

constexpr Micros kDefaultGrace = 10 * kMicrosPerSecond;
constexpr Micros kFinalWriteDeadline = 60 * kMicrosPerSecond;

Micros micros_until(Steady::time_point when) {
  return std::chrono::duration_cast<std::chrono::microseconds>(when - Steady::now()).count();
}

void write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

std::string read_all(int fd) {
  std::string data;
  char buffer[256];
  while (true) {
    ssize_t n = read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return data;
    data.append(buffer, static_cast<std::size_t>(n));
  }
}

// Detaches from the caller: own session, no terminal, stdio on /dev/null (so a
// caller reading `ratchet start`'s output sees EOF when `start` exits), and no
// file descriptor inherited but the ones it needs.
void detach(const SupervisorPipes& pipes) {
  setsid();
  int null_fd = open("/dev/null", O_RDWR);
  dup2(null_fd, 0);
  dup2(null_fd, 1);
  dup2(null_fd, 2);
  int keep_low = std::min(pipes.go_read, pipes.ready_write);
  int keep_high = std::max(pipes.go_read, pipes.ready_write);
  if (keep_low > 3) close_range(3, keep_low - 1, 0);
  if (keep_high - keep_low > 1) close_range(keep_low + 1, keep_high - 1, 0);
  close_range(keep_high + 1, ~0U, 0);
  signal(SIGPIPE, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  prctl(PR_SET_CHILD_SUBREAPER, 1);
}

// SIGTERM and SIGCHLD are taken through a signalfd, blocked from before the
// command starts, so the wait loop sees them as events and none is missed.
int take_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGCHLD);
  sigprocmask(SIG_BLOCK, &set, nullptr);
  return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

struct Launch {
  pid_t pid = -1;
  int error = 0;          // errno of a failed launch
  std::string failed_at;  // what failed: "run" or "change directory to"
};

// The command's argv and environment, built before the child exists: the
// child shares the supervisor's memory until it execs (vfork), so it must not
// allocate or change anything.
struct CommandImage {
  std::vector<std::string> env_storage;
  std::vector<char*> argv;
  std::vector<char*> envp;

  explicit CommandImage(const JobRequest& request) {
    for (char** entry = environ; *entry; ++entry) {
      std::string_view text(*entry);
      std::string_view name = text.substr(0, text.find('='));
      bool overridden = false;
      for (const auto& [key, value] : request.env) overridden = overridden || key == name;
      if (!overridden) env_storage.emplace_back(text);
    }
    for (const auto& [key, value] : request.env) env_storage.push_back(key + "=" + value);
    for (auto& entry : env_storage) envp.push_back(entry.data());
    envp.push_back(nullptr);
    for (const auto& arg : request.command) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
  }
};

// Runs in the command's process between vfork and exec: system calls only.
[[noreturn]] void become_command(const CommandImage& image, const char* cwd, pid_t supervisor,
                                 int stdout_fd, int stderr_fd, int error_pipe) {
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  for (int s = 1; s < NSIG; ++s) signal(s, SIG_DFL);  // the child's own table (no CLONE_SIGHAND)
  setpgid(0, 0);
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != supervisor) _exit(127);  // the supervisor died before the line above
  int null_fd = open("/dev/null", O_RDONLY);
  dup2(null_fd, 0);
  dup2(stdout_fd, 1);
  dup2(stderr_fd, 2);
  char stage = 'x';
  if (*cwd == '\0' || chdir(cwd) == 0) {
    execvpe(image.argv[0], image.argv.data(), image.envp.data());
  } else {
    stage = 'd';
  }
  int err = errno;
  char message[1 + sizeof err];
  message[0] = stage;
  std::memcpy(message + 1, &err, sizeof err);
  (void)!write(error_pipe, message, sizeof message);
  _exit(127);
}

Launch launch(const JobRequest& request, int stdout_fd, int stderr_fd) {
  int error_pipe[2];
  Launch result;
  if (pipe2(error_pipe, O_CLOEXEC) != 0) {
    result.error = errno;
    result.failed_at = "run";
    return result;
  }
  CommandImage image(request);
  pid_t supervisor = getpid();
  // vfork: no copy of the supervisor's page tables, and the supervisor waits
  // until the command has exec'd (or failed to).
  pid_t pid = vfork();
  if (pid == 0) {
    become_command(image, request.cwd.c_str(), supervisor, stdout_fd, stderr_fd, error_pipe[1]);
  }
  close(error_pipe[1]);
  if (pid < 0) {
    result.error = errno;
    result.failed_at = "run";
    close(error_pipe[0]);
    return result;
  }
  setpgid(pid, pid);  // the child did it already; harmless if it has exec'd
  result.pid = pid;
  std::string report = read_all(error_pipe[0]);
  close(error_pipe[0]);
  if (report.size() == 1 + sizeof(int)) {
    std::memcpy(&result.error, report.data() + 1, sizeof(int));
    result.failed_at = report[0] == 'd' ? "change directory to" : "run";
  }
  return result;
}

// Writes a terminal outcome, waiting out a busy store: the result of a job
// must not be lost to a momentary lock.
void record_outcome(Store& store, const std::string& id, const JobOutcome& outcome) {
  auto deadline = Steady::now() + std::chrono::microseconds(kFinalWriteDeadline);
  while (true) {
    auto written = store.finish_job(id, outcome);
    if (written.is_ok() || written.status().code() != Code::kBusy || Steady::now() > deadline) {
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

std::string describe_duration(Micros d) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.3gs", static_cast<double>(d) / kMicrosPerSecond);
  return buffer;
}

// Why the supervisor is stopping the command, if it is.
enum class StopReason { kNone, kTimeout, kCancel, kTerminated, kLeaseLost };

class Supervision {
 public:
  Supervision(Store& store, const JobRequest& request, std::string id, pid_t pid, int signal_fd)
      : store_(store), request_(request), id_(std::move(id)), pid_(pid), signal_fd_(signal_fd) {}

  // Waits for the command to end, stopping it when asked; returns its outcome.
  JobOutcome run();

 private:
  void begin_stop(StopReason reason, Micros grace);
  // Reads the pending signals; true when one of them was SIGTERM.
  bool drain_signals();
  void on_sigterm();
  bool group_gone() const { return kill(-pid_, 0) != 0 && errno == ESRCH; }
  // Reaps every child that has ended (the command, and the orphans of its
  // group that come to the supervisor as their subreaper); true once the
  // command itself has, with its status in `wait_status`.
  bool reap(int* wait_status);
  JobOutcome outcome(int wait_status) const;

  Store& store_;
  const JobRequest& request_;
  std::string id_;
  pid_t pid_;
  int signal_fd_;
  bool command_ended_ = false;
  StopReason stop_ = StopReason::kNone;
  Steady::time_point kill_at_ = Steady::time_point::max();
};

void Supervision::begin_stop(StopReason reason, Micros grace) {
  if (stop_ != StopReason::kNone) return;
  stop_ = reason;
  kill(-pid_, SIGTERM);
  kill_at_ = Steady::now() + std::chrono::microseconds(grace);
}

bool Supervision::drain_signals() {
  bool sigterm = false;
  signalfd_siginfo info;
  while (read(signal_fd_, &info, sizeof info) == sizeof info) {
    if (info.ssi_signo == SIGTERM) sigterm = true;
  }
  return sigterm;
}

void Supervision::on_sigterm() {
  auto job = store_.find_job(id_);
  if (job.is_ok() && job->has_value() && (*job)->cancel_requested_at) {
    begin_stop(StopReason::kCancel, (*job)->cancel_grace);
  } else {
    begin_stop(StopReason::kTerminated, kDefaultGrace);
  }
}

bool Supervision::reap(int* wait_status) {
  while (true) {
    int status = 0;
    pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid <= 0) break;
    if (pid == pid_) {
      *wait_status = status;
      command_ended_ = true;
    }
  }
  return command_ended_;
}

JobOutcome Supervision::run() {
  auto started = Steady::now();
  auto timeout_at = request_.timeout ? started + std::chrono::microseconds(*request_.timeout)
                                     : Steady::time_point::max();
  // Three heartbeats per lease: one late beat does not lose the job.
  const auto heartbeat_every = std::chrono::microseconds(std::max<Micros>(request_.lease / 3, 1));
  auto heartbeat_at = started + heartbeat_every;
  int wait_status = 0;
  while (true) {
    bool was_running = !command_ended_;
    if (reap(&wait_status) && was_running && stop_ == StopReason::kNone) {
      // A command that ended on its own may leave background processes; they
      // are its business. One being stopped is stopped whole.
      break;
    }
    if (command_ended_ && group_gone()) break;
    auto next = std::min({timeout_at, heartbeat_at, kill_at_});
    // Orphans outside the supervisor's care (they changed session) send no
    // SIGCHLD here: look again at the group every 20 ms while stopping it.
    if (command_ended_) next = std::min(next, Steady::now() + std::chrono::milliseconds(20));
    Micros wait = std::max<Micros>(0, micros_until(next));
    pollfd watched{signal_fd_, POLLIN, 0};
    int n = poll(&watched, 1,
                 next == Steady::time_point::max() ? -1 : static_cast<int>((wait + 999) / 1000));
    if (n < 0 && errno != EINTR) break;
    if ((watched.revents & POLLIN) && drain_signals()) on_sigterm();
    auto now = Steady::now();
    if (now >= timeout_at) {
      begin_stop(StopReason::kTimeout, kDefaultGrace);
      timeout_at = Steady::time_point::max();
    }
    if (now >= kill_at_) {
      kill(-pid_, SIGKILL);
      kill_at_ = Steady::time_point::max();
    }
    if (now >= heartbeat_at) {
      // After a pause past the lease (SIGSTOP, a suspended VM) the job may
      // have been seen LOST from another host and started again there: the
      // key must not run twice, so the command stops here.
      auto owned = store_.heartbeat(id_, SystemClock::instance().now() + request_.lease);
      if (owned.is_ok() && !*owned) begin_stop(StopReason::kLeaseLost, kDefaultGrace);
      heartbeat_at = now + heartbeat_every;
    }
  }
  return outcome(wait_status);
}

JobOutcome Supervision::outcome(int wait_status) const {
  JobOutcome result;
  if (WIFEXITED(wait_status)) {
    result.exit_code = WEXITSTATUS(wait_status);
  } else if (WIFSIGNALED(wait_status)) {
    result.signal = signal_name(WTERMSIG(wait_status));
  }
  switch (stop_) {
    case StopReason::kCancel:
      result.status = RunStatus::kCancelled;
      result.error = "cancelled by ratchet cancel";
      break;
    case StopReason::kTimeout:
      result.status = RunStatus::kFailed;
      result.error = "timed out after " + describe_duration(*request_.timeout) + " (--timeout)";
      break;
    case StopReason::kTerminated:
      result.status = RunStatus::kFailed;
      result.error = "the job's supervisor was sent SIGTERM";
      break;
    case StopReason::kLeaseLost:  // recorded already (LOST): this changes nothing
      result.status = RunStatus::kLost;
      result.error = "the supervisor lost its lease";
      break;
    case StopReason::kNone:
      result.status = result.exit_code == 0 ? RunStatus::kSucceeded : RunStatus::kFailed;
      if (result.signal) result.error = "killed by " + *result.signal;
      if (result.exit_code && *result.exit_code != 0) {
        result.error = "exited with code " + std::to_string(*result.exit_code);
      }
      break;
  }
  return result;
}

int open_log(const std::string& path) {
  return open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
}

JobOutcome launch_failure(const Launch& failed, const JobRequest& request, int stderr_fd) {
  std::string what = failed.failed_at == "run" ? request.command[0] : request.cwd;
  std::string message =
      "cannot " + failed.failed_at + " '" + what + "': " + std::strerror(failed.error);
  write_all(stderr_fd, "ratchet: " + message + "\n");
  JobOutcome outcome;
  outcome.status = RunStatus::kFailed;
  // The shell's convention: 127 when the command is not there, 126 when it is
  // there but cannot be executed.
  outcome.exit_code = (failed.error == ENOENT || failed.error == ENOTDIR) ? 127 : 126;
  outcome.error = message;
  return outcome;
}

void supervise(SupervisorPipes pipes, const JobRequest& request, const std::string& id,
               Store& store, int signal_fd) {
  int stdout_fd = open_log(request.log_dir + "/" + id + ".stdout");
  int stderr_fd = open_log(request.log_dir + "/" + id + ".stderr");
  Launch launched = launch(request, stdout_fd, stderr_fd);
  if (launched.error != 0) {
    if (launched.pid > 0) waitpid(launched.pid, nullptr, 0);
    record_outcome(store, id, launch_failure(launched, request, stderr_fd));
    write_all(pipes.ready_write, "F");
    return;
  }
  close(stdout_fd);
  close(stderr_fd);
  auto identity = identify_process(launched.pid, /*include_zombies=*/true);
  auto running = store.mark_job_running(
      id, identity.value_or(ProcessIdentity{launched.pid, 0, current_boot_id()}));
  if (!running.is_ok() || !*running) {
    // Cancelled or found lost before it could run: it must not run on.
    kill(-launched.pid, SIGKILL);
    waitpid(launched.pid, nullptr, 0);
    return;
  }
  write_all(pipes.ready_write, "R");
  close(pipes.ready_write);
  Supervision supervision(store, request, id, launched.pid, signal_fd);
  record_outcome(store, id, supervision.run());
}

}  // namespace

void run_supervisor(SupervisorPipes pipes, const JobRequest& request, const std::string& db_path,
                    const StoreOptions& options) {
  detach(pipes);
  int signal_fd = take_signals();
  std::string id = read_all(pipes.go_read);
  close(pipes.go_read);
  if (id.empty()) _exit(0);  // `start` found a live job, failed, or died first
  auto store = open_store(db_path, SystemClock::instance(), options);
  if (store.is_ok()) supervise(pipes, request, id, **store, signal_fd);
  _exit(0);
}

}  // namespace ratchet::jobs
