// The dashboard served by a real `ratchet server`, on each backend: its JSON
// API over the store the scheduler writes, and its live views, streamed as
// server-sent events over real HTTP. (The page itself is driven in a browser
// by tests/dashboard.)
//
// Nothing here sleeps to synchronise: every wait is a Wait RPC, a stream read
// for an expected event, or a poll with a bounded deadline.
#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <string>

#include "http/client.hpp"
#include "http/test_support.hpp"
#include "protocol/values.hpp"
#include "storage/pg_testing.hpp"
#include "support/api_client.hpp"
#include "support/run_process.hpp"
#include "support/server_process.hpp"
#include "test_endpoint.hpp"

namespace ratchet {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::ApiClient;
using testing::make_call;
using testing::ServerProcess;
using testing::ServerSettings;
using testing::TempDir;
using testing::TestEndpoint;
using Steady = std::chrono::steady_clock;

constexpr const char* kReadKey = "look-only";
// A first retry 5 to 10 minutes after a failure: within the tests' bounds,
// only a retry now explains a second attempt.
constexpr const char* kLongBackoff = "10m";

class DashboardE2E : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    std::string db;
    if (GetParam() == "postgres") {
      RATCHET_OPEN_PG_DATABASE(pg_);
      db = pg_->url();
    }
    endpoint_ = std::make_unique<TestEndpoint>(testing::EndpointOptions{});
    std::filesystem::create_directories(dir_.file("home"));
    server_ = std::make_unique<ServerProcess>(ServerSettings{
        dir_.file("home"), "k", "", {"--read-key", kReadKey, "--retry-backoff", kLongBackoff}, db});
    Status started = server_->start();
    ASSERT_TRUE(started.is_ok()) << started.message();
  }
  void TearDown() override {
    if (HasFailure() && server_) std::cerr << server_->logs();
    server_.reset();
    endpoint_.reset();
  }

  // Dispatches an `echo` call and waits for its result; its id.
  std::string echo(int input) {
    ApiClient client(server_->url(), "k");
    auto id = client.dispatch_one(make_call(endpoint_->url(), "echo", protocol::pack_int64(input)));
    EXPECT_TRUE(id.is_ok()) << id.status().message();
    if (!id.is_ok()) return "";
    EXPECT_TRUE(client.await_result(*id).is_ok());
    return *id;
  }

  // GET of the dashboard API with the read key: status and JSON body.
  std::pair<int, json> get(const std::string& path) {
    http::Client client;
    http::Request request{"GET", server_->url() + "/ratchet/v1/" + path, {}, ""};
    request.headers.add("Authorization", std::string("Bearer ") + kReadKey);
    auto response = client.send_sync(std::move(request));
    EXPECT_TRUE(response.is_ok()) << response.status().message();
    if (!response.is_ok()) return {0, json()};
    return {response->status, json::parse(response->body, nullptr, false)};
  }

  // POST of a dashboard action with `key` (none: no Authorization): status and JSON body.
  std::pair<int, json> post(const std::string& path, std::optional<std::string> key) {
    ApiClient client(server_->url(), "k");
    auto response =
        client.post("/ratchet/v1/" + path, "",
                    key ? std::optional<std::string>("Bearer " + *key) : std::nullopt, "", 30s);
    EXPECT_TRUE(response.is_ok()) << response.status().message();
    if (!response.is_ok()) return {0, json()};
    return {response->status, json::parse(response->body, nullptr, false)};
  }

  // The call's node in its tree view (its own page's first node).
  json node_of(const std::string& id) {
    auto [status, tree] = get("calls/" + id + "/tree");
    EXPECT_EQ(status, 200) << tree.dump();
    return status == 200 ? tree["nodes"][0] : json::object();
  }

  TempDir dir_;
  std::optional<ratchet::testing::PgTestDatabase> pg_;
  std::unique_ptr<TestEndpoint> endpoint_;
  std::unique_ptr<ServerProcess> server_;
};

