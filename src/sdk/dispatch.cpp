// ratchet::Dispatch: configuration, registration, the built-in server.
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "http/message.hpp"
#include "http/url.hpp"
#include "protocol/connect.hpp"
#include "sdk/core.hpp"

namespace ratchet {

namespace detail {
namespace {

std::optional<std::string> env(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return std::nullopt;
  return std::string(value);
}

std::string pick(const std::optional<std::string>& option, const char* variable,
                 std::string fallback = {}) {
  if (option) return *option;
  return env(variable).value_or(std::move(fallback));
}

std::optional<protocol::VerificationKey> parse_verification_key(const std::string& text) {
  if (text.empty()) return std::nullopt;
  auto key = protocol::VerificationKey::parse(text);
  if (!key.is_ok()) {
    throw ConfigurationError("DISPATCH_VERIFICATION_KEY is not a valid Ed25519 public key (" +
                             key.status().message() +
                             "): set it to the base64 public key `ratchet keygen` or `ratchet "
                             "dev` prints, or to a PEM public key");
  }
  return *key;
}

}  // namespace

std::optional<std::string> listen_address_for(const std::string& endpoint_url) {
  auto url = http::parse_url(endpoint_url);
  if (!url.is_ok()) return std::nullopt;
  return http::listen_address_for(*url);
}

Config resolve_config(const Options& options) {
  Config config;
  config.api_key = pick(options.api_key, "DISPATCH_API_KEY");
  config.api_url = pick(options.api_url, "DISPATCH_API_URL", "http://127.0.0.1:4450");
  config.endpoint_url = pick(options.endpoint_url, "DISPATCH_ENDPOINT_URL");
  config.endpoint_addr = pick(options.endpoint_addr, "DISPATCH_ENDPOINT_ADDR");
  config.endpoint_addr_source = "DISPATCH_ENDPOINT_ADDR";
  if (config.endpoint_addr.empty()) {
    auto derived = listen_address_for(config.endpoint_url);
    config.endpoint_addr = derived.value_or("127.0.0.1:8000");
    config.endpoint_addr_source = derived ? "DISPATCH_ENDPOINT_URL" : "the default";
  }
  config.verification_key = pick(options.verification_key, "DISPATCH_VERIFICATION_KEY");
  if (options.trace) {
    config.trace = *options.trace;
  } else {
    auto trace = env("DISPATCH_TRACE");
    config.trace = trace && *trace != "0" && *trace != "false";
  }
  if (!http::parse_url(config.api_url).is_ok()) {
    throw ConfigurationError("DISPATCH_API_URL is not a valid URL (" + config.api_url +
                             "): set it to the server's URL, e.g. http://127.0.0.1:4450");
  }
  if (!config.endpoint_url.empty() && !http::parse_url(config.endpoint_url).is_ok()) {
    throw ConfigurationError("DISPATCH_ENDPOINT_URL is not a valid URL (" + config.endpoint_url +
                             "): set it to where the server reaches this service, e.g. "
                             "http://127.0.0.1:8000");
  }
  return config;
}

DispatchCore::DispatchCore(Options opts, const Clock& clock)
    : options(std::move(opts)),
      config(resolve_config(options)),
      clock(clock),
      verification_key(parse_verification_key(config.verification_key)),
      runtime_(sdk::RuntimeOptions{
          options.frame_cache_size, config.trace,
          options.clock ? options.clock : sdk::WallClock(std::chrono::system_clock::now)}) {}

DispatchCore::~DispatchCore() {
  std::unique_ptr<http::Server> running;
  {
    std::lock_guard lock(server_mutex);
    running = std::move(server);
  }
  if (running) running->stop();
}

void DispatchCore::define(const std::string& name, FunctionEntry entry) {
  std::lock_guard lock(functions_mutex_);
  auto it = functions_.find(name);
  if (it == functions_.end() || is_defined(it->second)) {
    throw std::invalid_argument(
        "ratchet: function \"" + name +
        (it == functions_.end() ? "\" was not declared by this Dispatch" : "\" is defined twice"));
  }
  it->second = std::move(entry);
}

std::vector<std::string> DispatchCore::undefined() const {
  std::lock_guard lock(functions_mutex_);
  std::vector<std::string> names;
  for (const auto& [name, entry] : functions_) {
    if (!is_defined(entry)) names.push_back(name);
  }
  return names;
}

std::vector<std::string> DispatchCore::coroutines() const {
  std::lock_guard lock(functions_mutex_);
  std::vector<std::string> names;
  for (const auto& [name, entry] : functions_) {
    if (entry.start) names.push_back(name);
  }
  return names;
}

const FunctionEntry* DispatchCore::find(const std::string& name) const {
  std::lock_guard lock(functions_mutex_);
  auto it = functions_.find(name);
  return it == functions_.end() ? nullptr : &it->second;
}

void DispatchCore::add(const std::string& name, FunctionEntry entry) {
  if (!protocol::is_valid_function_name(name)) {
    throw std::invalid_argument("ratchet: function name \"" + name +
                                "\" is not valid: use letters, digits, _ . < > and do not start "
                                "with a digit");
  }
  std::lock_guard lock(functions_mutex_);
  if (!functions_.emplace(name, std::move(entry)).second) {
    throw std::invalid_argument("ratchet: function \"" + name + "\" is registered twice");
  }
}

http::Client& DispatchCore::client() {
  std::lock_guard lock(client_mutex_);
  if (!client_) client_ = std::make_unique<http::Client>();
  return *client_;
}

std::string DispatchCore::endpoint_url() const {
  if (!config.endpoint_url.empty()) return config.endpoint_url;
  std::lock_guard lock(served_url_mutex_);
  return served_url_;
}

void DispatchCore::set_served_url(std::string url) {
  std::lock_guard lock(served_url_mutex_);
  served_url_ = std::move(url);
}

void DispatchCore::warn_unverified() {
  std::call_once(unverified_warning_, [] {
    std::fprintf(stderr,
                 "ratchet: warning: DISPATCH_VERIFICATION_KEY is not set, so requests to this "
                 "endpoint are not verified: anyone who can reach it can run its functions\n");
  });
}

void register_function(DispatchCore& core, const std::string& name, FunctionEntry entry) {
  core.add(name, std::move(entry));
}

void declare_function(DispatchCore& core, const std::string& name) {
  core.add(name, FunctionEntry{});
}

void define_function(DispatchCore& core, const std::string& name, FunctionEntry entry) {
  core.define(name, std::move(entry));
}

}  // namespace detail

std::optional<std::string_view> Request::header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (http::iequals(key, name)) return std::string_view(value);
  }
  return std::nullopt;
}

