#include "jobs/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace ratchet::jobs {
namespace {

struct ProcStat {
  char state = '?';
  std::int64_t start_ticks = 0;
};

// A small /proc file, or nullopt when it cannot be read (the process is gone).
// Plain system calls: they run on every start, where iostreams' set-up shows.
std::optional<std::string> read_small_file(const char* path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  char buffer[4096];  // /proc/self/status is about 1.5 KB
  ssize_t n = read(fd, buffer, sizeof buffer);
  close(fd);
  if (n < 0) return std::nullopt;
  return std::string(buffer, static_cast<std::size_t>(n));
}

// Reads /proc/<pid>/stat: the state (field 3) and start time (field 22). The
// command name (field 2) may hold spaces and parentheses, so fields are
// counted from the last ')'.
std::optional<ProcStat> read_stat(int pid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", pid);
  auto text = read_small_file(path);
  if (!text) return std::nullopt;
  auto close = text->rfind(')');
  if (close == std::string::npos) return std::nullopt;
  const char* cursor = text->c_str() + close + 1;
  ProcStat stat;
  for (int index = 3; index <= 22; ++index) {
    while (*cursor == ' ') ++cursor;
    if (*cursor == '\0') return std::nullopt;
    if (index == 3) stat.state = *cursor;
    if (index == 22) stat.start_ticks = std::strtoll(cursor, nullptr, 10);
    while (*cursor != ' ' && *cursor != '\0') ++cursor;
  }
  return stat;
}

}  // namespace

const std::string& current_boot_id() {
  static const std::string boot_id = [] {
    std::string id = read_small_file("/proc/sys/kernel/random/boot_id").value_or("");
    return id.substr(0, id.find('\n'));
  }();
  return boot_id;
}

std::optional<ProcessIdentity> identify_process(int pid, bool include_zombies) {
  auto stat = read_stat(pid);
  if (!stat) return std::nullopt;
  if (!include_zombies && (stat->state == 'Z' || stat->state == 'X')) return std::nullopt;
  return ProcessIdentity{pid, stat->start_ticks, current_boot_id()};
}

bool is_alive(const ProcessIdentity& identity) {
  if (identity.pid <= 0 || identity.boot_id != current_boot_id()) return false;
  auto now = identify_process(identity.pid);
  return now && now->start_ticks == identity.start_ticks;
}

int open_pidfd(const ProcessIdentity& identity) {
  if (!is_alive(identity)) return -1;
  int fd = static_cast<int>(syscall(SYS_pidfd_open, identity.pid, 0));
  if (fd < 0) return -1;
  // The pid could have been reused between the check and the open: check again
  // now that the pidfd pins the process.
  if (!is_alive(identity)) {
    close(fd);
    return -1;
  }
  return fd;
}

bool wait_readable(int fd, Micros timeout) {
  pollfd watched{fd, POLLIN, 0};
  int timeout_ms = timeout < 0 ? -1 : static_cast<int>((timeout + 999) / 1000);
  while (true) {
    int rc = poll(&watched, 1, timeout_ms);
    if (rc > 0) return true;
    if (rc == 0) return false;
    if (errno != EINTR) return false;
  }
}

void kill_leftover_group(const ProcessIdentity& leader) {
  if (leader.pid <= 1 || leader.boot_id != current_boot_id()) return;
  auto stat = read_stat(leader.pid);
  if (stat && stat->start_ticks != leader.start_ticks) return;  // the pid is someone else's now
  // No need to wait for the group to go: a process with SIGKILL pending never
  // runs user code again, whenever its parent gets round to reaping it.
  kill(-leader.pid, SIGKILL);
}

std::vector<int> ignored_signals() {
  std::vector<int> signals;
  auto status = read_small_file("/proc/self/status");
  auto line = status ? status->find("\nSigIgn:") : std::string::npos;
  if (line == std::string::npos) {
    for (int s = 1; s < NSIG; ++s) signals.push_back(s);
    return signals;
  }
  std::uint64_t mask = std::strtoull(status->c_str() + line + 8, nullptr, 16);
  for (int s = 1; s <= 64 && s < NSIG; ++s) {
    if (mask & (std::uint64_t{1} << (s - 1))) signals.push_back(s);
  }
  return signals;
}

std::string read_to_end(int fd) {
  std::string data;
  char buffer[4096];
  while (true) {
    ssize_t n = read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return data;
    data.append(buffer, static_cast<std::size_t>(n));
  }
}

void write_fully(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

void fault_point(const char* name) {
  const char* fault = std::getenv("RATCHET_TEST_FAULT");
  if (fault && std::strcmp(fault, name) == 0) raise(SIGKILL);
}

std::string signal_name(int signal) {
  const char* abbrev = sigabbrev_np(signal);
  if (abbrev) return std::string("SIG") + abbrev;
  return "SIG" + std::to_string(signal);
}

}  // namespace ratchet::jobs

namespace ratchet::jobs {

std::vector<FileUser> processes_using(const std::string& path) {
  std::error_code error;
  auto target = std::filesystem::canonical(path, error);
  std::vector<FileUser> users;
  if (error) return users;
  int self = getpid();
  for (const auto& process : std::filesystem::directory_iterator("/proc", error)) {
    const std::string name = process.path().filename();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    int pid = std::atoi(name.c_str());
    if (pid == self) continue;
    std::error_code ignored;
    for (const auto& fd : std::filesystem::directory_iterator(process.path() / "fd", ignored)) {
      std::error_code unreadable;
      if (std::filesystem::read_symlink(fd.path(), unreadable) != target) continue;
      std::ifstream cmdline(process.path() / "cmdline");
      std::string command((std::istreambuf_iterator<char>(cmdline)), {});
      for (char& c : command) c = c == '\0' ? ' ' : c;
      while (!command.empty() && command.back() == ' ') command.pop_back();
      users.push_back(FileUser{pid, command});
      break;
    }
  }
  return users;
}

}  // namespace ratchet::jobs
