// End-to-end tests of the scheduler server: the real `ratchet server` (and
// `ratchet dev`, `ratchet keygen`) run as child processes against the test
// endpoint (test_endpoint.hpp), checked against PROTOCOL.md through the
// Dispatch/Wait API, the RunRequests the endpoint received and the store.
//
// Nothing here sleeps to synchronise: every wait is a Wait RPC or a poll with a
// bounded deadline.
#include <arpa/inet.h>
#include <google/protobuf/wrappers.pb.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "dispatch/sdk/v1/function.pb.h"
#include "http/client.hpp"
#include "protocol/connect.hpp"
#include "protocol/signing.hpp"
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
using testing::ChildProcess;
using testing::int64_of;
using testing::kCorrelationBase;
using testing::make_call;
using testing::RecordedRequest;
using testing::ServerProcess;
using testing::ServerSettings;
using testing::TempDir;
using testing::TestEndpoint;
using Steady = std::chrono::steady_clock;

// Retries: few attempts, so that the tests that exhaust them stay short.
const std::vector<std::string> kDefaultServerArgs = {"--max-attempts", "5", "--request-timeout",
                                                     "3s"};

google::protobuf::Any json_input(const json& value) {
  auto packed = protocol::pack_json(value);
  EXPECT_TRUE(packed.is_ok()) << packed.status().message();
  return packed.is_ok() ? *packed : google::protobuf::Any();
}

std::string string_of(const google::protobuf::Any& any) {
  google::protobuf::StringValue value;
  return any.UnpackTo(&value) ? value.value() : "<not a StringValue>";
}

std::set<std::string> distinct_ids(const std::vector<RecordedRequest>& requests) {
  std::set<std::string> ids;
  for (const auto& r : requests) ids.insert(r.dispatch_id);
  return ids;
}

std::vector<RecordedRequest> resumes_of(const std::vector<RecordedRequest>& requests) {
  std::vector<RecordedRequest> resumes;
  for (const auto& r : requests) {
    if (r.resumed) resumes.push_back(r);
  }
  return resumes;
}

// A bound TCP port that does not listen: connecting to it is refused, and
// nobody else can take it while the object lives.
class ClosedPort {
 public:
  ClosedPort() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    socklen_t size = sizeof addr;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &size);
    port_ = ntohs(addr.sin_port);
  }
  ~ClosedPort() { close(fd_); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
};

class ServerE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    auto key = testing::keygen_verification_key(dir_.file("signing.pem"));
    ASSERT_TRUE(key.is_ok()) << key.status().message();
    public_key_ = key->public_key_base64();
    testing::EndpointOptions options;
    options.verification_key = *key;
    endpoint_ = std::make_unique<TestEndpoint>(options);
    ServerSettings settings{dir_.path(), "k", dir_.file("signing.pem"), kDefaultServerArgs};
    settings.env = server_env();
    server_ = std::make_unique<ServerProcess>(std::move(settings));
    Status started = server_->start();
    ASSERT_TRUE(started.is_ok()) << started.message();
    client_ = std::make_unique<ApiClient>(server_->url(), "k");
  }

  // What a fixture adds to the server's environment.
  virtual std::vector<std::pair<std::string, std::string>> server_env() const { return {}; }

  void TearDown() override {
    if (endpoint_) {
      for (const auto& violation : endpoint_->violations()) {
        ADD_FAILURE() << "protocol violation seen by the endpoint: " << violation;
      }
    }
    if (HasFailure() && server_) std::cerr << server_->logs();
  }

  // Dispatches one call to the test endpoint; "" (and a failure) if refused.
  std::string dispatch(const std::string& function, const google::protobuf::Any& input,
                       const std::string& run_key = "") {
    auto id = client_->dispatch_one(make_call(endpoint_->url(), function, input, run_key));
    EXPECT_TRUE(id.is_ok()) << id.status().message();
    return id.is_ok() ? *id : std::string();
  }

  pb::CallResult result_of(const std::string& id, std::chrono::milliseconds timeout = 30s) {
    auto result = client_->await_result(id, timeout);
    EXPECT_TRUE(result.is_ok()) << "call " << id << ": " << result.status().message();
    if (!result.is_ok()) return pb::CallResult();
    EXPECT_EQ(result->dispatch_id(), id);
    return *result;
  }

  // The environment that points the CLI at the server's store.
  testing::Env store_env() const {
    return {{"RATCHET_HOME", dir_.path()}, {"RATCHET_DB", server_->db_path()}};
  }

  // `ratchet status --job-id <id>` on the server's store, as JSON.
  json call_status(const std::string& id) {
    auto status =
        testing::run_process({testing::ratchet_bin(), "status", "--job-id", id}, store_env());
    EXPECT_EQ(status.exit_code, 0) << status.err;
    auto shown = json::parse(status.out, nullptr, false);
    EXPECT_TRUE(shown.is_object()) << status.out;
    return shown.is_object() ? shown : json::object();
  }

  // How many durable calls the server's store holds, as `ratchet list` shows them.
  int count_calls() {
    auto list =
        testing::run_process({testing::ratchet_bin(), "list", "--limit", "100000"}, store_env());
    EXPECT_EQ(list.exit_code, 0) << list.err;
    auto runs = json::parse(list.out, nullptr, false);
    if (!runs.is_array()) {
      ADD_FAILURE() << "ratchet list printed no JSON array: " << list.out;
      return -1;
    }
    return static_cast<int>(std::count_if(
        runs.begin(), runs.end(), [](const json& run) { return run.value("kind", "") == "call"; }));
  }

  // A second server on its own store, sending to the same endpoint.
  std::unique_ptr<ServerProcess> another_server(const std::string& name,
                                                const std::string& signing_key_file,
                                                std::vector<std::string> args) {
    std::string home = dir_.file(name);
    std::filesystem::create_directories(home);
    auto server = std::make_unique<ServerProcess>(
        ServerSettings{home, "k", signing_key_file, std::move(args)});
    Status started = server->start();
    EXPECT_TRUE(started.is_ok()) << started.message();
    return server;
  }

  TempDir dir_;
  std::string public_key_;
  std::unique_ptr<TestEndpoint> endpoint_;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<ApiClient> client_;
};

// ---------------------------------------------------------------------------
// The life of a call

TEST_F(ServerE2E, EchoExitsWithItsInputAsTheResult) {
  auto input = protocol::pack_string("hello");
  std::string id = dispatch("echo", input);
  pb::CallResult result = result_of(id);
  EXPECT_FALSE(result.has_error()) << result.error().message();
  EXPECT_EQ(result.output().SerializeAsString(), input.SerializeAsString());

  auto requests = endpoint_->requests_for(id);
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].function, "echo");
  EXPECT_EQ(requests[0].dispatch_id, id) << "the RunRequest must carry the id Dispatch returned";
  EXPECT_EQ(requests[0].root_id, id) << "a root call is its own root";
  EXPECT_EQ(requests[0].parent_id, "");
  EXPECT_EQ(requests[0].input, input.SerializeAsString()) << "input byte for byte";
  Micros now = SystemClock::instance().now();
  EXPECT_GT(requests[0].creation_time_us, now - 60 * kMicrosPerSecond);
  EXPECT_LE(requests[0].creation_time_us, now);
  EXPECT_EQ(endpoint_->rejected_signatures(), 0);
  EXPECT_EQ(endpoint_->verified_signatures(), 1) << "the server signs with --signing-key";
}

