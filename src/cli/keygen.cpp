// ratchet keygen [--out FILE]
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "cli/command.hpp"
#include "protocol/signing.hpp"

namespace ratchet::cli {

int run_keygen(int argc, char** argv) {
  CLI::App app(
      "Make an Ed25519 key pair for signing requests to endpoints: the private key "
      "(PEM) for `ratchet server --signing-key`, the public key for the SDK's "
      "DISPATCH_VERIFICATION_KEY.",
      "keygen");
  std::string out;
  app.add_option("--out", out, "write the private key to this file (mode 0600; must not exist)")
      ->type_name("FILE");
  if (auto exit_code = parse(app, argc, argv)) return *exit_code;
  auto key = protocol::SigningKey::generate();
  if (!key.is_ok()) return fail(key.status());
  std::string private_pem = key->private_pem();
  if (out.empty()) {
    std::printf("%s", private_pem.c_str());
  } else {
    int fd = open(out.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
      return fail(Status(errno == EEXIST ? Code::kFailedPrecondition : Code::kInternal,
                         "cannot create " + out + ": " + std::strerror(errno)));
    }
    bool written = write(fd, private_pem.data(), private_pem.size()) ==
                   static_cast<ssize_t>(private_pem.size());
    close(fd);
    if (!written) return fail(internal_error("cannot write " + out));
    std::fprintf(stderr, "wrote the private key to %s\n", out.c_str());
  }
  std::printf("%s", key->public_pem().c_str());
  std::printf("DISPATCH_VERIFICATION_KEY=%s\n", key->public_key_base64().c_str());
  return 0;
}

}  // namespace ratchet::cli
