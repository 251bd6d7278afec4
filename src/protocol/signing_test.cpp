#include "protocol/signing.hpp"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "protocol/base64.hpp"

namespace ratchet::protocol {
namespace {

// The test vector of PROTOCOL.md, "Request signing".
constexpr std::string_view kPrivateKeyHex =
    "0ecafbc9a94763276652e49779f0ae9001e8d994a6d440f6a72190625c217a21";
constexpr std::string_view kPublicKeyBase64 = "Z+nTe2VRcw8t8Ihx++D+nXtbO28nwjWIOTLRgzrelYs=";
constexpr std::string_view kBodyHex =
    "0a056772656574123a0a2f747970652e676f6f676c65617069732e636f6d2f676f6f676c652e70726f746f6275"
    "662e537472696e6756616c756512070a05576f726c64220131320131";
constexpr std::int64_t kCreated = 1719000000;
constexpr std::string_view kPath = "/dispatch.sdk.v1.FunctionService/Run";
constexpr std::string_view kAuthority = "127.0.0.1:8000";
constexpr std::string_view kContentType = "application/proto";
constexpr std::string_view kExpectedDigest =
    "sha-512=:FI77vzDGdvxQBMiw5oZnQ32smnyRNoJcU+Z+JL2v8hhffMz59HvjTnBvi+6FtWxxleWeNyne1Bhwo7z0nN2/"
    "1A==:";
constexpr std::string_view kExpectedInput =
    "dispatch=(\"@method\" \"@path\" \"@authority\" \"content-type\" "
    "\"content-digest\");created=1719000000;keyid=\"default\";alg=\"ed25519\"";
constexpr std::string_view kExpectedSignature =
    "dispatch=:ZaJxIH3fxS5X9fFLnObItbMQPe4Pd16+QiQ7zlW7h4J0QyFKKC9cZyCvpZ6arutVdVzqNRgPPzhuYsmThOm"
    "WCg==:";

std::string from_hex(std::string_view hex) {
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    out += static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16));
  }
  return out;
}

Micros seconds(std::int64_t s) { return s * kMicrosPerSecond; }

SigningKey test_key() { return SigningKey::from_raw_private_key(from_hex(kPrivateKeyHex)).value(); }

using Headers = std::map<std::string, std::string>;

HeaderLookup lookup_in(const Headers& headers) {
  return [&headers](std::string_view name) -> std::optional<std::string> {
    auto it = headers.find(std::string(name));
    if (it == headers.end()) return std::nullopt;
    return it->second;
  };
}

Headers signed_headers(const SignatureHeaders& signature) {
  return {{"content-type", std::string(kContentType)},
          {"content-digest", signature.content_digest},
          {"signature-input", signature.signature_input},
          {"signature", signature.signature}};
}

class VerifyRequestTest : public ::testing::Test {
 protected:
  Status verify(const Headers& headers, std::string_view body, Micros now,
                std::string_view path = kPath) const {
    return verify_request(key_.verification_key(), "POST", path, kAuthority, lookup_in(headers),
                          body, now);
  }

  Headers vector_headers() const {
    return signed_headers(
        sign_request(key_, "POST", kPath, kAuthority, kContentType, body_, kCreated).value());
  }

  // Signs a hand-made Signature-Input: `inner_list` is the member's value, e.g.
  // ("@method" "@path");created=1;keyid="default". Components take the test request's values.
  Headers custom_signed(std::string_view inner_list, std::vector<std::string> components,
                        std::string content_digest = "") const {
    if (content_digest.empty()) content_digest = content_digest_sha512(body_);
    const std::map<std::string, std::string> values = {{"@method", "POST"},
                                                       {"@path", std::string(kPath)},
                                                       {"@authority", std::string(kAuthority)},
                                                       {"content-type", std::string(kContentType)},
                                                       {"content-digest", content_digest}};
    std::string base;
    for (const std::string& c : components) base += "\"" + c + "\": " + values.at(c) + "\n";
    base += "\"@signature-params\": " + std::string(inner_list);
    const std::string signature = key_.sign(base).value();
    return {{"content-type", std::string(kContentType)},
            {"content-digest", content_digest},
            {"signature-input", "dispatch=" + std::string(inner_list)},
            {"signature", "dispatch=:" + base64_encode(signature) + ":"}};
  }

  const std::vector<std::string> all_components_ = {"@method", "@path", "@authority",
                                                    "content-type", "content-digest"};
  SigningKey key_ = test_key();
  std::string body_ = from_hex(kBodyHex);
};

