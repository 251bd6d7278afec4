// Deterministic hostile inputs for the parsers that read the network: random bytes,
// truncations, mutations, huge numbers, unbalanced quotes. Each must answer a value or an
// error, never crash, throw or hang. (Run under the asan preset to catch memory errors.)
#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <string>

#include "protocol/base64.hpp"
#include "protocol/connect.hpp"
#include "protocol/signing.hpp"
#include "protocol/structured_fields.hpp"

namespace ratchet::protocol {
namespace {

constexpr std::string_view kValidInput =
    R"(dispatch=("@method" "@path" "@authority" "content-type" "content-digest");created=1719000000;keyid="default";alg="ed25519")";
constexpr std::string_view kValidSignature =
    "dispatch=:ZaJxIH3fxS5X9fFLnObItbMQPe4Pd16+QiQ7zlW7h4J0QyFKKC9cZyCvpZ6arutVdVzqNRgPPzhuYsmThOm"
    "WCg==:";
constexpr std::string_view kValidConnectError = R"({"code":"not_found","message":"no such"})";
constexpr std::string_view kStructuralChars = "()\";=:,?*-.0123456789 abz@\\\t/+AZ_\xff";

// xorshift64*: the same sequence on every platform.
class Random {
 public:
  explicit Random(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() {
    state_ ^= state_ >> 12;
    state_ ^= state_ << 25;
    state_ ^= state_ >> 27;
    return state_ * 2685821657736338717ULL;
  }
  std::size_t below(std::size_t n) { return static_cast<std::size_t>(next() % n); }
  std::string bytes(std::size_t max_length) {
    std::string out(below(max_length + 1), '\0');
    for (char& c : out) c = static_cast<char>(next() & 0xFF);
    return out;
  }
  std::string from(std::string_view alphabet, std::size_t max_length) {
    std::string out(below(max_length + 1), '\0');
    for (char& c : out) c = alphabet[below(alphabet.size())];
    return out;
  }

 private:
  std::uint64_t state_;
};

// Feeds one input to every parser; each either succeeds or fails cleanly.
void parse_everything(const std::string& input) {
  (void)sf::parse_dictionary(input);
  Result<std::vector<SignatureSpec>> specs = parse_signature_input(input);
  if (!specs) {
    EXPECT_EQ(specs.status().code(), Code::kPermissionDenied);
  }
  Result<std::string> signature = parse_signature(input, "dispatch");
  if (!signature) {
    EXPECT_EQ(signature.status().code(), Code::kPermissionDenied);
  }
  const Status digest = verify_content_digest(input, "body");
  EXPECT_EQ(digest.code(), Code::kPermissionDenied);
  Result<ConnectError> error = parse_connect_error(input);
  if (!error) {
    EXPECT_EQ(error.status().code(), Code::kInvalidArgument);
  }
  (void)connect_error_from_response(500, input);
  (void)VerificationKey::parse(input);
  (void)base64_decode(input);
  (void)validate_dispatched_call(input, input);
}

TEST(HostileInputs, RandomBytes) {
  Random random(0x5eed);
  for (int i = 0; i < 3000; ++i) parse_everything(random.bytes(300));
}

TEST(HostileInputs, RandomStructuralCharacters) {
  Random random(42);
  for (int i = 0; i < 5000; ++i) {
    parse_everything(random.from(kStructuralChars, 120));
    parse_everything("dispatch=" + random.from(kStructuralChars, 120));
    parse_everything("dispatch=(\"@method\" " + random.from(kStructuralChars, 60));
  }
}

TEST(HostileInputs, EveryTruncation) {
  for (std::string_view valid : {kValidInput, kValidSignature, kValidConnectError}) {
    for (std::size_t n = 0; n <= valid.size(); ++n) {
      parse_everything(std::string(valid.substr(0, n)));
      parse_everything(std::string(valid.substr(n)));
    }
  }
}

TEST(HostileInputs, EverySingleCharacterMutation) {
  for (std::string_view valid : {kValidInput, kValidSignature, kValidConnectError}) {
    for (std::size_t i = 0; i < valid.size(); ++i) {
      for (const char c : kStructuralChars) {
        std::string mutated(valid);
        mutated[i] = c;
        parse_everything(mutated);
      }
    }
  }
}

TEST(HostileInputs, HugeNumbers) {
  for (const char* input :
       {"dispatch=();created=99999999999999999999999", "dispatch=();created=-999999999999999",
        "dispatch=();created=999999999999999", "dispatch=();created=1.999",
        "dispatch=();created=9999999999999999.1", "a=-", "a=--1", "a=1e10"}) {
    parse_everything(input);
  }
  Result<std::vector<SignatureSpec>> specs =
      parse_signature_input("dispatch=();created=999999999999999");
  ASSERT_TRUE(specs.is_ok());
  EXPECT_EQ(specs->front().created, 999999999999999);
}

TEST(HostileInputs, UnbalancedQuotesAndParentheses) {
  for (const std::string& input :
       {std::string("dispatch=(\"@method"), std::string("dispatch=((((((((("),
        std::string("dispatch=))))"), std::string(10000, '"'), std::string(10000, '('),
        std::string("dispatch=(\"a\\"), std::string("{\"code\":\"internal"),
        std::string(":") + std::string(5000, 'A'),
        std::string("{\"code\":") + std::string(5000, '['),
        std::string(60000, '[') + std::string(60000, ']')}) {
    parse_everything(input);
  }
}

TEST(HostileInputs, OversizedFieldsAreRejectedNotParsed) {
  const std::string many_members = [] {
    std::string s;
    for (int i = 0; i < 5000; ++i) s += "a" + std::to_string(i) + ", ";
    return s + "z";
  }();
  EXPECT_FALSE(sf::parse_dictionary(many_members).is_ok());
  EXPECT_FALSE(parse_signature_input(std::string(1 << 20, 'a')).is_ok());
  EXPECT_FALSE(parse_connect_error(std::string(1 << 20, ' ')).is_ok());
}

TEST(HostileInputs, VerifyRequestWithRandomHeaders) {
  const VerificationKey key = SigningKey::generate()->verification_key();
  Random random(7);
  for (int i = 0; i < 2000; ++i) {
    std::map<std::string, std::string> headers = {
        {"signature-input", i % 2 ? std::string(kValidInput) : random.from(kStructuralChars, 80)},
        {"signature", i % 3 ? std::string(kValidSignature) : random.from(kStructuralChars, 80)},
        {"content-digest", random.from(kStructuralChars, 40)},
        {"content-type", random.bytes(20)}};
    const HeaderLookup lookup = [&](std::string_view name) -> std::optional<std::string> {
      auto it = headers.find(std::string(name));
      if (it == headers.end()) return std::nullopt;
      return it->second;
    };
    const Status status =
        verify_request(key, random.bytes(8), random.bytes(30), random.bytes(20), lookup,
                       random.bytes(50), static_cast<Micros>(random.next() >> 1));
    EXPECT_FALSE(status.is_ok());
    EXPECT_TRUE(status.code() == Code::kPermissionDenied || status.code() == Code::kUnauthenticated)
        << status.message();
    EXPECT_EQ(status.message().find('\n'), std::string::npos) << status.message();
  }
}

}  // namespace
}  // namespace ratchet::protocol
