// ratchet logs (--run-key KEY | --job-id ID) [--stream stdout|stderr] [--follow]
#include <fcntl.h>
#include <poll.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "cli/command.hpp"
#include "common/regular_file.hpp"
#include "jobs/process.hpp"

namespace ratchet::cli {
namespace {

// Copies what the file has past its current offset to stdout. A stdout that
// cannot take it (a full disk) is an error: a script must not take a cut log
// for the whole one. (A closed pipe ends the process with SIGPIPE first.)
Status copy_available(int fd) {
  char buffer[65536];
  while (true) {
    ssize_t n = read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) return Status::ok();
    if (n < 0) return internal_error(std::string("cannot read the log: ") + std::strerror(errno));
    std::size_t written = 0;
    while (written < static_cast<std::size_t>(n)) {
      ssize_t w = write(1, buffer + written, static_cast<std::size_t>(n) - written);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0)
        return internal_error(std::string("cannot write to stdout: ") + std::strerror(errno));
      written += static_cast<std::size_t>(w);
    }
  }
}

// Prints the log as the job writes it, and returns the job once it has ended:
// woken by inotify when the file grows and by the supervisor's pidfd when it
// exits.
Result<JobRecord> follow(Store& store, JobRecord job, int fd, const std::string& path) {
  int watch = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  if (watch >= 0) inotify_add_watch(watch, path.c_str(), IN_MODIFY);
  while (true) {
    RETURN_IF_ERROR(copy_available(fd));
    if (is_terminal(job.status)) break;
    // The command's exit ends this attempt; the supervisor's, the last one.
    int command =
        job.status == RunStatus::kRunning && job.process ? jobs::open_pidfd(*job.process) : -1;
    int pidfd = job.supervisor ? jobs::open_pidfd(*job.supervisor) : -1;
    pollfd fds[3] = {{watch, POLLIN, 0}, {pidfd, POLLIN, 0}, {command, POLLIN, 0}};
    // The timeout is a safety net, and what notices an outcome recorded after
    // the command ended while the supervisor lives on (retries, a full disk).
    poll(fds, 3, command >= 0 ? 1000 : 100);
    if (pidfd >= 0) close(pidfd);
    if (command >= 0) close(command);
    if (fds[0].revents & POLLIN) {
      char events[4096];
      while (read(watch, events, sizeof events) > 0) {
      }
    }
    auto current = store.find_job(job.id);
    if (!current.is_ok()) return current.status();
    if (!*current) break;
    auto refreshed = jobs::refresh_job(store, std::move(**current));
    if (!refreshed.is_ok()) return refreshed.status();
    job = std::move(*refreshed);
  }
  if (watch >= 0) close(watch);
  RETURN_IF_ERROR(copy_available(fd));
  return job;
}

// Opens the job's log. A STARTING job has none yet, which is no error: its
// command is not launched (a retry's delay, up to minutes), so plain `logs`
// has nothing to print (-1) and `--follow` waits for the file, watching the job.
Result<int> open_log(Store& store, JobRecord* job, const std::string& stream, bool follow) {
  while (true) {
    const std::string& path = stream == "stderr" ? job->stderr_file : job->stdout_file;
    // Never a FIFO or a device put in the log's place: open() would block.
    auto fd = open_regular_file(path, O_RDONLY);
    if (fd.is_ok()) return *fd;
    if (fd.status().code() != Code::kNotFound || job->status != RunStatus::kStarting) {
      // What is there is not the log Ratchet wrote: its log is missing (exit 3).
      return not_found("the " + stream + " log of job " + job->id + " is missing (" +
                       fd.status().message() + ")");
    }
    if (!follow) return -1;
    (void)jobs::wait_for_job(store, *job, 100 * kMicrosPerMilli);  // its end, or 100 ms
    ASSIGN_OR_RETURN(auto found, store.find_job(job->id));
    if (!found) return not_found("job " + job->id + " is no longer in the history");
    ASSIGN_OR_RETURN(*job, jobs::refresh_job(store, std::move(*found)));
  }
}

// Prints one job's log: what it holds, or with `follow` as the job writes it
// until the job ends. Returns the job as last seen.
Result<JobRecord> print_log(Store& store, JobRecord job, const std::string& stream,
                            bool follow_flag) {
  ASSIGN_OR_RETURN(int fd, open_log(store, &job, stream, follow_flag));
  if (fd < 0) return job;  // not launched yet: nothing written
  const std::string path = stream == "stderr" ? job.stderr_file : job.stdout_file;
  Result<JobRecord> printed = job;
  if (follow_flag) {
    printed = follow(store, std::move(job), fd, path);
  } else if (Status status = copy_available(fd); !status.is_ok()) {
    printed = status;
  }
  close(fd);
  return printed;
}

}  // namespace

int run_logs(int argc, char** argv) {
  CLI::App app("Print the raw bytes of a job's stdout (or stderr).", "logs");
  JobSelector selector;
  std::string stream = "stdout";
  bool follow_flag = false;
  selector.add_to(app);
  app.add_option("--stream", stream, "stdout or stderr")
      ->capture_default_str()
      ->check(CLI::IsMember({"stdout", "stderr"}));
  app.add_flag(
      "--follow,-f", follow_flag,
      "keep printing as the job writes; return when it ends (with --run-key, after its last "
      "retry)");
  add_store_option(app);
  if (auto exit_code = parse(app, argc, argv)) return *exit_code;

  auto store = open_job_store(jobs::StateAccess::kRead);
  if (!store.is_ok()) return fail(store.status());
  auto job = find_selected_job(**store, selector);
  if (!job.is_ok()) return fail(job.status());
  // With --run-key, --follow goes on through the attempts that `start
  // --retries` runs, each attempt's log in turn, as `wait --run-key` waits for
  // the last: it returned after the first, while the key's job ran on.
  const bool follow_retries = follow_flag && !selector.run_key.empty();
  while (true) {
    auto printed = print_log(**store, std::move(*job), stream, follow_flag);
    if (!printed.is_ok()) return fail(printed.status());
    if (!follow_retries) return 0;
    auto retry = (*store)->find_retry_of(printed->id);
    if (!retry.is_ok()) return fail(retry.status());
    if (!*retry) return 0;
    job = jobs::refresh_job(**store, std::move(**retry));
    if (!job.is_ok()) return fail(job.status());
  }
}

}  // namespace ratchet::cli