TEST(SigningKey, FromRawPrivateKeyHasTheVectorsPublicKey) {
  EXPECT_EQ(test_key().public_key_base64(), kPublicKeyBase64);
  EXPECT_EQ(base64_encode(from_hex(kPrivateKeyHex)),
            "Dsr7yalHYydmUuSXefCukAHo2ZSm1ED2pyGQYlwheiE=");
}

TEST(SigningKey, SignRequestReproducesTheProtocolTestVector) {
  Result<SignatureHeaders> headers = sign_request(test_key(), "POST", kPath, kAuthority,
                                                  kContentType, from_hex(kBodyHex), kCreated);
  ASSERT_TRUE(headers.is_ok()) << headers.status().message();
  EXPECT_EQ(headers->content_digest, kExpectedDigest);
  EXPECT_EQ(headers->signature_input, kExpectedInput);
  EXPECT_EQ(headers->signature, kExpectedSignature);
}

TEST(SigningKey, SignsThePathWithoutItsQueryAndTheAuthorityLowerCase) {
  const SigningKey key = test_key();
  const std::string body = from_hex(kBodyHex);
  auto plain = sign_request(key, "POST", kPath, kAuthority, kContentType, body, kCreated).value();
  auto other = sign_request(key, "POST", std::string(kPath) + "?x=1", "127.0.0.1:8000",
                            kContentType, body, kCreated)
                   .value();
  EXPECT_EQ(plain.signature, other.signature);
  auto upper = sign_request(key, "POST", kPath, "LOCALHOST:8000", kContentType, body, kCreated);
  auto lower = sign_request(key, "POST", kPath, "localhost:8000", kContentType, body, kCreated);
  EXPECT_EQ(upper->signature, lower->signature);
}

TEST(SigningKey, PemRoundTripsKeepTheKey) {
  const SigningKey key = SigningKey::generate().value();
  const std::string pem = key.private_pem();
  EXPECT_NE(pem.find("-----BEGIN PRIVATE KEY-----"), std::string::npos);
  Result<SigningKey> reloaded = SigningKey::from_private_pem(pem);
  ASSERT_TRUE(reloaded.is_ok()) << reloaded.status().message();
  EXPECT_EQ(reloaded->public_key_base64(), key.public_key_base64());

  Result<VerificationKey> from_pem = VerificationKey::parse(key.public_pem());
  ASSERT_TRUE(from_pem.is_ok()) << from_pem.status().message();
  EXPECT_EQ(from_pem->public_key_base64(), key.public_key_base64());
  EXPECT_TRUE(from_pem->verify("hello", key.sign("hello").value()));
  EXPECT_FALSE(from_pem->verify("hullo", key.sign("hello").value()));
}

TEST(SigningKey, RejectsGarbagePrivateKeys) {
  EXPECT_FALSE(SigningKey::from_raw_private_key("short").is_ok());
  Result<SigningKey> garbage = SigningKey::from_private_pem("-----BEGIN PRIVATE KEY-----\nxx");
  ASSERT_FALSE(garbage.is_ok());
  EXPECT_EQ(garbage.status().code(), Code::kInvalidArgument);
  // A public key is not a private key.
  EXPECT_FALSE(SigningKey::from_private_pem(test_key().public_pem()).is_ok());
}

TEST(VerificationKey, ParsesBase64OfTheRawKey) {
  Result<VerificationKey> key = VerificationKey::parse(std::string(kPublicKeyBase64) + "\n");
  ASSERT_TRUE(key.is_ok()) << key.status().message();
  EXPECT_EQ(key->public_key_base64(), kPublicKeyBase64);
}

TEST(VerificationKey, ParsesPemWithLiteralBackslashN) {
  std::string pem = test_key().public_pem();
  std::string escaped;
  for (char c : pem) escaped += c == '\n' ? std::string("\\n") : std::string(1, c);
  ASSERT_EQ(escaped.find('\n'), std::string::npos);
  Result<VerificationKey> key = VerificationKey::parse(escaped);
  ASSERT_TRUE(key.is_ok()) << key.status().message();
  EXPECT_EQ(key->public_key_base64(), kPublicKeyBase64);
}

TEST(VerificationKey, RejectsGarbageWithAClearReason) {
  for (std::string_view text : {"", "not a key", "AAAA", "Z+nTe2VRcw8t8Ihx++D+nXtbO28nwjWIOTLRgzre",
                                "-----BEGIN PUBLIC KEY-----\\nAAAA\\n-----END PUBLIC KEY-----"}) {
    Result<VerificationKey> key = VerificationKey::parse(text);
    ASSERT_FALSE(key.is_ok()) << text;
    EXPECT_EQ(key.status().code(), Code::kInvalidArgument);
    EXPECT_NE(key.status().message().find("verification key"), std::string::npos)
        << key.status().message();
  }
}

