// ReplayGuard: an endpoint's memory of the signatures it accepted, to refuse a
// signed request sent again while its signature is still valid (a replay).
//
// The Dispatch protocol has no nonce: a RunRequest's signature, over its
// method, path, authority, content type and body digest with a `created` time,
// is its only identity, and it stays valid for kMaxSignatureAge (5 minutes).
// So each accepted signature is remembered until it is stale, and the same
// signature is refused while remembered.
//
// Memory is bounded: at `capacity` signatures the oldest (by `created`) is
// forgotten, and from then on every signature created at or before the one
// forgotten is refused too (it might be the one forgotten). Replays stay
// refused; what the bound costs is that, past `capacity` requests within the
// window, requests created in the same second as the newest forgotten one are
// refused as well, as unavailable (a server retries them under a new signature).
//
// Ed25519 is deterministic: a server that sends the same RunRequest twice in
// the same second (a retry 100 ms after a temporary failure) sends the same
// signature, and the second copy is refused like a replay. That is why the
// refusal is kUnavailable: the server retries it a little later, under a new
// `created` and so a new signature.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <mutex>
#include <string_view>
#include <unordered_set>
#include <utility>

#include "common/clock.hpp"
#include "common/status.hpp"

namespace ratchet::protocol {

class ReplayGuard {
 public:
  static constexpr std::size_t kDefaultCapacity = 65'536;  // about 6 MB

  explicit ReplayGuard(std::size_t capacity = kDefaultCapacity);

  // OK, and remembered, for a signature not seen within its validity window;
  // kUnavailable with a one-line reason otherwise (see above). `signature` is
  // the verified signature's bytes, `created_seconds` its `created`. Any thread.
  Status admit(std::string_view signature, std::int64_t created_seconds, Micros now);

  std::size_t size() const;

 private:
  // The first 16 bytes of an Ed25519 signature (its R, a hash of key and
  // message): unique enough, and an attacker cannot choose them without the key.
  using Key = std::pair<std::uint64_t, std::uint64_t>;
  struct KeyHash {
    std::size_t operator()(const Key& key) const { return key.first ^ (key.second * 31); }
  };

  void forget_stale(Micros now);

  const std::size_t capacity_;
  mutable std::mutex mutex_;
  std::unordered_set<Key, KeyHash> seen_;
  std::multimap<std::int64_t, Key> by_created_;
  std::int64_t floor_ = std::numeric_limits<std::int64_t>::min();  // refuse created <= floor_
};

}  // namespace ratchet::protocol
