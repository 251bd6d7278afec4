// dashboard_fixture SERVER_URL API_KEY
//
// The calls the dashboard's browser test (dashboard.test.mjs) looks at, made
// on demand: it serves the test endpoint (tests/server/test_endpoint.hpp) and
// reads one command per line on stdin, answering one JSON line on stdout.
//
//   fanout N   a coroutine over N echo children; answers once it finished
//   fail       a call that fails PERMANENT_ERROR (ValueError); once failed
//   echo       a call that succeeds; once done
//   gated      a call held RUNNING by the endpoint; once the endpoint has it
//   open       lets the gated calls finish
//   hangtree N a coroutine over N children that never answer; once the
//              endpoint has them all (the tree runs until it is cancelled)
//   backoff    a call whose first attempt fails TEMPORARY_ERROR (the next
//              waits out the server's backoff); once the endpoint has it
//
// Answers {"id": "<dispatch id>"} or {"ok": true}, or {"error": "..."}. Ends
// at the end of stdin.
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "protocol/values.hpp"
#include "support/api_client.hpp"
#include "test_endpoint.hpp"

namespace {

using ratchet::testing::ApiClient;
using ratchet::testing::TestEndpoint;

void answer(const nlohmann::json& line) {
  std::printf("%s\n", line.dump().c_str());
  std::fflush(stdout);
}

// Dispatches one call; with `await`, returns once it has a result.
nlohmann::json run(ApiClient& client, TestEndpoint& endpoint, const std::string& function,
                   const google::protobuf::Any& input, bool await) {
  auto id = client.dispatch_one(ratchet::testing::make_call(endpoint.url(), function, input));
  if (!id.is_ok()) return {{"error", id.status().message()}};
  if (await) {
    auto result = client.await_result(*id, std::chrono::seconds(60));
    if (!result.is_ok()) return {{"error", result.status().message()}};
  }
  return {{"id", *id}};
}

// Dispatches one call; returns once the endpoint received `requests` more.
nlohmann::json run_until_received(ApiClient& client, TestEndpoint& endpoint,
                                  const std::string& function, const google::protobuf::Any& input,
                                  std::size_t requests) {
  std::size_t before = endpoint.request_count();
  nlohmann::json id = run(client, endpoint, function, input, false);
  if (!endpoint.wait_for_requests(before + requests, std::chrono::seconds(30))) {
    id = {{"error", "the endpoint never received the requests of " + function}};
  }
  return id;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: dashboard_fixture SERVER_URL API_KEY\n");
    return 2;
  }
  TestEndpoint endpoint;
  ApiClient client(argv[1], argv[2]);
  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream words(line);
    std::string command;
    words >> command;
    if (command == "fanout") {
      int n = 0;
      words >> n;
      auto spec = ratchet::protocol::pack_json({{"k", n}, {"child", "echo"}});
      answer(run(client, endpoint, "fanout", *spec, true));
    } else if (command == "fail") {
      answer(run(client, endpoint, "permanent", ratchet::protocol::pack_string("order-42"), true));
    } else if (command == "echo") {
      answer(run(client, endpoint, "echo", ratchet::protocol::pack_int64(7), true));
    } else if (command == "gated") {
      answer(run_until_received(client, endpoint, "gated", ratchet::protocol::pack_int64(1), 1));
    } else if (command == "hangtree") {
      int n = 0;
      words >> n;
      auto spec = ratchet::protocol::pack_json({{"k", n}, {"child", "hang"}});
      answer(run_until_received(client, endpoint, "fanout", *spec, n + 1));
    } else if (command == "backoff") {
      answer(run_until_received(client, endpoint, "fail_then_ok", ratchet::protocol::pack_int64(1),
                                1));
    } else if (command == "open") {
      endpoint.open_gate();
      answer({{"ok", true}});
    } else {
      answer({{"error", "unknown command: " + line}});
    }
  }
  return 0;
}