// A success is remembered (the SDK's server checks a signature with the header and
// again with the body): what is remembered must never make anything else verify.
TEST(VerificationKey, ARememberedSuccessVerifiesNothingElse) {
  const SigningKey key = SigningKey::generate().value();
  const VerificationKey verification = key.verification_key();
  const std::string signature = key.sign("hello").value();
  EXPECT_TRUE(verification.verify("hello", signature));
  EXPECT_TRUE(verification.verify("hello", signature));
  EXPECT_FALSE(verification.verify("hellp", signature));
  EXPECT_FALSE(verification.verify("hello!", signature));
  std::string flipped = signature;
  flipped[10] = static_cast<char>(flipped[10] ^ 1);
  EXPECT_FALSE(verification.verify("hello", flipped));
  const VerificationKey other = SigningKey::generate().value().verification_key();
  EXPECT_FALSE(other.verify("hello", signature));
  // Past what is remembered, it is verified again.
  for (int i = 0; i < 40; ++i) {
    const std::string message = "message " + std::to_string(i);
    EXPECT_TRUE(verification.verify(message, key.sign(message).value()));
  }
  EXPECT_TRUE(verification.verify("hello", signature));
  EXPECT_FALSE(verification.verify("hellp", signature));
}

TEST_F(VerifyRequestTest, AcceptsTheProtocolTestVector) {
  const Headers headers = {{"content-type", std::string(kContentType)},
                           {"content-digest", std::string(kExpectedDigest)},
                           {"signature-input", std::string(kExpectedInput)},
                           {"signature", std::string(kExpectedSignature)}};
  const VerificationKey key = VerificationKey::parse(kPublicKeyBase64).value();
  const Status status = verify_request(key, "POST", kPath, kAuthority, lookup_in(headers), body_,
                                       seconds(kCreated + 10));
  EXPECT_TRUE(status.is_ok()) << status.message();
}

TEST_F(VerifyRequestTest, AcceptsAQueryAndAnUpperCaseHost) {
  const Headers headers = vector_headers();
  EXPECT_TRUE(verify(headers, body_, seconds(kCreated), std::string(kPath) + "?a=b").is_ok());
  const Status upper = verify_request(key_.verification_key(), "POST", kPath, "127.0.0.1:8000",
                                      lookup_in(headers), body_, seconds(kCreated));
  EXPECT_TRUE(upper.is_ok()) << upper.message();
}

TEST_F(VerifyRequestTest, AcceptsUpToFiveMinutesOldAndFiveSecondsAhead) {
  const Headers headers = vector_headers();
  EXPECT_TRUE(verify(headers, body_, seconds(kCreated + 300)).is_ok());
  EXPECT_TRUE(verify(headers, body_, seconds(kCreated - 5)).is_ok());
}

TEST_F(VerifyRequestTest, RejectsAnUnsignedRequestWith403) {
  const Status status = verify({{"content-type", "application/proto"}}, body_, seconds(kCreated));
  EXPECT_EQ(status.code(), Code::kPermissionDenied);
  EXPECT_NE(status.message().find("not signed"), std::string::npos) << status.message();
}

TEST_F(VerifyRequestTest, RejectsAnotherKeysSignatureWith403) {
  const SigningKey other = SigningKey::generate().value();
  const Headers headers = signed_headers(
      sign_request(other, "POST", kPath, kAuthority, kContentType, body_, kCreated).value());
  const Status status = verify(headers, body_, seconds(kCreated));
  EXPECT_EQ(status.code(), Code::kPermissionDenied);
  EXPECT_NE(status.message().find("bad signature"), std::string::npos) << status.message();
}

TEST_F(VerifyRequestTest, RejectsAStaleSignatureWith403) {
  const Status status = verify(vector_headers(), body_, seconds(kCreated + 301));
  EXPECT_EQ(status.code(), Code::kPermissionDenied);
  EXPECT_NE(status.message().find("stale"), std::string::npos) << status.message();
}

TEST_F(VerifyRequestTest, RejectsASignatureFromMoreThanFiveSecondsAheadWith403) {
  const Status status = verify(vector_headers(), body_, seconds(kCreated - 6));
  EXPECT_EQ(status.code(), Code::kPermissionDenied);
  EXPECT_NE(status.message().find("future"), std::string::npos) << status.message();
}

