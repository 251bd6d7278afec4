// libFuzzer target: http::ResponseParser, the client's side of HTTP/1.1: what
// a hostile endpoint or API server can answer. Invariants: nothing throws or
// crashes; a parsed response respects the limits; serialized responses read
// back the same. The first input byte chooses the piece size and HEAD.
#include <string>

#include "fuzz_input.hpp"
#include "http/parser.hpp"

namespace {

using namespace ratchet::http;

constexpr ParseLimits kLimits{4096, 65536};

void check_round_trip(const Response& response, bool head) {
  auto bytes = serialize_response(response, /*keep_alive=*/true, head);
  if (!bytes.is_ok()) return;
  auto again = parse_response(*bytes, ParseLimits{1 << 20, 1 << 20}, head);
  RATCHET_FUZZ_CHECK(again.is_ok());
  RATCHET_FUZZ_CHECK(again->status == response.status);
  bool bodiless = head || response.status < 200 || response.status == 204 || response.status == 304;
  RATCHET_FUZZ_CHECK(bodiless || again->body == response.body);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  ratchet::fuzz::Input input(data, size);
  std::uint8_t choice = input.byte();
  std::size_t piece = choice & 0x3f ? (choice & 0x3f) : std::string_view::npos;
  bool head = choice & 0x40;
  std::string_view bytes = input.rest();

  ResponseParser parser(kLimits);
  if (head) parser.expect_no_body();
  std::string pending;
  for (std::size_t at = 0; at < bytes.size() && !parser.done();) {
    std::size_t n = std::min(piece, bytes.size() - at);
    pending.append(bytes.substr(at, n));
    at += n;
    ParseStep step = parser.put(pending);
    RATCHET_FUZZ_CHECK(step.consumed <= pending.size());
    if (step.error != ParseError::kNone) return 0;
    pending.erase(0, step.consumed);
  }
  if (!parser.done() && parser.got_some() && parser.put_eof() != ParseError::kNone) return 0;
  if (!parser.done()) return 0;
  (void)parser.reusable();
  Response response = parser.take_response();
  RATCHET_FUZZ_CHECK(response.body.size() <= kLimits.body_limit);
  check_round_trip(response, head);
  return 0;
}
