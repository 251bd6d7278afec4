// ratchet dev ENDPOINT_URL [--host HOST] [--port PORT] [--api-key KEY] [--db PATH]
//             [--signing-key FILE]
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>

#include "cli/command.hpp"
#include "cli/server_setup.hpp"
#include "common/spin_before_sleep.hpp"
#include "dashboard/dashboard.hpp"
#include "http/url.hpp"

namespace ratchet::cli {

namespace {

std::string listen_advice(const std::optional<std::string>& listen) {
  if (!listen) {
    return "Your service must listen where the proxy at that https URL forwards to "
           "(DISPATCH_ENDPOINT_ADDR).";
  }
  return "Your service must listen at " + *listen +
         " (DISPATCH_ENDPOINT_ADDR; the C++ SDK derives it from DISPATCH_ENDPOINT_URL when unset).";
}

std::string store_advice(const std::string& db, bool temporary) {
  if (db.rfind("postgres", 0) == 0) {
    // Not printed: the URL may hold a password.
    return "The store is the PostgreSQL database of --db (kept when this server stops).\n"
           "See a call with: RATCHET_DB=<that URL> ratchet status --job-id <dispatch id>";
  }
  std::string text = "The store is " + db;
  text += temporary ? " (temporary: deleted when this server stops; --db PATH keeps one)."
                    : " (kept when this server stops).";
  return text + "\nSee a call with: RATCHET_DB=\"" + db +
         "\" ratchet status --job-id <dispatch id>";
}

}  // namespace

int run_dev(int argc, char** argv) {
  CLI::App app(
      "Start a local server for development: a fresh signing key, API key 'test', "
      "and a temporary store (or --db); print how to configure an SDK and where the store is.",
      "dev");
  std::string endpoint_url, host = "127.0.0.1", api_key = "test", db, key_file;
  std::string dispatch_grace = "20ms";
  int port = 4450;
  app.add_option("ENDPOINT_URL", endpoint_url, "where your service (the SDK) listens")->required();
  app.add_option("--host", host, "the address to listen on")->capture_default_str();
  app.add_option("--port", port, "the port to listen on")
      ->capture_default_str()
      ->check(CLI::Range(0, 65535));
  app.add_option("--api-key", api_key, "the API key clients use")->capture_default_str();
  app.add_option("--db", db,
                 "a SQLite file or a postgres:// URL to keep the calls in (default: a temporary "
                 "SQLite file)")
      ->type_name("FILE|URL");
  app.add_option("--signing-key", key_file,
                 "a PEM private key from `ratchet keygen` (default: a fresh one), so that "
                 "DISPATCH_VERIFICATION_KEY stays the same across restarts");
  add_dispatch_grace_option(app, dispatch_grace);
  server::ServerConfig config;
  app.add_option("--max-connections", config.max_connections,
                 "API connections served at once; idle ones make room for new ones")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  std::string shutdown_grace = "10s";
  add_shutdown_grace_option(app, shutdown_grace);
  if (auto exit_code = parse(app, argc, argv)) return *exit_code;
  if (Status s = SpinBeforeSleep::check_environment(); !s.is_ok()) return fail(s);
  if (Status s = check_api_key(api_key, "--api-key"); !s.is_ok()) return fail(s);
  auto url = http::parse_url(endpoint_url);
  if (!url.is_ok()) return fail(invalid_argument("ENDPOINT_URL: " + url.status().message()));
  if (Status s = set_shutdown_grace(shutdown_grace, &config); !s.is_ok()) return fail(s);
  auto key = key_file.empty() ? protocol::SigningKey::generate() : read_signing_key_file(key_file);
  if (!key.is_ok()) return fail(key.status());

  std::string temporary_dir;
  if (db.empty()) {
    char pattern[] = "/tmp/ratchet-dev-XXXXXX";
    if (!mkdtemp(pattern)) return fail(internal_error("cannot create a temporary directory"));
    temporary_dir = pattern;
    db = temporary_dir + "/ratchet.db";
  }
  if (Status s = set_dispatch_grace(dispatch_grace, &config); !s.is_ok()) return fail(s);
  config.host = host;
  config.port = static_cast<std::uint16_t>(port);
  config.db_path = db;
  config.api.api_keys = {api_key};
  config.signing_key = *key;
  config.scheduler.retry.max_backoff = 5 * kMicrosPerSecond;
  config.extension = dashboard::make_dashboard({});
  std::string public_key = key->public_key_base64();
  std::optional<std::string> listen = http::listen_address_for(*url);
  int exit_code = serve_until_signal(std::move(config), [&](const server::Server& running) {
    std::string address = host + ":" + std::to_string(running.port());
    std::printf(
        "Spawned a Ratchet server on %s\n"
        "Dispatching function calls to the endpoint at %s\n"
        "The Dispatch SDK can be configured with:\n"
        "  export DISPATCH_API_URL=\"http://%s\"\n"
        "  export DISPATCH_API_KEY=\"%s\"\n"
        "  export DISPATCH_ENDPOINT_URL=\"%s\"\n"
        "  export DISPATCH_VERIFICATION_KEY=\"%s\"\n",
        address.c_str(), endpoint_url.c_str(), address.c_str(), api_key.c_str(),
        endpoint_url.c_str(), public_key.c_str());
    if (listen) std::printf("  export DISPATCH_ENDPOINT_ADDR=\"%s\"\n", listen->c_str());
    std::printf("%s\n", listen_advice(listen).c_str());
    std::printf("%s\n", store_advice(db, !temporary_dir.empty()).c_str());
    std::fflush(stdout);
    // On stderr: stdout is the block above, as the protocol's tooling prints it.
    spdlog::info("the dashboard is at http://{}/ (its key: the API key)", address);
  });
  if (!temporary_dir.empty()) std::filesystem::remove_all(temporary_dir);
  return exit_code;
}

}  // namespace ratchet::cli
