#include "storage/blobs.hpp"

#include "common/sha256.hpp"

namespace ratchet::blobs {

Stored store(std::string_view bytes) {
  // An empty in_row value that is not null: SQLite binds a null pointer as NULL.
  if (bytes.size() <= kThreshold) return Stored{bytes, bytes, {}};
  return Stored{bytes, std::string_view("", 0), sha256(bytes)};
}

std::int64_t lock_key(std::string_view digest) {
  std::uint64_t key = 0;
  for (std::size_t i = 0; i < 8 && i < digest.size(); ++i) {
    key = key << 8 | static_cast<unsigned char>(digest[i]);
  }
  return static_cast<std::int64_t>(key);
}

}  // namespace ratchet::blobs
