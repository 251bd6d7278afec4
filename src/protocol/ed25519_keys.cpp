// SigningKey and VerificationKey (declared in signing.hpp): Ed25519 keys. OpenSSL 3 reads
// and writes them (PEM, raw); libsodium signs and verifies, in half the time of OpenSSL
// 3.0's Ed25519 (docs/performance.md): two signatures and two verifications are on the
// path of every step of a coroutine. Every OpenSSL failure becomes a Status; the OpenSSL
// error queue is drained so that a failure here never leaks into an unrelated caller's
// error report.
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sodium.h>

#include <array>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "protocol/base64.hpp"
#include "protocol/signing.hpp"

namespace ratchet::protocol {
namespace {

constexpr std::size_t kRawKeyBytes = 32;
constexpr std::size_t kSignatureBytes = 64;
constexpr std::size_t kMaxPemBytes = 64 * 1024;

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct BioFree {
  void operator()(BIO* p) const { BIO_free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using BioPtr = std::unique_ptr<BIO, BioFree>;

const unsigned char* bytes_of(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

// libsodium picks its implementations once (thread-safe, idempotent); it fails only
// when it cannot read the system's randomness, which signing and verifying never use.
void ready_sodium() {
  static const int ready = sodium_init();
  (void)ready;
}

// The first queued OpenSSL error as text (or `fallback`), leaving the queue empty.
std::string take_openssl_error(std::string_view fallback) {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return std::string(fallback);
  char text[256];
  ERR_error_string_n(code, text, sizeof text);
  return text;
}

// Refuses to decrypt: an encrypted PEM must fail, not prompt on the terminal.
int refuse_password(char*, int, int, void*) { return -1; }

std::string trim(std::string_view s) {
  const auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return std::string(s);
}

// DISPATCH_VERIFICATION_KEY holds PEM on one line, with `\n` written as two characters.
std::string unescape_newlines(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\' && i + 1 < text.size() && text[i + 1] == 'n') {
      out += '\n';
      ++i;
    } else {
      out += text[i];
    }
  }
  return out;
}

Result<BioPtr> memory_bio(std::string_view data) {
  if (data.size() > kMaxPemBytes) return invalid_argument("PEM text is too long");
  BioPtr bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
  if (!bio) return internal_error(take_openssl_error("cannot allocate a BIO"));
  return bio;
}

Status require_ed25519(const EVP_PKEY* pkey, std::string_view what) {
  if (EVP_PKEY_get_id(pkey) == EVP_PKEY_ED25519) return Status::ok();
  return invalid_argument(std::string(what) + " is not an Ed25519 key");
}

// Writes a key as PEM with `write` (a PEM_write_bio_* function).
template <typename Writer>
std::string to_pem(EVP_PKEY* pkey, Writer write) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || write(bio.get(), pkey) != 1) {
    ERR_clear_error();
    return {};
  }
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return size > 0 ? std::string(data, static_cast<std::size_t>(size)) : std::string();
}

std::string raw_public_key(EVP_PKEY* pkey) {
  if (pkey == nullptr) return {};
  std::string raw(kRawKeyBytes, '\0');
  std::size_t size = raw.size();
  if (EVP_PKEY_get_raw_public_key(pkey, reinterpret_cast<unsigned char*>(raw.data()), &size) != 1 ||
      size != kRawKeyBytes) {
    ERR_clear_error();
    return {};
  }
  return raw;
}

std::string public_pem_of(EVP_PKEY* pkey) {
  return to_pem(pkey, [](BIO* bio, EVP_PKEY* key) { return PEM_write_bio_PUBKEY(bio, key); });
}

Result<PkeyPtr> public_key_from_raw(std::string_view raw32) {
  if (raw32.size() != kRawKeyBytes) {
    return invalid_argument("an Ed25519 public key is 32 bytes, got " +
                            std::to_string(raw32.size()));
  }
  PkeyPtr pkey(
      EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, bytes_of(raw32), raw32.size()));
  if (!pkey) return invalid_argument(take_openssl_error("invalid Ed25519 public key"));
  return pkey;
}

