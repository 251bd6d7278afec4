#include "dashboard/dashboard.hpp"

#include <spdlog/spdlog.h>

#include "common/time_format.hpp"
#include "dashboard/assets.hpp"
#include "dashboard/health.hpp"
#include "dashboard/render.hpp"
#include "dashboard/views.hpp"
#include "jobs/runner.hpp"
#include "server/api.hpp"
#include "server/store_workers.hpp"

namespace ratchet::dashboard {
namespace {

using json = nlohmann::json;

constexpr std::string_view kApiPrefix = "/ratchet/v1/";
constexpr std::string_view kAssetPrefix = "/assets/";

enum class Access { kNone, kRead, kAct };

StoreOptions read_only(StoreOptions options) {
  options.durable = false;  // it only reads
  return options;
}

// Threads that each own a store connection and run the requests' reads.
class Readers : public server::StoreWorkers {
 public:
  Readers(const server::ExtensionContext& context, const DashboardOptions& options)
      : StoreWorkers(context.db_path, read_only(context.store_options), context.clock,
                     options.threads, options.queue_limit, "ratchet-dash") {}
};

http::Response json_response(int status, const json& body) {
  http::Response response =
      http::Response::with_body(status, "application/json; charset=utf-8", dump(body));
  response.headers.set("Cache-Control", "no-store");
  return response;
}

http::Response error_response(const Status& status) { return server::connect_error(status); }

http::Response asset_response(std::string_view name) {
  for (const Asset& asset : assets()) {
    if (asset.name != name) continue;
    http::Response response =
        http::Response::with_body(200, std::string(asset.content_type), std::string(asset.body));
    // The page talks only to this server; nothing is inlined or fetched elsewhere.
    response.headers.set("Content-Security-Policy",
                         "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'");
    response.headers.set("X-Content-Type-Options", "nosniff");
    response.headers.set("Referrer-Policy", "no-referrer");
    response.headers.set("Cache-Control", "no-cache");
    return response;
  }
  return error_response(not_found("no such page: " + std::string(name)));
}

// "calls/ID/tree" -> {"calls", "ID", "tree"}; ids are printable and have no '/'.
std::vector<std::string> split_path(std::string_view rest) {
  std::vector<std::string> parts;
  while (!rest.empty()) {
    auto slash = rest.find('/');
    parts.emplace_back(rest.substr(0, slash));
    if (slash == std::string_view::npos) break;
    rest = rest.substr(slash + 1);
  }
  return parts;
}

class Dashboard final : public server::Extension {
 public:
  Dashboard(const server::ExtensionContext& context, DashboardOptions options)
      : scheduler_(context.scheduler),
        api_keys_(context.api_keys),
        read_keys_(std::move(options.read_keys)),
        clock_(context.clock),
        readers_(context, options),
        live_(context.db_path, context.store_options, context.clock, options.live) {
    // The first sample: the health view's rates span the time since it.
    scheduler_health_.read(scheduler_.figures(), clock_.now());
  }

  void handle(http::Request request, http::Responder responder) override;
  std::optional<http::Response> check_header(const http::Request& header) const override;
  void stop() override {
    live_.stop();
    readers_.stop();
  }

 private:
  Access access(const http::Request& request) const;
  void api(const http::Request& request, Access access, http::Responder responder);
  // Runs `view` on a reader thread and answers its JSON.
  void read(http::Responder responder, std::function<Result<json>(Store&)> view);
  void cancel_job(const std::string& id, const Params& params, http::Responder responder);
  void act_on_call(const std::string& id, bool cancel, const std::string& actor,
                   http::Responder responder);
  void events(const Params& params, http::Responder responder);
  // The health view: the store's counts and the scheduler's figures.
  Result<json> health(Store& store, Micros now);

