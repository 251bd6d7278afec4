// libFuzzer target: http::RequestParser, the server's side of HTTP/1.1, fed
// the way a socket delivers bytes (pieces of any size, a pause after the
// header). Invariants: nothing throws or crashes; a parsed request respects
// the limits; what the serializer accepts, the parser reads back the same.
// The first input byte chooses the piece size and whether to pause.
#include <string>

#include "fuzz_input.hpp"
#include "http/parser.hpp"

namespace {

using namespace ratchet::http;

constexpr ParseLimits kLimits{4096, 65536};

void check_round_trip(const Request& request) {
  auto bytes = serialize_request(request);
  if (!bytes.is_ok()) return;  // the serializer is stricter than the parser
  ParseLimits roomy{1 << 20, 1 << 20};
  auto again = parse_request(*bytes, roomy);
  RATCHET_FUZZ_CHECK(again.is_ok());
  RATCHET_FUZZ_CHECK(again->method == request.method);
  RATCHET_FUZZ_CHECK(again->target == request.target);
  RATCHET_FUZZ_CHECK(again->body == request.body);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  ratchet::fuzz::Input input(data, size);
  std::uint8_t choice = input.byte();
  std::size_t piece = choice & 0x3f ? (choice & 0x3f) : std::string_view::npos;
  bool pause = choice & 0x40;
  std::string_view bytes = input.rest();

  RequestParser parser(kLimits);
  std::string pending;
  bool header_seen = false;
  for (std::size_t at = 0; at < bytes.size() && !parser.done();) {
    std::size_t n = std::min(piece, bytes.size() - at);
    pending.append(bytes.substr(at, n));
    at += n;
    for (;;) {
      ParseStep step = parser.put(pending, pause && !header_seen);
      RATCHET_FUZZ_CHECK(step.consumed <= pending.size());
      if (step.error != ParseError::kNone) {
        RATCHET_FUZZ_CHECK(!parser.error_message().empty());
        return 0;
      }
      pending.erase(0, step.consumed);
      // Bounded buffering: never more than the header limit and a read waits.
      RATCHET_FUZZ_CHECK(pending.size() <= kLimits.header_limit + 2048 + piece ||
                         piece == std::string_view::npos);
      if (parser.header_done() && !header_seen) {
        header_seen = true;
        continue;  // the caller looked at the header; parse on
      }
      break;
    }
  }
  if (!parser.done()) {
    if (parser.got_some()) (void)parser.put_eof();
    return 0;
  }
  Request request = parser.take_request();
  RATCHET_FUZZ_CHECK(request.body.size() <= kLimits.body_limit);
  check_round_trip(request);
  return 0;
}