Result<PkeyPtr> public_key_from_pem(std::string_view pem) {
  ASSIGN_OR_RETURN(BioPtr bio, memory_bio(pem));
  PkeyPtr pkey(PEM_read_bio_PUBKEY(bio.get(), nullptr, refuse_password, nullptr));
  if (!pkey) {
    return invalid_argument("not a PEM public key (SubjectPublicKeyInfo): " +
                            take_openssl_error("unreadable"));
  }
  RETURN_IF_ERROR(require_ed25519(pkey.get(), "the PEM public key"));
  return pkey;
}

}  // namespace

// The SDK's built-in server checks a request's signature once its header is in (to
// refuse a forged one before reading its body), and handle() checks it again with the
// body: the second check finds the first one's result here instead of verifying again
// (117 us on the machine docs/performance.md measures). Sound because a verification
// is a pure function of key, message and signature; only successes are kept, by the
// SHA-256 of message and signature.
class VerifiedCache {
 public:
  using Digest = std::array<unsigned char, 32>;

  static Digest digest_of(std::string_view message, std::string_view signature) {
    static_assert(sizeof(Digest) == crypto_hash_sha256_BYTES);
    Digest d{};
    crypto_hash_sha256_state state;
    crypto_hash_sha256_init(&state);
    crypto_hash_sha256_update(&state, bytes_of(message), message.size());
    crypto_hash_sha256_update(&state, bytes_of(signature), signature.size());
    crypto_hash_sha256_final(&state, d.data());
    return d;
  }

  bool contains(const Digest& d) const {
    std::lock_guard lock(mutex_);
    for (const Digest& kept : kept_) {
      if (kept == d) return true;
    }
    return false;
  }

  void add(const Digest& d) {
    std::lock_guard lock(mutex_);
    kept_[next_] = d;
    next_ = (next_ + 1) % kept_.size();
  }

 private:
  mutable std::mutex mutex_;
  std::array<Digest, 16> kept_{};  // all zeros matches no SHA-256 in practice
  std::size_t next_ = 0;
};

// The 32 bytes libsodium verifies with, beside the OpenSSL key that writes PEM.
struct VerificationKey::Impl {
  explicit Impl(PkeyPtr key) : pkey(std::move(key)) {
    ready_sodium();
    const std::string raw = raw_public_key(pkey.get());
    usable = raw.size() == public_key.size();
    if (usable) std::memcpy(public_key.data(), raw.data(), raw.size());
  }
  PkeyPtr pkey;
  std::array<unsigned char, crypto_sign_PUBLICKEYBYTES> public_key{};
  bool usable = false;  // false when pkey is null (out of memory): it verifies nothing
  mutable VerifiedCache verified;
};

// libsodium's secret key (the 32-byte seed, then the public key), wiped on destruction.
struct SigningKey::Impl {
  explicit Impl(PkeyPtr key) : pkey(std::move(key)) { ready_sodium(); }
  ~Impl() { sodium_memzero(secret_key.data(), secret_key.size()); }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
  // The key as libsodium signs with it, derived from its seed (OpenSSL's raw private key).
  static Result<std::shared_ptr<const Impl>> make(PkeyPtr pkey);

  PkeyPtr pkey;
  std::array<unsigned char, crypto_sign_SECRETKEYBYTES> secret_key{};
};

Result<std::shared_ptr<const SigningKey::Impl>> SigningKey::Impl::make(PkeyPtr pkey) {
  auto impl = std::make_shared<Impl>(std::move(pkey));
  std::array<unsigned char, crypto_sign_SEEDBYTES> seed{};
  std::size_t size = seed.size();
  std::array<unsigned char, crypto_sign_PUBLICKEYBYTES> public_key{};
  const bool ok =
      EVP_PKEY_get_raw_private_key(impl->pkey.get(), seed.data(), &size) == 1 &&
      size == seed.size() &&
      crypto_sign_seed_keypair(public_key.data(), impl->secret_key.data(), seed.data()) == 0;
  sodium_memzero(seed.data(), seed.size());
  if (!ok) return internal_error(take_openssl_error("cannot read the Ed25519 private key"));
  return std::shared_ptr<const Impl>(std::move(impl));
}

// --- VerificationKey ---

