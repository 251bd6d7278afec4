// A Ratchet endpoint mounted on an existing cpp-httplib server, next to the
// program's own routes.
//
//   ratchet dev http://127.0.0.1:8000    # in another terminal; prints the exports
//   export DISPATCH_API_KEY=... DISPATCH_ENDPOINT_URL=... DISPATCH_VERIFICATION_KEY=...
//   ./example_httplib_server             # then dispatch "greet" from any client
#include <iostream>
#include <ratchet/httplib.hpp>
#include <ratchet/ratchet.hpp>
#include <string>

int main() try {
  ratchet::Dispatch dispatch;
  auto greet = dispatch.function("greet", [](std::string name) { return "Hello, " + name; });
  (void)greet;

  httplib::Server server;
  server.Get("/health", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain");
  });
  ratchet::mount(server, dispatch);
  // Where the server reaches this service: DISPATCH_ENDPOINT_ADDR, or the
  // host and port of DISPATCH_ENDPOINT_URL.
  const std::string& addr = dispatch.config().endpoint_addr;
  std::string host = addr.substr(0, addr.rfind(':'));
  int port = std::stoi(addr.substr(addr.rfind(':') + 1));
  std::cout << "serving on " << addr << "\n";
  return server.listen(host, port) ? 0 : 1;
} catch (const std::exception& e) {
  std::cerr << "example_httplib_server: " << e.what() << "\n";
  return 1;
}
