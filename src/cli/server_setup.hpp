// What `ratchet server` and `ratchet dev` share: reading a signing key, and
// running a server until SIGINT or SIGTERM.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <span>
#include <string>

#include "cli/command.hpp"
#include "common/status.hpp"
#include "protocol/signing.hpp"
#include "server/server.hpp"

namespace ratchet::cli {

// A private key as PEM (PKCS#8) or as the base64 of its raw 32 bytes.
Result<protocol::SigningKey> parse_signing_key(const std::string& text);
Result<protocol::SigningKey> read_signing_key_file(const std::string& path);

// --dispatch-grace: how long a newly dispatched call waits, once its Dispatch's
// answer is written, for its client to read it (engine::AnswerGate).
void add_dispatch_grace_option(CLI::App& app, std::string& value);
Status set_dispatch_grace(const std::string& value, server::ServerConfig* config);

// --shutdown-grace: on SIGTERM/SIGINT, how long the calls in flight have to
// answer before their leases are given back (engine::Scheduler::drain).
void add_shutdown_grace_option(CLI::App& app, std::string& value);
Status set_shutdown_grace(const std::string& value, server::ServerConfig* config);

// OK for an API key a client can send as `Authorization: Bearer <key>`: not
// empty, no spaces or control characters. `where` names the flag or variable.
Status check_api_key(std::string_view key, std::string_view where);

// Fills in who this process is as a server instance (host, pid, start time)
// and how to tell whether another instance of this host still runs.
void identify_instance(server::ServerConfig& config);

// Starts the server, calls `started` with it, and runs until SIGINT/SIGTERM,
// then stops it gracefully (ServerConfig::shutdown_grace); a second signal
// ends the process at once. Returns the exit code.
int serve_until_signal(server::ServerConfig config,
                       const std::function<void(const server::Server&)>& started);

}  // namespace ratchet::cli
