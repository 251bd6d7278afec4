#include "jobs/process.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace ratchet::jobs {
namespace {

struct ProcStat {
  char state = '?';
  std::int64_t start_ticks = 0;
};

// Reads /proc/<pid>/stat: the state (field 3) and start time (field 22). The
// command name (field 2) may hold spaces and parentheses, so fields are
// counted from the last ')'.
std::optional<ProcStat> read_stat(int pid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE* file = std::fopen(path, "re");
  if (!file) return std::nullopt;
  char buffer[1024];
  std::size_t n = std::fread(buffer, 1, sizeof buffer - 1, file);
  std::fclose(file);
  buffer[n] = '\0';
  const char* close = std::strrchr(buffer, ')');
  if (!close) return std::nullopt;
  ProcStat stat;
  std::istringstream fields(close + 1);
  std::string field;
  fields >> stat.state;
  for (int index = 4; index <= 22 && fields >> field; ++index) {
    if (index == 22) stat.start_ticks = std::stoll(field);
  }
  return stat;
}

}  // namespace

const std::string& current_boot_id() {
  static const std::string boot_id = [] {
    std::ifstream file("/proc/sys/kernel/random/boot_id");
    std::string id;
    std::getline(file, id);
    return id;
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
