#include "jobs/runner.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "jobs/process.hpp"
#include "jobs/state_dir.hpp"
#include "jobs/supervisor.hpp"

namespace ratchet::jobs {
namespace {

// How often to look again at a job whose supervisor cannot be watched through
// a pidfd (it has just exited, so the next look records its end or LOST).
constexpr Micros kRecheckInterval = 10 * kMicrosPerMilli;
// How often to look again at a job of another host (a shared PostgreSQL
// store): no pidfd can tell when it ends, and a shorter poll would be a load
// on the database for every waiting command.
constexpr Micros kRemoteRecheckInterval = 500 * kMicrosPerMilli;

std::string describe(const ProcessIdentity& supervisor) {
  return "supervisor (pid " + std::to_string(supervisor.pid) + ")";
}

void close_fd(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}

// A test-only fault point: RATCHET_TEST_FAULT=after-commit kills `start`
// between recording the job and handing it to its supervisor.
void fault_point(const char* name) {
  const char* fault = std::getenv("RATCHET_TEST_FAULT");
  if (fault && std::strcmp(fault, name) == 0) raise(SIGKILL);
}

Result<JobRecord> reload(Store& store, const std::string& id) {
  ASSIGN_OR_RETURN(auto found, store.find_job(id));
  if (!found) return not_found("job " + id + " is no longer in the history");
  return refresh_job(store, std::move(*found));
}

}  // namespace

bool check_job_alive(const JobRecord& job, std::string* lost_reason) {
  if (is_terminal(job.status)) return false;
  if (!job.host_id.empty() && job.host_id != current_host_id()) {
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
  ASSIGN_OR_RETURN(bool marked, store.mark_job_lost(job.id, job.status, reason));
  if (!marked) {
    // Someone else moved it first (its supervisor finished it just now).
    ASSIGN_OR_RETURN(auto found, store.find_job(job.id));
    if (found) return std::move(*found);
    return not_found("job " + job.id + " is no longer in the history");
  }
  ASSIGN_OR_RETURN(auto found, store.find_job(job.id));
  return found ? std::move(*found) : job;
}

Result<StartOutcome> start_job(const StoreLocation& location, JobRequest request, bool sync) {
  int go[2], ready[2];
  if (pipe2(go, O_CLOEXEC) != 0 || pipe2(ready, O_CLOEXEC) != 0) {
    return internal_error(std::string("cannot create a pipe: ") + std::strerror(errno));
  }
  // The supervisor exists before the job is recorded, so the job can name it
  // and a `start` killed at any point leaves nothing that blocks the key.
  pid_t pid = fork();
  if (pid < 0) return internal_error(std::string("cannot fork: ") + std::strerror(errno));
  if (pid == 0) {
    close(go[1]);
    close(ready[0]);
    run_supervisor({go[0], ready[1]}, request, location.db_path, location.options);
  }
  close(go[0]);
  close(ready[1]);
  // Closing the go pipe unsent tells the supervisor there is nothing to do.
  auto dismiss_supervisor = [&] {
    close_fd(go[1]);
    close_fd(ready[0]);
    waitpid(pid, nullptr, 0);
  };
  auto give_up = [&](Status status) -> Result<StartOutcome> {
    dismiss_supervisor();
    return status;
  };
  auto supervisor = identify_process(pid, /*include_zombies=*/true);
  if (!supervisor) return give_up(internal_error("the job's supervisor did not start"));
  request.supervisor = *supervisor;

  auto store = open_store(location.db_path, SystemClock::instance(), location.options);
  if (!store.is_ok()) return give_up(store.status());
  auto started = (*store)->start_job(request, check_job_alive);
  if (!started.is_ok()) return give_up(started.status());
  if (started->existing) {
    dismiss_supervisor();
    return StartOutcome{std::move(started->job), true};
  }
  fault_point("after-commit");
  const std::string& id = started->job.id;
  (void)!write(go[1], id.data(), id.size());
  close_fd(go[1]);
  if (sync) {
    close_fd(ready[0]);
    while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
  } else {
    char byte;
    while (read(ready[0], &byte, 1) < 0 && errno == EINTR) {
    }
    close_fd(ready[0]);
  }
  ASSIGN_OR_RETURN(JobRecord job, reload(**store, id));
  return StartOutcome{std::move(job), false};
}

Result<JobRecord> wait_for_job(Store& store, JobRecord job, std::optional<Micros> timeout) {
  using Steady = std::chrono::steady_clock;
  auto deadline =
      timeout ? Steady::now() + std::chrono::microseconds(*timeout) : Steady::time_point::max();
  while (!is_terminal(job.status)) {
    Micros left =
        deadline == Steady::time_point::max()
            ? -1
            : std::chrono::duration_cast<std::chrono::microseconds>(deadline - Steady::now())
                  .count();
    if (timeout && left <= 0) {
      return Status(Code::kDeadlineExceeded, "job " + job.id + " is still " +
                                                 std::string(status_name(job.status)) +
                                                 " after the --timeout");
    }
    int pidfd = job.supervisor ? open_pidfd(*job.supervisor) : -1;
    if (pidfd >= 0) {
      // The supervisor exits right after recording the outcome.
      wait_readable(pidfd, left);
      close(pidfd);
    } else {
      bool remote = !job.host_id.empty() && job.host_id != current_host_id();
      Micros interval = remote ? kRemoteRecheckInterval : kRecheckInterval;
      Micros nap = left < 0 ? interval : std::min(left, interval);
      std::this_thread::sleep_for(std::chrono::microseconds(nap));
    }
    ASSIGN_OR_RETURN(job, reload(store, job.id));
  }
  return job;
}

Result<JobRecord> cancel_job(Store& store, JobRecord job, Micros grace) {
  auto already_ended = [](const JobRecord& ended) {
    return failed_precondition("job " + ended.id + " already ended " +
                               std::string(status_name(ended.status)) +
                               "; there is nothing to cancel");
  };
  ASSIGN_OR_RETURN(job, refresh_job(store, std::move(job)));
  if (is_terminal(job.status)) return already_ended(job);
  if (job.status == RunStatus::kStarting) {
    // Nothing runs yet: end it here; its supervisor will find it CANCELLED and
    // not start the command.
    JobOutcome cancelled{RunStatus::kCancelled, {}, {}, "cancelled by ratchet cancel"};
    ASSIGN_OR_RETURN(bool done, store.finish_job(job.id, cancelled));
    ASSIGN_OR_RETURN(job, reload(store, job.id));
    if (done || job.status == RunStatus::kCancelled) return job;
    if (is_terminal(job.status)) return already_ended(job);
  }
  ASSIGN_OR_RETURN(bool requested, store.request_cancel(job.id, grace));
  if (!requested) {
    ASSIGN_OR_RETURN(job, reload(store, job.id));
    return already_ended(job);
  }
  int pidfd = open_pidfd(*job.supervisor);
  if (pidfd >= 0) {
    syscall(SYS_pidfd_send_signal, pidfd, SIGTERM, nullptr, 0);
    wait_readable(pidfd, grace + 5 * kMicrosPerSecond);
    close(pidfd);
  }
  return reload(store, job.id);
}

}  // namespace ratchet::jobs
