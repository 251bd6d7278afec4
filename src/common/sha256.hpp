// SHA-256 (FIPS 180-4), for naming values by their content (the store's
// blobs, docs/storage.md). Here rather than OpenSSL's because the storage
// library is linked into the static `ratchet` command, which links no
// cryptography library.
#pragma once

#include <string>
#include <string_view>

namespace ratchet {

// The 32-byte digest of `bytes`.
std::string sha256(std::string_view bytes);

}  // namespace ratchet
