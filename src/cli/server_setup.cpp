#include "cli/server_setup.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "cli/command.hpp"
#include "engine/call_log.hpp"
#include "jobs/process.hpp"
#include "jobs/state_dir.hpp"
#include "protocol/base64.hpp"

namespace ratchet::cli {

Result<protocol::SigningKey> parse_signing_key(const std::string& text) {
  if (text.find("-----BEGIN") != std::string::npos) {
    return protocol::SigningKey::from_private_pem(text);
  }
  auto raw = protocol::base64_decode(text);
  if (!raw || raw->size() != 32) {
    return invalid_argument(
        "the signing key is neither a PEM private key nor the base64 of 32 raw bytes");
  }
  return protocol::SigningKey::from_raw_private_key(*raw);
}

Result<protocol::SigningKey> read_signing_key_file(const std::string& path) {
  std::ifstream file(path);
  if (!file) return invalid_argument("cannot read the signing key file " + path);
  std::stringstream text;
  text << file.rdbuf();
  auto key = parse_signing_key(text.str());
  if (!key.is_ok()) return invalid_argument(path + ": " + key.status().message());
  return key;
}

void add_dispatch_grace_option(CLI::App& app, std::string& value) {
  app.add_option("--dispatch-grace", value,
                 "how long a newly dispatched call waits, once the answer to its Dispatch is "
                 "written, for the client to read it (a client that closes the connection or "
                 "sends its next request ends the wait sooner): dispatch-py loses the result of "
                 "a call that runs before its caller has its id")
      ->capture_default_str();
}

Status set_dispatch_grace(const std::string& value, server::ServerConfig* config) {
  ASSIGN_OR_RETURN(config->scheduler.answer_grace, duration_option("--dispatch-grace", value));
  return Status::ok();
}

void add_shutdown_grace_option(CLI::App& app, std::string& value) {
  app.add_option("--shutdown-grace", value,
                 "on SIGTERM/SIGINT, how long the calls in flight have to answer before their "
                 "leases are given back for the next server")
      ->capture_default_str();
}

Status set_shutdown_grace(const std::string& value, server::ServerConfig* config) {
  ASSIGN_OR_RETURN(config->shutdown_grace, duration_option("--shutdown-grace", value));
  return Status::ok();
}

Status check_api_key(std::string_view key, std::string_view where) {
  if (key.empty()) {
    return invalid_argument(std::string(where) +
                            " has an empty API key: give a secret that clients send as "
                            "`Authorization: Bearer <key>`");
  }
  for (unsigned char c : key) {
    if (c <= 0x20 || c == 0x7f) {
      return invalid_argument(std::string(where) +
                              " has an API key with a space or control character, which "
                              "cannot be sent in an Authorization header");
    }
  }
  return Status::ok();
}

namespace {

// Where this process's pid means something to another server reading the
// store: this host as jobs know it (the state directory's host id), its boot,
// and the pid namespace (containers share a boot).
std::string host_id() {
  char pid_namespace[64] = {};
  ssize_t n = readlink("/proc/self/ns/pid", pid_namespace, sizeof pid_namespace - 1);
  return jobs::current_host_id() + "/" + jobs::current_boot_id() + "/" +
         std::string(pid_namespace, n > 0 ? static_cast<std::size_t>(n) : 0);
}

}  // namespace

void identify_instance(server::ServerConfig& config) {
  config.identity.host_id = host_id();
  config.identity.pid = getpid();
  auto self = jobs::identify_process(getpid());
  config.identity.pid_start = self ? self->start_ticks : 0;
  config.process_alive = [](int pid, std::int64_t pid_start) {
    return jobs::is_alive(ProcessIdentity{pid, pid_start, jobs::current_boot_id()});
  };
}

int serve_until_signal(server::ServerConfig config,
                       const std::function<void(const server::Server&)>& started) {
  server::block_shutdown_signals();
  server::log_to_stderr();
  if (config.log_json) engine::set_log_format(engine::LogFormat::kJson);
  identify_instance(config);
  Micros grace = config.shutdown_grace;
  auto running = server::Server::start(std::move(config));
  if (!running.is_ok()) return fail(running.status());
  started(**running);
  int signal = server::wait_for_shutdown_signal();
  spdlog::info(
      "received signal {}: shutting down; the calls in flight have {} ms to answer (a "
      "second signal stops at once)",
      signal, grace / kMicrosPerMilli);
  // A second signal ends the process at once: what was acknowledged is in the
  // store, and the next server takes over the leases of this one.
  std::thread([] {
    int again = server::wait_for_shutdown_signal();
    spdlog::warn("received signal {} again: stopping now", again);
    spdlog::default_logger()->flush();
    std::_Exit(1);
  }).detach();
  (*running)->stop();
  return 0;
}

}  // namespace ratchet::cli
