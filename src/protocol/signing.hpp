// Request signing, server to endpoint: RFC 9421 HTTP Message Signatures with Ed25519,
// exactly as PROTOCOL.md ("Request signing") specifies, so that the Python SDK's verifier
// accepts what Ratchet signs and Ratchet's verifier accepts what real servers sign.
//
// The signer adds three headers:
//   Content-Digest:  sha-512=:<base64 SHA-512 of the body>:
//   Signature-Input: dispatch=("@method" "@path" "@authority" "content-type"
//                    "content-digest");created=<unix s>;keyid="default";alg="ed25519"
//   Signature:       dispatch=:<base64 Ed25519 signature of the signature base>:
//
// The verifier's contract (the SDK side):
//   - 401 kUnauthenticated: keyid missing or not "default"; a signature that does not
//     cover all five components.
//   - 403 kPermissionDenied: no signature; malformed headers; `created` missing, more
//     than 5 minutes old or more than 5 seconds in the future; `expires` present and
//     past; `alg` present and not "ed25519"; a signature that does not verify; a missing
//     Content-Digest, or one (sha-512 or sha-256) that does not match the body.
//   - Signature-Input may carry several signatures (a proxy may add its own): the request
//     is accepted when any one passes every check; otherwise the first one's failure is
//     the reason. ratchet::http_status_for(status.code()) gives the 401 or 403.
// Parsing never throws and its work is bounded (see structured_fields.hpp): headers are
// hostile input. Time is passed in (from a ratchet::Clock), never read here.
//
// OpenSSL stays behind the keys' pimpl: this header needs only the standard library.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.hpp"
#include "common/status.hpp"

namespace ratchet::protocol {

inline constexpr std::string_view kSignatureLabel = "dispatch";
inline constexpr std::string_view kSignatureKeyId = "default";
inline constexpr std::string_view kSignatureAlgorithm = "ed25519";
inline constexpr Micros kMaxSignatureAge = 5 * 60 * kMicrosPerSecond;
inline constexpr Micros kMaxSignatureClockSkew = 5 * kMicrosPerSecond;

// An Ed25519 public key, to verify signatures. Cheap to copy; immutable; thread-safe.
class VerificationKey {
 public:
  // Parses the forms DISPATCH_VERIFICATION_KEY may take: a PEM SubjectPublicKeyInfo (in
  // which the two characters `\n` stand for a newline), or the base64 of the raw 32-byte
  // public key. Surrounding whitespace is ignored.
  static Result<VerificationKey> parse(std::string_view text);
  static Result<VerificationKey> from_raw_public_key(std::string_view raw32);

  // True when `signature` is the Ed25519 signature of `message` under this key.
  bool verify(std::string_view message, std::string_view signature) const;

  std::string public_key_base64() const;  // base64 of the raw 32 bytes
  std::string public_pem() const;         // SubjectPublicKeyInfo

 private:
  friend class SigningKey;
  struct Impl;
  explicit VerificationKey(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

// An Ed25519 private key, to sign requests. Cheap to copy; immutable; thread-safe.
class SigningKey {
 public:
  static Result<SigningKey> generate();
  static Result<SigningKey> from_raw_private_key(std::string_view raw32);
  // An unencrypted PKCS#8 PEM ("-----BEGIN PRIVATE KEY-----"). An encrypted key is
  // rejected, never prompted for.
  static Result<SigningKey> from_private_pem(std::string_view pem);

  std::string private_pem() const;        // unencrypted PKCS#8
  std::string public_key_base64() const;  // base64 of the raw 32-byte public key
  std::string public_pem() const;         // SubjectPublicKeyInfo
  VerificationKey verification_key() const;

  // The 64-byte Ed25519 signature of `message`.
  Result<std::string> sign(std::string_view message) const;

 private:
  struct Impl;
  explicit SigningKey(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

// The headers a signed request carries, values only.
struct SignatureHeaders {
  std::string content_digest;
  std::string signature_input;
  std::string signature;
};

// Signs a request. `path` may carry a query (it is not signed); `authority` is the Host
// header as sent (it is signed lower case).
Result<SignatureHeaders> sign_request(const SigningKey& key, std::string_view method,
                                      std::string_view path, std::string_view authority,
                                      std::string_view content_type, std::string_view body,
                                      std::int64_t created_unix_seconds);

// Returns a header's value by lower-case name, or nullopt when absent. Several field lines
// of one name are combined with ", " as HTTP allows.
using HeaderLookup = std::function<std::optional<std::string>(std::string_view lower_name)>;

// OK when the request carries a valid signature; otherwise kUnauthenticated (answer 401)
// or kPermissionDenied (answer 403) with a one-line reason. `authority` is the Host header;
// `now` is the current time (Clock::now()).
Status verify_request(const VerificationKey& key, std::string_view method,
                      std::string_view path_with_optional_query, std::string_view authority,
                      const HeaderLookup& headers, std::string_view body, Micros now);

// The signature that passed verify_request: what a replay cache remembers.
struct VerifiedSignature {
  std::string signature;  // the raw Ed25519 signature bytes
  std::int64_t created = 0;
};
// verify_request, saying which signature passed.
Result<VerifiedSignature> verify_request_signature(
    const VerificationKey& key, std::string_view method, std::string_view path_with_optional_query,
    std::string_view authority, const HeaderLookup& headers, std::string_view body, Micros now);

// Every check of verify_request_signature that needs no body: the signature covers the
// Content-Digest header, not the body, so a server can refuse a forged or unsigned request
// as soon as its header has arrived, without reading (and holding) its body. The digest
// must still be checked against the body (verify_content_digest) once it is read.
Result<VerifiedSignature> verify_request_header(const VerificationKey& key, std::string_view method,
                                                std::string_view path_with_optional_query,
                                                std::string_view authority,
                                                const HeaderLookup& headers, Micros now);

// The parsers behind verify_request, exposed for tests and fuzzing.

// One member of a Signature-Input field.
struct SignatureSpec {
  std::string label;
  std::vector<std::string> components;  // e.g. "@method", "content-type"
  std::optional<std::int64_t> created;
  std::optional<std::string> keyid;
  std::optional<std::string> alg;
  std::optional<std::int64_t> expires;
  // The canonical serialization of the member's inner list and parameters: the value of
  // "@signature-params" in the signature base.
  std::string signature_params;
};

// Parses a Signature-Input field. Fails (kPermissionDenied) on malformed input, on a
// component that is not a plain string, and on a created/keyid/alg of the wrong type.
Result<std::vector<SignatureSpec>> parse_signature_input(std::string_view field_value);

// The raw signature bytes of `label` in a Signature field.
Result<std::string> parse_signature(std::string_view field_value, std::string_view label);

// OK when a Content-Digest field (sha-512 and/or sha-256) matches `body`; every digest it
// carries for those algorithms must match. kPermissionDenied otherwise.
Status verify_content_digest(std::string_view field_value, std::string_view body);

// "sha-512=:<base64>:" for `body`.
std::string content_digest_sha512(std::string_view body);

}  // namespace ratchet::protocol