Dispatch::Dispatch() : Dispatch(Options{}) {}
Dispatch::Dispatch(Options options)
    : core_(std::make_unique<detail::DispatchCore>(std::move(options))) {}
Dispatch::~Dispatch() = default;

const Config& Dispatch::config() const { return core_->config; }

Handler Dispatch::handler() {
  return [this](const Request& request) { return handle(request); };
}

std::vector<std::string> Dispatch::Batch::dispatch() {
  if (calls_.empty()) return {};
  auto ids = detail::dispatch_calls(*core_, std::move(calls_));
  calls_.clear();
  return ids;
}

namespace {

struct HostPort {
  std::string host;
  std::uint16_t port = 0;
};

HostPort parse_addr(const std::string& addr) {
  auto colon = addr.rfind(':');
  std::string host = colon == std::string::npos ? addr : addr.substr(0, colon);
  std::string port = colon == std::string::npos ? "" : addr.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  char* end = nullptr;
  long number = std::strtol(port.c_str(), &end, 10);
  if (host.empty() || port.empty() || *end != '\0' || number < 0 || number > 65535) {
    throw ConfigurationError("DISPATCH_ENDPOINT_ADDR is not HOST:PORT (" + addr +
                             "): set it to where this service listens, e.g. 127.0.0.1:8000");
  }
  return {host, static_cast<std::uint16_t>(number)};
}

http::Response to_http(Response response) {
  http::Response out;
  out.status = response.status;
  for (auto& [name, value] : response.headers) out.headers.add(name, std::move(value));
  out.body = std::move(response.body);
  return out;
}

Request from_http(const http::Request& request) {
  Request in;
  in.method = request.method;
  in.path = request.target;
  for (const auto& header : request.headers) in.headers.emplace_back(header.name, header.value);
  in.body = request.body;
  return in;
}

bool is_loopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

// Says where the service listens and where the server is told to reach it,
// and warns when those cannot be the same place: a service that listens on
// one port while its dispatches name another never sees a call.
void log_listening(const Config& config, std::uint16_t port, const std::string& served_url) {
  std::string line = "ratchet: serving durable functions at " + config.endpoint_addr + " (port " +
                     std::to_string(port) + ")";
  if (config.endpoint_addr_source != "DISPATCH_ENDPOINT_ADDR") {
    line += ", the address of " + config.endpoint_addr_source;
  }
  if (!config.endpoint_url.empty()) {
    line += "; calls dispatched from here name DISPATCH_ENDPOINT_URL " + config.endpoint_url;
  } else if (!served_url.empty()) {
    line += "; calls dispatched from here name " + served_url;
  }
  std::fprintf(stderr, "%s\n", line.c_str());
  auto url = http::parse_url(config.endpoint_url);
  if (url.is_ok() && !url->is_https() && is_loopback(url->host) && url->port != port) {
    std::fprintf(stderr,
                 "ratchet: warning: DISPATCH_ENDPOINT_URL (%s) names port %u, but this service "
                 "listens on port %u (%s): the server's calls will not reach it unless something "
                 "forwards them; unset DISPATCH_ENDPOINT_ADDR to listen where the URL says\n",
                 config.endpoint_url.c_str(), static_cast<unsigned>(url->port),
                 static_cast<unsigned>(port), config.endpoint_addr.c_str());
  }
}

std::atomic<bool> g_signalled{false};
extern "C" void on_stop_signal(int) { g_signalled.store(true); }

}  // namespace

