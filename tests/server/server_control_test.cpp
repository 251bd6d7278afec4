// Operating a running server (issue 10), end to end: `ratchet server` as a
// child process, the test endpoint, the CLI. Cancel and retry now through the
// RPC and the CLI (with the server down, too), /metrics and its key, and JSON
// logs. Every wait is bounded and waits on the event.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "http/client.hpp"
#include "protocol/connect.hpp"
#include "protocol/values.hpp"
#include "support/api_client.hpp"
#include "support/run_process.hpp"
#include "support/server_process.hpp"
#include "test_endpoint.hpp"

namespace ratchet {
namespace {

namespace pb = dispatch::sdk::v1;
using namespace std::chrono_literals;
using nlohmann::json;
using testing::ApiClient;
using testing::make_call;
using testing::ServerProcess;
using testing::ServerSettings;
using testing::TempDir;
using testing::TestEndpoint;

// The RPC as docs/server.md documents it: a client's contract, spelled out.
constexpr std::string_view kCancelPath = "/ratchet.v1.Control/Cancel";
constexpr std::string_view kRetryNowPath = "/ratchet.v1.Control/RetryNow";
// A first retry 10 minutes after a failure: only a retry now explains a
// second attempt within the tests' bounds.
const std::vector<std::string> kLongBackoff = {"--retry-backoff", "10m"};

class ServerControl : public ::testing::Test {
 protected:
  void start(std::vector<std::string> args = {}) {
    endpoint_ = std::make_unique<TestEndpoint>(testing::EndpointOptions{});
    server_ = std::make_unique<ServerProcess>(ServerSettings{dir_.path(), "k", "", args, ""});
    Status started = server_->start();
    ASSERT_TRUE(started.is_ok()) << started.message();
    client_ = std::make_unique<ApiClient>(server_->url(), "k");
  }
  void TearDown() override {
    if (HasFailure() && server_) std::cerr << server_->logs();
  }
  std::string dispatch(const std::string& function, std::int64_t input = 0) {
    auto id =
        client_->dispatch_one(make_call(endpoint_->url(), function, protocol::pack_int64(input)));
    EXPECT_TRUE(id.is_ok()) << id.status().message();
    return id.is_ok() ? *id : std::string();
  }
  testing::Env store_env() const {
    return {{"RATCHET_HOME", dir_.path()}, {"RATCHET_DB", server_->db_path()}, {"USER", "ann"}};
  }
  testing::ProcessResult cli(std::vector<std::string> args) {
    args.insert(args.begin(), testing::ratchet_bin());
    return testing::run_process(args, store_env());
  }
  json status_of(const std::string& id) {
    auto shown = cli({"status", "--job-id", id});
    EXPECT_EQ(shown.exit_code, 0) << shown.err;
    auto parsed = json::parse(shown.out, nullptr, false);
    return parsed.is_object() ? parsed : json::object();
  }
  // Waits (bounded) until the call's first attempt failed and its retry waits.
  bool wait_for_backoff(const std::string& id) {
    return testing::eventually(
        [&] {
          auto history = status_of(id)["history"];
          return history.is_array() && !history.empty() && history[0]["outcome"] == "retry";
        },
        30s);
  }

  Result<http::Response> get_metrics(std::optional<std::string> authorization) {
    http::Request request;
    request.method = "GET";
    request.target = "/metrics";
    if (authorization) request.headers.add("Authorization", *authorization);
    auto url = http::parse_url(server_->url());
    if (!url.is_ok()) return url.status();
    return http_.send_sync(*url, std::move(request));
  }

