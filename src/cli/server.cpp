// ratchet server [--listen HOST:PORT] [--db PATH] [--api-key KEY]... [--signing-key FILE] ...
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>

#include "cli/command.hpp"
#include "cli/server_setup.hpp"
#include "common/spin_before_sleep.hpp"
#include "dashboard/dashboard.hpp"
#include "jobs/state_dir.hpp"

namespace ratchet::cli {
namespace {

std::string env_or(const char* name, std::string fallback) {
  const char* value = std::getenv(name);
  return value && *value ? value : std::move(fallback);
}

Status parse_listen(const std::string& listen, server::ServerConfig* config) {
  auto colon = listen.rfind(':');
  int port = -1;
  if (colon != std::string::npos) {
    try {
      port = std::stoi(listen.substr(colon + 1));
    } catch (...) {
      port = -1;
    }
  }
  if (colon == std::string::npos || colon == 0 || port < 0 || port > 65535) {
    return invalid_argument("--listen expects HOST:PORT, got '" + listen + "'");
  }
  config->host = listen.substr(0, colon);
  config->port = static_cast<std::uint16_t>(port);
  return Status::ok();
}

// The keys of RATCHET_API_KEYS ("a,b"); an empty one ("a,,b", "a,") is an
// error rather than skipped: it is a typo, or a key that was meant to be there.
Status add_keys(const std::string& comma_separated, std::set<std::string>* keys) {
  if (comma_separated.empty()) return Status::ok();
  std::size_t start = 0;
  while (start <= comma_separated.size()) {
    auto end = comma_separated.find(',', start);
    if (end == std::string::npos) end = comma_separated.size();
    std::string key = comma_separated.substr(start, end - start);
    RETURN_IF_ERROR(check_api_key(key, "RATCHET_API_KEYS"));
    keys->insert(std::move(key));
    start = end + 1;
  }
  return Status::ok();
}

Result<std::optional<protocol::SigningKey>> signing_key(const std::string& file) {
  if (!file.empty()) {
    ASSIGN_OR_RETURN(auto key, read_signing_key_file(file));
    return std::optional<protocol::SigningKey>(std::move(key));
  }
  if (const char* text = std::getenv("RATCHET_SIGNING_KEY"); text && *text) {
    ASSIGN_OR_RETURN(auto key, parse_signing_key(text));
    return std::optional<protocol::SigningKey>(std::move(key));
  }
  return std::optional<protocol::SigningKey>();
}

}  // namespace

int run_server(int argc, char** argv) {
  CLI::App app(
      "Run the scheduler server: store durable calls, send them to their endpoints "
      "(signed), retry, and answer the Dispatch API.",
      "server");
  std::string listen = env_or("RATCHET_LISTEN", "127.0.0.1:4450");
  std::string db = env_or("RATCHET_DB", "");
  std::vector<std::string> api_keys;
  std::vector<std::string> read_keys;
  std::string key_file = env_or("RATCHET_SIGNING_KEY_FILE", "");
  std::string request_timeout = "5m";
  std::string default_expiration;
  std::string dispatch_grace = "20ms";
  server::ServerConfig config;
  app.add_option("--listen", listen, "HOST:PORT for the API (env RATCHET_LISTEN)")
      ->capture_default_str();
  app.add_option("--db", db,
                 "the store: a SQLite file or a postgres:// URL shared by a fleet of servers "
                 "(env RATCHET_DB; default: the state directory's ratchet.db)")
      ->type_name("FILE|URL");
  app.add_option("--api-key", api_keys,
                 "a bearer key clients must present (repeatable; env RATCHET_API_KEYS, "
                 "comma-separated)")
      ->allow_extra_args(false);
  app.add_option("--read-key", read_keys,
                 "a bearer key that may read the dashboard but not act (repeatable; env "
                 "RATCHET_READ_KEYS, comma-separated)")
      ->allow_extra_args(false);
  app.add_option("--signing-key", key_file,
                 "PEM private key that signs requests to endpoints (env RATCHET_SIGNING_KEY_FILE, "
                 "or the key itself in RATCHET_SIGNING_KEY; `ratchet keygen` makes one)")
      ->type_name("FILE");
  app.add_option("--max-in-flight", config.scheduler.max_in_flight,
                 "calls sent to endpoints and not yet answered")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  app.add_option("--endpoint-initial-limit", config.scheduler.aimd.initial,
                 "calls each endpoint may have in flight at first; the limit grows while its "
                 "calls succeed and halves when it throttles or times out")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  app.add_option("--max-attempts", config.scheduler.retry.max_attempts,
                 "attempts before a call with temporary failures fails")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  app.add_option("--request-timeout", request_timeout, "how long one attempt may take")
      ->capture_default_str();
  std::string retry_backoff = "100ms";
  app.add_option("--retry-backoff", retry_backoff,
                 "the delay before a call's first retry; it doubles with each attempt, up to "
                 "30s or this if longer (jittered)")
      ->capture_default_str();
  std::string shutdown_grace = "10s";
  add_shutdown_grace_option(app, shutdown_grace);
  app.add_option("--default-expiration", default_expiration,
                 "how long a call dispatched without an expiration may keep being retried "
                 "(default: no limit but --max-attempts)");
  add_dispatch_grace_option(app, dispatch_grace);
  std::string log_format = "text";
  app.add_option("--log-format", log_format,
                 "text, or json: one object per line, with call_id, function and attempt on "
                 "the lines about a call")
      ->capture_default_str()
      ->check(CLI::IsMember({"text", "json"}));
  app.add_flag("--metrics-public", config.api.metrics_public,
               "serve GET /metrics without an API key (for a scraper on a private network)");
  app.add_option("--max-connections", config.max_connections,
                 "API connections served at once; idle ones make room for new ones")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  if (auto exit_code = parse(app, argc, argv)) return *exit_code;
  if (Status s = SpinBeforeSleep::check_environment(); !s.is_ok()) return fail(s);
  config.log_json = log_format == "json";

  if (Status s = parse_listen(listen, &config); !s.is_ok()) return fail(s);
  for (const auto& key : api_keys) {
    if (Status s = check_api_key(key, "--api-key"); !s.is_ok()) return fail(s);
    config.api.api_keys.insert(key);
  }
  if (Status s = add_keys(env_or("RATCHET_API_KEYS", ""), &config.api.api_keys); !s.is_ok()) {
    return fail(s);
  }
  if (config.api.api_keys.empty()) {
    return fail(invalid_argument(
        "no API key: give --api-key KEY (or RATCHET_API_KEYS) so that only your clients can "
        "dispatch"));
  }
  dashboard::DashboardOptions dashboard_options;
  for (const auto& key : read_keys) dashboard_options.read_keys.insert(key);
  if (Status s = add_keys(env_or("RATCHET_READ_KEYS", ""), &dashboard_options.read_keys);
      !s.is_ok()) {
    return fail(s);
  }
  config.extension = dashboard::make_dashboard(std::move(dashboard_options));
  auto timeout = duration_option("--request-timeout", request_timeout);
  if (!timeout.is_ok()) return fail(timeout.status());
  if (*timeout < kMicrosPerMilli) {
    return fail(invalid_argument("--request-timeout must be at least 1ms, not " + request_timeout +
                                 ": every attempt would time out"));
  }
  config.endpoint.request_timeout = std::chrono::milliseconds(*timeout / kMicrosPerMilli);
  // The lease outlives the attempt by a margin for the commit of its reply. It
  // is also how long a crashed server's calls wait to be taken up again, so the
  // margin scales with the timeout (5 s to 1 min) rather than being a fixed minute.
  config.scheduler.lease =
      *timeout + std::clamp(*timeout, 5 * kMicrosPerSecond, 60 * kMicrosPerSecond);
  auto backoff = duration_option("--retry-backoff", retry_backoff);
  if (!backoff.is_ok()) return fail(backoff.status());
  if (*backoff < kMicrosPerMilli) {
    return fail(invalid_argument("--retry-backoff must be at least 1ms, not " + retry_backoff));
  }
  config.scheduler.retry.initial_backoff = *backoff;
  config.scheduler.retry.max_backoff = std::max(config.scheduler.retry.max_backoff, *backoff);
  if (Status s = set_shutdown_grace(shutdown_grace, &config); !s.is_ok()) return fail(s);
  if (Status s = set_dispatch_grace(dispatch_grace, &config); !s.is_ok()) return fail(s);
  if (!default_expiration.empty()) {
    auto expiration = duration_option("--default-expiration", default_expiration);
    if (!expiration.is_ok()) return fail(expiration.status());
    config.api.default_expiration = *expiration;
    config.scheduler.poll.expiration = *expiration;
  }
  auto key = signing_key(key_file);
  if (!key.is_ok()) return fail(key.status());
  config.signing_key = std::move(*key);
  if (db.empty()) {
    auto paths = jobs::prepare_state_dir();
    if (!paths.is_ok()) return fail(paths.status());
    db = paths->db;
  }
  config.db_path = db;
  bool unsigned_requests = !config.signing_key;
  return serve_until_signal(std::move(config), [&](const server::Server& running) {
    spdlog::info(
        "ratchet server listening on {}:{} with the store {}; the dashboard is at "
        "http://{}:{}/",
        listen.substr(0, listen.rfind(':')), running.port(), display_location(db),
        listen.substr(0, listen.rfind(':')), running.port());
    if (unsigned_requests) {
      spdlog::warn("no signing key (--signing-key): requests to endpoints are not signed");
    }
  });
}

}  // namespace ratchet::cli
