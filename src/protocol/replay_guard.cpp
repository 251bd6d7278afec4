#include "protocol/replay_guard.hpp"

#include <algorithm>
#include <cstring>
#include <string>

#include "protocol/signing.hpp"

namespace ratchet::protocol {
namespace {

// Reads up to 16 bytes of `signature` as two integers (zero-padded).
std::pair<std::uint64_t, std::uint64_t> key_of(std::string_view signature) {
  unsigned char bytes[16] = {};
  std::memcpy(bytes, signature.data(), std::min<std::size_t>(signature.size(), sizeof bytes));
  std::uint64_t first = 0;
  std::uint64_t second = 0;
  std::memcpy(&first, bytes, 8);
  std::memcpy(&second, bytes + 8, 8);
  return {first, second};
}

Status too_many() {
  return unavailable(
      "too many signed requests within 5 minutes to tell this one from a replay: sign it again "
      "(a later `created`) and send it again");
}

}  // namespace

ReplayGuard::ReplayGuard(std::size_t capacity) : capacity_(std::max<std::size_t>(capacity, 1)) {}

Status ReplayGuard::admit(std::string_view signature, std::int64_t created_seconds, Micros now) {
  std::lock_guard lock(mutex_);
  forget_stale(now);
  if (created_seconds <= floor_) return too_many();
  Key key = key_of(signature);
  if (!seen_.insert(key).second) {
    return unavailable(
        "replayed request: this signature was already used (a server's retry in the same second "
        "carries the same signature; it is accepted again once signed anew)");
  }
  by_created_.emplace(created_seconds, key);
  if (by_created_.size() > capacity_) {
    auto oldest = by_created_.begin();
    floor_ = std::max(floor_, oldest->first);
    seen_.erase(oldest->second);
    by_created_.erase(oldest);
    if (created_seconds <= floor_) return too_many();
  }
  return Status::ok();
}

std::size_t ReplayGuard::size() const {
  std::lock_guard lock(mutex_);
  return seen_.size();
}

// A signature created before now - kMaxSignatureAge fails verification as
// stale: there is no need to remember it.
void ReplayGuard::forget_stale(Micros now) {
  std::int64_t oldest_valid = (now - kMaxSignatureAge) / kMicrosPerSecond;
  while (!by_created_.empty() && by_created_.begin()->first < oldest_valid) {
    seen_.erase(by_created_.begin()->second);
    by_created_.erase(by_created_.begin());
  }
}

}  // namespace ratchet::protocol