  TempDir dir_;
  TempDir other_home_;
  std::unique_ptr<TestEndpoint> endpoint_;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<ApiClient> client_;
  http::Client http_;
};

TEST_F(ServerControl, CancelRpcEndsAHangingCallAndWaitAnswersCancelled) {
  start();
  std::string id = dispatch("hang");
  ASSERT_TRUE(endpoint_->wait_for_requests(1, 30s));
  auto response = client_->post(kCancelPath, id, "Bearer k", "application/octet-stream");
  ASSERT_TRUE(response.is_ok()) << response.status().message();
  ASSERT_EQ(response->status, 200) << response->body;
  EXPECT_EQ(json::parse(response->body)["cancelled"], json::array({id}));
  auto result = client_->await_result(id, 30s);
  ASSERT_TRUE(result.is_ok()) << result.status().message();
  EXPECT_EQ(result->error().type(), "CancelledError");
  auto shown = status_of(id);
  EXPECT_EQ(shown["status"], "CANCELLED");
  ASSERT_EQ(shown["actions"].size(), 1u) << shown.dump();
  EXPECT_EQ(shown["actions"][0]["action"], "cancel");
  EXPECT_EQ(shown["actions"][0]["actor"].get<std::string>().rfind("api-key:", 0), 0u)
      << shown.dump();

  auto unknown = client_->post(kCancelPath, "nope", "Bearer k", "application/octet-stream");
  ASSERT_TRUE(unknown.is_ok());
  EXPECT_EQ(unknown->status, 404);
  auto unauthenticated = client_->post(kCancelPath, id, "Bearer x", "application/octet-stream");
  ASSERT_TRUE(unauthenticated.is_ok());
  EXPECT_EQ(unauthenticated->status, 401);
}

TEST_F(ServerControl, CliCancelWorksWhileTheServerIsDownAndTheCallNeverRunsAgain) {
  start();
  std::string id = dispatch("hang");
  ASSERT_TRUE(endpoint_->wait_for_requests(1, 30s));
  server_->kill(SIGKILL);
  auto cancelled = cli({"cancel", "--job-id", id});
  ASSERT_EQ(cancelled.exit_code, 0) << cancelled.err;
  auto out = json::parse(cancelled.out, nullptr, false);
  EXPECT_EQ(out["status"], "CANCELLED") << cancelled.out;
  EXPECT_EQ(out["cancelled"], json::array({id}));
  ASSERT_TRUE(server_->start().is_ok());
  // Had the cancel been lost, the restarted server would take the call over
  // at once (its instance is gone) and run it again.
  auto result = client_->await_result(id, 30s);
  ASSERT_TRUE(result.is_ok()) << result.status().message();
  EXPECT_EQ(result->error().type(), "CancelledError");
  EXPECT_NE(result->error().message().find("by ann@"), std::string::npos)
      << result->error().message();
  auto again = cli({"cancel", "--job-id", id});
  EXPECT_NE(again.exit_code, 0) << "a done call is not cancelled twice";
  EXPECT_EQ(endpoint_->requests_for(id).size(), 1u);
}

TEST_F(ServerControl, CliRetryRunsACallInItsBackoffNow) {
  start(kLongBackoff);
  std::string id = dispatch("fail_then_ok", 1);
  ASSERT_TRUE(wait_for_backoff(id)) << status_of(id).dump();
  auto retried = cli({"retry", "--job-id", id});
  ASSERT_EQ(retried.exit_code, 0) << retried.err;
  auto result = client_->await_result(id, 30s);
  ASSERT_TRUE(result.is_ok()) << result.status().message();
  EXPECT_FALSE(result->has_error());
  EXPECT_EQ(endpoint_->requests_for(id).size(), 2u);
  auto shown = status_of(id);
  ASSERT_EQ(shown["history"].size(), 2u) << shown.dump();
  ASSERT_EQ(shown["actions"].size(), 1u) << shown.dump();
  EXPECT_EQ(shown["actions"][0]["action"], "retry-now");
  EXPECT_EQ(shown["actions"][0]["actor"].get<std::string>().rfind("ann@", 0), 0u) << shown.dump();
}

TEST_F(ServerControl, RetryNowRpcRunsACallInItsBackoffNow) {
  start(kLongBackoff);
  std::string id = dispatch("fail_then_ok", 1);
  ASSERT_TRUE(wait_for_backoff(id)) << status_of(id).dump();
  auto response = client_->post(kRetryNowPath, id, "Bearer k", "application/octet-stream");
  ASSERT_TRUE(response.is_ok()) << response.status().message();
  ASSERT_EQ(response->status, 200) << response->body;
  EXPECT_EQ(json::parse(response->body)["retried"], true);
  auto result = client_->await_result(id, 30s);
  ASSERT_TRUE(result.is_ok()) << result.status().message();
  EXPECT_FALSE(result->has_error());
  auto again = client_->post(kRetryNowPath, id, "Bearer k", "application/octet-stream");
  ASSERT_TRUE(again.is_ok());
  EXPECT_EQ(json::parse(again->body)["retried"], false) << "a done call has no backoff";
}

TEST_F(ServerControl, RetryOfACallNotInBackoffSaysSo) {
  start();
  std::string id = dispatch("echo", 5);
  ASSERT_TRUE(client_->await_result(id, 30s).is_ok());
  auto retried = cli({"retry", "--job-id", id});
  EXPECT_NE(retried.exit_code, 0);
  EXPECT_NE(retried.err.find("not waiting out a backoff"), std::string::npos) << retried.err;
  auto unknown = cli({"retry", "--job-id", "nope"});
  EXPECT_NE(unknown.exit_code, 0);
}

TEST_F(ServerControl, MetricsNeedTheKeyUnlessPublic) {
  start();
  std::string id = dispatch("echo", 1);
  ASSERT_TRUE(client_->await_result(id, 30s).is_ok());
  auto refused = get_metrics(std::nullopt);
  ASSERT_TRUE(refused.is_ok()) << refused.status().message();
  EXPECT_EQ(refused->status, 401);
  auto metrics = get_metrics("Bearer k");
  ASSERT_TRUE(metrics.is_ok());
  ASSERT_EQ(metrics->status, 200);
  EXPECT_EQ(metrics->header("Content-Type").value_or(""), "text/plain; version=0.0.4");
  EXPECT_NE(metrics->body.find("ratchet_calls_dispatched_total 1\n"), std::string::npos)
      << metrics->body;
  EXPECT_NE(
      metrics->body.find("ratchet_calls_ended_total{function=\"echo\",status=\"SUCCEEDED\"} 1"),
      std::string::npos);

  server_->kill(SIGTERM);
  // Another server (a home of its own: each ServerProcess numbers its logs from 1).
  server_ = std::make_unique<ServerProcess>(
      ServerSettings{other_home_.path(), "k", "", {"--metrics-public"}, ""});
  ASSERT_TRUE(server_->start().is_ok());
  auto open = get_metrics(std::nullopt);
  ASSERT_TRUE(open.is_ok());
  EXPECT_EQ(open->status, 200);
}

TEST_F(ServerControl, JsonLogLinesAboutACallCarryItsIdFunctionAndAttempt) {
  start({"--log-format", "json"});
  std::string id = dispatch("permanent");
  ASSERT_TRUE(client_->await_result(id, 30s).is_ok());
  server_->kill(SIGTERM);
  bool found = false;
  std::istringstream lines(server_->logs());
  for (std::string line; std::getline(lines, line);) {
    // logs() marks each start of the server with a line of its own.
    if (line.empty() || line.rfind("---- ", 0) == 0) continue;
    auto parsed = json::parse(line, nullptr, false);
    ASSERT_TRUE(parsed.is_object()) << "not a JSON line: " << line;
    EXPECT_TRUE(parsed.contains("time") && parsed.contains("msg")) << line;
    EXPECT_TRUE(parsed["level"].is_string()) << line;
    if (parsed.value("call_id", "") == id) {
      found = true;
      EXPECT_EQ(parsed["function"], "permanent");
      EXPECT_EQ(parsed["attempt"], 1);
    }
  }
  EXPECT_TRUE(found) << server_->logs();
}

}  // namespace
}  // namespace ratchet
