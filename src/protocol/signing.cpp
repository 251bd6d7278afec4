// Request signing and verification (RFC 9421 with Ed25519), per PROTOCOL.md.
#include "protocol/signing.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <string>

#include "protocol/base64.hpp"
#include "protocol/structured_fields.hpp"

namespace ratchet::protocol {
namespace {

// The components every signature must cover, in the order Ratchet signs them.
constexpr std::array<std::string_view, 5> kRequiredComponents = {"@method", "@path", "@authority",
                                                                 "content-type", "content-digest"};

// Seconds beyond which `created` cannot be a real time; keeps the arithmetic in range.
constexpr std::int64_t kMaxPlausibleSeconds = 1'000'000'000'000;

// How much of an attacker-chosen string a reason may quote.
constexpr std::size_t kMaxQuotedChars = 64;

Status unauthenticated(std::string reason) {
  return Status(Code::kUnauthenticated, std::move(reason));
}
Status forbidden(std::string reason) { return Status(Code::kPermissionDenied, std::move(reason)); }

std::string quoted(std::string_view text) {
  std::string out = "\"";
  out += text.substr(0, kMaxQuotedChars);
  if (text.size() > kMaxQuotedChars) out += "...";
  out += '"';
  return out;
}

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string to_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// What the components of a signature base are taken from.
struct RequestView {
  std::string_view method;
  std::string_view target;  // path, with an optional "?query"
  std::string_view authority;
  const HeaderLookup& headers;
};

std::string_view path_of(std::string_view target) {
  const std::string_view path = target.substr(0, target.find('?'));
  return path.empty() ? std::string_view("/") : path;
}

std::string_view query_of(std::string_view target) {
  const std::size_t q = target.find('?');
  return q == std::string_view::npos ? std::string_view("?") : target.substr(q);
}

// The value of one covered component (RFC 9421 section 2).
Result<std::string> component_value(std::string_view name, const RequestView& request) {
  if (name == "@method") return std::string(request.method);
  if (name == "@path") return std::string(path_of(request.target));
  if (name == "@query") return std::string(query_of(request.target));
  if (name == "@authority") return to_lower(request.authority);
  if (name == "@request-target") return std::string(request.target);
  if (!name.empty() && name.front() == '@') {
    return forbidden("signature covers an unsupported component " + quoted(name));
  }
  std::optional<std::string> value = request.headers(to_lower(name));
  if (!value) return forbidden("signed header " + quoted(name) + " is missing");
  return std::string(trim_ows(*value));
}

// The signature base (RFC 9421 section 2.5): one line per component, then the parameters.
Result<std::string> signature_base(const std::vector<std::string>& components,
                                   std::string_view signature_params, const RequestView& request) {
  std::string base;
  for (std::size_t i = 0; i < components.size(); ++i) {
    for (std::size_t j = 0; j < i; ++j) {
      if (components[j] == components[i]) {
        return forbidden("signature covers " + quoted(components[i]) + " twice");
      }
    }
    ASSIGN_OR_RETURN(std::string value, component_value(components[i], request));
    if (value.find_first_of("\r\n") != std::string::npos) {
      return forbidden("component " + quoted(components[i]) + " contains a line break");
    }
    base += '"' + components[i] + "\": " + value + '\n';
  }
  base += "\"@signature-params\": ";
  base += signature_params;
  return base;
}

std::string digest(const EVP_MD* md, std::string_view body) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_Digest(body.data(), body.size(), out, &size, md, nullptr) != 1) return {};
  return std::string(reinterpret_cast<const char*>(out), size);
}