// PROTOCOL.md allows an `expires` parameter (dispatch-py never sets one): a
// signature is good up to that second and refused after it.
TEST_F(VerifyRequestTest, RejectsAnExpiredSignatureWith403) {
  const Headers headers = custom_signed(
      R"(("@method" "@path" "@authority" "content-type" "content-digest");created=1719000000;expires=1719000010;keyid="default")",
      all_components_);
  EXPECT_TRUE(verify(headers, body_, seconds(kCreated + 10)).is_ok());
  const Status status = verify(headers, body_, seconds(kCreated + 11));
  EXPECT_EQ(status.code(), Code::kPermissionDenied);
  EXPECT_NE(status.message().find("expired"), std::string::npos) << status.message();
}

TEST_F(VerifyRequestTest, RejectsABodyChangedAfterSigningWith403) {
  const Status status = verify(vector_headers(), body_ + "x", seconds(kCreated));
  EXPECT_EQ(status.code(), Code::kPermissionDenied);
  EXPECT_NE(status.message().find("Content-Digest"), std::string::npos) << status.message();
}

TEST_F(VerifyRequestTest, RejectsAChangedMethodPathOrHostWith403) {
  const Headers headers = vector_headers();
  const VerificationKey key = key_.verification_key();
  EXPECT_EQ(
      verify_request(key, "PUT", kPath, kAuthority, lookup_in(headers), body_, seconds(kCreated))
          .code(),
      Code::kPermissionDenied);
  EXPECT_EQ(verify(headers, body_, seconds(kCreated), "/other").code(), Code::kPermissionDenied);
  EXPECT_EQ(
      verify_request(key, "POST", kPath, "evil:8000", lookup_in(headers), body_, seconds(kCreated))
          .code(),
      Code::kPermissionDenied);
}

TEST_F(VerifyRequestTest, RejectsMissingComponentCoverageWith401) {
  const std::vector<std::string> four = {"@method", "@path", "content-type", "content-digest"};
  const Headers headers = custom_signed(
      R"(("@method" "@path" "content-type" "content-digest");created=1719000000;keyid="default")",
      four);
  const Status status = verify(headers, body_, seconds(kCreated));
  EXPECT_EQ(status.code(), Code::kUnauthenticated);
  EXPECT_NE(status.message().find("@authority"), std::string::npos) << status.message();
}

TEST_F(VerifyRequestTest, RejectsAnUnknownOrMissingKeyIdWith401) {
  const Headers wrong = custom_signed(
      R"(("@method" "@path" "@authority" "content-type" "content-digest");created=1719000000;keyid="other")",
      all_components_);
  EXPECT_EQ(verify(wrong, body_, seconds(kCreated)).code(), Code::kUnauthenticated);
  const Headers missing = custom_signed(
      R"(("@method" "@path" "@authority" "content-type" "content-digest");created=1719000000)",
      all_components_);
  EXPECT_EQ(verify(missing, body_, seconds(kCreated)).code(), Code::kUnauthenticated);
}

TEST_F(VerifyRequestTest, RejectsAWrongAlgorithmWith403) {
  const Headers headers = custom_signed(
      R"(("@method" "@path" "@authority" "content-type" "content-digest");created=1719000000;keyid="default";alg="rsa-pss-sha512")",
      all_components_);
  const Status status = verify(headers, body_, seconds(kCreated));
  EXPECT_EQ(status.code(), Code::kPermissionDenied);
  EXPECT_NE(status.message().find("algorithm"), std::string::npos) << status.message();
}

TEST_F(VerifyRequestTest, RejectsAMissingCreatedWith403) {
  const Headers headers = custom_signed(
      R"(("@method" "@path" "@authority" "content-type" "content-digest");keyid="default")",
      all_components_);
  EXPECT_EQ(verify(headers, body_, seconds(kCreated)).code(), Code::kPermissionDenied);
}

TEST_F(VerifyRequestTest, AcceptsWithoutAlgAndInAnyComponentOrder) {
  const Headers headers = custom_signed(
      R"(("content-digest" "@authority" "@method" "content-type" "@path");keyid="default";created=1719000000)",
      {"content-digest", "@authority", "@method", "content-type", "@path"});
  const Status status = verify(headers, body_, seconds(kCreated));
  EXPECT_TRUE(status.is_ok()) << status.message();
}