// An event stream read over a raw socket: what arrived so far.
class EventStream {
 public:
  EventStream(std::uint16_t port, const std::string& query, const std::string& key) {
    fd_ = http::testing::connect_to(port);
    http::testing::write_all(fd_, "GET /ratchet/v1/events?" + query +
                                      " HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer " + key +
                                      "\r\n\r\n");
  }
  ~EventStream() {
    if (fd_ >= 0) close(fd_);
  }
  // Reads until `wanted` arrived (true) or 60 s passed, the stream ended.
  bool wait_for(const std::string& wanted) {
    auto deadline = Steady::now() + 60s;
    char chunk[16384];
    while (seen_.find(wanted, from_) == std::string::npos) {
      if (Steady::now() > deadline) return false;
      ssize_t n = recv(fd_, chunk, sizeof chunk, 0);
      if (n == 0) return false;
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return false;
      if (n > 0) seen_.append(chunk, static_cast<std::size_t>(n));
    }
    from_ = seen_.find(wanted, from_) + wanted.size();
    return true;
  }
  const std::string& seen() const { return seen_; }

 private:
  int fd_ = -1;
  std::string seen_;
  std::size_t from_ = 0;  // what wait_for() matched is not matched again
};

TEST_P(DashboardE2E, ServesTheRunsListACallAndHealthFromTheStore) {
  std::string first = echo(1);
  std::string second = echo(2);
  auto [status, runs] = get("runs");
  ASSERT_EQ(status, 200) << runs.dump();
  ASSERT_EQ(runs["runs"].size(), 2u) << runs.dump();
  EXPECT_EQ(runs["runs"][0]["id"], second) << "newest first";
  EXPECT_EQ(runs["runs"][1]["id"], first);
  EXPECT_EQ(runs["runs"][0]["status"], "SUCCEEDED");
  auto [tree_status, tree] = get("calls/" + first + "/tree");
  ASSERT_EQ(tree_status, 200) << tree.dump();
  EXPECT_EQ(tree["nodes"][0]["function"], "echo");
  auto [call_status, call] = get("calls/" + first);
  ASSERT_EQ(call_status, 200) << call.dump();
  EXPECT_EQ(call["output"]["kind"], "json") << call.dump();
  auto [health_status, health] = get("health");
  EXPECT_EQ(health_status, 200) << health.dump();
  auto [filtered_status, filtered] = get("runs?name=nothing");
  EXPECT_EQ(filtered_status, 200);
  EXPECT_TRUE(filtered["runs"].empty()) << filtered.dump();
}

TEST_P(DashboardE2E, TheRunsListStreamsEachChangeAsAnEvent) {
  std::string first = echo(1);
  EventStream events(server_->port(), "view=runs&limit=50", kReadKey);
  ASSERT_TRUE(events.wait_for("event: update\ndata: {")) << events.seen();
  ASSERT_TRUE(events.wait_for(first)) << events.seen();
  EXPECT_NE(events.seen().find("text/event-stream"), std::string::npos) << events.seen();
  std::string second = echo(2);
  EXPECT_TRUE(events.wait_for(second)) << "the new call never came: " << events.seen();
}

TEST_P(DashboardE2E, ACallsStreamFollowsItFromRunningToItsEnd) {
  ApiClient client(server_->url(), "k");
  auto id = client.dispatch_one(make_call(endpoint_->url(), "gated", protocol::pack_int64(7)));
  ASSERT_TRUE(id.is_ok()) << id.status().message();
  ASSERT_TRUE(endpoint_->wait_for_requests(1, 30s)) << "the endpoint never got the call";
  EventStream events(server_->port(), "view=call&id=" + *id, "k");
  ASSERT_TRUE(events.wait_for("\"status\":\"RUNNING\"")) << events.seen();
  endpoint_->open_gate();
  EXPECT_TRUE(events.wait_for("\"status\":\"SUCCEEDED\"")) << events.seen();
}

