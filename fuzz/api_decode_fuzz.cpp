// libFuzzer target: what the server's API decodes from clients and what
// clients decode from it: a DispatchRequest (protobuf, validated call by call),
// Connect JSON error bodies, and the values (google.protobuf.Any) inside calls
// and results. The first byte chooses which. Invariants: nothing throws or
// crashes, UB included (expirations used to overflow).
#include <google/protobuf/any.pb.h>

#include <string>

#include "fuzz_input.hpp"
#include "protobuf_quiet.hpp"
#include "protocol/connect.hpp"
#include "protocol/values.hpp"
#include "server/api.hpp"

using namespace ratchet;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  ratchet::fuzz::Input input(data, size);
  std::uint8_t choice = input.byte();
  std::string_view bytes = input.rest();
  switch (choice % 4) {
    case 0: {
      server::ApiOptions options;
      if (choice & 0x10) options.default_expiration = 3600 * kMicrosPerSecond;
      Micros now = 1'700'000'000LL * kMicrosPerSecond;
      auto calls = server::decode_dispatch(bytes, now, options);
      if (calls.is_ok()) {
        for (const auto& call : *calls)
          RATCHET_FUZZ_CHECK(!call.expires_at || *call.expires_at > now);
      }
      break;
    }
    case 1: {
      auto error = protocol::parse_connect_error(bytes);
      if (error.is_ok()) (void)protocol::connect_error_body(error->code, error->message);
      (void)protocol::connect_error_from_response(400 + (choice >> 2), bytes);
      break;
    }
    case 2: {
      google::protobuf::Any any;
      if (!any.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) break;
      auto json = protocol::unpack_to_json(any);
      if (json.is_ok()) (void)protocol::pack_json(*json);
      break;
    }
    default:
      (void)protocol::is_proto_content_type(bytes);
      (void)protocol::validate_dispatched_call(bytes, bytes);
      break;
  }
  return 0;
}
