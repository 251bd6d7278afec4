// A client of the server's API for end-to-end tests: Dispatch (a binary
// DispatchRequest, `Authorization: Bearer <key>`) and Ratchet's Wait (the raw
// dispatch id; answers the call's CallResult) over http::Client.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "common/status.hpp"
#include "dispatch/sdk/v1/dispatch.pb.h"
#include "http/client.hpp"

namespace ratchet::testing {

class ApiClient {
 public:
  ApiClient(std::string base_url, std::string api_key);

  // POSTs `body` to `path` with `authorization` as the Authorization header
  // (nullopt: none) and the Content-Type given; the raw response.
  Result<http::Response> post(std::string_view path, std::string body,
                              std::optional<std::string> authorization,
                              std::string content_type = "application/proto",
                              std::chrono::milliseconds timeout = std::chrono::seconds(10));

  // The ids Dispatch answered, or the API's error as a Status (its Connect code).
  Result<std::vector<std::string>> dispatch(const std::vector<dispatch::sdk::v1::Call>& calls);
  Result<std::string> dispatch_one(const dispatch::sdk::v1::Call& call);

  // One Wait: the CallResult, kDeadlineExceeded when the call has no result
  // within `timeout`, or another error of the API.
  Result<dispatch::sdk::v1::CallResult> wait(const std::string& id,
                                             std::chrono::milliseconds timeout);
  // Waits again and again until the call has a result or `timeout` passed.
  Result<dispatch::sdk::v1::CallResult> await_result(
      const std::string& id, std::chrono::milliseconds timeout = std::chrono::seconds(30));

  void set_base_url(std::string base_url);

 private:
  std::string base_url_;
  std::string api_key_;
  http::Client client_;
};

// The Status an API error response stands for (code from its Connect body).
Status status_of_error_response(const http::Response& response);

// A Call to `function` at `endpoint` with `input`.
dispatch::sdk::v1::Call make_call(const std::string& endpoint, const std::string& function,
                                  const google::protobuf::Any& input,
                                  const std::string& run_key = "");

}  // namespace ratchet::testing
