#include "jobs/supervisor.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "common/regular_file.hpp"
#include "common/time_format.hpp"
#include "jobs/process.hpp"
#include "jobs/report.hpp"
#include "jobs/runner.hpp"
#include "jobs/state_dir.hpp"

extern char** environ;

namespace ratchet::jobs {

Micros retry_delay(Micros base, int retry, double unit) {
  const Micros cap = std::max(base, kMaxRetryDelay);
  Micros full = base;
  for (int i = 1; i < retry && full < cap; ++i) full = full > cap / 2 ? cap : full * 2;
  full = std::min(full, cap);
  unit = std::clamp(unit, 0.0, 1.0);
  return full - static_cast<Micros>(std::floor(static_cast<double>(full / 2) * unit));
}

namespace {

using Steady = std::chrono::steady_clock;

constexpr Micros kDefaultGrace = 10 * kMicrosPerSecond;
constexpr Micros kFirstWriteRetry = 20 * kMicrosPerMilli;
constexpr Micros kLastWriteRetry = kMicrosPerSecond;

Micros micros_until(Steady::time_point when) {
  return std::chrono::duration_cast<std::chrono::microseconds>(when - Steady::now()).count();
}

// Detaches from the caller: own session, no terminal, stdio on /dev/null (so a
// caller reading `ratchet start`'s output sees EOF when `start` exits), and no
// file descriptor inherited but the report pipe.
void detach(int report_fd) {
  setsid();
  int null_fd = open("/dev/null", O_RDWR);
  dup2(null_fd, 0);
  dup2(null_fd, 1);
  dup2(null_fd, 2);
  if (report_fd > 3) close_range(3, report_fd - 1, 0);
  close_range(report_fd + 1, ~0U, 0);
  signal(SIGPIPE, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  prctl(PR_SET_CHILD_SUBREAPER, 1);
}

// SIGTERM and SIGCHLD are taken through a signalfd, blocked from before the
// command starts, so the wait loops see them as events and none is missed.
int take_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGCHLD);
  sigprocmask(SIG_BLOCK, &set, nullptr);
  return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

// Sends the one report `start` waits for, at the first moment it is due.
class Reporter {
 public:
  Reporter(int fd, bool sync) : fd_(fd), sync_(sync) {}
  void fail(const Status& status) { send(encode_report(status)); }
  void existing(const StartedJob& started) { send(encode_report(started)); }
  // An attempt was recorded RUNNING or ended: what an async start returns.
  void progress(const JobRecord& job) {
    if (!sync_) send(encode_report(StartedJob{job, false, true}));
  }
  // The supervisor is done: what a sync start returns.
  void final(const JobRecord& job) { send(encode_report(StartedJob{job, false, true})); }
  bool sent() const { return fd_ < 0; }

 private:
  void send(const std::string& report) {
    if (fd_ < 0) return;
    write_fully(fd_, report);
    close(fd_);
    fd_ = -1;
  }
  int fd_;
  bool sync_;
};

// Runs `write` until the store takes it: an outcome must not be lost to a
// momentary lock or a full disk, so a busy or unavailable store is waited
// out (backing off to one try a second); any other error is given up on.
template <typename Write>
auto with_patience(Write&& write) -> decltype(write()) {
  Micros pause = kFirstWriteRetry;
  while (true) {
    auto written = write();
    Code code = written.status().code();
    if (written.is_ok() || (code != Code::kBusy && code != Code::kUnavailable)) return written;
    std::this_thread::sleep_for(std::chrono::microseconds(pause));
    pause = std::min(pause * 2, kLastWriteRetry);
  }
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
  mode_t umask = 022;
  // Exec resets the signals that have handlers, not the ignored ones: the
  // command gets those back to their defaults (one system call each, rather
  // than one for every signal).
  std::vector<int> ignored = ignored_signals();

  explicit CommandImage(const JobRequest& request) : umask(caller_umask()) {
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
  for (int s : image.ignored) signal(s, SIG_DFL);  // the child's own table (no CLONE_SIGHAND)
  setpgid(0, 0);
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != supervisor) _exit(127);  // the supervisor died before the line above
  ::umask(image.umask);                     // the caller's, not the store's private one
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
  // execvpe looks the command up in this process's PATH, not in the one it
  // passes on: the job's own --env PATH=... decides, as with `env PATH=...
  // COMMAND` (and with orchesjob, whose Python subprocess searched env's PATH).
  for (const auto& [name, value] : request.env) {
    if (name == "PATH") setenv("PATH", value.c_str(), 1);
  }
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
  std::string report = read_to_end(error_pipe[0]);
  close(error_pipe[0]);
  if (report.size() == 1 + sizeof(int)) {
    std::memcpy(&result.error, report.data() + 1, sizeof(int));
    result.failed_at = report[0] == 'd' ? "change directory to" : "run";
  }
  return result;
}

// Why the supervisor is stopping the command, if it is.
enum class StopReason { kNone, kTimeout, kCancel, kTerminated, kLeaseLost };

// How one attempt ended; `started` is false when it was cancelled or found
// lost before its command could run (nothing to record).
struct AttemptEnd {
  bool started = true;
  JobOutcome outcome;
  StopReason stop = StopReason::kNone;
};

// Reads the pending signals; true when one of them was SIGTERM.
bool drain_signals(int signal_fd) {
  bool sigterm = false;
  signalfd_siginfo info;
  while (read(signal_fd, &info, sizeof info) == sizeof info) {
    if (info.ssi_signo == SIGTERM) sigterm = true;
  }
  return sigterm;
}

// Waits for one attempt's command to end, stopping it when asked.
class Supervision {
 public:
  Supervision(Store& store, const JobRequest& request, std::string id, pid_t pid, int signal_fd)
      : store_(store), request_(request), id_(std::move(id)), pid_(pid), signal_fd_(signal_fd) {}

