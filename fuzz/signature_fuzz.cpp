// libFuzzer target: the request-signing parsers an endpoint runs on every
// request before anything else: Signature-Input, Signature, Content-Digest
// (RFC 8941 structured fields), and the whole verification. The input is
// "signature-input \n signature \n content-digest \n body". Invariants: nothing
// throws or crashes; a parsed dictionary member serializes canonically, so
// parsing its serialization gives the same serialization again.
#include <string>

#include "fuzz_input.hpp"
#include "protocol/signing.hpp"
#include "protocol/structured_fields.hpp"

namespace {

using namespace ratchet;
namespace sf = protocol::sf;

std::string serialize(const sf::Member& member) {
  if (const auto* item = std::get_if<sf::Item>(&member)) return sf::serialize_item(*item);
  return sf::serialize_inner_list(std::get<sf::InnerList>(member));
}

void check_canonical(std::string_view field) {
  auto dictionary = sf::parse_dictionary(field);
  if (!dictionary.is_ok()) return;
  for (const auto& [key, member] : *dictionary) {
    std::string once = serialize(member);
    auto again = sf::parse_dictionary(key + "=" + once);
    RATCHET_FUZZ_CHECK(again.is_ok() && again->size() == 1);
    RATCHET_FUZZ_CHECK(serialize(again->front().second) == once);
  }
}

const protocol::VerificationKey& key() {
  static const protocol::VerificationKey key =
      protocol::VerificationKey::parse("Z+nTe2VRcw8t8Ihx++D+nXtbO28nwjWIOTLRgzrelYs=").value();
  return key;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  ratchet::fuzz::Input input(data, size);
  std::string input_field(input.until('\n'));
  std::string signature_field(input.until('\n'));
  std::string digest_field(input.until('\n'));
  std::string_view body = input.rest();

  check_canonical(input_field);
  check_canonical(signature_field);
  (void)protocol::parse_signature_input(input_field);
  (void)protocol::parse_signature(signature_field, "dispatch");
  (void)protocol::verify_content_digest(digest_field, body);
  protocol::HeaderLookup headers = [&](std::string_view name) -> std::optional<std::string> {
    if (name == "signature-input") return input_field;
    if (name == "signature") return signature_field;
    if (name == "content-digest") return digest_field;
    if (name == "content-type") return std::string("application/proto");
    return std::nullopt;
  };
  Micros now = 1'700'000'000LL * kMicrosPerSecond;
  (void)protocol::verify_request_signature(key(), "POST", "/dispatch.sdk.v1.FunctionService/Run",
                                           "127.0.0.1:8000", headers, body, now);
  return 0;
}
