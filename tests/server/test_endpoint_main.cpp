// test_endpoint_main [--port P] [--verification-key BASE64] [--delay-ms MIN[:MAX]]
//
// The test endpoint (test_endpoint.hpp) as a process of its own, for benchmarks
// and tests that need it outside the test binary. Prints `listening on PORT`
// once it serves; runs until SIGINT or SIGTERM.
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "test_endpoint.hpp"

namespace {

int usage(const char* why) {
  std::fprintf(stderr,
               "test_endpoint_main: %s\nusage: test_endpoint_main [--port P] "
               "[--verification-key BASE64] [--delay-ms MIN[:MAX]]\n",
               why);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  ratchet::testing::EndpointOptions options;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (i + 1 >= argc) return usage(("missing value for " + flag).c_str());
    std::string value = argv[++i];
    if (flag == "--port") {
      options.port = static_cast<std::uint16_t>(std::atoi(value.c_str()));
    } else if (flag == "--verification-key") {
      auto key = ratchet::protocol::VerificationKey::parse(value);
      if (!key.is_ok()) return usage(key.status().message().c_str());
      options.verification_key = *key;
    } else if (flag == "--delay-ms") {
      auto colon = value.find(':');
      options.min_delay = std::chrono::milliseconds(std::atoi(value.substr(0, colon).c_str()));
      options.max_delay = colon == std::string::npos
                              ? options.min_delay
                              : std::chrono::milliseconds(std::atoi(value.c_str() + colon + 1));
    } else {
      return usage(("unknown flag " + flag).c_str());
    }
  }
  // Blocked before any thread starts, so that sigwait below receives them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
  try {
    ratchet::testing::TestEndpoint endpoint(options);
    std::printf("listening on %u\n", static_cast<unsigned>(endpoint.port()));
    std::fflush(stdout);
    int received = 0;
    sigwait(&signals, &received);
    endpoint.stop();
    std::fprintf(stderr, "test_endpoint_main: %zu requests, %zu protocol violations\n",
                 endpoint.request_count(), endpoint.violations().size());
    for (const auto& violation : endpoint.violations()) {
      std::fprintf(stderr, "  violation: %s\n", violation.c_str());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "test_endpoint_main: %s\n", e.what());
    return 1;
  }
  return 0;
}