TEST_F(ServerE2E, TailCallUnderTemporaryErrorRunsTheTargetUnderTheSameId) {
  auto input = protocol::pack_int64(42);
  std::string id = dispatch("tail", input);
  pb::CallResult result = result_of(id);
  EXPECT_FALSE(result.has_error()) << result.error().message();
  EXPECT_EQ(int64_of(result.output()), 42);

  auto requests = endpoint_->requests_for(id);
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].function, "tail");
  EXPECT_EQ(requests[1].function, "echo");
  EXPECT_EQ(requests[1].input, input.SerializeAsString());
  EXPECT_EQ(requests[1].root_id, id);
  EXPECT_EQ(requests[1].parent_id, "");
  EXPECT_EQ(requests[1].creation_time_us, requests[0].creation_time_us)
      << "creation_time is kept across tail calls";
}

TEST_F(ServerE2E, FanOutDeliversEachResultOnceWithItsCorrelationIdWithinPollLimits) {
  std::string id = dispatch("fanout", json_input({{"k", 20}, {"min", 3}, {"max", 5}}));
  pb::CallResult result = result_of(id);
  EXPECT_FALSE(result.has_error()) << result.error().message();
  EXPECT_EQ(int64_of(result.output()), 20 * 21 / 2);

  // Each child ran once, as a child of the fanout in its tree.
  std::map<std::uint64_t, std::string> child_of_correlation;
  auto children = endpoint_->requests_with_parent(id);
  EXPECT_EQ(children.size(), 20u);
  for (const auto& child : children) {
    EXPECT_EQ(child.function, "echo");
    EXPECT_EQ(child.root_id, id);
    auto j = int64_of([&] {
      google::protobuf::Any any;
      any.ParseFromString(child.input);
      return any;
    }());
    ASSERT_TRUE(j.has_value());
    child_of_correlation[kCorrelationBase + static_cast<std::uint64_t>(*j)] = child.dispatch_id;
  }
  // Each result came back once, with the child's correlation and dispatch ids,
  // at most max_results at a time, the state in coroutine_state (1).
  auto resumes = resumes_of(endpoint_->requests_for(id));
  EXPECT_GE(resumes.size(), 4u);
  std::map<std::uint64_t, int> delivered;
  for (const auto& resume : resumes) {
    EXPECT_EQ(resume.state_member, 1);
    EXPECT_LE(resume.results.size(), 5u);
    EXPECT_GE(resume.results.size(), 1u);
    for (const auto& [correlation, child_id] : resume.results) {
      ++delivered[correlation];
      EXPECT_EQ(child_id, child_of_correlation[correlation]);
    }
  }
  EXPECT_EQ(delivered.size(), 20u);
  for (const auto& [correlation, times] : delivered) {
    EXPECT_EQ(times, 1) << "correlation id " << correlation;
  }
}

TEST_F(ServerE2E, TypedCoroutineStateComesBackInTheSameMember) {
  std::string id =
      dispatch("fanout", json_input({{"k", 6}, {"min", 2}, {"max", 2}, {"typed", true}}));
  pb::CallResult result = result_of(id);
  EXPECT_FALSE(result.has_error()) << result.error().message();
  EXPECT_EQ(int64_of(result.output()), 21);
  auto resumes = resumes_of(endpoint_->requests_for(id));
  EXPECT_EQ(resumes.size(), 3u);
  for (const auto& resume : resumes) {
    EXPECT_EQ(resume.state_member, 4) << "Poll.typed_coroutine_state returns as "
                                         "PollResult.typed_coroutine_state (4)";
    EXPECT_EQ(resume.results.size(), 2u);
  }
}

TEST_F(ServerE2E, UndispatchableChildrenRerunTheCallerWithPollErrorAndNoneRun) {
  std::string id = dispatch("bad_children", protocol::pack_null());
  pb::CallResult result = result_of(id);
  EXPECT_FALSE(result.has_error()) << result.error().message();
  EXPECT_NE(string_of(result.output()).find("not a function!"), std::string::npos)
      << string_of(result.output());

  auto requests = endpoint_->requests_for(id);
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_TRUE(requests[1].poll_error);
  EXPECT_EQ(requests[1].state_member, 1);
  EXPECT_EQ(requests[1].state, "bad-children");
  EXPECT_TRUE(endpoint_->requests_with_parent(id).empty())
      << "the valid child of a rejected Poll must not be dispatched either";
  EXPECT_EQ(count_calls(), 1);
}

TEST_F(ServerE2E, IncompatibleStateRestartsTheCallFromItsInput) {
  auto input = protocol::pack_string("original input");
  std::string id = dispatch("incompatible", input);
  pb::CallResult result = result_of(id);
  EXPECT_FALSE(result.has_error()) << result.error().message();
  EXPECT_EQ(int64_of(result.output()), 2) << "two runs from the input";

  auto requests = endpoint_->requests_for(id);
  ASSERT_EQ(requests.size(), 4u);
  EXPECT_FALSE(requests[0].resumed);
  EXPECT_TRUE(requests[1].resumed);
  EXPECT_EQ(requests[1].state, "generation-1");
  EXPECT_FALSE(requests[2].resumed) << "INCOMPATIBLE_STATE restarts from the input";
  EXPECT_EQ(requests[2].input, input.SerializeAsString());
  EXPECT_TRUE(requests[3].resumed);
  EXPECT_EQ(requests[3].state, "generation-2");
}

// A call that starts afresh (INCOMPATIBLE_STATE, or a tail call) reuses its
// correlation ids: the results of the children it abandoned must not reach it.
TEST_F(ServerE2E, ChildrenAbandonedByARestartOrTailCallNeverDeliverToTheNewRun) {
  std::string restarted = dispatch("restart_outstanding", protocol::pack_null());
  std::string tail = dispatch("tail_outstanding", protocol::pack_null());
  for (const auto& id : {restarted, tail}) {
    pb::CallResult result = result_of(id);
    EXPECT_FALSE(result.has_error()) << result.error().message();
    EXPECT_EQ(int64_of(result.output()), 1600);
    EXPECT_EQ(distinct_ids(endpoint_->requests_with_parent(id)).size(), 4u);
  }
  // The abandoned children finished too; once they did, the parents stay done.
  auto deadline = Steady::now() + 10s;
  for (const auto& id : {restarted, tail}) {
    for (const auto& child : distinct_ids(endpoint_->requests_with_parent(id))) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Steady::now());
      EXPECT_TRUE(client_->await_result(child, std::max(left, 1ms)).is_ok()) << child;
    }
  }
  EXPECT_EQ(call_status(restarted).value("status", ""), "SUCCEEDED");
  EXPECT_EQ(call_status(tail).value("status", ""), "SUCCEEDED");
}

TEST_F(ServerE2E, FailedChildsErrorReachesItsParent) {
  std::string id = dispatch("child_fails", protocol::pack_null());
  pb::CallResult result = result_of(id);
  ASSERT_TRUE(result.has_error());
  EXPECT_EQ(result.error().type(), "ChildFailed");
  EXPECT_NE(result.error().message().find("ValueError: permanent failure for boom-" + id),
            std::string::npos)
      << result.error().message();
  auto children = endpoint_->requests_with_parent(id);
  ASSERT_EQ(children.size(), 1u) << "PERMANENT_ERROR is not retried";
  EXPECT_EQ(children[0].function, "permanent");
}

