// The generated messages keep the field numbers and types of PROTOCOL.md: other SDKs
// depend on them byte for byte.
#include <google/protobuf/wrappers.pb.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "dispatch/sdk/python/v1/pickled.pb.h"
#include "dispatch/sdk/v1/dispatch.pb.h"
#include "dispatch/sdk/v1/function.pb.h"

namespace {

namespace v1 = dispatch::sdk::v1;
namespace pb = google::protobuf;

struct FieldSpec {
  std::string name;
  int number;
  std::string type;  // scalar type name, or the message/enum full name
  bool repeated = false;
  std::string oneof = "";
};

std::string type_of(const pb::FieldDescriptor* field) {
  if (field->message_type()) return field->message_type()->full_name();
  if (field->enum_type()) return field->enum_type()->full_name();
  return field->type_name();
}

void expect_fields(const pb::Descriptor* message, const std::vector<FieldSpec>& fields) {
  EXPECT_EQ(message->field_count(), static_cast<int>(fields.size())) << message->full_name();
  for (const FieldSpec& spec : fields) {
    const pb::FieldDescriptor* field = message->FindFieldByName(spec.name);
    ASSERT_NE(field, nullptr) << message->full_name() << "." << spec.name;
    EXPECT_EQ(field->number(), spec.number) << field->full_name();
    EXPECT_EQ(type_of(field), spec.type) << field->full_name();
    EXPECT_EQ(field->is_repeated(), spec.repeated) << field->full_name();
    const pb::OneofDescriptor* oneof = field->real_containing_oneof();
    EXPECT_EQ(oneof ? oneof->name() : "", spec.oneof) << field->full_name();
  }
}

TEST(Messages, HaveTheProtocolsFieldNumbersAndTypes) {
  expect_fields(v1::Call::descriptor(), {{"correlation_id", 1, "uint64"},
                                         {"endpoint", 2, "string"},
                                         {"function", 3, "string"},
                                         {"input", 4, "google.protobuf.Any"},
                                         {"expiration", 5, "google.protobuf.Duration"},
                                         {"version", 6, "string"},
                                         // Ratchet's extensions (docs/server.md):
                                         {"run_key", 100, "string"},
                                         {"run_key_scope", 101, "dispatch.sdk.v1.Call.RunKeyScope"},
                                         {"max_attempts", 102, "uint32"}});
  expect_fields(v1::CallResult::descriptor(), {{"correlation_id", 1, "uint64"},
                                               {"output", 2, "google.protobuf.Any"},
                                               {"error", 3, "dispatch.sdk.v1.Error"},
                                               {"dispatch_id", 4, "string"}});
  expect_fields(v1::Error::descriptor(), {{"type", 1, "string"},
                                          {"message", 2, "string"},
                                          {"value", 3, "bytes"},
                                          {"traceback", 4, "bytes"}});
  expect_fields(v1::Exit::descriptor(), {{"result", 1, "dispatch.sdk.v1.CallResult"},
                                         {"tail_call", 2, "dispatch.sdk.v1.Call"},
                                         {"hold", 100, "bool"}});
  expect_fields(v1::Poll::descriptor(),
                {{"coroutine_state", 1, "bytes", false, "state"},
                 {"typed_coroutine_state", 6, "google.protobuf.Any", false, "state"},
                 {"calls", 2, "dispatch.sdk.v1.Call", true},
                 {"max_wait", 3, "google.protobuf.Duration"},
                 {"max_results", 4, "int32"},
                 {"min_results", 5, "int32"}});
  expect_fields(v1::PollResult::descriptor(),
                {{"coroutine_state", 1, "bytes", false, "state"},
                 {"typed_coroutine_state", 4, "google.protobuf.Any", false, "state"},
                 {"results", 2, "dispatch.sdk.v1.CallResult", true},
                 {"error", 3, "dispatch.sdk.v1.Error"},
                 {"arrival_order", 100, "bool"},  // Ratchet's extensions
                 {"journal_deltas", 101, "bool"}});
  expect_fields(v1::RunRequest::descriptor(),
                {{"function", 1, "string"},
                 {"input", 2, "google.protobuf.Any", false, "directive"},
                 {"poll_result", 3, "dispatch.sdk.v1.PollResult", false, "directive"},
                 {"dispatch_id", 4, "string"},
                 {"parent_dispatch_id", 5, "string"},
                 {"root_dispatch_id", 6, "string"},
                 {"creation_time", 7, "google.protobuf.Timestamp"},
                 {"expiration_time", 8, "google.protobuf.Timestamp"},
                 {"attempt", 100, "uint32"}});  // Ratchet's extension
  expect_fields(v1::RunResponse::descriptor(),
                {{"status", 1, "dispatch.sdk.v1.Status"},
                 {"exit", 2, "dispatch.sdk.v1.Exit", false, "directive"},
                 {"poll", 3, "dispatch.sdk.v1.Poll", false, "directive"}});
  expect_fields(v1::DispatchRequest::descriptor(), {{"calls", 1, "dispatch.sdk.v1.Call", true}});
  expect_fields(
      v1::DispatchResponse::descriptor(),
      {{"dispatch_ids", 1, "string", true}, {"run_keys", 100, "bool"}});  // Ratchet's extension
  expect_fields(dispatch::sdk::python::v1::Pickled::descriptor(), {{"pickled_value", 1, "bytes"}});
}

TEST(Messages, DeclareTheServices) {
  const pb::ServiceDescriptor* dispatch = v1::DispatchRequest::descriptor()->file()->service(0);
  ASSERT_NE(dispatch, nullptr);
  EXPECT_EQ(dispatch->full_name(), "dispatch.sdk.v1.DispatchService");
  EXPECT_NE(dispatch->FindMethodByName("Dispatch"), nullptr);
  const pb::ServiceDescriptor* function = v1::RunRequest::descriptor()->file()->service(0);
  ASSERT_NE(function, nullptr);
  EXPECT_EQ(function->full_name(), "dispatch.sdk.v1.FunctionService");
  EXPECT_NE(function->FindMethodByName("Run"), nullptr);
}

TEST(Messages, ParseTheRunRequestOfTheSigningTestVector) {
  const std::string hex =
      "0a056772656574123a0a2f747970652e676f6f676c65617069732e636f6d2f676f6f676c652e70726f746f62"
      "75662e537472696e6756616c756512070a05576f726c64220131320131";
  std::string bytes;
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    bytes += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  }
  v1::RunRequest request;
  ASSERT_TRUE(request.ParseFromString(bytes));
  EXPECT_EQ(request.function(), "greet");
  ASSERT_EQ(request.directive_case(), v1::RunRequest::kInput);
  pb::StringValue input;
  ASSERT_TRUE(request.input().UnpackTo(&input));
  EXPECT_EQ(input.value(), "World");
  EXPECT_EQ(request.dispatch_id(), "1");
  EXPECT_EQ(request.root_dispatch_id(), "1");
  EXPECT_EQ(request.SerializeAsString(), bytes);
}

}  // namespace
