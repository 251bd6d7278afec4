#include "jobs/state_dir.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "common/ids.hpp"

namespace ratchet::jobs {
namespace {

// The directory JOBS.md names. XDG_STATE_HOME and HOME count only when they
// are absolute (the XDG Base Directory spec ignores a relative one): taken
// from the current directory, scripts run from two directories had two
// histories, and each ran a key the other was running. Without either, there
// is no per-user place (a static binary cannot ask NSS for the home).
Result<std::string> home_from_environment() {
  if (const char* home = std::getenv("RATCHET_HOME"); home && *home) return std::string(home);
  if (geteuid() == 0) return std::string("/var/lib/ratchet");
  if (const char* xdg = std::getenv("XDG_STATE_HOME"); xdg && *xdg == '/') {
    return std::string(xdg) + "/ratchet";
  }
  if (const char* user_home = std::getenv("HOME"); user_home && *user_home == '/') {
    return std::string(user_home) + "/.local/state/ratchet";
  }
  return Status(Code::kUnavailable,
                "cannot tell where the state directory is: HOME is not set to an absolute path "
                "(set RATCHET_HOME)");
}

// Absolute: the jobs record their log files' paths, which every later command
// (and whoever reads the JSON) opens from its own directory. A relative
// RATCHET_HOME was given on purpose: it is taken from the current directory.
Result<std::string> resolve_home() {
  ASSIGN_OR_RETURN(std::string home, home_from_environment());
  if (home.starts_with('/')) return home;
  char cwd[PATH_MAX];
  if (!getcwd(cwd, sizeof cwd)) return home;
  return std::string(cwd) + "/" + home;
}

// mkdir -p with mode 0700 for what it creates.
Status make_directories(const std::string& path) {
  std::string partial;
  std::size_t pos = 0;
  while (pos != std::string::npos) {
    pos = path.find('/', pos + 1);
    partial = path.substr(0, pos);
    if (partial.empty()) continue;
    if (mkdir(partial.c_str(), 0700) != 0 && errno != EEXIST) {
      return Status(Code::kUnavailable, "cannot create the state directory " + path + ": " +
                                            std::strerror(errno) +
                                            " (set RATCHET_HOME to a writable directory)");
    }
  }
  return Status::ok();
}

mode_t saved_umask = 0;
bool umask_saved = false;

std::string read_host_id(const std::string& path) {
  std::ifstream file(path);
  std::string id;
  std::getline(file, id);
  return id;
}

std::string load_or_make_host_id() {
  auto paths = prepare_state_dir(StateAccess::kRead);
  if (!paths.is_ok()) return "";
  std::string path = paths->home + "/host-id";
  std::string id = read_host_id(path);
  if (!id.empty()) return id;
  // Written aside, then linked into place: a racing process either wins the
  // link or reads the winner's complete file.
  std::string candidate = new_uuid();
  std::string temporary = path + "." + candidate;
  {
    std::ofstream out(temporary);
    out << candidate << "\n";
  }
  int linked = link(temporary.c_str(), path.c_str());
  unlink(temporary.c_str());
  return linked == 0 ? candidate : read_host_id(path);
}

}  // namespace

void use_private_file_modes() {
  mode_t previous = umask(077);
  if (!umask_saved) saved_umask = previous;
  umask_saved = true;
}

mode_t caller_umask() {
  if (umask_saved) return saved_umask;
  mode_t current = umask(0);
  umask(current);
  return current;
}

const std::string& current_host_id() {
  static const std::string id = load_or_make_host_id();
  return id;
}

Result<StatePaths> prepare_state_dir(StateAccess access_needed) {
  StatePaths paths;
  ASSIGN_OR_RETURN(paths.home, resolve_home());
  paths.db = paths.home + "/ratchet.db";
  paths.logs = paths.home + "/logs";
  // The common case, everything in place, costs one or two access() calls.
  if (access(paths.logs.c_str(), R_OK | W_OK | X_OK) == 0 &&
      access(paths.home.c_str(), R_OK | W_OK | X_OK) == 0) {
    return paths;
  }
  if (access_needed == StateAccess::kRead && access(paths.home.c_str(), R_OK | X_OK) == 0) {
    return paths;
  }
  RETURN_IF_ERROR(make_directories(paths.logs));
  if (access(paths.home.c_str(), R_OK | W_OK | X_OK) != 0 ||
      access(paths.logs.c_str(), R_OK | W_OK | X_OK) != 0) {
    return Status(Code::kUnavailable, "the state directory " + paths.home +
                                          " is not readable and writable: " + std::strerror(errno) +
                                          " (set RATCHET_HOME to a directory you own)");
  }
  return paths;
}

}  // namespace ratchet::jobs
