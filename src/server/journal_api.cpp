#include "server/journal_api.hpp"

#include "dispatch/sdk/v1/poll.pb.h"
#include "protocol/connect.hpp"
#include "ratchet/v1/journal_service.pb.h"
#include "server/api.hpp"

namespace ratchet::server {
namespace {

namespace rv1 = ::ratchet::v1;

// The functions a ListOpenRequest names, each a valid function name.
Result<std::vector<std::string>> requested_functions(const rv1::ListOpenRequest& request) {
  int least = request.endpoint().empty() ? 1 : 0;
  if (request.functions_size() < least || request.functions_size() > kListOpenLimit) {
    return invalid_argument("ListOpen takes 1 to " + std::to_string(kListOpenLimit) +
                            " function names (0 with an endpoint)");
  }
  if (request.endpoint().size() > 4096) {
    return invalid_argument("ListOpen: the endpoint is longer than 4096 bytes");
  }
  std::vector<std::string> functions;
  for (const auto& function : request.functions()) {
    if (function.size() > 256 || !protocol::is_valid_function_name(function)) {
      return invalid_argument(
          "ListOpen: a function name must match ^[a-zA-Z_][a-zA-Z0-9_<>.]*$ "
          "(at most 256 bytes)");
    }
    functions.push_back(function);
  }
  return functions;
}

void fill(rv1::OpenCoroutine& out, OpenCoroutine& open) {
  out.set_dispatch_id(open.id);
  out.set_function(open.function);
  out.set_phase(std::string(phase_name(open.phase)));
  out.set_endpoint(open.endpoint);
  if (open.member == dispatch::sdk::v1::Poll::kTypedCoroutineStateFieldNumber) {
    if (!out.mutable_typed_state()->ParseFromString(open.state)) out.clear_typed_state();
  } else {
    out.set_opaque_state(std::move(open.state));
  }
}

}  // namespace

Result<std::string> list_open(Store& store, std::string_view body) {
  rv1::ListOpenRequest request;
  if (!request.ParseFromArray(body.data(), static_cast<int>(body.size()))) {
    return invalid_argument("the body is not a ratchet.v1.ListOpenRequest");
  }
  ASSIGN_OR_RETURN(auto functions, requested_functions(request));
  int limit = request.limit() == 0 || request.limit() > kListOpenLimit
                  ? kListOpenLimit
                  : static_cast<int>(request.limit());
  ASSIGN_OR_RETURN(
      auto open, store.open_coroutines(functions, request.endpoint(), request.after(), limit + 1));
  rv1::ListOpenResponse response;
  response.set_truncated(static_cast<int>(open.size()) > limit);
  if (response.truncated()) open.resize(static_cast<std::size_t>(limit));
  for (auto& coroutine : open) fill(*response.add_coroutines(), coroutine);
  return response.SerializeAsString();
}

JournalApi::JournalApi(std::string db_path, StoreOptions options, const Clock& clock)
    : workers_(std::move(db_path), std::move(options), clock, 1, 64, "ratchet-journal") {}

void JournalApi::handle(const http::Request& request, http::Responder responder) {
  bool queued = workers_.post([responder, body = request.body](Result<Store*> store) {
    if (!store.is_ok()) {
      responder.send(connect_error(store.status()));
      return;
    }
    auto answer = list_open(**store, body);
    if (!answer.is_ok()) {
      responder.send(connect_error(answer.status()));
      return;
    }
    responder.send(http::Response::with_body(200, std::string(protocol::kProtoContentType),
                                             std::move(answer).value()));
  });
  if (!queued) {
    responder.send(connect_error(
        Status(Code::kUnavailable, "too many ListOpen requests are waiting; try again")));
  }
}

}  // namespace ratchet::server
