// Base64 (RFC 4648 section 4, the standard alphabet) for the wire protocol: Ed25519 keys,
// Content-Digest and Signature byte sequences.
//
// Decoding is strict about the alphabet (no whitespace, no URL-safe characters) and
// lenient about padding: "=" may be present or absent, but never in the middle.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace ratchet::protocol {

std::string base64_encode(std::string_view bytes);

// The decoded bytes, or nullopt when `text` is not base64.
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace ratchet::protocol
