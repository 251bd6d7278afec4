#include "support/api_client.hpp"

#include <algorithm>

#include "protocol/connect.hpp"

namespace ratchet::testing {

namespace pb = dispatch::sdk::v1;
using Steady = std::chrono::steady_clock;

ApiClient::ApiClient(std::string base_url, std::string api_key)
    : base_url_(std::move(base_url)), api_key_(std::move(api_key)) {}

void ApiClient::set_base_url(std::string base_url) { base_url_ = std::move(base_url); }

Result<http::Response> ApiClient::post(std::string_view path, std::string body,
                                       std::optional<std::string> authorization,
                                       std::string content_type,
                                       std::chrono::milliseconds timeout) {
  http::Request request;
  request.method = "POST";
  request.target = base_url_ + std::string(path);
  request.headers.add("Content-Type", std::move(content_type));
  request.headers.add("Connect-Protocol-Version", "1");
  if (authorization) request.headers.add("Authorization", *authorization);
  request.body = std::move(body);
  http::RequestOptions options;
  options.timeout = timeout;
  return client_.send_sync(std::move(request), options);
}

Status status_of_error_response(const http::Response& response) {
  auto error = protocol::connect_error_from_response(response.status, response.body);
  return Status(protocol::code_for(error.code),
                "HTTP " + std::to_string(response.status) + ": " + error.message);
}

Result<std::vector<std::string>> ApiClient::dispatch(const std::vector<pb::Call>& calls) {
  pb::DispatchRequest request;
  for (const auto& call : calls) *request.add_calls() = call;
  ASSIGN_OR_RETURN(
      http::Response response,
      post(protocol::kDispatchPath, request.SerializeAsString(), "Bearer " + api_key_));
  if (response.status != 200) return status_of_error_response(response);
  pb::DispatchResponse answer;
  if (!answer.ParseFromString(response.body)) {
    return internal_error("Dispatch answered 200 with a body that is not a DispatchResponse");
  }
  return std::vector<std::string>(answer.dispatch_ids().begin(), answer.dispatch_ids().end());
}

Result<std::string> ApiClient::dispatch_one(const pb::Call& call) {
  ASSIGN_OR_RETURN(auto ids, dispatch({call}));
  if (ids.size() != 1)
    return internal_error("Dispatch answered " + std::to_string(ids.size()) + " ids for 1 call");
  return ids[0];
}

Result<pb::CallResult> ApiClient::wait(const std::string& id, std::chrono::milliseconds timeout) {
  http::Request request;
  request.method = "POST";
  request.target = base_url_ + std::string(protocol::kWaitPath);
  request.headers.add("Content-Type", "application/proto");
  request.headers.add("Authorization", "Bearer " + api_key_);
  request.headers.add(std::string(protocol::kConnectTimeoutHeader),
                      std::to_string(timeout.count()));
  request.body = id;
  http::RequestOptions options;
  options.timeout = timeout + std::chrono::seconds(10);
  ASSIGN_OR_RETURN(http::Response response, client_.send_sync(std::move(request), options));
  if (response.status != 200) return status_of_error_response(response);
  pb::CallResult result;
  if (!result.ParseFromString(response.body)) {
    return internal_error("Wait answered 200 with a body that is not a CallResult");
  }
  return result;
}

Result<pb::CallResult> ApiClient::await_result(const std::string& id,
                                               std::chrono::milliseconds timeout) {
  auto deadline = Steady::now() + timeout;
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Steady::now());
    if (left.count() <= 0) {
      return Status(Code::kDeadlineExceeded, "call " + id + " has no result after " +
                                                 std::to_string(timeout.count()) + " ms");
    }
    auto result = wait(id, std::min(left, std::chrono::milliseconds(10'000)));
    if (result.is_ok() || result.status().code() != Code::kDeadlineExceeded) return result;
  }
}

pb::Call make_call(const std::string& endpoint, const std::string& function,
                   const google::protobuf::Any& input, const std::string& run_key) {
  pb::Call call;
  call.set_endpoint(endpoint);
  call.set_function(function);
  *call.mutable_input() = input;
  if (!run_key.empty()) call.set_run_key(run_key);
  return call;
}

}  // namespace ratchet::testing