  AttemptEnd run();

 private:
  void begin_stop(StopReason reason, Micros grace);
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
  std::optional<std::string> cancel_reason_;
  Steady::time_point kill_at_ = Steady::time_point::max();
};

void Supervision::begin_stop(StopReason reason, Micros grace) {
  if (stop_ != StopReason::kNone) return;
  stop_ = reason;
  kill(-pid_, SIGTERM);
  kill_at_ = Steady::now() + std::chrono::microseconds(grace);
}

void Supervision::on_sigterm() {
  auto job = store_.find_job(id_);
  if (job.is_ok() && job->has_value() && (*job)->cancel_requested_at) {
    cancel_reason_ = (*job)->cancel_reason;
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

AttemptEnd Supervision::run() {
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
    if ((watched.revents & POLLIN) && drain_signals(signal_fd_)) on_sigterm();
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
  return AttemptEnd{true, outcome(wait_status), stop_};
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
      result.error = cancel_error(cancel_reason_);
      break;
    case StopReason::kTimeout:
      result.status = RunStatus::kFailed;
      result.error = "timed out after " + format_duration(*request_.timeout) + " (--timeout)";
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

// A reserve of empty log files (logs/.spare-0 ... .spare-3), made by the
// supervisors once their `start` has its answer, so that the next job renames
// two of them into place: creating a file costs ext4 an inode allocation
// (0.1 to 0.7 ms on a busy file system, the largest part of a short job's
// start), a rename in the same directory about 25 us. Without a spare, the
// log is created as it is named.
constexpr int kSpareLogs = 4;

std::string spare_log(const std::string& dir, int slot) {
  return dir + "/.spare-" + std::to_string(slot);
}

// Only a spare that is a regular file is used (one replaced by a FIFO, a
// directory or a link is left where it is), and what is opened must be one:
// a FIFO in the log's place would block the supervisor for good.
Result<int> open_log(const std::string& dir, const std::string& path) {
  for (int slot = 0; slot < kSpareLogs; ++slot) {
    struct stat info {};
    const std::string spare = spare_log(dir, slot);
    if (lstat(spare.c_str(), &info) != 0 || !S_ISREG(info.st_mode)) continue;
    if (rename(spare.c_str(), path.c_str()) == 0) break;
  }
  return open_regular_file(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND);
}

void refill_spare_logs(const std::string& dir) {
  for (int slot = 0; slot < kSpareLogs; ++slot) {
    int fd = open(spare_log(dir, slot).c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) close(fd);
  }
}

JobOutcome launch_failure(const Launch& failed, const JobRequest& request, int stderr_fd) {
  std::string what = failed.failed_at == "run" ? request.command[0] : request.cwd;
  std::string message =
      "cannot " + failed.failed_at + " '" + what + "': " + std::strerror(failed.error);
  write_fully(stderr_fd, "ratchet: " + message + "\n");
  JobOutcome outcome;
  outcome.status = RunStatus::kFailed;
  // The shell's convention: 127 when the command is not there, 126 when it is
  // there but cannot be executed.
  outcome.exit_code = (failed.error == ENOENT || failed.error == ENOTDIR) ? 127 : 126;
  outcome.error = message;
  return outcome;
}

// Runs the attempts of one job: the first, then the retries it asked for.
class Supervisor {
 public:
  Supervisor(Store& store, const JobRequest& request, int signal_fd, Reporter& reporter)
      : store_(store), request_(request), signal_fd_(signal_fd), reporter_(reporter) {}

  void run(JobRecord job);

 private:
  AttemptEnd run_attempt(const JobRecord& job);
  bool should_retry(const AttemptEnd& end, int retries_done) const;
  // Waits out the delay before a retry; false when the retry must not run
  // (cancelled, or the supervisor was told to stop).
  bool wait_before(const JobRecord& retry, Micros delay);
  JobRecord current(const JobRecord& job);
  // Once `start` has its answer: the store's checkpoint and the spare logs.
  void after_report();

  Store& store_;
  const JobRequest& request_;
  int signal_fd_;
  Reporter& reporter_;
};

JobRecord Supervisor::current(const JobRecord& job) {
  auto found = store_.find_job(job.id);
  return found.is_ok() && found->has_value() ? std::move(**found) : job;
}

// An attempt whose log cannot be opened is not run: its output would go
// nowhere, and nobody would know. It fails as a launch failure does, saying
// why in `error` (and in the stderr log, when that one could be opened).
JobOutcome log_failure(const Status& status, const char* stream, int stderr_fd) {
  JobOutcome outcome;
  outcome.status = RunStatus::kFailed;
  outcome.error = std::string("cannot open its ") + stream + " log (" + status.message() +
                  "); the command was not run";
  if (stderr_fd >= 0) write_fully(stderr_fd, "ratchet: " + *outcome.error + "\n");
  return outcome;
}

AttemptEnd Supervisor::run_attempt(const JobRecord& job) {
  auto stdout_log = open_log(request_.log_dir, job.stdout_file);
  auto stderr_log = open_log(request_.log_dir, job.stderr_file);
  if (!stdout_log.is_ok() || !stderr_log.is_ok()) {
    int stderr_fd = stderr_log.is_ok() ? *stderr_log : -1;
    JobOutcome failed = stdout_log.is_ok() ? log_failure(stderr_log.status(), "stderr", -1)
                                           : log_failure(stdout_log.status(), "stdout", stderr_fd);
    if (stdout_log.is_ok()) close(*stdout_log);
    if (stderr_fd >= 0) close(stderr_fd);
    return AttemptEnd{true, failed, StopReason::kNone};
  }
  int stdout_fd = *stdout_log;
  int stderr_fd = *stderr_log;
  Launch launched = launch(request_, stdout_fd, stderr_fd);
  if (launched.error != 0) {
    if (launched.pid > 0) waitpid(launched.pid, nullptr, 0);
    JobOutcome failed = launch_failure(launched, request_, stderr_fd);
    close(stdout_fd);
    close(stderr_fd);
    return AttemptEnd{true, failed, StopReason::kNone};
  }
  close(stdout_fd);
  close(stderr_fd);
  auto identity = identify_process(launched.pid, /*include_zombies=*/true);
  auto running = with_patience([&] {
    return store_.mark_job_running(
        job.id, identity.value_or(ProcessIdentity{launched.pid, 0, current_boot_id()}));
  });
  if (!running.is_ok() || !*running) {
    // Cancelled or found lost before it could run: it must not run on.
    kill(-launched.pid, SIGKILL);
    waitpid(launched.pid, nullptr, 0);
    return AttemptEnd{false, {}, StopReason::kNone};
  }
  reporter_.progress(current(job));
  if (reporter_.sent()) after_report();
  Supervision supervision(store_, request_, job.id, launched.pid, signal_fd_);
  return supervision.run();
}

bool Supervisor::should_retry(const AttemptEnd& end, int retries_done) const {
  // Only a command that failed is run again: not one cancelled, and not one
  // stopped because the supervisor itself was told to stop.
  return end.started && end.outcome.status == RunStatus::kFailed &&
         end.stop != StopReason::kTerminated && retries_done < request_.retries;
}

bool Supervisor::wait_before(const JobRecord& retry, Micros delay) {
  auto until = Steady::now() + std::chrono::microseconds(delay);
  // The delay may outlast the retry's lease: it is renewed meanwhile, or
  // another host sharing the store would see the retry LOST.
  const Micros heartbeat_every = std::max<Micros>(request_.lease / 3, 1);
  while (Steady::now() < until) {
    pollfd watched{signal_fd_, POLLIN, 0};
    Micros left = std::max<Micros>(0, micros_until(until));
    poll(&watched, 1, static_cast<int>((std::min(left, heartbeat_every) + 999) / 1000));
    if (!(watched.revents & POLLIN)) {
      if (Steady::now() >= until) break;
      auto owned = store_.heartbeat(retry.id, SystemClock::instance().now() + request_.lease);
      if (owned.is_ok() && !*owned) return false;  // ended meanwhile (cancelled, or seen LOST)
      continue;
    }
    while (waitpid(-1, nullptr, WNOHANG) > 0) {
    }
    if (!drain_signals(signal_fd_)) continue;
    JobRecord now = current(retry);
    if (now.status != RunStatus::kStarting) return false;  // `ratchet cancel` ended it
    if (!now.cancel_requested_at) {
      JobOutcome stopped{
          RunStatus::kFailed, {}, {}, "the job's supervisor was sent SIGTERM before the retry ran"};
      (void)with_patience([&] { return store_.finish_job(retry.id, stopped); });
      return false;
    }
  }
  return true;
}

void Supervisor::run(JobRecord job) {
  for (int retries_done = 0;; ++retries_done) {
    AttemptEnd end = run_attempt(job);
    if (!should_retry(end, retries_done)) {
      if (end.started) (void)with_patience([&] { return store_.finish_job(job.id, end.outcome); });
      break;
    }
    auto next = with_patience([&] { return store_.retry_job(job.id, end.outcome, request_); });
    reporter_.progress(current(job));
    if (!next.is_ok() || !next->has_value()) break;
    job = std::move(**next);
    Micros base = request_.retry_delay.value_or(kMicrosPerSecond);
    // Made only here: std::random_device probes the CPU (a trap in a VM).
    std::random_device random;
    double unit = std::uniform_real_distribution<double>(0.0, 1.0)(random);
    if (!wait_before(job, retry_delay(base, retries_done + 1, unit))) break;
  }
  JobRecord last = current(job);
  bool reported_before = reporter_.sent();
  reporter_.progress(last);
  reporter_.final(last);
  if (!reported_before) after_report();
}

void Supervisor::after_report() {
  // What `start` need not wait for.
  (void)store_.checkpoint_if_due();
  refill_spare_logs(request_.log_dir);
}

}  // namespace

std::string cancel_error(const std::optional<std::string>& reason) {
  std::string error = "cancelled by ratchet cancel";
  if (reason && !reason->empty()) error += ": " + *reason;
  return error;
}

void run_supervisor(int report_fd, const SupervisorTask& task) {
  detach(report_fd);
  int signal_fd = take_signals();
  Reporter reporter(report_fd, task.sync);
  JobRequest request = task.request;
  StoreOptions options = task.options;
  options.defer_checkpoints = true;  // the checkpoint waits until `start` has its answer
  auto self = identify_process(getpid(), /*include_zombies=*/true);
  if (!self) {
    reporter.fail(internal_error("the job's supervisor cannot read its own /proc entry"));
    _exit(0);
  }
  request.supervisor = *self;
  auto store = open_store(task.db_path, SystemClock::instance(), options);
  if (!store.is_ok()) {
    reporter.fail(store.status());
    _exit(0);
  }
  auto started = (*store)->start_job(request, check_job_alive);
  if (!started.is_ok()) {
    reporter.fail(started.status());
    _exit(0);
  }
  fault_point("after-commit");  // tests: a supervisor killed once the job is recorded
  if (started->existing) {
    reporter.existing(*started);
    (void)(*store)->checkpoint_if_due();
    _exit(0);
  }
  Supervisor supervisor(**store, request, signal_fd, reporter);
  supervisor.run(std::move(started->job));
  _exit(0);
}

}  // namespace ratchet::jobs