TEST_F(VerifyRequestTest, AcceptsASha256ContentDigest) {
  // SHA-256 of "abc".
  const std::string sha256 = "sha-256=:ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=:";
  const Headers headers = custom_signed(
      R"(("@method" "@path" "@authority" "content-type" "content-digest");created=1719000000;keyid="default")",
      all_components_, sha256);
  const Status status = verify(headers, "abc", seconds(kCreated));
  EXPECT_TRUE(status.is_ok()) << status.message();
  EXPECT_EQ(verify(headers, "abd", seconds(kCreated)).code(), Code::kPermissionDenied);
}

TEST(VerifyContentDigest, ChecksEverySupportedDigestAndIgnoresOthers) {
  const std::string sha512 = content_digest_sha512("abc");
  EXPECT_TRUE(verify_content_digest(sha512, "abc").is_ok());
  EXPECT_TRUE(verify_content_digest("md5=:AAAA:, " + sha512, "abc").is_ok());
  EXPECT_FALSE(verify_content_digest(
                   sha512 + ", sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:", "abc")
                   .is_ok());
  EXPECT_FALSE(verify_content_digest("md5=:AAAA:", "abc").is_ok());
  EXPECT_FALSE(verify_content_digest("sha-512=:AAAA:", "abc").is_ok());
  EXPECT_FALSE(verify_content_digest("sha-512=\"not bytes\"", "abc").is_ok());
}

TEST_F(VerifyRequestTest, AcceptsWhenAnyOneOfSeveralSignaturesVerifies) {
  Headers headers = vector_headers();
  headers["signature-input"] =
      R"(proxy=("@method");created=1719000000;keyid="proxy-key", )" + headers["signature-input"];
  headers["signature"] = "proxy=:AAAA:, " + headers["signature"];
  const Status status = verify(headers, body_, seconds(kCreated));
  EXPECT_TRUE(status.is_ok()) << status.message();
}

TEST_F(VerifyRequestTest, RejectsGarbageHeadersWith403) {
  const Headers base = vector_headers();
  for (const std::string& garbage :
       {std::string("dispatch"), std::string("dispatch=("), std::string("=:AAAA:"),
        std::string("dispatch=\"unterminated"), std::string("\xff\xfe"), std::string(",,,")}) {
    Headers headers = base;
    headers["signature-input"] = garbage;
    EXPECT_EQ(verify(headers, body_, seconds(kCreated)).code(), Code::kPermissionDenied) << garbage;
    headers = base;
    headers["signature"] = garbage;
    EXPECT_EQ(verify(headers, body_, seconds(kCreated)).code(), Code::kPermissionDenied) << garbage;
    headers = base;
    headers["content-digest"] = garbage;
    EXPECT_EQ(verify(headers, body_, seconds(kCreated)).code(), Code::kPermissionDenied) << garbage;
  }
}

TEST(ParseSignatureInput, ReadsComponentsAndParameters) {
  Result<std::vector<SignatureSpec>> specs = parse_signature_input(kExpectedInput);
  ASSERT_TRUE(specs.is_ok()) << specs.status().message();
  ASSERT_EQ(specs->size(), 1u);
  const SignatureSpec& spec = specs->front();
  EXPECT_EQ(spec.label, "dispatch");
  EXPECT_EQ(spec.components, (std::vector<std::string>{"@method", "@path", "@authority",
                                                       "content-type", "content-digest"}));
  EXPECT_EQ(spec.created, kCreated);
  EXPECT_EQ(spec.keyid, "default");
  EXPECT_EQ(spec.alg, "ed25519");
  EXPECT_EQ("dispatch=" + spec.signature_params, kExpectedInput);
}

TEST(ParseSignatureInput, ReserializesCanonically) {
  Result<std::vector<SignatureSpec>> specs =
      parse_signature_input(R"(sig=(  "@method"   "@path" );created=007 ;keyid="k")");
  ASSERT_FALSE(specs.is_ok());  // no space is allowed before ';' between parameters
  specs = parse_signature_input(R"(sig=(  "@method"   "@path" );created=007;  keyid="k")");
  ASSERT_TRUE(specs.is_ok()) << specs.status().message();
  EXPECT_EQ(specs->front().signature_params, R"(("@method" "@path");created=7;keyid="k")");
}

TEST(ParseSignatureInput, RejectsParametersOfTheWrongType) {
  EXPECT_FALSE(parse_signature_input(R"(sig=("@method");created="1")").is_ok());
  EXPECT_FALSE(parse_signature_input(R"(sig=("@method");keyid=default)").is_ok());
  EXPECT_FALSE(parse_signature_input(R"(sig=(@method))").is_ok());
  EXPECT_FALSE(parse_signature_input(R"(sig="not a list")").is_ok());
}

}  // namespace
}  // namespace ratchet::protocol