std::uint16_t Dispatch::start() {
  std::lock_guard lock(core_->server_mutex);
  if (core_->server) return core_->server->port();
  if (auto undefined = core_->undefined(); !undefined.empty()) {
    throw ConfigurationError("function " + undefined.front() +
                             " is declared but not defined: Dispatch::define it before start()");
  }
  HostPort addr = parse_addr(core_->config.endpoint_addr);
  http::ServerOptions options;
  options.host = addr.host;
  options.port = addr.port;
  options.worker_threads = std::max(1, core_->options.worker_threads);
  // One byte over the protocol's limit reaches handle(), which answers 400;
  // anything larger is refused by the transport (413) without being read.
  options.body_limit = protocol::kMaxRequestBodyBytes + 1;
  options.header_check =
      [core = core_.get()](const http::Request& header) -> std::optional<http::Response> {
    auto refusal = detail::check_request_header(*core, from_http(header));
    if (!refusal) return std::nullopt;
    return to_http(std::move(*refusal));
  };
  auto server = http::Server::start_blocking(options, [this](const http::Request& request) {
    return to_http(handle(from_http(request)));
  });
  if (!server.is_ok()) {
    throw ConfigurationError("cannot listen at DISPATCH_ENDPOINT_ADDR " +
                             core_->config.endpoint_addr + ": " + server.status().message());
  }
  core_->server = std::move(*server);
  // A wildcard address names no host the server could reach.
  if (addr.host != "0.0.0.0" && addr.host != "::") {
    http::Url served;
    served.scheme = "http";
    served.host = addr.host;
    served.port = core_->server->port();
    core_->set_served_url(served.origin());
  }
  log_listening(core_->config, core_->server->port(), core_->endpoint_url());
  return core_->server->port();
}

void Dispatch::serve() {
  start();
  g_signalled.store(false);
  auto previous_int = std::signal(SIGINT, on_stop_signal);
  auto previous_term = std::signal(SIGTERM, on_stop_signal);
  while (!g_signalled.load()) {
    {
      std::lock_guard lock(core_->server_mutex);
      if (!core_->server) break;  // stop() was called
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::signal(SIGINT, previous_int);
  std::signal(SIGTERM, previous_term);
  stop();
}

void Dispatch::stop() {
  std::unique_ptr<http::Server> running;
  {
    std::lock_guard lock(core_->server_mutex);
    running = std::move(core_->server);
  }
  if (running) running->stop();
}

}  // namespace ratchet
