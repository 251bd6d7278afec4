#include "server/server.hpp"

#include <google/protobuf/stubs/logging.h>
#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>

#include "common/ids.hpp"
#include "http/server.hpp"
#include "protocol/connect.hpp"
#include "server/journal_api.hpp"
#include "server/metrics.hpp"
#include "server/work_queue.hpp"
#include "storage/store.hpp"

namespace ratchet::server {

namespace {

// Descriptors kept out of the connection cap: the store, its WAL, and
// connections to endpoints (up to 256 per endpoint host).
constexpr std::size_t kReservedFiles = 320;

// Raises the soft limit on open files to the hard one; the soft limit now.
std::size_t raise_open_files_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 1024;
  if (limit.rlim_cur < limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  return static_cast<std::size_t>(limit.rlim_cur);
}

// The connection cap that leaves room for the reserved descriptors.
std::size_t connection_cap(std::size_t wanted) {
  std::size_t files = raise_open_files_limit();
  std::size_t room = files > 2 * kReservedFiles ? files - kReservedFiles : files / 2;
  std::size_t cap = std::max<std::size_t>(1, std::min(wanted, room));
  if (cap < wanted) {
    spdlog::warn(
        "serving at most {} API connections, not {}: the limit on open files is {} (raise it "
        "with ulimit -n)",
        cap, wanted, files);
  }
  return cap;
}

}  // namespace

// Declared in the order they are built; torn down explicitly in reverse (see
// stop): the endpoint client must not outlive the scheduler it calls back.
struct Server::Parts {
  std::unique_ptr<Store> store;
  std::unique_ptr<engine::Scheduler> scheduler;
  std::unique_ptr<HttpEndpointClient> client;
  std::unique_ptr<WorkQueue<>> decoder;  // decodes Dispatch requests off the I/O thread
  std::unique_ptr<Api> api;
  std::unique_ptr<JournalApi> journal;
  std::unique_ptr<Extension> extension;
  std::unique_ptr<http::Server> http;
  Micros shutdown_grace = 0;
  bool stopped = false;
};

namespace {

// The one routing table of the server's HTTP port: the Dispatch API's RPCs
// (every path under its services' prefix, so an unknown RPC is the API's 404),
// then the extension.
// Whether a request goes to the Dispatch API (the RPCs, /metrics, and every
// path when nothing else is served) rather than to the extension.
bool for_api(const http::Request& request, const Extension* extension) {
  return !extension || request.path().starts_with("/dispatch.sdk.v1.") ||
         request.path().starts_with("/ratchet.v1.") || request.path() == kMetricsPath;
}

// The API or the extension refuses a request by its header, before its body is read.
std::function<std::optional<http::Response>(const http::Request&)> header_check(
    Api* api, Extension* extension) {
  return [api, extension](const http::Request& header) -> std::optional<http::Response> {
    return for_api(header, extension) ? api->check_header(header) : extension->check_header(header);
  };
}

http::Server::Handler route(Api* api, Extension* extension) {
  return [api, extension](http::Request request, http::Responder responder) {
    if (for_api(request, extension)) {
      api->handle(std::move(request), std::move(responder));
    } else {
      extension->handle(std::move(request), std::move(responder));
    }
  };
}

}  // namespace

Result<std::unique_ptr<Server>> Server::start(ServerConfig config) {
  auto parts = std::make_unique<Parts>();
  if (config.scheduler.owner == "ratchet") {
    config.scheduler.owner = "ratchet-" + std::to_string(getpid()) + "-" + new_uuid().substr(0, 8);
  }
  StoreOptions store_options;
  store_options.durable = config.durable;
  store_options.instance = config.scheduler.owner;  // a fleet takes over its leases once it is gone
  store_options.identity = config.identity;
  store_options.process_alive = config.process_alive;
  // Readers of the same store (the dashboard) check nothing and keep no reserve.
  StoreOptions reader_options = store_options;
  store_options.disk_reserve_bytes = config.disk_reserve_bytes;
  store_options.check_integrity = true;  // a damaged store must not start a server that answers 503
  // The scheduler sends calls before their commit is on disk and acknowledges
  // nothing until it is (docs/server.md, "Commits"): a step's two commits
  // need not wait for the disk's flush.
  store_options.defer_sync = true;
  parts->shutdown_grace = config.shutdown_grace;
  ASSIGN_OR_RETURN(parts->store,
                   open_store(config.db_path, SystemClock::instance(), store_options));
  parts->client = std::make_unique<HttpEndpointClient>(config.signing_key, SystemClock::instance(),
                                                       config.endpoint);
  parts->scheduler = std::make_unique<engine::Scheduler>(*parts->store, SystemClock::instance(),
                                                         *parts->client, config.scheduler);
  // Two threads: the decoding of one huge Dispatch never holds up the others.
  parts->decoder = std::make_unique<WorkQueue<>>(2, 64, "ratchet-decode");
  WorkQueue<>* decoder = parts->decoder.get();
  parts->api = std::make_unique<Api>(
      *parts->scheduler, SystemClock::instance(), config.api,
      [decoder](std::function<void()> job) { return decoder->post(std::move(job)); });
  parts->journal =
      std::make_unique<JournalApi>(config.db_path, reader_options, SystemClock::instance());
  parts->api->serve_journal(parts->journal.get());
  parts->scheduler->start();
  if (config.extension) {
    ExtensionContext context{config.db_path, reader_options, config.api.api_keys, *parts->scheduler,
                             SystemClock::instance()};
    auto extension = config.extension(context);
    if (!extension.is_ok()) {
      parts->scheduler->stop();
      return extension.status();
    }
    parts->extension = std::move(extension).value();
  }
  http::ServerOptions http_options;
  http_options.host = config.host;
  http_options.port = config.port;
  http_options.io_threads = config.io_threads;
  // The protocol's error shape, and invalid_argument (400) rather than
  // resource_exhausted (429): the same request can never succeed, and many HTTP
  // clients retry a 429. Endpoints answer an oversized body the same way.
  http_options.body_limit = protocol::kMaxRequestBodyBytes;
  http_options.body_too_large = [] {
    return connect_error(invalid_argument("the request body is larger than " +
                                          std::to_string(protocol::kMaxRequestBodyBytes) +
                                          " bytes, the Dispatch protocol's limit"));
  };
  http_options.max_connections = connection_cap(config.max_connections);
  http_options.header_check = header_check(parts->api.get(), parts->extension.get());
  auto http = http::Server::start(http_options, route(parts->api.get(), parts->extension.get()));
  if (!http.is_ok()) {
    if (parts->extension) parts->extension->stop();
    parts->scheduler->stop();
    return http.status();
  }
  parts->http = std::move(http).value();
  return std::unique_ptr<Server>(new Server(std::move(parts)));
}

Server::Server(std::unique_ptr<Parts> parts) : parts_(std::move(parts)) {}

Server::~Server() { stop(); }

std::uint16_t Server::port() const { return parts_->http->port(); }

void Server::stop() {
  if (parts_->stopped) return;
  parts_->stopped = true;
  parts_->http->stop(std::chrono::seconds(2));
  parts_->decoder.reset();  // decodes what is queued (its answers go nowhere now)
  parts_->journal->stop();
  if (parts_->extension) parts_->extension->stop();
  parts_->scheduler->drain(parts_->shutdown_grace);
  parts_->scheduler->stop();
  parts_->client.reset();
}

void block_shutdown_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

int wait_for_shutdown_signal() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  int received = 0;
  sigwait(&set, &received);
  return received;
}

void log_to_stderr() {
  // protobuf logs an error for every string field that is not UTF-8: a client
  // could fill the log with one line per request. The API answers those 400.
  google::protobuf::SetLogHandler(
      [](google::protobuf::LogLevel, const char*, int, const std::string&) {});
  auto logger = spdlog::stderr_color_mt("ratchet");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %^%l%$ %v");
  spdlog::set_default_logger(logger);
}

}  // namespace ratchet::server
