// Helpers for the SDK's tests: hand-built RunRequests driven through
// Dispatch::handle, as the server would send them.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "dispatch/sdk/v1/function.pb.h"
#include "protocol/connect.hpp"
#include "protocol/values.hpp"
#include "ratchet/ratchet.hpp"

namespace ratchet::testing {

namespace pb = ::dispatch::sdk::v1;

// A Dispatch that ignores the environment: no verification key, no trace.
inline Options test_options() {
  Options options;
  options.api_key = "k";
  options.api_url = "http://127.0.0.1:1";
  options.endpoint_url = "http://127.0.0.1:8000";
  options.endpoint_addr = "127.0.0.1:0";
  options.verification_key = "";
  options.trace = false;
  return options;
}

inline google::protobuf::Any packed(const nlohmann::json& value) {
  return protocol::pack_json(value).value();
}

inline nlohmann::json unpacked(const google::protobuf::Any& any) {
  return protocol::unpack_to_json(any).value();
}

inline Request http_request(const pb::RunRequest& run) {
  Request request;
  request.method = "POST";
  request.path = std::string(protocol::kRunPath);
  request.headers = {{"Host", "127.0.0.1:8000"}, {"Content-Type", "application/proto"}};
  request.body = run.SerializeAsString();
  return request;
}

inline pb::RunResponse run(Dispatch& dispatch, const pb::RunRequest& run) {
  Response response = dispatch.handle(http_request(run));
  EXPECT_EQ(response.status, 200) << response.body;
  pb::RunResponse answer;
  EXPECT_TRUE(answer.ParseFromString(response.body));
  return answer;
}

// The first run of `function` with `input`.
inline pb::RunRequest first_run(const std::string& function, const nlohmann::json& input,
                                const std::string& dispatch_id = "d1") {
  pb::RunRequest run;
  run.set_function(function);
  *run.mutable_input() = packed(input);
  run.set_dispatch_id(dispatch_id);
  run.set_root_dispatch_id(dispatch_id);
  return run;
}

// The resume of a coroutine that answered `poll`, with results for some of
// its calls, in the order they arrived (as Ratchet sends them; `ordered` false:
// as a server that ignores min_results does).
inline pb::RunRequest resume(const std::string& function, const pb::Poll& poll,
                             const std::vector<pb::CallResult>& results,
                             const std::string& dispatch_id = "d1", bool ordered = true) {
  pb::RunRequest run;
  run.set_function(function);
  run.set_dispatch_id(dispatch_id);
  run.set_root_dispatch_id(dispatch_id);
  auto* poll_result = run.mutable_poll_result();
  poll_result->set_arrival_order(ordered);
  *poll_result->mutable_typed_coroutine_state() = poll.typed_coroutine_state();
  for (const auto& result : results) *poll_result->add_results() = result;
  return run;
}

inline pb::CallResult ok_result(std::uint64_t correlation_id, const nlohmann::json& output) {
  pb::CallResult result;
  result.set_correlation_id(correlation_id);
  *result.mutable_output() = packed(output);
  result.set_dispatch_id("child" + std::to_string(correlation_id));
  return result;
}

inline pb::CallResult error_result(std::uint64_t correlation_id, const std::string& type,
                                   const std::string& message) {
  pb::CallResult result;
  result.set_correlation_id(correlation_id);
  result.mutable_error()->set_type(type);
  result.mutable_error()->set_message(message);
  return result;
}

}  // namespace ratchet::testing
