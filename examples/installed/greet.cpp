// A program built against the installed SDK, by CMake (CMakeLists.txt beside
// it) or by pkg-config:
//
//   g++ -std=c++20 greet.cpp $(pkg-config --cflags --libs ratchet) -o greet
//
// `greet NAME` runs a durable coroutine through a Ratchet server (`ratchet dev
// http://127.0.0.1:8000`, then the exports it prints). `greet --check` needs no
// server: it registers the functions and asks the endpoint one question, to
// show that the program linked and runs (scripts/check-install.sh).
#include <cctype>
#include <iostream>
#include <ratchet/ratchet.hpp>
#include <string>
#include <string_view>

// The public key of RFC 8032's first Ed25519 test vector: any valid key will do.
constexpr const char* kSomePublicKey = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";

int check(ratchet::Dispatch& dispatch) {
  // An unsigned request, to an endpoint that verifies signatures: refused.
  ratchet::Response response =
      dispatch.handle({"POST", "/dispatch.sdk.v1.FunctionService/Run", {}, "unsigned"});
  if (response.status != 401 && response.status != 403) {
    std::cerr << "greet --check: expected a 401 or 403, got " << response.status << ": "
              << response.body << "\n";
    return 1;
  }
  std::cout << "greet --check: ok\n";
  return 0;
}

int main(int argc, char** argv) try {
  const bool checking = argc > 1 && std::string_view(argv[1]) == "--check";
  ratchet::Options options;  // unset fields come from the DISPATCH_* variables
  if (checking) {
    options.api_url = "http://127.0.0.1:4450";
    options.verification_key = kSomePublicKey;
    options.worker_threads = 1;
  }
  ratchet::Dispatch dispatch(options);

  auto shout = dispatch.function("shout", [](std::string text) {
    for (char& c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return text;
  });
  auto greet = dispatch.function("greet", [shout](std::string name) -> ratchet::Task<std::string> {
    std::string loud = co_await shout(name);  // a durable step
    co_return "hello, " + loud;
  });
  if (checking) return check(dispatch);

  dispatch.start();
  std::cout << greet.wait(greet.dispatch(argc > 1 ? argv[1] : "world")) << "\n";
  dispatch.stop();
  return 0;
} catch (const std::exception& e) {
  std::cerr << "greet: " << e.what() << "\n";
  return 1;
}