TEST_F(ServerE2E, ThreeLevelTreeCompletesWithParentAndRootIds) {
  std::string root = dispatch("tree", protocol::pack_null());
  pb::CallResult result = result_of(root);
  EXPECT_FALSE(result.has_error()) << result.error().message();
  EXPECT_EQ(int64_of(result.output()), (11 + 12) + (21 + 22));

  auto mids = distinct_ids(endpoint_->requests_with_parent(root));
  ASSERT_EQ(mids.size(), 2u);
  std::set<std::string> leaves;
  for (const auto& mid : mids) {
    for (const auto& r : endpoint_->requests_for(mid)) {
      EXPECT_EQ(r.function, "mid");
      EXPECT_EQ(r.root_id, root);
      EXPECT_EQ(r.parent_id, root);
    }
    auto mid_leaves = endpoint_->requests_with_parent(mid);
    EXPECT_EQ(distinct_ids(mid_leaves).size(), 2u);
    for (const auto& leaf : mid_leaves) {
      EXPECT_EQ(leaf.function, "echo");
      EXPECT_EQ(leaf.root_id, root) << "a grandchild's root is the root call";
      leaves.insert(leaf.dispatch_id);
    }
  }
  EXPECT_EQ(leaves.size(), 4u);
  EXPECT_EQ(count_calls(), 7);
}

// With RATCHET_SPIN_US=0 the server's threads sleep as soon as they are idle
// (io_context::run, plain condition-variable waits): the same calls complete.
class ServerE2EWithoutSpinning : public ServerE2E {
 protected:
  std::vector<std::pair<std::string, std::string>> server_env() const override {
    return {{"RATCHET_SPIN_US", "0"}};
  }
};

TEST_F(ServerE2EWithoutSpinning, ATreeAndAFanOutCompleteWithSpinningOff) {
  std::string root = dispatch("tree", protocol::pack_null());
  pb::CallResult tree = result_of(root);
  EXPECT_FALSE(tree.has_error()) << tree.error().message();
  EXPECT_EQ(int64_of(tree.output()), (11 + 12) + (21 + 22));
  std::string fan = dispatch("fanout", json_input({{"k", 100}, {"min", 100}, {"max", 250}}));
  pb::CallResult fanned = result_of(fan, 120s);
  EXPECT_FALSE(fanned.has_error()) << fanned.error().message();
  EXPECT_EQ(int64_of(fanned.output()), 100 * 101 / 2);
}

TEST_F(ServerE2E, FanOutOfAThousandChildren) {
  std::string id = dispatch("fanout", json_input({{"k", 1000}, {"min", 100}, {"max", 250}}));
  pb::CallResult result = result_of(id, 45s);
  EXPECT_FALSE(result.has_error()) << result.error().message();
  EXPECT_EQ(int64_of(result.output()), 1000 * 1001 / 2);
  EXPECT_EQ(distinct_ids(endpoint_->requests_with_parent(id)).size(), 1000u);
  std::size_t delivered = 0;
  for (const auto& resume : resumes_of(endpoint_->requests_for(id))) {
    EXPECT_LE(resume.results.size(), 250u);
    delivered += resume.results.size();
  }
  EXPECT_EQ(delivered, 1000u) << "each result exactly once";
}

// ---------------------------------------------------------------------------
// Retries and terminal statuses