bool equal_in_constant_time(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// Reads the parameters Ratchet cares about, rejecting ones of the wrong type.
Status read_signature_parameters(const sf::Parameters& params, SignatureSpec& spec) {
  for (const auto& [key, value] : params) {
    if (key == "created" || key == "expires") {
      const auto* seconds = std::get_if<std::int64_t>(&value);
      if (!seconds) return forbidden("Signature-Input " + key + " is not an integer");
      (key == "created" ? spec.created : spec.expires) = *seconds;
    } else if (key == "keyid" || key == "alg") {
      const auto* text = std::get_if<std::string>(&value);
      if (!text) return forbidden("Signature-Input " + key + " is not a string");
      (key == "keyid" ? spec.keyid : spec.alg) = *text;
    }
  }
  return Status::ok();
}

Result<SignatureSpec> read_signature_spec(const std::string& label, const sf::Member& member) {
  const auto* list = std::get_if<sf::InnerList>(&member);
  if (!list) return forbidden("Signature-Input " + quoted(label) + " is not an inner list");
  SignatureSpec spec;
  spec.label = label;
  for (const sf::Item& item : list->items) {
    const auto* name = std::get_if<std::string>(&item.value);
    if (!name) return forbidden("Signature-Input component is not a string");
    if (!item.params.empty()) {
      return forbidden("Signature-Input component " + quoted(*name) + " has parameters");
    }
    spec.components.push_back(*name);
  }
  RETURN_IF_ERROR(read_signature_parameters(list->params, spec));
  spec.signature_params = sf::serialize_inner_list(*list);
  return spec;
}

// The raw bytes of `label` in a parsed Signature field.
Result<std::string> signature_bytes(const sf::Dictionary& signatures, std::string_view label) {
  const sf::Member* member = sf::find_member(signatures, label);
  if (!member) return forbidden("no Signature for label " + quoted(label));
  const auto* item = std::get_if<sf::Item>(member);
  const auto* bytes = item ? std::get_if<sf::ByteSequence>(&item->value) : nullptr;
  if (!bytes) return forbidden("Signature " + quoted(label) + " is not a byte sequence");
  return bytes->bytes;
}

Status check_key_and_coverage(const SignatureSpec& spec) {
  if (!spec.keyid) return unauthenticated("signature has no keyid");
  if (*spec.keyid != kSignatureKeyId)
    return unauthenticated("unknown key id " + quoted(*spec.keyid));
  for (const std::string_view required : kRequiredComponents) {
    bool covered = false;
    for (const std::string& component : spec.components) covered |= component == required;
    if (!covered) return unauthenticated("signature does not cover " + quoted(required));
  }
  return Status::ok();
}

// `seconds` since the epoch in microseconds, clamped to a range that cannot overflow.
Micros seconds_to_micros_clamped(std::int64_t seconds) {
  if (seconds > kMaxPlausibleSeconds) seconds = kMaxPlausibleSeconds;
  if (seconds < -kMaxPlausibleSeconds) seconds = -kMaxPlausibleSeconds;
  return seconds * kMicrosPerSecond;
}

Status check_algorithm_and_time(const SignatureSpec& spec, Micros now) {
  if (spec.alg && *spec.alg != kSignatureAlgorithm) {
    return forbidden("unsupported signature algorithm " + quoted(*spec.alg));
  }
  if (!spec.created) return forbidden("signature has no created time");
  // Clamped like `created`, so that no difference below can overflow.
  now = std::clamp(now, seconds_to_micros_clamped(-kMaxPlausibleSeconds),
                   seconds_to_micros_clamped(kMaxPlausibleSeconds));
  const Micros created = seconds_to_micros_clamped(*spec.created);
  if (created - now > kMaxSignatureClockSkew) {
    return forbidden("signature created in the future (are the clocks in sync?)");
  }
  if (now - created > kMaxSignatureAge) {
    return forbidden("stale signature: created more than 5 minutes ago");
  }
  if (spec.expires && now > seconds_to_micros_clamped(*spec.expires)) {
    return forbidden("signature expired");
  }
  return Status::ok();
}

// Checks one signature completely, except for the body's digest.
Status verify_signature(const VerificationKey& key, const SignatureSpec& spec,
                        const sf::Dictionary& signatures, const RequestView& request, Micros now) {
  RETURN_IF_ERROR(check_key_and_coverage(spec));
  RETURN_IF_ERROR(check_algorithm_and_time(spec, now));
  ASSIGN_OR_RETURN(std::string signature, signature_bytes(signatures, spec.label));
  ASSIGN_OR_RETURN(std::string base,
                   signature_base(spec.components, spec.signature_params, request));
  if (!key.verify(base, signature)) {
    return forbidden("bad signature: it does not verify with the configured verification key");
  }
  return Status::ok();
}

sf::InnerList ratchet_signature_params(std::int64_t created) {
  sf::InnerList list;
  for (const std::string_view component : kRequiredComponents) {
    list.items.push_back(sf::Item{std::string(component), {}});
  }
  list.params = {{"created", created},
                 {"keyid", std::string(kSignatureKeyId)},
                 {"alg", std::string(kSignatureAlgorithm)}};
  return list;
}

}  // namespace

std::string content_digest_sha512(std::string_view body) {
  return "sha-512=:" + base64_encode(digest(EVP_sha512(), body)) + ":";
}

Result<SignatureHeaders> sign_request(const SigningKey& key, std::string_view method,
                                      std::string_view path, std::string_view authority,
                                      std::string_view content_type, std::string_view body,
                                      std::int64_t created_unix_seconds) {
  SignatureHeaders headers;
  headers.content_digest = content_digest_sha512(body);
  const HeaderLookup lookup = [&](std::string_view name) -> std::optional<std::string> {
    if (name == "content-type") return std::string(content_type);
    if (name == "content-digest") return headers.content_digest;
    return std::nullopt;
  };
  const sf::InnerList params = ratchet_signature_params(created_unix_seconds);
  const std::string serialized_params = sf::serialize_inner_list(params);
  const std::vector<std::string> components(kRequiredComponents.begin(), kRequiredComponents.end());
  ASSIGN_OR_RETURN(std::string base, signature_base(components, serialized_params,
                                                    RequestView{method, path, authority, lookup}));
  ASSIGN_OR_RETURN(std::string signature, key.sign(base));
  headers.signature_input = std::string(kSignatureLabel) + "=" + serialized_params;
  headers.signature = std::string(kSignatureLabel) + "=:" + base64_encode(signature) + ":";
  return headers;
}