Result<VerificationKey> VerificationKey::parse(std::string_view text) {
  const std::string trimmed = trim(text);
  if (trimmed.empty()) return invalid_argument("the verification key is empty");
  if (trimmed.find("-----BEGIN") != std::string::npos) {
    Result<PkeyPtr> pkey = public_key_from_pem(unescape_newlines(trimmed));
    if (!pkey) return invalid_argument("invalid verification key: " + pkey.status().message());
    return VerificationKey(std::make_shared<const Impl>(std::move(pkey).value()));
  }
  std::optional<std::string> raw = base64_decode(trimmed);
  if (!raw || raw->size() != kRawKeyBytes) {
    return invalid_argument(
        "invalid verification key: expected a PEM public key or the base64 of a raw 32-byte "
        "Ed25519 public key");
  }
  return from_raw_public_key(*raw);
}

Result<VerificationKey> VerificationKey::from_raw_public_key(std::string_view raw32) {
  ASSIGN_OR_RETURN(PkeyPtr pkey, public_key_from_raw(raw32));
  return VerificationKey(std::make_shared<const Impl>(std::move(pkey)));
}

bool VerificationKey::verify(std::string_view message, std::string_view signature) const {
  if (!impl_->usable || signature.size() != kSignatureBytes) return false;
  const VerifiedCache::Digest seen = VerifiedCache::digest_of(message, signature);
  if (impl_->verified.contains(seen)) return true;
  const bool ok = crypto_sign_verify_detached(bytes_of(signature), bytes_of(message),
                                              message.size(), impl_->public_key.data()) == 0;
  if (ok) impl_->verified.add(seen);
  return ok;
}

std::string VerificationKey::public_key_base64() const {
  return base64_encode(raw_public_key(impl_->pkey.get()));
}

std::string VerificationKey::public_pem() const { return public_pem_of(impl_->pkey.get()); }

// --- SigningKey ---

Result<SigningKey> SigningKey::generate() {
  PkeyPtr pkey(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  if (!pkey) return internal_error(take_openssl_error("cannot generate an Ed25519 key"));
  ASSIGN_OR_RETURN(auto impl, Impl::make(std::move(pkey)));
  return SigningKey(std::move(impl));
}

Result<SigningKey> SigningKey::from_raw_private_key(std::string_view raw32) {
  if (raw32.size() != kRawKeyBytes) {
    return invalid_argument("an Ed25519 private key is 32 bytes, got " +
                            std::to_string(raw32.size()));
  }
  PkeyPtr pkey(
      EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, bytes_of(raw32), raw32.size()));
  if (!pkey) return invalid_argument(take_openssl_error("invalid Ed25519 private key"));
  ASSIGN_OR_RETURN(auto impl, Impl::make(std::move(pkey)));
  return SigningKey(std::move(impl));
}

Result<SigningKey> SigningKey::from_private_pem(std::string_view pem) {
  ASSIGN_OR_RETURN(BioPtr bio, memory_bio(pem));
  PkeyPtr pkey(PEM_read_bio_PrivateKey(bio.get(), nullptr, refuse_password, nullptr));
  if (!pkey) {
    return invalid_argument("not an unencrypted PEM private key (PKCS#8): " +
                            take_openssl_error("unreadable"));
  }
  RETURN_IF_ERROR(require_ed25519(pkey.get(), "the PEM private key"));
  ASSIGN_OR_RETURN(auto impl, Impl::make(std::move(pkey)));
  return SigningKey(std::move(impl));
}

std::string SigningKey::private_pem() const {
  return to_pem(impl_->pkey.get(), [](BIO* bio, EVP_PKEY* key) {
    return PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  });
}

std::string SigningKey::public_key_base64() const {
  return base64_encode(raw_public_key(impl_->pkey.get()));
}

std::string SigningKey::public_pem() const { return public_pem_of(impl_->pkey.get()); }

VerificationKey SigningKey::verification_key() const {
  // A private key always has a public half, so this fails only when out of memory; the key
  // then verifies nothing.
  const std::string raw = raw_public_key(impl_->pkey.get());
  PkeyPtr pkey;
  if (raw.size() == kRawKeyBytes) {
    pkey.reset(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, bytes_of(raw), raw.size()));
  }
  ERR_clear_error();
  return VerificationKey(std::make_shared<const VerificationKey::Impl>(std::move(pkey)));
}

Result<std::string> SigningKey::sign(std::string_view message) const {
  std::string signature(kSignatureBytes, '\0');
  if (crypto_sign_detached(reinterpret_cast<unsigned char*>(signature.data()), nullptr,
                           bytes_of(message), message.size(), impl_->secret_key.data()) != 0) {
    return internal_error("Ed25519 signing failed");
  }
  return signature;
}

}  // namespace ratchet::protocol
