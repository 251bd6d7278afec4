#include "jobs/runner.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "jobs/process.hpp"
#include "jobs/report.hpp"
#include "jobs/state_dir.hpp"
#include "jobs/supervisor.hpp"

namespace ratchet::jobs {
namespace {

using Steady = std::chrono::steady_clock;

// How soon to look again at a job whose command is gone but whose outcome is
// not recorded yet, doubling up to the last: its supervisor records it within
// a millisecond, unless the store cannot take the write (a full disk).
constexpr Micros kFirstRecheck = 10 * kMicrosPerMilli;
constexpr Micros kLastRecheck = kMicrosPerSecond;
// How long `cancel` waits past the grace for the supervisor to record the end.
constexpr Micros kCancelSlack = 5 * kMicrosPerSecond;
// How often to look again at a job of another host (a shared PostgreSQL
// store): no pidfd can tell when it ends, and a shorter poll would be a load
// on the database for every waiting command.
constexpr Micros kRemoteRecheckInterval = 500 * kMicrosPerMilli;

// A job of another host (a shared PostgreSQL store): its pids mean nothing here.
bool on_another_host(const JobRecord& job) {
  return !job.host_id.empty() && job.host_id != current_host_id();
}

std::string describe(const ProcessIdentity& supervisor) {
  return "supervisor (pid " + std::to_string(supervisor.pid) + ")";
}

Result<JobRecord> reload(Store& store, const std::string& id) {
  ASSIGN_OR_RETURN(auto found, store.find_job(id));
  if (!found) return not_found("job " + id + " is no longer in the history");
  return refresh_job(store, std::move(*found));
}

Micros until(Steady::time_point deadline) {
  if (deadline == Steady::time_point::max()) return -1;
  return std::max<Micros>(
      0, std::chrono::duration_cast<std::chrono::microseconds>(deadline - Steady::now()).count());
}

// Sleeps until the job may have changed: its command or its supervisor
// exited, or (neither can be watched) a short recheck interval passed.
void wait_for_change(const JobRecord& job, Micros left, Micros* recheck) {
  if (on_another_host(job)) {
    Micros nap = left < 0 ? kRemoteRecheckInterval : std::min(left, kRemoteRecheckInterval);
    std::this_thread::sleep_for(std::chrono::microseconds(nap));
    return;
  }
  int command = job.status == RunStatus::kRunning && job.process ? open_pidfd(*job.process) : -1;
  int supervisor = job.supervisor ? open_pidfd(*job.supervisor) : -1;
  Micros timeout = left;
  if (command >= 0) {
    *recheck = kFirstRecheck;
  } else {
    // STARTING (launching, or a retry's delay), or the command is gone and its
    // outcome is on its way: the supervisor's exit, or a recheck, tells.
    timeout = left < 0 ? *recheck : std::min(left, *recheck);
    *recheck = std::min(*recheck * 2, kLastRecheck);
  }
  if (command < 0 && supervisor < 0) {
    std::this_thread::sleep_for(std::chrono::microseconds(std::min(timeout, kFirstRecheck)));
    return;
  }
  pollfd fds[2] = {{command, POLLIN, 0}, {supervisor, POLLIN, 0}};
  int timeout_ms = timeout < 0 ? -1 : static_cast<int>((timeout + 999) / 1000);
  while (poll(fds, 2, timeout_ms) < 0 && errno == EINTR) {
  }
  if (command >= 0) close(command);
  if (supervisor >= 0) close(supervisor);
}

// The newest job of `run_key` if the supervisor `pid` recorded it (the last
// attempt, with retries), brought up to date; nullopt if it recorded none.
Result<std::optional<JobRecord>> job_left_by(const StoreLocation& location,
                                             const std::string& run_key, int pid) {
  ASSIGN_OR_RETURN(auto store,
                   open_store(location.db_path, SystemClock::instance(), location.options));
  ASSIGN_OR_RETURN(auto newest, store->newest_job_for_key(run_key));
  if (!newest || !newest->supervisor || newest->supervisor->pid != pid) {
    return std::optional<JobRecord>();
  }
  ASSIGN_OR_RETURN(auto job, refresh_job(*store, std::move(*newest)));
  return std::optional<JobRecord>(std::move(job));
}

}  // namespace

bool check_job_alive(const JobRecord& job, std::string* lost_reason) {
  if (is_terminal(job.status)) return false;
  if (on_another_host(job)) {
    // Another host's pids mean nothing here: its supervisor lives while it
    // renews its lease, and stops the command itself if it finds it taken.
    if (job.lease_expires_at && *job.lease_expires_at > SystemClock::instance().now()) return true;
    *lost_reason = "its supervisor on host " + job.host_id + " stopped renewing its lease";
    return false;
  }
  if (!job.supervisor) {
    *lost_reason = "no supervisor was recorded for the job";
    return false;
  }
  if (is_alive(*job.supervisor)) return true;
  if (job.supervisor->boot_id != current_boot_id()) {
    *lost_reason =
        "the machine restarted while the job was " + std::string(status_name(job.status));
  } else if (job.status == RunStatus::kStarting) {
    *lost_reason = "its " + describe(*job.supervisor) + " ended before the command started";
  } else {
    *lost_reason = "its " + describe(*job.supervisor) + " died without recording a result";
  }
  if (job.process) kill_leftover_group(*job.process);
  return false;
}

Result<JobRecord> refresh_job(Store& store, JobRecord job) {
  std::string reason;
  if (is_terminal(job.status) || check_job_alive(job, &reason)) return job;
  auto marked = store.mark_job_lost(job.id, job.status, reason);
  if (!marked.is_ok()) {
    if (marked.status().code() == Code::kBusy) return marked.status();
    job.status = RunStatus::kLost;
    job.error = reason + " (not recorded yet: " + marked.status().message() + ")";
    return job;
  }
  // Recorded by us, or moved first by someone else (its supervisor just now).
  ASSIGN_OR_RETURN(auto found, store.find_job(job.id));
  if (found) return std::move(*found);
  return not_found("job " + job.id + " is no longer in the history");
}

Result<StartOutcome> start_job(const StoreLocation& location, JobRequest request, bool sync) {
  int report[2];
  if (pipe2(report, O_CLOEXEC) != 0) {
    return internal_error(std::string("cannot create a pipe: ") + std::strerror(errno));
  }
  // The supervisor records the job itself, naming itself, so that a STARTING
  // job always names a process whose death is visible; `start` only waits for
  // its report, and a `start` killed at any point leaves nothing that blocks
  // the key (the supervisor carries on, or never recorded anything).
  pid_t pid = fork();
  if (pid < 0) return internal_error(std::string("cannot fork: ") + std::strerror(errno));
  if (pid == 0) {
    close(report[0]);
    run_supervisor(report[1],
                   SupervisorTask{std::move(request), location.db_path, location.options, sync});
  }
  close(report[1]);
  fault_point("start-after-fork");  // tests: `start` killed before the report
  std::string bytes = read_to_end(report[0]);
  close(report[0]);
  if (bytes.empty()) {
    // It closed the pipe without reporting: it died. Reaped, it is dead to
    // whoever looks at the job next, which is then recorded LOST.
    while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    // With --sync the caller asked how the job ended: if the supervisor had
    // recorded it, it ended LOST, which is an answer (exit 6), as `wait` gives.
    if (sync) {
      auto lost = job_left_by(location, request.run_key, pid);
      if (lost.is_ok() && lost->has_value()) return StartOutcome{std::move(**lost), false, true};
    }
    return internal_error("the job's supervisor (pid " + std::to_string(pid) +
                          ") ended before it reported; `ratchet status --run-key` shows what "
                          "it recorded");
  }
  waitpid(pid, nullptr, WNOHANG);  // reaped now if it has exited; else init will
  ASSIGN_OR_RETURN(StartedJob started, decode_report(bytes));
  return StartOutcome{std::move(started.job), started.existing, started.accepted};
}

Result<JobRecord> wait_for_job(Store& store, JobRecord job, std::optional<Micros> timeout,
                               bool follow_retries) {
  auto deadline =
      timeout ? Steady::now() + std::chrono::microseconds(*timeout) : Steady::time_point::max();
  Micros recheck = kFirstRecheck;
  while (true) {
    while (!is_terminal(job.status)) {
      Micros left = until(deadline);
      if (left == 0) {
        return Status(Code::kDeadlineExceeded, "job " + job.id + " is still " +
                                                   std::string(status_name(job.status)) +
                                                   " after the --timeout");
      }
      wait_for_change(job, left, &recheck);
      ASSIGN_OR_RETURN(job, reload(store, job.id));
    }
    if (!follow_retries) return job;
    ASSIGN_OR_RETURN(auto retry, store.find_retry_of(job.id));
    if (!retry) return job;
    ASSIGN_OR_RETURN(job, refresh_job(store, std::move(*retry)));
  }
}

Result<JobRecord> cancel_job(Store& store, JobRecord job, Micros grace,
                             const std::optional<std::string>& reason) {
  auto already_ended = [](const JobRecord& ended) {
    return failed_precondition("job " + ended.id + " already ended " +
                               std::string(status_name(ended.status)) +
                               "; there is nothing to cancel");
  };
  ASSIGN_OR_RETURN(job, refresh_job(store, std::move(job)));
  if (is_terminal(job.status)) return already_ended(job);
  ASSIGN_OR_RETURN(bool requested, store.request_cancel(job.id, grace, reason));
  if (!requested) {
    ASSIGN_OR_RETURN(job, reload(store, job.id));
    return already_ended(job);
  }
  if (job.status == RunStatus::kStarting) {
    // Nothing runs yet: end it here. Its supervisor, told below, then does not
    // start the command (or stops it, if it started it just now).
    JobOutcome cancelled{RunStatus::kCancelled, {}, {}, cancel_error(reason)};
    ASSIGN_OR_RETURN(bool done, store.finish_job(job.id, cancelled));
    (void)done;
  }
  int pidfd = open_pidfd(*job.supervisor);
  if (pidfd >= 0) {
    syscall(SYS_pidfd_send_signal, pidfd, SIGTERM, nullptr, 0);
    close(pidfd);
  }
  ASSIGN_OR_RETURN(job, reload(store, job.id));
  auto ended = wait_for_job(store, job, grace + kCancelSlack);
  // Exit 0 says the job ended CANCELLED: not one that is still running (its
  // supervisor stopped, or waiting for a full disk), nor one that ended on its
  // own (or by its --timeout) before the cancel reached it.
  if (!ended.is_ok() && ended.status().code() == Code::kDeadlineExceeded) {
    std::string who = job.supervisor ? describe(*job.supervisor) : "supervisor";
    return Status(Code::kDeadlineExceeded,
                  "job " + job.id + " is still " + std::string(status_name(job.status)) + ": its " +
                      who +
                      " has not recorded the cancel yet (it will; 'ratchet wait' tells when)");
  }
  if (ended.is_ok() && ended->status != RunStatus::kCancelled) {
    std::string why = ended->error ? " (" + *ended->error + ")" : "";
    return failed_precondition("job " + ended->id + " ended " +
                               std::string(status_name(ended->status)) + why +
                               " before the cancel reached it");
  }
  return ended;
}

}  // namespace ratchet::jobs
