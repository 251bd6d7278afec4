// `ratchet server` (and other long-running ratchet commands) as real child
// processes for end-to-end tests: started with fork/exec of $RATCHET_BIN, their
// output in files, killed with any signal and restarted on the same store.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/status.hpp"
#include "protocol/signing.hpp"

namespace ratchet::testing {

// The ratchet binary under test ($RATCHET_BIN, set by ctest).
std::string ratchet_bin();

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it when
// the object is destroyed.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// The whole content of a file ("" when it cannot be read).
std::string read_file(const std::string& path);

// Runs `ratchet keygen --out <private_key_file>`; returns the public key, base64
// (the DISPATCH_VERIFICATION_KEY it prints).
Result<std::string> keygen(const std::string& private_key_file);

// keygen, parsed: the key a test endpoint verifies the requests of a server
// signing with `private_key_file` by.
Result<protocol::VerificationKey> keygen_verification_key(const std::string& private_key_file);

// A child process whose stdout and stderr go to files. Move-only; one still
// running when destroyed is SIGKILLed and reaped.
class ChildProcess {
 public:
  // `open_files`: the child's RLIMIT_NOFILE (soft, hard), set before exec.
  static Result<ChildProcess> spawn(const std::vector<std::string>& argv,
                                    const std::vector<std::pair<std::string, std::string>>& env,
                                    const std::string& stdout_path, const std::string& stderr_path,
                                    std::optional<rlimit> open_files = std::nullopt);
  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ~ChildProcess();

  pid_t pid() const { return pid_; }
  bool running();
  void signal(int signal_number) const;
  // Waits until the process ends; its wait status, or -1 when `timeout` passed
  // first (it is then SIGKILLed).
  int wait_exit(std::chrono::milliseconds timeout);

 private:
  ChildProcess() = default;
  pid_t pid_ = -1;
  int status_ = -1;
};

struct ServerSettings {
  std::string home;  // RATCHET_HOME of the server; the store is <home>/ratchet.db
  std::string api_key = "k";
  std::string signing_key_file;         // empty: unsigned requests
  std::vector<std::string> extra_args;  // e.g. {"--max-attempts", "3"}
  std::string db;                       // the store; empty: <home>/ratchet.db
  // Added to the server's environment, e.g. {{"RATCHET_SPIN_US", "0"}}.
  std::vector<std::pair<std::string, std::string>> env;
};

// `ratchet server --listen 127.0.0.1:<port> --db <store> --api-key ...`.
// The first start listens on a port the server picks (read from its log); every
// restart reuses it, on the same store.
class ServerProcess {
 public:
  explicit ServerProcess(ServerSettings settings);
  ~ServerProcess();

  // Starts the server and waits until it accepts connections (at most 15 s).
  Status start();
  // Sends `signal_number` and waits for the process to end (SIGKILL after
  // `timeout`); its wait status.
  int kill(int signal_number, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  bool running();
  // Sends a signal without waiting (SIGSTOP, SIGCONT).
  void signal(int signal_number) const {
    if (process_) process_->signal(signal_number);
  }
  pid_t pid() const { return process_ ? process_->pid() : -1; }

  std::uint16_t port() const { return port_; }
  std::string url() const;  // http://127.0.0.1:<port>
  std::string db_path() const {
    return settings_.db.empty() ? settings_.home + "/ratchet.db" : settings_.db;
  }
  const std::string& home() const { return settings_.home; }
  // The RLIMIT_NOFILE (soft, hard) of the next start, instead of this process's.
  void set_open_files_limit(rlimit limit) { open_files_ = limit; }
  // Everything every start of the server wrote to stderr.
  std::string logs() const;

 private:
  ServerSettings settings_;
  std::uint16_t port_ = 0;
  int starts_ = 0;
  std::optional<rlimit> open_files_;
  std::optional<ChildProcess> process_;
};

}  // namespace ratchet::testing
