#include "support/server_process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "http/test_support.hpp"
#include "support/run_process.hpp"

extern char** environ;

namespace ratchet::testing {
namespace {

using Steady = std::chrono::steady_clock;

std::vector<char*> pointers(std::vector<std::string>& strings) {
  std::vector<char*> result;
  for (auto& s : strings) result.push_back(s.data());
  result.push_back(nullptr);
  return result;
}

bool accepts_connections(std::uint16_t port) {
  int fd = http::testing::connect_to(port);
  if (fd < 0) return false;
  close(fd);
  return true;
}

}  // namespace

std::string ratchet_bin() {
  const char* bin = std::getenv("RATCHET_BIN");
  return bin && *bin ? bin : "ratchet";
}

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern = std::string(base && *base ? base : "/tmp") + "/ratchet-server-e2e-XXXXXX";
  if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

std::string read_file(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

Result<std::string> keygen(const std::string& private_key_file) {
  ProcessResult result = run_process({ratchet_bin(), "keygen", "--out", private_key_file});
  if (result.exit_code != 0) {
    return internal_error("ratchet keygen failed (" + std::to_string(result.exit_code) +
                          "): " + result.err);
  }
  std::smatch match;
  static const std::regex kLine("DISPATCH_VERIFICATION_KEY=([A-Za-z0-9+/=]+)\n");
  if (!std::regex_search(result.out, match, kLine)) {
    return internal_error("ratchet keygen printed no DISPATCH_VERIFICATION_KEY: " + result.out);
  }
  return match[1].str();
}

Result<protocol::VerificationKey> keygen_verification_key(const std::string& private_key_file) {
  ASSIGN_OR_RETURN(std::string public_key, keygen(private_key_file));
  return protocol::VerificationKey::parse(public_key);
}

Result<ChildProcess> ChildProcess::spawn(
    const std::vector<std::string>& argv,
    const std::vector<std::pair<std::string, std::string>>& env, const std::string& stdout_path,
    const std::string& stderr_path, std::optional<rlimit> open_files) {
  std::vector<std::string> args = argv;
  std::vector<std::string> environment;
  for (char** entry = environ; *entry; ++entry) {
    std::string_view text(*entry);
    std::string_view name = text.substr(0, text.find('='));
    bool overridden = false;
    for (const auto& [key, value] : env) overridden = overridden || key == name;
    if (!overridden) environment.emplace_back(text);
  }
  for (const auto& [key, value] : env) environment.push_back(key + "=" + value);
  std::vector<char*> arg_pointers = pointers(args);
  std::vector<char*> env_pointers = pointers(environment);
  int out = open(stdout_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  int err = open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (out < 0 || err < 0) {
    if (out >= 0) close(out);
    if (err >= 0) close(err);
    return internal_error("cannot open the output files of " + argv[0]);
  }
  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    close(out);
    close(err);
    return internal_error(std::string("fork failed: ") + std::strerror(errno));
  }
  if (pid == 0) {
    // A test killed by ctest's timeout runs no destructor: its servers and
    // endpoints die with it rather than outlive the run. (The tests start
    // them from their main thread, whose end is what the signal follows.)
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    int null_fd = open("/dev/null", O_RDONLY);
    dup2(null_fd, 0);
    dup2(out, 1);
    dup2(err, 2);
    if (open_files) setrlimit(RLIMIT_NOFILE, &*open_files);
    execve(arg_pointers[0], arg_pointers.data(), env_pointers.data());
    const char message[] = "server_process: exec failed\n";
    (void)!write(2, message, sizeof message - 1);
    _exit(127);
  }
  close(out);
  close(err);
  ChildProcess child;
  child.pid_ = pid;
  return child;
}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)), status_(other.status_) {}

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  if (this != &other) {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    pid_ = std::exchange(other.pid_, -1);
    status_ = other.status_;
  }
  return *this;
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

bool ChildProcess::running() {
  if (pid_ <= 0) return false;
  int status = 0;
  pid_t done = waitpid(pid_, &status, WNOHANG);
  if (done == pid_) {
    status_ = status;
    pid_ = -1;
    return false;
  }
  return true;
}

void ChildProcess::signal(int signal_number) const {
  if (pid_ > 0) ::kill(pid_, signal_number);
}

int ChildProcess::wait_exit(std::chrono::milliseconds timeout) {
  auto deadline = Steady::now() + timeout;
  while (running()) {
    if (Steady::now() >= deadline) {
      ::kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
      return -1;
    }
    // waitpid cannot wait with a timeout: poll while the process exits.
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return status_;
}

ServerProcess::ServerProcess(ServerSettings settings) : settings_(std::move(settings)) {}

ServerProcess::~ServerProcess() = default;

std::string ServerProcess::url() const { return "http://127.0.0.1:" + std::to_string(port_); }

std::string ServerProcess::logs() const {
  std::string all;
  for (int i = 1; i <= starts_; ++i) {
    all += "---- server start " + std::to_string(i) + " ----\n";
    all += read_file(settings_.home + "/server-" + std::to_string(i) + ".err");
  }
  return all;
}

bool ServerProcess::running() { return process_ && process_->running(); }

Status ServerProcess::start() {
  if (running()) return failed_precondition("the server is already running");
  ++starts_;
  std::string base = settings_.home + "/server-" + std::to_string(starts_);
  std::vector<std::string> argv = {
      ratchet_bin(), "server",  "--listen",  "127.0.0.1:" + std::to_string(port_),
      "--db",        db_path(), "--api-key", settings_.api_key};
  if (!settings_.signing_key_file.empty()) {
    argv.push_back("--signing-key");
    argv.push_back(settings_.signing_key_file);
  }
  argv.insert(argv.end(), settings_.extra_args.begin(), settings_.extra_args.end());
  std::vector<std::pair<std::string, std::string>> env = {{"RATCHET_HOME", settings_.home},
                                                          {"RATCHET_API_KEYS", ""},
                                                          {"RATCHET_SIGNING_KEY", ""},
                                                          {"RATCHET_SIGNING_KEY_FILE", ""}};
  env.insert(env.end(), settings_.env.begin(), settings_.env.end());
  ASSIGN_OR_RETURN(ChildProcess child,
                   ChildProcess::spawn(argv, env, base + ".out", base + ".err", open_files_));
  process_ = std::move(child);
  static const std::regex kListening("listening on [^ ]+:([0-9]+) with the store");
  auto deadline = Steady::now() + std::chrono::seconds(15);
  while (Steady::now() < deadline) {
    if (!process_->running()) {
      return unavailable("ratchet server exited before it listened:\n" + logs());
    }
    std::smatch match;
    std::string log = read_file(base + ".err");
    if (std::regex_search(log, match, kListening)) {
      port_ = static_cast<std::uint16_t>(std::stoi(match[1].str()));
      if (accepts_connections(port_)) return Status::ok();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return unavailable("ratchet server did not listen within 15 s:\n" + logs());
}

int ServerProcess::kill(int signal_number, std::chrono::milliseconds timeout) {
  if (!process_) return -1;
  process_->signal(signal_number);
  int status = process_->wait_exit(timeout);
  process_.reset();
  return status;
}

}  // namespace ratchet::testing