TEST_P(DashboardE2E, EventsNeedAKeyAndAKnownView) {
  std::string refused = http::testing::exchange(
      server_->port(), "GET /ratchet/v1/events?view=runs HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_EQ(http::testing::status_of(refused), 401) << refused;
  auto [status, body] = get("events?view=everything");
  EXPECT_EQ(status, 400) << body.dump();
  EventStream missing(server_->port(), "view=call&id=no-such-call", kReadKey);
  EXPECT_TRUE(missing.wait_for("event: error\ndata: {\"code\":\"not_found\"")) << missing.seen();
  EXPECT_TRUE(missing.wait_for("0\r\n\r\n")) << "the stream ends after an error";
}

TEST_P(DashboardE2E, CancellingARunningTreeEndsEveryCallCancelledAndRecordsWho) {
  ApiClient client(server_->url(), "k");
  auto spec = protocol::pack_json({{"k", 3}, {"child", "hang"}});
  ASSERT_TRUE(spec.is_ok());
  auto id = client.dispatch_one(make_call(endpoint_->url(), "fanout", *spec));
  ASSERT_TRUE(id.is_ok()) << id.status().message();
  ASSERT_TRUE(endpoint_->wait_for_requests(4, 30s)) << "the fan-out and its 3 hanging children";

  auto [status, cancelled] = post("calls/" + *id + "/cancel", "k");
  ASSERT_EQ(status, 200) << cancelled.dump();
  ASSERT_EQ(cancelled["cancelled"].size(), 4u) << cancelled.dump();
  EXPECT_EQ(cancelled["cancelled"][0], *id) << "the call first";
  // The scheduler answered its waiter at once: no wait for the hanging replies.
  auto result = client.await_result(*id, 30s);
  ASSERT_TRUE(result.is_ok()) << result.status().message();
  EXPECT_EQ(result->error().type(), "CancelledError");

  auto [tree_status, tree] = get("calls/" + *id + "/tree");
  ASSERT_EQ(tree_status, 200) << tree.dump();
  ASSERT_EQ(tree["nodes"].size(), 4u) << tree.dump();
  for (const auto& node : tree["nodes"]) EXPECT_EQ(node["status"], "CANCELLED") << node.dump();
  ASSERT_EQ(tree["actions"].size(), 1u) << tree.dump();
  EXPECT_EQ(tree["actions"][0]["action"], "cancel");
  // The key's fingerprint, as the Control RPC records it; never the key.
  std::string actor = tree["actions"][0]["actor"];
  EXPECT_EQ(actor.rfind("dashboard:api-key:", 0), 0u) << actor;
  EXPECT_EQ(actor.size(), std::string("dashboard:api-key:").size() + 8) << actor;
  EXPECT_GT(tree["actions"][0]["at"].get<std::int64_t>(), 0);

  auto [again, body] = post("calls/" + *id + "/cancel", "k");
  EXPECT_EQ(again, 409) << "a finished call: " << body.dump();
  EXPECT_EQ(body["code"], "aborted") << body.dump();
}

TEST_P(DashboardE2E, RetryNowRunsACallInItsBackoffAtOnce) {
  ApiClient client(server_->url(), "k");
  auto id =
      client.dispatch_one(make_call(endpoint_->url(), "fail_then_ok", protocol::pack_int64(1)));
  ASSERT_TRUE(id.is_ok()) << id.status().message();
  ASSERT_TRUE(testing::eventually(
      [&] {
        json node = node_of(*id);
        return node["history"].size() == 1 && node["history"][0]["outcome"] == "retry";
      },
      30s))
      << node_of(*id).dump();

  auto [status, retried] = post("calls/" + *id + "/retry", "k");
  ASSERT_EQ(status, 200) << retried.dump();
  EXPECT_EQ(retried["retried"], true);
  // Its backoff is 5 to 10 minutes: a result within 30 s is the retry now.
  auto result = client.await_result(*id, 30s);
  ASSERT_TRUE(result.is_ok()) << result.status().message();
  EXPECT_FALSE(result->has_error());
  EXPECT_EQ(endpoint_->requests_for(*id).size(), 2u);

  json node = node_of(*id);
  ASSERT_EQ(node["history"].size(), 2u) << node.dump();
  EXPECT_EQ(node["history_total"], 2);
  EXPECT_EQ(node["history"][0]["kind"], "attempt");
  EXPECT_EQ(node["history"][0]["status"], "STATUS_TEMPORARY_ERROR") << node.dump();
  EXPECT_EQ(node["history"][1]["outcome"], "succeeded") << node.dump();
  Micros first = node["history"][0]["at"], second = node["history"][1]["at"];
  EXPECT_LT(second - first, 5 * 60 * kMicrosPerSecond) << "sooner than its backoff allowed";
  auto [tree_status, tree] = get("calls/" + *id + "/tree");
  ASSERT_EQ(tree["actions"].size(), 1u) << tree.dump();
  EXPECT_EQ(tree["actions"][0]["action"], "retry-now");
  EXPECT_EQ(tree["actions"][0]["actor"].get<std::string>().rfind("dashboard:api-key:", 0), 0u);

  auto [again, body] = post("calls/" + *id + "/retry", "k");
  EXPECT_EQ(again, 409) << "a finished call has no backoff: " << body.dump();
}

TEST_P(DashboardE2E, ActionsNeedTheApiKeyAndAKnownCall) {
  std::string id = echo(1);
  for (std::string verb : {"cancel", "retry"}) {
    EXPECT_EQ(post("calls/" + id + "/" + verb, std::nullopt).first, 401) << verb;
    EXPECT_EQ(post("calls/" + id + "/" + verb, "wrong").first, 401) << verb;
    EXPECT_EQ(post("calls/" + id + "/" + verb, kReadKey).first, 403) << verb;
    EXPECT_EQ(post("calls/no-such-call/" + verb, "k").first, 404) << verb;
    EXPECT_EQ(post("calls/" + id + "/" + verb, "k").first, 409) << verb << " of a finished call";
  }
  auto [status, tree] = get("calls/" + id + "/tree");
  EXPECT_TRUE(tree["actions"].empty()) << "nothing was done: " << tree.dump();
}

TEST_P(DashboardE2E, HealthShowsTheFiguresMetricsServes) {
  echo(1);
  auto [status, health] = get("health");
  ASSERT_EQ(status, 200) << health.dump();
  const json& endpoints = health["scheduler"]["endpoints"];
  ASSERT_EQ(endpoints.size(), 1u) << health.dump();
  EXPECT_EQ(endpoints[0]["endpoint"], endpoint_->url());
  int limit = endpoints[0]["limit"];
  EXPECT_GT(limit, 0);
  EXPECT_TRUE(health["scheduler"]["queue_by_function"].is_array()) << health.dump();
  EXPECT_GE(health["scheduler"]["calls_per_second"].get<double>(), 0.0);
  // The same figure /metrics gives (nothing runs: the limit stays put).
  http::Client http;
  http::Request request{"GET", server_->url() + "/metrics", {}, ""};
  request.headers.add("Authorization", "Bearer k");
  auto metrics = http.send_sync(std::move(request));
  ASSERT_TRUE(metrics.is_ok()) << metrics.status().message();
  std::string line = "ratchet_endpoint_limit{endpoint=\"" + endpoint_->url() + "\"} " +
                     std::to_string(limit) + "\n";
  EXPECT_NE(metrics->body.find(line), std::string::npos) << line << metrics->body;
}

INSTANTIATE_TEST_SUITE_P(Backends, DashboardE2E, ::testing::Values("sqlite", "postgres"),
                         [](const auto& info) { return info.param; });

// `ratchet dev` serves the same dashboard, its health from its scheduler's figures.
TEST(DashboardDev, HealthShowsTheEndpointsLimitUnderRatchetDev) {
  TempDir dir;
  TestEndpoint endpoint(testing::EndpointOptions{});
  auto dev = testing::ChildProcess::spawn(
      {testing::ratchet_bin(), "dev", endpoint.url(), "--port", "0", "--db", dir.file("dev.db")},
      {}, dir.file("dev.out"), dir.file("dev.err"));
  ASSERT_TRUE(dev.is_ok()) << dev.status().message();
  static const std::regex kListening("Spawned a Ratchet server on (127\\.0\\.0\\.1:[0-9]+)\n");
  std::smatch match;
  std::string out;
  ASSERT_TRUE(testing::eventually(
      [&] {
        out = testing::read_file(dir.file("dev.out"));
        return std::regex_search(out, match, kListening) || !dev->running();
      },
      15s));
  ASSERT_FALSE(match.empty()) << out << testing::read_file(dir.file("dev.err"));
  std::string url = "http://" + match[1].str();

  ApiClient client(url, "test");
  auto id = client.dispatch_one(make_call(endpoint.url(), "echo", protocol::pack_int64(3)));
  ASSERT_TRUE(id.is_ok()) << id.status().message();
  ASSERT_TRUE(client.await_result(*id).is_ok());
  http::Client http;
  http::Request request{"GET", url + "/ratchet/v1/health", {}, ""};
  request.headers.add("Authorization", "Bearer test");
  auto response = http.send_sync(std::move(request));
  ASSERT_TRUE(response.is_ok()) << response.status().message();
  ASSERT_EQ(response->status, 200) << response->body;
  json health = json::parse(response->body, nullptr, false);
  ASSERT_EQ(health["scheduler"]["endpoints"].size(), 1u) << response->body;
  EXPECT_EQ(health["scheduler"]["endpoints"][0]["endpoint"], endpoint.url());
  EXPECT_GT(health["scheduler"]["endpoints"][0]["limit"].get<int>(), 0);
  dev->signal(SIGTERM);
  EXPECT_NE(dev->wait_exit(10s), -1);
}

}  // namespace
}  // namespace ratchet