TEST_F(ServerE2E, TemporaryErrorsAreRetriedWithBackoff) {
  std::string id = dispatch("fail_then_ok", protocol::pack_int64(3));
  pb::CallResult result = result_of(id);
  EXPECT_FALSE(result.has_error()) << result.error().message();
  EXPECT_EQ(int64_of(result.output()), 3);
  auto attempts = endpoint_->requests_for(id);
  ASSERT_EQ(attempts.size(), 4u);
  std::vector<std::int64_t> gaps;
  for (std::size_t i = 1; i < attempts.size(); ++i) {
    gaps.push_back(attempts[i].received_us - attempts[i - 1].received_us);
    EXPECT_GE(gaps.back(), 40'000) << "attempt " << i + 1 << " came without backoff";
  }
  EXPECT_GT(gaps[2], gaps[0]) << "the backoff grows";
}

TEST_F(ServerE2E, ThrottlingAndServerErrorsAreRetried) {
  std::string throttled = dispatch("throttle", protocol::pack_int64(2));
  std::string broken = dispatch("http500", protocol::pack_int64(2));
  for (const auto& id : {throttled, broken}) {
    pb::CallResult result = result_of(id);
    EXPECT_FALSE(result.has_error()) << result.error().message();
    EXPECT_EQ(int64_of(result.output()), 2);
    EXPECT_EQ(endpoint_->requests_for(id).size(), 3u);
  }
}

TEST_F(ServerE2E, RetriesAreBoundedByAttempts) {
  std::string transient = dispatch("fail_then_ok", protocol::pack_int64(1000));
  std::string broken = dispatch("http500", protocol::pack_int64(1000));
  pb::CallResult result = result_of(transient);
  ASSERT_TRUE(result.has_error());
  EXPECT_EQ(result.error().type(), "Transient");
  EXPECT_NE(result.error().message().find("gave up after 5 attempts"), std::string::npos)
      << result.error().message();
  EXPECT_EQ(endpoint_->requests_for(transient).size(), 5u);

  result = result_of(broken);
  ASSERT_TRUE(result.has_error());
  EXPECT_EQ(result.error().type(), "STATUS_HTTP_ERROR");
  EXPECT_EQ(endpoint_->requests_for(broken).size(), 5u);
}

TEST_F(ServerE2E, RetriesAreBoundedByTheCallsExpiration) {
  auto call = make_call(endpoint_->url(), "fail_then_ok", protocol::pack_int64(1000));
  call.mutable_expiration()->set_nanos(400'000'000);
  auto id = client_->dispatch_one(call);
  ASSERT_TRUE(id.is_ok()) << id.status().message();
  pb::CallResult result = result_of(*id);
  ASSERT_TRUE(result.has_error());
  EXPECT_NE(result.error().message().find("expired"), std::string::npos)
      << result.error().message();
  auto attempts = endpoint_->requests_for(*id);
  ASSERT_FALSE(attempts.empty());
  EXPECT_LT(attempts.size(), 5u) << "the expiration comes before --max-attempts";
  // expiration_time is creation_time + expiration, give or take the commit.
  EXPECT_LE(attempts[0].expiration_time_us - attempts[0].creation_time_us, 400'000);
  EXPECT_GE(attempts[0].expiration_time_us - attempts[0].creation_time_us, 300'000);
}

TEST_F(ServerE2E, ConnectionFailuresAreRetriedWithBackoffThenFail) {
  ClosedPort closed;
  auto started = Steady::now();
  auto id = client_->dispatch_one(make_call(closed.url(), "echo", protocol::pack_int64(1)));
  ASSERT_TRUE(id.is_ok()) << id.status().message();
  pb::CallResult result = result_of(*id);
  auto elapsed = Steady::now() - started;
  ASSERT_TRUE(result.has_error());
  EXPECT_EQ(result.error().type(), "STATUS_TCP_ERROR");
  EXPECT_NE(result.error().message().find("gave up after 5 attempts"), std::string::npos)
      << result.error().message();
  // Four backoffs of at least 50, 100, 200 and 400 ms (jitter over the upper half).
  EXPECT_GE(elapsed, 700ms);
}

TEST_F(ServerE2E, TerminalStatusesEndTheCallAfterOneAttempt) {
  struct Case {
    std::string function;
    std::string error_type;
  };
  std::vector<Case> cases = {{"permanent", "ValueError"},
                             {"garbage", "STATUS_INVALID_RESPONSE"},
                             {"wrong_type", "STATUS_INVALID_RESPONSE"},
                             {"no_such_function", "STATUS_NOT_FOUND"}};
  std::vector<std::string> ids;
  for (const auto& c : cases) ids.push_back(dispatch(c.function, protocol::pack_string("x")));
  for (std::size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(cases[i].function);
    pb::CallResult result = result_of(ids[i]);
    ASSERT_TRUE(result.has_error());
    EXPECT_EQ(result.error().type(), cases[i].error_type) << result.error().message();
    EXPECT_FALSE(result.has_output());
    EXPECT_EQ(endpoint_->requests_for(ids[i]).size(), 1u);
  }
  EXPECT_EQ(result_of(ids[0]).error().message(), "permanent failure for x");
}

TEST_F(ServerE2E, AnEndpointThatNeverAnswersTimesOutAndIsRetried) {
  auto server = another_server("hang", dir_.file("signing.pem"),
                               {"--request-timeout", "300ms", "--max-attempts", "2"});
  ApiClient client(server->url(), "k");
  auto id = client.dispatch_one(make_call(endpoint_->url(), "hang", protocol::pack_null()));
  ASSERT_TRUE(id.is_ok()) << id.status().message();
  auto result = client.await_result(*id, 20s);
  ASSERT_TRUE(result.is_ok()) << result.status().message();
  ASSERT_TRUE(result->has_error());
  EXPECT_EQ(result->error().type(), "STATUS_TIMEOUT");
  EXPECT_EQ(endpoint_->requests_for(*id).size(), 2u);
  if (HasFailure()) std::cerr << server->logs();
}

// ---------------------------------------------------------------------------
// The API: authentication, validation, idempotency, Wait

TEST_F(ServerE2E, DispatchWithoutTheRightKeyIs401AndRecordsNothing) {
  pb::DispatchRequest request;
  *request.add_calls() = make_call(endpoint_->url(), "echo", protocol::pack_int64(1));
  for (std::optional<std::string> authorization :
       {std::optional<std::string>(), std::optional<std::string>("Bearer wrong"),
        std::optional<std::string>("k"), std::optional<std::string>("Basic k")}) {
    SCOPED_TRACE(authorization.value_or("<none>"));
    auto response =
        client_->post(protocol::kDispatchPath, request.SerializeAsString(), authorization);
    ASSERT_TRUE(response.is_ok()) << response.status().message();
    EXPECT_EQ(response->status, 401);
    EXPECT_EQ(response->header("Content-Type").value_or(""), "application/json");
    auto body = json::parse(response->body, nullptr, false);
    EXPECT_EQ(body.value("code", ""), "unauthenticated") << response->body;
  }
  auto wait = client_->post(protocol::kWaitPath, "some-id", "Bearer wrong");
  ASSERT_TRUE(wait.is_ok());
  EXPECT_EQ(wait->status, 401);

  EXPECT_EQ(count_calls(), 0);
  // A call dispatched with the key runs; nothing else reached the endpoint.
  std::string marker = dispatch("echo", protocol::pack_int64(2));
  result_of(marker);
  EXPECT_EQ(endpoint_->request_count(), 1u);
  EXPECT_EQ(count_calls(), 1);
}

TEST_F(ServerE2E, BadDispatchRequestsAre400AndRecordNothing) {
  auto valid = make_call(endpoint_->url(), "echo", protocol::pack_int64(1));
  auto bad_endpoint = make_call("ftp://127.0.0.1/x", "echo", protocol::pack_int64(1));
  auto no_endpoint = make_call("", "echo", protocol::pack_int64(1));
  auto bad_function = make_call(endpoint_->url(), "1bad", protocol::pack_int64(1));
  auto spaced_function = make_call(endpoint_->url(), "a b", protocol::pack_int64(1));
  std::vector<std::pair<std::string, std::string>> bodies;  // what, body
  bodies.emplace_back("garbage", std::string("\xff\xff\xff garbage", 11));
  for (const auto& [what, calls] : std::vector<std::pair<std::string, std::vector<pb::Call>>>{
           {"ftp endpoint", {bad_endpoint}},
           {"no endpoint", {no_endpoint}},
           {"invalid function", {bad_function}},
           {"function with a space", {spaced_function}},
           {"valid then invalid", {valid, bad_function}},
           {"invalid then valid", {bad_endpoint, valid}}}) {
    pb::DispatchRequest request;
    for (const auto& call : calls) *request.add_calls() = call;
    bodies.emplace_back(what, request.SerializeAsString());
  }
  for (const auto& [what, body] : bodies) {
    SCOPED_TRACE(what);
    auto response = client_->post(protocol::kDispatchPath, body, "Bearer k");
    ASSERT_TRUE(response.is_ok()) << response.status().message();
    EXPECT_EQ(response->status, 400);
    EXPECT_EQ(response->header("Content-Type").value_or(""), "application/json");
    auto error = json::parse(response->body, nullptr, false);
    EXPECT_EQ(error.value("code", ""), "invalid_argument") << response->body;
    EXPECT_FALSE(error.value("message", "").empty()) << response->body;
  }
  EXPECT_EQ(count_calls(), 0) << "a Dispatch is all or nothing";
  std::string marker = dispatch("echo", protocol::pack_int64(2));
  result_of(marker);
  EXPECT_EQ(endpoint_->request_count(), 1u) << "only the marker call ran";
  EXPECT_EQ(count_calls(), 1);
}

TEST_F(ServerE2E, RunKeyMakesDispatchIdempotentWhileTheCallIsLive) {
  auto input = protocol::pack_int64(1500);  // slow: answers after 1.5 s
  std::string first = dispatch("slow", input, "rk-1");
  EXPECT_EQ(dispatch("slow", input, "rk-1"), first);
  auto pair = client_->dispatch({make_call(endpoint_->url(), "slow", input, "rk-1"),
                                 make_call(endpoint_->url(), "slow", input, "rk-1")});
  ASSERT_TRUE(pair.is_ok()) << pair.status().message();
  EXPECT_EQ(*pair, (std::vector<std::string>{first, first}));
  auto twins = client_->dispatch({make_call(endpoint_->url(), "echo", input, "rk-2"),
                                  make_call(endpoint_->url(), "echo", input, "rk-2")});
  ASSERT_TRUE(twins.is_ok()) << twins.status().message();
  EXPECT_EQ((*twins)[0], (*twins)[1]) << "one Dispatch with a key twice records one call";
  std::string other = dispatch("slow", protocol::pack_int64(0), "rk-3");
  EXPECT_NE(other, first);

  result_of(first);
  EXPECT_EQ(endpoint_->requests_for(first).size(), 1u);
  std::string again = dispatch("echo", input, "rk-1");
  EXPECT_NE(again, first) << "a finished call's key starts a new call";
  result_of(again);
  result_of(other);
  result_of((*twins)[0]);
  EXPECT_EQ(count_calls(), 4);
}

TEST_F(ServerE2E, WaitForAnUnknownIdIs404) {
  auto response = client_->post(protocol::kWaitPath, "no-such-call", "Bearer k");
  ASSERT_TRUE(response.is_ok()) << response.status().message();
  EXPECT_EQ(response->status, 404);
  EXPECT_EQ(json::parse(response->body, nullptr, false).value("code", ""), "not_found")
      << response->body;
  auto result = client_->wait("no-such-call", 1s);
  EXPECT_EQ(result.status().code(), Code::kNotFound);
}

TEST_F(ServerE2E, WaitBlocksUntilTheResultWhateverTheConnectTimeout) {
  std::string id = dispatch("slow", protocol::pack_int64(300));
  // A timeout too large to count in microseconds is as good as none: the
  // server's own limit applies.
  http::Request request;
  request.method = "POST";
  request.target = server_->url() + std::string(protocol::kWaitPath);
  request.headers.add("Authorization", "Bearer k");
  request.headers.add(std::string(protocol::kConnectTimeoutHeader), "9223372036854775807");
  request.body = id;
  http::Client client;
  auto response = client.send_sync(std::move(request));
  ASSERT_TRUE(response.is_ok()) << response.status().message();
  ASSERT_EQ(response->status, 200) << response->body;
  pb::CallResult result;
  ASSERT_TRUE(result.ParseFromString(response->body));
  EXPECT_EQ(int64_of(result.output()), 300);
}

TEST_F(ServerE2E, RestartOnTheSameStoreKeepsResults) {
  std::string id = dispatch("echo", protocol::pack_string("kept"));
  EXPECT_EQ(string_of(result_of(id).output()), "kept");
  int status = server_->kill(SIGTERM);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "wait status " << status;
  Status restarted = server_->start();
  ASSERT_TRUE(restarted.is_ok()) << restarted.message();
  EXPECT_EQ(string_of(result_of(id).output()), "kept");
  EXPECT_EQ(endpoint_->requests_for(id).size(), 1u);
}

// ---------------------------------------------------------------------------
// Signatures, `ratchet dev`, `ratchet status`, the endpoint as a process

TEST_F(ServerE2E, EndpointRefusesAServerWithAnotherKeyAndTheCallFails) {
  auto other_key = testing::keygen(dir_.file("other.pem"));
  ASSERT_TRUE(other_key.is_ok()) << other_key.status().message();
  ASSERT_NE(*other_key, public_key_);
  namespace fs = std::filesystem;
  EXPECT_EQ(fs::status(dir_.file("other.pem")).permissions(),
            fs::perms::owner_read | fs::perms::owner_write)
      << "the private key is readable by its owner only";
  EXPECT_FALSE(testing::keygen(dir_.file("other.pem")).is_ok())
      << "keygen --out never overwrites a key";
  for (const auto& [name, key_file] : std::vector<std::pair<std::string, std::string>>{
           {"other-key", dir_.file("other.pem")}, {"unsigned", ""}}) {
    SCOPED_TRACE(name);
    int rejected_before = endpoint_->rejected_signatures();
    auto server = another_server(name, key_file, kDefaultServerArgs);
    ApiClient client(server->url(), "k");
    auto id = client.dispatch_one(make_call(endpoint_->url(), "echo", protocol::pack_int64(1)));
    ASSERT_TRUE(id.is_ok()) << id.status().message();
    auto result = client.await_result(*id);
    ASSERT_TRUE(result.is_ok()) << result.status().message();
    ASSERT_TRUE(result->has_error());
    EXPECT_EQ(result->error().type(), "STATUS_PERMISSION_DENIED");
    EXPECT_NE(result->error().message().find("DISPATCH_VERIFICATION_KEY"), std::string::npos)
        << result->error().message();
    auto requests = endpoint_->requests_for(*id);
    ASSERT_EQ(requests.size(), 1u) << "403 is terminal";
    EXPECT_EQ(requests[0].http_status, 403);
    EXPECT_EQ(endpoint_->rejected_signatures(), rejected_before + 1);
    if (HasFailure()) std::cerr << server->logs();
  }
}

// Starts `ratchet dev` for the test endpoint on a free port with `flags`, and
// waits until it has printed its whole configuration (or exited): its stdout
// in `out`.
Result<ChildProcess> start_dev(const std::string& endpoint_url, const TempDir& dir,
                               const std::vector<std::string>& flags, std::string& out) {
  std::vector<std::string> argv = {testing::ratchet_bin(), "dev", endpoint_url, "--port", "0"};
  argv.insert(argv.end(), flags.begin(), flags.end());
  auto dev = ChildProcess::spawn(argv, {}, dir.file("dev.out"), dir.file("dev.err"));
  if (!dev.is_ok()) return dev;
  for (auto deadline = Steady::now() + 15s; Steady::now() < deadline;) {
    out = testing::read_file(dir.file("dev.out"));
    if (out.find("ratchet status") != std::string::npos || !dev->running()) break;
    std::this_thread::sleep_for(10ms);
  }
  return dev;
}

TEST_F(ServerE2E, DevPrintsTheConfigurationBlockAndSignsWithItsKey) {
  endpoint_->set_verification_key(std::nullopt);
  std::string out;
  auto dev = start_dev(endpoint_->url(), dir_, {"--db", dir_.file("dev.db")}, out);
  ASSERT_TRUE(dev.is_ok()) << dev.status().message();
  std::smatch match;
  static const std::regex kBlock(
      "Spawned a Ratchet server on 127\\.0\\.0\\.1:([0-9]+)\n[\\s\\S]*"
      "export DISPATCH_VERIFICATION_KEY=\"([A-Za-z0-9+/=]+)\"\n");
  ASSERT_TRUE(std::regex_search(out, match, kBlock)) << "stdout:\n"
                                                     << out << "stderr:\n"
                                                     << testing::read_file(dir_.file("dev.err"));
  std::string address = "127.0.0.1:" + match[1].str();
  std::string key_text = match[2].str();
  EXPECT_EQ(out, "Spawned a Ratchet server on " + address +
                     "\n"
                     "Dispatching function calls to the endpoint at " +
                     endpoint_->url() +
                     "\n"
                     "The Dispatch SDK can be configured with:\n"
                     "  export DISPATCH_API_URL=\"http://" +
                     address +
                     "\"\n"
                     "  export DISPATCH_API_KEY=\"test\"\n"
                     "  export DISPATCH_ENDPOINT_URL=\"" +
                     endpoint_->url() +
                     "\"\n"
                     "  export DISPATCH_VERIFICATION_KEY=\"" +
                     key_text +
                     "\"\n"
                     "  export DISPATCH_ENDPOINT_ADDR=\"127.0.0.1:" +
                     std::to_string(endpoint_->port()) +
                     "\"\n"
                     "Your service must listen at 127.0.0.1:" +
                     std::to_string(endpoint_->port()) +
                     " (DISPATCH_ENDPOINT_ADDR; the C++ SDK derives it from "
                     "DISPATCH_ENDPOINT_URL when unset).\n"
                     "The store is " +
                     dir_.file("dev.db") +
                     " (kept when this server stops).\n"
                     "See a call with: RATCHET_DB=\"" +
                     dir_.file("dev.db") + "\" ratchet status --job-id <dispatch id>\n");

  auto key = protocol::VerificationKey::parse(key_text);
  ASSERT_TRUE(key.is_ok()) << key.status().message();
  endpoint_->set_verification_key(*key);
  ApiClient client("http://" + address, "test");
  auto id = client.dispatch_one(make_call(endpoint_->url(), "echo", protocol::pack_int64(7)));
  ASSERT_TRUE(id.is_ok()) << id.status().message();
  auto result = client.await_result(*id);
  ASSERT_TRUE(result.is_ok()) << result.status().message();
  EXPECT_FALSE(result->has_error()) << result->error().message();
  EXPECT_EQ(int64_of(result->output()), 7);
  EXPECT_EQ(endpoint_->verified_signatures(), 1);
  EXPECT_EQ(endpoint_->rejected_signatures(), 0);

  // A 403 from the endpoint fails the call, and the log says what to check.
  auto other = protocol::SigningKey::generate();
  ASSERT_TRUE(other.is_ok());
  endpoint_->set_verification_key(other->verification_key());
  id = client.dispatch_one(make_call(endpoint_->url(), "echo", protocol::pack_int64(8)));
  ASSERT_TRUE(id.is_ok()) << id.status().message();
  result = client.await_result(*id);
  ASSERT_TRUE(result.is_ok()) << result.status().message();
  EXPECT_EQ(result->error().type(), "STATUS_PERMISSION_DENIED");
  EXPECT_NE(testing::read_file(dir_.file("dev.err")).find("DISPATCH_VERIFICATION_KEY"),
            std::string::npos)
      << testing::read_file(dir_.file("dev.err"));

  dev->signal(SIGTERM);
  int status = dev->wait_exit(10s);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "wait status " << status;
  EXPECT_EQ(testing::read_file(dir_.file("dev.out")), out) << "logs go to stderr";
}

// `ratchet status` could not see dev's calls: its temporary store was hidden.
// dev now prints where the store is, `status` reads it there while dev runs,
// and dev deletes it when it stops (--db keeps one: the test above).
TEST_F(ServerE2E, DevSaysWhereItsTemporaryStoreIsAndDeletesItWhenItStops) {
  endpoint_->set_verification_key(std::nullopt);
  std::string out;
  auto dev = start_dev(endpoint_->url(), dir_, {}, out);
  ASSERT_TRUE(dev.is_ok()) << dev.status().message();
  std::smatch match;
  static const std::regex kStore(
      "Spawned a Ratchet server on (127\\.0\\.0\\.1:[0-9]+)\n[\\s\\S]*"
      "The store is (/\\S+) \\(temporary: deleted when this server stops; --db PATH keeps "
      "one\\)\\.\nSee a call with: RATCHET_DB=\"([^\"]+)\" ratchet status --job-id <dispatch "
      "id>\n");
  ASSERT_TRUE(std::regex_search(out, match, kStore)) << out;
  std::string db = match[2].str();
  EXPECT_EQ(match[3].str(), db);
  ASSERT_TRUE(std::filesystem::exists(db)) << db;

  ApiClient client("http://" + match[1].str(), "test");
  auto id = client.dispatch_one(make_call(endpoint_->url(), "echo", protocol::pack_int64(9)));
  ASSERT_TRUE(id.is_ok()) << id.status().message();
  ASSERT_TRUE(client.await_result(*id).is_ok());
  auto status = testing::run_process({testing::ratchet_bin(), "status", "--job-id", *id},
                                     {{"RATCHET_HOME", dir_.path()}, {"RATCHET_DB", db}});
  EXPECT_EQ(status.exit_code, 0) << status.err;
  EXPECT_EQ(json::parse(status.out, nullptr, false).value("status", ""), "SUCCEEDED") << status.out;

  dev->signal(SIGTERM);
  int exit_status = dev->wait_exit(10s);
  EXPECT_TRUE(WIFEXITED(exit_status) && WEXITSTATUS(exit_status) == 0) << exit_status;
  EXPECT_FALSE(std::filesystem::exists(db)) << db << " outlived ratchet dev";
}

TEST_F(ServerE2E, StatusShowsDispatchedCalls) {
  std::string id = dispatch("echo", protocol::pack_int64(5));
  std::string failed = dispatch("permanent", protocol::pack_string("y"));
  result_of(id);
  result_of(failed);
  json shown = call_status(id);
  EXPECT_EQ(shown.value("kind", ""), "call") << shown.dump();
  EXPECT_EQ(shown.value("dispatch_id", ""), id);
  EXPECT_EQ(shown.value("function", ""), "echo");
  EXPECT_EQ(shown.value("status", ""), "SUCCEEDED");
  EXPECT_EQ(shown.value("call_status", ""), "STATUS_OK");
  EXPECT_EQ(shown.value("attempts", 0), 1);
  EXPECT_EQ(shown.value("root_id", ""), id);

  shown = call_status(failed);
  EXPECT_EQ(shown.value("status", ""), "FAILED") << shown.dump();
  EXPECT_EQ(shown.value("call_status", ""), "STATUS_PERMANENT_ERROR");
  EXPECT_EQ(shown["error"].value("type", ""), "ValueError");

  auto unknown =
      testing::run_process({testing::ratchet_bin(), "status", "--job-id", "nope"}, store_env());
  EXPECT_NE(unknown.exit_code, 0);
}

TEST_F(ServerE2E, TestEndpointMainServesSignedCalls) {
  auto process =
      ChildProcess::spawn({TEST_ENDPOINT_MAIN, "--port", "0", "--verification-key", public_key_},
                          {}, dir_.file("endpoint.out"), dir_.file("endpoint.err"));
  ASSERT_TRUE(process.is_ok()) << process.status().message();
  std::smatch match;
  std::string out;
  static const std::regex kListening("listening on ([0-9]+)\n");
  for (auto deadline = Steady::now() + 10s; Steady::now() < deadline;) {
    out = testing::read_file(dir_.file("endpoint.out"));
    if (std::regex_search(out, match, kListening) || !process->running()) break;
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_TRUE(std::regex_search(out, match, kListening))
      << out << testing::read_file(dir_.file("endpoint.err"));
  std::string url = "http://127.0.0.1:" + match[1].str();
  auto ids =
      client_->dispatch({make_call(url, "echo", protocol::pack_int64(3)),
                         make_call(url, "fanout", json_input({{"k", 4}, {"min", 1}, {"max", 2}}))});
  ASSERT_TRUE(ids.is_ok()) << ids.status().message();
  EXPECT_EQ(int64_of(result_of((*ids)[0]).output()), 3);
  EXPECT_EQ(int64_of(result_of((*ids)[1]).output()), 10);
  process->signal(SIGTERM);
  int status = process->wait_exit(10s);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "wait status " << status;
  EXPECT_NE(testing::read_file(dir_.file("endpoint.err")).find(", 0 protocol violations"),
            std::string::npos)
      << testing::read_file(dir_.file("endpoint.err"));
}

// The endpoint's own checks, which the tests above rely on, must be able to fail.
TEST(TestEndpointChecks, FlagDuplicateDeliveriesStateInTheOtherMemberAndBadSignatures) {
  auto key = protocol::SigningKey::generate();
  ASSERT_TRUE(key.is_ok());
  TestEndpoint endpoint;
  http::Client client;
  auto run = [&](const pb::RunRequest& request) {
    http::Request post;
    post.method = "POST";
    post.target = endpoint.url() + std::string(protocol::kRunPath);
    post.headers.add("Content-Type", "application/proto");
    post.body = request.SerializeAsString();
    auto response = client.send_sync(std::move(post));
    EXPECT_TRUE(response.is_ok()) << response.status().message();
    return response.is_ok() ? response->status : 0;
  };
  pb::RunRequest request;
  request.set_function("fanout");
  request.set_dispatch_id("p");
  request.set_root_dispatch_id("p");
  std::string state = json{{"k", 2}, {"min", 1}, {"max", 2}, {"sum", 1}, {"seen", "10"}}.dump();
  request.mutable_poll_result()->set_coroutine_state(state);
  pb::CallResult* again = request.mutable_poll_result()->add_results();
  again->set_correlation_id(kCorrelationBase + 1);
  again->set_dispatch_id("c1");
  *again->mutable_output() = protocol::pack_int64(1);
  EXPECT_EQ(run(request), 200);
  ASSERT_EQ(endpoint.violations().size(), 1u);
  EXPECT_NE(endpoint.violations()[0].find("delivered twice"), std::string::npos);

  *request.mutable_poll_result()->mutable_typed_coroutine_state() = protocol::pack_string(state);
  request.mutable_poll_result()->clear_results();
  EXPECT_EQ(run(request), 200);
  auto violations = endpoint.violations();
  ASSERT_GE(violations.size(), 2u);
  EXPECT_NE(violations[1].find("other member"), std::string::npos) << violations[1];

  endpoint.set_verification_key(key->verification_key());
  request.set_function("echo");
  *request.mutable_input() = protocol::pack_int64(1);
  EXPECT_EQ(run(request), 403) << "an unsigned request is refused";
  EXPECT_EQ(endpoint.rejected_signatures(), 1);
}

// ---------------------------------------------------------------------------
// kill -9

// Keeps dispatching batches of calls, retrying a batch until the server
// acknowledges it (through a kill and a restart), and remembers what each
// acknowledged call should return.
class Dispatcher {
 public:
  Dispatcher(std::string server_url, std::string endpoint_url, const TestEndpoint& endpoint)
      : client_(std::move(server_url), "k"),
        endpoint_url_(std::move(endpoint_url)),
        endpoint_(endpoint),
        thread_([this] { run(); }) {}
  ~Dispatcher() {
    if (thread_.joinable()) thread_.join();
  }

  static constexpr int kBatches = 20;
  static constexpr int kBatchSize = 5;

  bool wait_for_acknowledged(std::size_t n, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return expected_.size() >= n || done_; });
  }
  void join() { thread_.join(); }
  std::map<std::string, std::int64_t> acknowledged() {
    std::lock_guard lock(mutex_);
    return expected_;
  }
  std::string error() {
    std::lock_guard lock(mutex_);
    return error_;
  }

 private:
  void run() {
    for (int b = 0; b < kBatches; ++b) {
      // Pace the batches with the endpoint's progress, so that the kill falls
      // among dispatches as well as among attempts.
      endpoint_.wait_for_requests(static_cast<std::size_t>(4 * b), 5s);
      std::vector<pb::Call> calls;
      std::vector<std::int64_t> outputs;
      for (int i = 0; i < kBatchSize; ++i) {
        int n = b * kBatchSize + i;
        if (n % 5 == 0) {
          calls.push_back(
              make_call(endpoint_url_, "fanout", json_input({{"k", 10}, {"min", 2}, {"max", 4}})));
          outputs.push_back(55);
        } else {
          calls.push_back(make_call(endpoint_url_, "fail_then_ok", protocol::pack_int64(n % 3)));
          outputs.push_back(n % 3);
        }
      }
      auto deadline = Steady::now() + 30s;
      while (true) {
        auto ids = client_.dispatch(calls);
        if (ids.is_ok() && ids->size() == calls.size()) {
          std::lock_guard lock(mutex_);
          for (std::size_t i = 0; i < ids->size(); ++i) expected_[(*ids)[i]] = outputs[i];
          break;
        }
        if (Steady::now() >= deadline) {
          std::lock_guard lock(mutex_);
          error_ = "batch " + std::to_string(b) + " never acknowledged: " + ids.status().message();
          break;
        }
        std::this_thread::sleep_for(20ms);  // the server is down: poll until it is back
      }
      changed_.notify_all();
    }
    std::lock_guard lock(mutex_);
    done_ = true;
    changed_.notify_all();
  }

  ApiClient client_;
  std::string endpoint_url_;
  const TestEndpoint& endpoint_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::map<std::string, std::int64_t> expected_;
  std::string error_;
  bool done_ = false;
  std::thread thread_;
};

TEST_F(ServerE2E, KillNineWhileCallsAreInFlightLosesNothingAndDeliversOnce) {
  // A slow endpoint, so that many attempts are in flight at the kill.
  auto key = protocol::VerificationKey::parse(public_key_);
  ASSERT_TRUE(key.is_ok());
  testing::EndpointOptions options;
  options.verification_key = *key;
  options.min_delay = 100ms;
  options.max_delay = 300ms;
  TestEndpoint slow(options);
  ServerProcess server(ServerSettings{
      dir_.file("crash"), "k", dir_.file("signing.pem"), {"--request-timeout", "2s"}});
  std::filesystem::create_directories(dir_.file("crash"));
  Status started = server.start();
  ASSERT_TRUE(started.is_ok()) << started.message();

  std::map<std::string, std::int64_t> before_kill;
  {
    Dispatcher dispatcher(server.url(), slow.url(), slow);
    ASSERT_TRUE(dispatcher.wait_for_acknowledged(50, 30s)) << dispatcher.error();
    std::size_t requests_at_kill = slow.request_count();
    int status = server.kill(SIGKILL);
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "wait status " << status;
    before_kill = dispatcher.acknowledged();
    EXPECT_GE(before_kill.size(), 50u);
    EXPECT_GT(requests_at_kill, 0u);
    started = server.start();
    ASSERT_TRUE(started.is_ok()) << started.message();
    dispatcher.join();
    ASSERT_EQ(dispatcher.error(), "");
    auto all = dispatcher.acknowledged();
    EXPECT_EQ(all.size(), static_cast<std::size_t>(Dispatcher::kBatches * Dispatcher::kBatchSize));

    ApiClient client(server.url(), "k");
    auto deadline = Steady::now() + 45s;
    int completed = 0;
    for (const auto& [id, output] : all) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Steady::now());
      auto result = client.await_result(id, std::max(left, 1ms));
      ASSERT_TRUE(result.is_ok()) << "call " << id << ": " << result.status().message()
                                  << (before_kill.count(id) ? " (acknowledged before the kill)"
                                                            : "");
      EXPECT_FALSE(result->has_error()) << id << ": " << result->error().message();
      EXPECT_EQ(int64_of(result->output()), output) << id;
      ++completed;
    }
    EXPECT_EQ(completed, static_cast<int>(all.size()));
  }
  // At-most-once delivery per coroutine state is checked by the endpoint.
  for (const auto& violation : slow.violations()) {
    ADD_FAILURE() << "protocol violation seen by the slow endpoint: " << violation;
  }
  if (HasFailure()) std::cerr << server.logs();
}