  engine::Scheduler& scheduler_;
  std::set<std::string> api_keys_;
  std::set<std::string> read_keys_;
  const Clock& clock_;
  SchedulerHealth scheduler_health_;
  Readers readers_;
  LiveViews live_;
};

Access Dashboard::access(const http::Request& request) const {
  std::string key(request.bearer_key());
  if (key.empty()) return Access::kNone;
  if (api_keys_.count(key)) return Access::kAct;
  if (read_keys_.count(key)) return Access::kRead;
  return Access::kNone;
}

std::optional<http::Response> Dashboard::check_header(const http::Request& header) const {
  std::string_view path = header.path();
  if (path.starts_with(kApiPrefix)) {
    if (access(header) != Access::kNone) return std::nullopt;
    return error_response(
        Status(Code::kUnauthenticated,
               "missing or unknown key (Authorization: Bearer <API key or read key>)"));
  }
  if (header.method != "GET" && header.method != "HEAD") {
    return error_response(invalid_argument("the dashboard's pages are read with GET"));
  }
  if (path == "/" || path == "/index.html" || path.starts_with(kAssetPrefix)) return std::nullopt;
  return error_response(not_found("no such page: " + std::string(path)));
}

void Dashboard::handle(http::Request request, http::Responder responder) {
  // The server ran the check already; again here, so that the handler stands alone.
  if (auto refusal = check_header(request)) {
    responder.send(std::move(*refusal));
    return;
  }
  std::string_view path = request.path();
  if (path.starts_with(kApiPrefix)) {
    api(request, access(request), std::move(responder));
  } else if (path.starts_with(kAssetPrefix)) {
    responder.send(asset_response(path.substr(kAssetPrefix.size())));
  } else {
    responder.send(asset_response("index.html"));
  }
}

void Dashboard::read(http::Responder responder, std::function<Result<json>(Store&)> view) {
  bool queued = readers_.post([responder, view = std::move(view)](Result<Store*> store) {
    if (!store.is_ok()) {
      responder.send(error_response(store.status()));
      return;
    }
    auto body = view(**store);
    responder.send(body.is_ok() ? json_response(200, *body) : error_response(body.status()));
  });
  if (!queued) {
    responder.send(error_response(unavailable("the dashboard is busy; try again")));
  }
}

void Dashboard::api(const http::Request& request, Access level, http::Responder responder) {
  auto parts = split_path(request.path().substr(kApiPrefix.size()));
  Params params = parse_query(request.query());
  bool get = request.method == "GET" || request.method == "HEAD";
  bool post = request.method == "POST";
  std::size_t n = parts.size();
  const std::string& what = n > 0 ? parts[0] : std::string();
  const std::string& id = n > 1 ? parts[1] : std::string();
  const std::string& verb = n > 2 ? parts[2] : std::string();
  Micros now = clock_.now();
  if (post && n == 3 && (verb == "cancel" || verb == "retry")) {
    if (level != Access::kAct) {
      responder.send(
          error_response(Status(Code::kPermissionDenied, "a read key cannot act; use an API key")));
    } else if (what == "jobs" && verb == "cancel") {
      cancel_job(id, params, std::move(responder));
    } else if (what == "calls") {
      // Who acted, in the call's actions: the key's fingerprint as the
      // Control RPCs record it (never the key), and where it came from.
      act_on_call(id, verb == "cancel", "dashboard:" + server::api_actor(request.bearer_key()),
                  std::move(responder));
    } else {
      responder.send(error_response(not_found("no such action")));
    }
    return;
  }
  if (!get) {
    responder.send(error_response(invalid_argument("the dashboard API reads with GET")));
  } else if (n == 1 && what == "whoami") {
    responder.send(json_response(200, {{"access", level == Access::kAct ? "act" : "read"}}));
  } else if (n == 1 && what == "events") {
    events(params, std::move(responder));
  } else if (n == 1 && what == "runs") {
    read(std::move(responder), [params](Store& store) { return runs_view(store, params); });
  } else if (n == 1 && what == "health") {
    read(std::move(responder), [this, now](Store& store) { return health(store, now); });
  } else if (n == 2 && what == "calls") {
    read(std::move(responder), [id](Store& store) { return call_view(store, id); });
  } else if (n == 3 && what == "calls" && verb == "tree") {
    read(std::move(responder), [id, now](Store& store) { return tree_view(store, id, now); });
  } else if (n == 2 && what == "jobs") {
    read(std::move(responder), [id](Store& store) { return job_view(store, id); });
  } else if (n == 3 && what == "jobs" && verb == "logs") {
    read(std::move(responder), [id, params](Store& store) { return logs_view(store, id, params); });
  } else {
    responder.send(
        error_response(not_found("no such dashboard API: " + std::string(request.path()))));
  }
}

// Cancelling waits for the job's supervisor to end it (up to the grace period
// and a margin), so it runs on a reader thread like a query.
void Dashboard::cancel_job(const std::string& id, const Params& params, http::Responder responder) {
  Micros grace = 10 * kMicrosPerSecond;
  if (auto found = params.find("grace"); found != params.end()) {
    auto parsed = parse_duration(found->second);
    if (!parsed.is_ok()) {
      responder.send(error_response(invalid_argument("grace: " + parsed.status().message())));
      return;
    }
    grace = *parsed;
  }
  read(std::move(responder), [id, grace](Store& store) -> Result<json> {
    ASSIGN_OR_RETURN(auto job, store.find_job(id));
    if (!job) return not_found("no job with id " + id);
    spdlog::info("dashboard: cancelling job {} (grace {} ms)", id, grace / kMicrosPerMilli);
    // No reason: the dashboard's cancel takes none (yet), so none is recorded.
    ASSIGN_OR_RETURN(JobRecord cancelled,
                     jobs::cancel_job(store, std::move(*job), grace, std::nullopt));
    return job_view(store, cancelled.id);
  });
}

// The Control RPCs' code path (Scheduler::cancel, retry_now): the running
// scheduler acts in its next turn, and answers once that is committed. What
// the RPC answers 200 with "nothing to do" (a call already finished, one not
// waiting out a backoff) is a conflict here, so that the page can say so.
void Dashboard::act_on_call(const std::string& id, bool cancel, const std::string& actor,
                            http::Responder responder) {
  spdlog::info("dashboard: {} call {} ({})", cancel ? "cancelling" : "retrying now", id, actor);
  auto done = [responder, cancel](Result<std::vector<std::string>> ids) {
    if (!ids.is_ok()) {
      responder.send(error_response(ids.status()));
    } else if (ids->empty()) {
      responder.send(error_response(
          Status(Code::kConflict, cancel ? "the call has finished already: nothing to cancel"
                                         : "the call is not waiting out a backoff (it runs, waits "
                                           "for its children, or has finished)")));
    } else if (cancel) {
      responder.send(json_response(200, {{"cancelled", *ids}}));
    } else {
      responder.send(json_response(200, {{"retried", true}}));
    }
  };
  if (cancel) {
    scheduler_.cancel(id, actor, std::move(done));
  } else {
    scheduler_.retry_now(id, actor, std::move(done));
  }
}

Result<json> Dashboard::health(Store& store, Micros now) {
  ASSIGN_OR_RETURN(json out, health_view(store, now));
  out["scheduler"] = scheduler_health_.read(scheduler_.figures(), now);
  return out;
}

// A live view (live.hpp): the runs list's first page with health, or a call
// with its tree, as the pages would read them.
void Dashboard::events(const Params& params, http::Responder responder) {
  auto view = params.find("view");
  std::string key;
  LiveView read;
  const Clock& clock = clock_;
  Dashboard* self = this;
  if (view != params.end() && view->second == "runs") {
    Params filters = params;
    filters.erase("view");
    filters.erase("cursor");  // live is the newest page
    for (const auto& [name, value] : filters) key += "&" + name + "=" + value;
    key = "runs?" + key;
    read = [filters, &clock, self](Store& store) -> Result<json> {
      ASSIGN_OR_RETURN(json page, runs_view(store, filters));
      ASSIGN_OR_RETURN(json health, self->health(store, clock.now()));
      return json{{"page", std::move(page)}, {"health", std::move(health)}};
    };
  } else if (view != params.end() && view->second == "call" && params.count("id")) {
    std::string id = params.find("id")->second;
    key = "call:" + id;
    read = [id, &clock](Store& store) -> Result<json> {
      ASSIGN_OR_RETURN(json call, call_view(store, id));
      ASSIGN_OR_RETURN(json tree, tree_view(store, id, clock.now()));
      return json{{"call", std::move(call)}, {"tree", std::move(tree)}};
    };
  } else {
    responder.send(error_response(
        invalid_argument("events: view=runs (with the runs list's filters) or view=call&id=ID")));
    return;
  }
  if (!live_.subscribe(key, std::move(read), responder)) {
    responder.send(error_response(unavailable("too many live views are open; try again")));
  }
}

}  // namespace

server::ExtensionFactory make_dashboard(DashboardOptions options) {
  return
      [options](
          const server::ExtensionContext& context) -> Result<std::unique_ptr<server::Extension>> {
        for (const auto& key : options.read_keys) {
          if (context.api_keys.count(key)) {
            return invalid_argument("a read key is also an API key; give each key one role");
          }
        }
        return std::unique_ptr<server::Extension>(new Dashboard(context, options));
      };
}

}  // namespace ratchet::dashboard
