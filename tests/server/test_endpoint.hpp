// A Dispatch endpoint for end-to-end tests of `ratchet server`: it serves
// POST /dispatch.sdk.v1.FunctionService/Run and answers every RunResponse shape
// the protocol has (PROTOCOL.md, "The life of a call"), chosen by the function
// name of the RunRequest:
//
//   echo          Exit OK, output = input
//   slow          like echo, after <input Int64Value> milliseconds
//   fail_then_ok  TEMPORARY_ERROR the first N times per dispatch id (N: input
//                 Int64Value), then OK with the input as output
//   throttle      HTTP 429 the first N times (N: input), then like echo
//   http500       HTTP 500 the first N times (N: input), then like echo
//   permanent     PERMANENT_ERROR, Error{type "ValueError", message quoting the input,
//                 and a Python-like traceback}
//   hang          never answers (until the endpoint stops)
//   gated         like echo, but only once open_gate() was called (it holds
//                 the answers until then)
//   garbage       200 application/proto whose body is not protobuf
//   wrong_type    200 text/plain
//   tail          Exit.tail_call to `echo` with the same input, status
//                 TEMPORARY_ERROR and no result (as the Python SDK does)
//   incompatible  polls one `echo` child; the first resume answers
//                 INCOMPATIBLE_STATE; once restarted from its input, its next
//                 resume exits OK with the number of runs from input (Int64Value)
//   restart_outstanding, tail_outstanding
//                 coroutines that poll [echo, a 300 ms slow call], and once
//                 resumed with the echo's result abandon the slow child by
//                 INCOMPATIBLE_STATE (restart from input) or by a tail call to
//                 second_generation; the second generation polls two 800 ms slow
//                 calls with the same correlation ids and exits with 1600. A
//                 result of the abandoned child reaching it is a violation.
//   fanout        a coroutine: input is a google.protobuf.Value object
//                 {"k": K, "min": m, "max": M, "typed": bool, "child": "echo",
//                 "base": B}; it polls K children (correlation ids kCorrelationBase
//                 + j, inputs Int64Value j or 10*B + j), then resumes until each
//                 child's result came back exactly once, and exits with the sum
//                 of the children's Int64Value outputs. Its state travels in
//                 Poll.coroutine_state (1), or Poll.typed_coroutine_state (6)
//                 when "typed" is true, and must come back in the same member.
//   tree          a fanout over 2 `mid` children; `mid` (input Int64Value i) is a
//                 fanout over 2 `echo` children with inputs 10i+1 and 10i+2
//                 (children without an endpoint: they run where the parent runs)
//   bad_children  polls [echo, a child with an invalid function name]; expects
//                 to be re-run with poll_result.error, and exits OK with the
//                 error's message (StringValue)
//   child_fails   polls one `permanent` child; exits PERMANENT_ERROR with
//                 Error{type "ChildFailed", message naming the child's error}
//   python_error  PERMANENT_ERROR with the Error python_error_bytes() (a
//                 pickled value, a traceback and an unknown field, as
//                 dispatch-py sends them)
//   relay_error   polls one `python_error` child; exits OK with a BytesValue of
//                 the serialized Error its PollResult carried
//   text500       HTTP 500, text/plain, a multi-line traceback (see kText500)
//   anything else HTTP 404 not_found
//
// Every request is recorded for assertions, and what breaks the protocol (a
// child's result delivered twice to the same coroutine state, the state coming
// back in the other oneof member, more results than max_results, ...) is
// recorded as a violation. With a verification key, requests must be signed by
// the matching key (401/403 otherwise, as the SDKs do).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/server.hpp"
#include "protocol/signing.hpp"

namespace google::protobuf {
class Any;
}

namespace ratchet::testing {

// Correlation ids fanout gives its children: above 2^32, to catch truncation.
inline constexpr std::uint64_t kCorrelationBase = 0x100000000ULL;

// The serialized dispatch.sdk.v1.Error python_error answers: type ValueError,
// message, a pickled exception as value, a traceback, and field 9 (unknown to
// everyone) last, where protobuf writes unknown fields back.
std::string python_error_bytes();

// What text500 answers, and what a server should make of it.
inline constexpr std::string_view kText500 =
    "Traceback (most recent call last):\r\n  File \"app.py\", line 3, in run\r\n"
    "ValueError: caf\xc3\xa9 is closed\r\n";
inline constexpr std::string_view kText500Relayed =
    "Traceback (most recent call last):\n  File \"app.py\", line 3, in run\n"
    "ValueError: caf\xc3\xa9 is closed";

// What the endpoint received in one RunRequest (and what it answered).
struct RecordedRequest {
  std::string function;
  std::string dispatch_id;
  std::string parent_id;
  std::string root_id;
  std::string input;        // the serialized Any, when run from input
  bool resumed = false;     // poll_result instead of input
  int state_member = 0;     // PollResult member: 1 coroutine_state, 4 typed
  std::string state;        // the state bytes (serialized Any when typed)
  bool poll_error = false;  // poll_result.error was set
  std::string poll_error_message;
  std::vector<std::pair<std::uint64_t, std::string>> results;  // correlation id, dispatch id
  std::int64_t creation_time_us = 0;
  std::int64_t expiration_time_us = 0;  // 0: none
  std::int64_t received_us = 0;         // steady clock, for gaps between attempts
  int http_status = 0;                  // what was answered; 0 for hang
};

// The Int64Value in `any`, or nullopt when it holds something else.
std::optional<std::int64_t> int64_of(const google::protobuf::Any& any);

struct EndpointOptions {
  std::uint16_t port = 0;  // 0: any free port
  // Runs on the endpoint's thread when a RunRequest arrives, before it is answered.
  std::function<void(const RecordedRequest&)> on_request;
  std::optional<protocol::VerificationKey> verification_key;
  // Every answer (but hang's) is held back a random time in [min_delay, max_delay].
  std::chrono::milliseconds min_delay{0};
  std::chrono::milliseconds max_delay{0};
};

class TestEndpoint {
 public:
  explicit TestEndpoint(EndpointOptions options = {});
  ~TestEndpoint();
  TestEndpoint(const TestEndpoint&) = delete;
  TestEndpoint& operator=(const TestEndpoint&) = delete;

  std::uint16_t port() const;
  std::string url() const;  // http://127.0.0.1:<port>
  // Replaces the key requests are verified with (nullopt: accept unsigned).
  void set_verification_key(std::optional<protocol::VerificationKey> key);

  std::vector<RecordedRequest> requests() const;
  std::vector<RecordedRequest> requests_for(const std::string& dispatch_id) const;
  std::vector<RecordedRequest> requests_with_parent(const std::string& parent_id) const;
  std::size_t request_count() const;
  // Requests refused for their signature (401 or 403).
  int rejected_signatures() const;
  // Requests whose signature was checked and accepted.
  int verified_signatures() const;
  std::vector<std::string> violations() const;
  // Blocks until at least `n` requests arrived or `timeout` passed.
  bool wait_for_requests(std::size_t n, std::chrono::milliseconds timeout) const;

  // Sends the answers `gated` calls are held for, and answers later ones at once.
  void open_gate();

  // Stops serving; held (hang) and delayed answers are dropped.
  void stop();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace ratchet::testing