// ---------------------------------------------------------------------------
// What dispatch-py needs of a server (issue 9): every message handed on as it
// came, a call sent only once its caller has its id, errors in the protocol's
// shape.

// A raw HTTP/1.1 client on the server's API, for what http::Client hides: when
// the answer is in the socket, and a body sent whole before the answer is read.
class RawApiConnection {
 public:
  explicit RawApiConnection(std::uint16_t port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    timeval tv{15, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~RawApiConnection() { close(fd_); }
  int fd() const { return fd_; }

  // Sends a whole POST (no Expect: 100-continue, as urllib and aiohttp).
  bool post(std::string_view path, const std::string& body) {
    std::string request = "POST " + std::string(path) +
                          " HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer k\r\n"
                          "Content-Type: application/proto\r\nContent-Length: " +
                          std::to_string(body.size()) + "\r\n\r\n" + body;
    std::size_t sent = 0;
    while (connected_ && sent < request.size()) {
      ssize_t n = send(fd_, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += static_cast<std::size_t>(n);
    }
    return connected_;
  }
  // Whether bytes of the answer are waiting to be read, without reading them.
  bool answer_waiting() const {
    char byte;
    return recv(fd_, &byte, 1, MSG_PEEK | MSG_DONTWAIT) == 1;
  }
  // The answer's head and body (its Content-Length), "" on failure.
  std::string read_answer() {
    std::string out;
    char c;
    while (out.find("\r\n\r\n") == std::string::npos) {
      if (recv(fd_, &c, 1, 0) != 1) return out;
      out.push_back(c);
    }
    std::smatch length;
    static const std::regex kLength("[Cc]ontent-[Ll]ength: ([0-9]+)");
    std::size_t size = std::regex_search(out, length, kLength) ? std::stoul(length[1]) : 0;
    std::string body(size, '\0');
    for (std::size_t got = 0; got < size;) {
      ssize_t n = recv(fd_, body.data() + got, size - got, 0);
      if (n <= 0) return out;
      got += static_cast<std::size_t>(n);
    }
    return out + body;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

TEST_F(ServerE2E, AnEndpointsErrorReachesWaitAndTheParentWithEveryField) {
  // dispatch-py raises Error.value, the pickled exception, in the awaiting
  // parent: without it `except ValueError` never matches.
  std::string failed = dispatch("python_error", protocol::pack_null());
  pb::CallResult direct = result_of(failed);
  EXPECT_EQ(direct.error().SerializeAsString(), testing::python_error_bytes())
      << "Wait's CallResult carries the Error byte for byte, unknown field included";

  std::string parent = dispatch("relay_error", protocol::pack_null());
  pb::CallResult relayed = result_of(parent);
  ASSERT_FALSE(relayed.has_error()) << relayed.error().message();
  google::protobuf::BytesValue seen;
  ASSERT_TRUE(relayed.output().UnpackTo(&seen));
  EXPECT_EQ(seen.value(), testing::python_error_bytes())
      << "the parent's PollResult carried the child's Error byte for byte";

  json shown = call_status(failed);
  EXPECT_EQ(shown["error"].value("type", ""), "ValueError") << shown.dump();
  EXPECT_EQ(shown["error"].value("message", ""), "something went wrong!") << shown.dump();
}

TEST_F(ServerE2E, ADispatchedCallIsSentOnlyAfterItsAnswerIsInTheSocketAndTheGrace) {
  auto server = another_server("graceful", dir_.file("signing.pem"),
                               {"--dispatch-grace", "300ms", "--request-timeout", "3s"});
  ASSERT_TRUE(server->running());
  RawApiConnection client(server->port());
  std::atomic<int> answered_first{-1};  // at the RunRequest: was the answer readable?
  testing::EndpointOptions options;
  options.verification_key = protocol::VerificationKey::parse(public_key_).value();
  options.on_request = [&](const RecordedRequest&) {
    answered_first = client.answer_waiting() ? 1 : 0;
  };
  TestEndpoint endpoint(options);
  pb::DispatchRequest request;
  *request.add_calls() = make_call(endpoint.url(), "echo", protocol::pack_int64(1));
  auto sent = Steady::now();
  ASSERT_TRUE(client.post(protocol::kDispatchPath, request.SerializeAsString()));
  ASSERT_TRUE(endpoint.wait_for_requests(1, 20s)) << server->logs();
  auto arrived = Steady::now();
  EXPECT_EQ(answered_first.load(), 1) << "the RunRequest came before the Dispatch's answer";
  EXPECT_GE(arrived - sent, 300ms) << "the RunRequest came before the grace ended";
  std::string answer = client.read_answer();
  EXPECT_NE(answer.find("200 OK"), std::string::npos) << answer;
  pb::DispatchResponse ids;
  ASSERT_TRUE(ids.ParseFromString(answer.substr(answer.find("\r\n\r\n") + 4)));
  ASSERT_EQ(ids.dispatch_ids_size(), 1);
  EXPECT_EQ(endpoint.requests()[0].dispatch_id, ids.dispatch_ids(0));
}

TEST_F(ServerE2E, AClientsNextRequestOnTheConnectionLetsItsCallsGoWithoutTheGrace) {
  // The client's next request (here Wait, on the same kept-alive connection, as
  // Ratchet's SDK asks) shows it has read the ids: no need to wait a grace of 60 s.
  auto server = another_server("prompt", dir_.file("signing.pem"),
                               {"--dispatch-grace", "60s", "--request-timeout", "3s"});
  ApiClient client(server->url(), "k");
  auto id = client.dispatch_one(make_call(endpoint_->url(), "echo", protocol::pack_int64(7)));
  ASSERT_TRUE(id.is_ok()) << id.status().message();
  auto result = client.await_result(*id, 20s);
  ASSERT_TRUE(result.is_ok()) << result.status().message() << server->logs();
  EXPECT_EQ(int64_of(result->output()), 7);
}

TEST_F(ServerE2E, AnOversizedDispatchGetsTheProtocolsErrorAfterTheWholeBody) {
  RawApiConnection client(server_->port());
  // 16,000,001 bytes, sent whole before the answer is read, as urllib and
  // aiohttp do: a server that stops reading resets the connection instead.
  ASSERT_TRUE(
      client.post(protocol::kDispatchPath, std::string(protocol::kMaxRequestBodyBytes + 1, '\0')))
      << "the server stopped reading the body: " << std::strerror(errno);
  std::string answer = client.read_answer();
  EXPECT_NE(answer.find("HTTP/1.1 400"), std::string::npos) << answer.substr(0, 300);
  EXPECT_NE(answer.find("application/json"), std::string::npos) << answer.substr(0, 300);
  auto error = json::parse(answer.substr(answer.find("\r\n\r\n") + 4), nullptr, false);
  EXPECT_EQ(error.value("code", ""), "invalid_argument") << answer;
  EXPECT_NE(error.value("message", "").find("16000000"), std::string::npos) << answer;
  EXPECT_EQ(count_calls(), 0);
}

TEST_F(ServerE2E, RunRequestsCarryTheCallsEffectiveExpiration) {
  constexpr std::int64_t kNever = 253402300799LL * 1'000'000;  // 9999-12-31T23:59:59Z
  std::string plain = dispatch("echo", protocol::pack_int64(1));
  auto bounded_call = make_call(endpoint_->url(), "echo", protocol::pack_int64(2));
  bounded_call.mutable_expiration()->set_seconds(60);
  Micros before = SystemClock::instance().now();
  auto bounded = client_->dispatch_one(bounded_call);
  ASSERT_TRUE(bounded.is_ok()) << bounded.status().message();
  result_of(plain);
  result_of(*bounded);
  EXPECT_EQ(endpoint_->requests_for(plain).at(0).expiration_time_us, kNever)
      << "no expiration: the largest Timestamp, not 1970";
  std::int64_t expiration = endpoint_->requests_for(*bounded).at(0).expiration_time_us;
  EXPECT_GE(expiration, before + 60 * kMicrosPerSecond);
  EXPECT_LE(expiration, SystemClock::instance().now() + 60 * kMicrosPerSecond);

  // A server's default applies to dispatched calls and to a Poll's children.
  auto server = another_server("expiring", dir_.file("signing.pem"),
                               {"--default-expiration", "90s", "--request-timeout", "3s"});
  ApiClient client(server->url(), "k");
  before = SystemClock::instance().now();
  auto root =
      client.dispatch_one(make_call(endpoint_->url(), "child_fails", protocol::pack_null()));
  ASSERT_TRUE(root.is_ok()) << root.status().message();
  ASSERT_TRUE(client.await_result(*root).is_ok());
  Micros after = SystemClock::instance().now();
  auto children = endpoint_->requests_with_parent(*root);
  ASSERT_EQ(children.size(), 1u);
  for (const auto& r : {endpoint_->requests_for(*root).at(0), children[0]}) {
    SCOPED_TRACE(r.function);
    EXPECT_GE(r.expiration_time_us, before + 90 * kMicrosPerSecond);
    EXPECT_LE(r.expiration_time_us, after + 90 * kMicrosPerSecond);
  }
}

TEST_F(ServerE2E, AnEndpointsErrorTextKeepsItsLinesAndSaysHttp500Once) {
  std::string id = dispatch("text500", protocol::pack_null());
  pb::CallResult result = result_of(id);
  ASSERT_TRUE(result.has_error());
  std::string expected =
      "the endpoint answered HTTP 500: " + std::string(testing::kText500Relayed) +
      " (gave up after 5 attempts)";
  EXPECT_EQ(result.error().message(), expected);
  EXPECT_EQ(call_status(id)["error"].value("message", ""), expected);
}

}  // namespace
}  // namespace ratchet