Result<std::vector<SignatureSpec>> parse_signature_input(std::string_view field_value) {
  Result<sf::Dictionary> dictionary = sf::parse_dictionary(field_value);
  if (!dictionary) return forbidden("bad Signature-Input: " + dictionary.status().message());
  std::vector<SignatureSpec> specs;
  for (const auto& [label, member] : *dictionary) {
    ASSIGN_OR_RETURN(SignatureSpec spec, read_signature_spec(label, member));
    specs.push_back(std::move(spec));
  }
  return specs;
}

Result<std::string> parse_signature(std::string_view field_value, std::string_view label) {
  Result<sf::Dictionary> dictionary = sf::parse_dictionary(field_value);
  if (!dictionary) return forbidden("bad Signature: " + dictionary.status().message());
  return signature_bytes(*dictionary, label);
}

Status verify_content_digest(std::string_view field_value, std::string_view body) {
  Result<sf::Dictionary> dictionary = sf::parse_dictionary(field_value);
  if (!dictionary) return forbidden("bad Content-Digest: " + dictionary.status().message());
  bool checked = false;
  for (const auto& [algorithm, member] : *dictionary) {
    const EVP_MD* md = algorithm == "sha-512"   ? EVP_sha512()
                       : algorithm == "sha-256" ? EVP_sha256()
                                                : nullptr;
    if (md == nullptr) continue;  // other algorithms are allowed alongside, and ignored
    const auto* item = std::get_if<sf::Item>(&member);
    const auto* expected = item ? std::get_if<sf::ByteSequence>(&item->value) : nullptr;
    if (!expected) return forbidden("Content-Digest " + algorithm + " is not a byte sequence");
    if (!equal_in_constant_time(expected->bytes, digest(md, body))) {
      return forbidden("Content-Digest does not match the body");
    }
    checked = true;
  }
  if (!checked) return forbidden("Content-Digest has no sha-512 or sha-256 digest");
  return Status::ok();
}

Result<VerifiedSignature> verify_request_header(const VerificationKey& key, std::string_view method,
                                                std::string_view path_with_optional_query,
                                                std::string_view authority,
                                                const HeaderLookup& headers, Micros now) {
  const std::optional<std::string> input = headers("signature-input");
  const std::optional<std::string> signature = headers("signature");
  if (!input || !signature || trim_ows(*input).empty()) {
    return forbidden("request is not signed (no Signature-Input or Signature header)");
  }
  ASSIGN_OR_RETURN(std::vector<SignatureSpec> specs, parse_signature_input(*input));
  if (specs.empty()) return forbidden("request is not signed (empty Signature-Input)");
  Result<sf::Dictionary> signatures = sf::parse_dictionary(*signature);
  if (!signatures) return forbidden("bad Signature: " + signatures.status().message());

  // Any one signature that verifies completely is enough; others (say, a proxy's, under
  // its own key id) are ignored. When none does, the first one's failure is the reason.
  const RequestView request{method, path_with_optional_query, authority, headers};
  Status first_failure;
  for (const SignatureSpec& spec : specs) {
    Status status = verify_signature(key, spec, *signatures, request, now);
    if (status.is_ok()) {
      if (!headers("content-digest")) return forbidden("request has no Content-Digest header");
      ASSIGN_OR_RETURN(std::string bytes, signature_bytes(*signatures, spec.label));
      return VerifiedSignature{std::move(bytes), *spec.created};
    }
    if (first_failure.is_ok()) first_failure = std::move(status);
  }
  return first_failure;
}

Result<VerifiedSignature> verify_request_signature(
    const VerificationKey& key, std::string_view method, std::string_view path_with_optional_query,
    std::string_view authority, const HeaderLookup& headers, std::string_view body, Micros now) {
  ASSIGN_OR_RETURN(
      VerifiedSignature verified,
      verify_request_header(key, method, path_with_optional_query, authority, headers, now));
  RETURN_IF_ERROR(verify_content_digest(headers("content-digest").value_or(""), body));
  return verified;
}

Status verify_request(const VerificationKey& key, std::string_view method,
                      std::string_view path_with_optional_query, std::string_view authority,
                      const HeaderLookup& headers, std::string_view body, Micros now) {
  return verify_request_signature(key, method, path_with_optional_query, authority, headers, body,
                                  now)
      .status();
}

}  // namespace ratchet::protocol
