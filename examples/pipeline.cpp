// The pipeline: a durable coroutine of two steps. Each co_await is recorded by
// the server, so the pipeline survives a crash of this process between steps.
//
//   ratchet dev http://127.0.0.1:8000    # in another terminal; prints the exports
//   export DISPATCH_API_KEY=... DISPATCH_ENDPOINT_URL=... DISPATCH_VERIFICATION_KEY=...
//   ./example_pipeline hello
#include <cstdio>
#include <iostream>
#include <ratchet/ratchet.hpp>
#include <string>

int main(int argc, char** argv) try {
  ratchet::Dispatch dispatch;  // configured from the DISPATCH_* variables

  auto transform = dispatch.function(
      "transform", [](std::string msg) -> ratchet::Task<std::string> { co_return msg + "!"; });

  // A plain function: here it prints; a real one would POST somewhere and call
  // ratchet::check_http_status(code) so that a 5xx is retried.
  auto publish = dispatch.function("publish", [](std::string to, nlohmann::json payload) {
    std::printf("publish to %s: %s\n", to.c_str(), payload.dump().c_str());
  });

  // Captures by value: a Function is a cheap handle, and the lambda lives as
  // long as the Dispatch.
  auto pipeline = dispatch.function(
      "pipeline", [transform, publish](std::string msg) -> ratchet::Task<std::string> {
        msg = co_await transform(msg);  // a durable step
        nlohmann::json payload = {{"msg", msg}};
        co_await publish("stdout", payload);  // another one
        co_return msg;
      });

  dispatch.start();  // serve the functions at DISPATCH_ENDPOINT_ADDR
  ratchet::Handle<std::string> call = pipeline.dispatch(argc > 1 ? argv[1] : "hello");
  std::cout << "dispatched pipeline as " << call.id() << "\n";
  std::string result = pipeline.wait(call);  // the server's Wait RPC
  std::cout << "result: " << result << "\n";
  dispatch.stop();
  return 0;
} catch (const std::exception& e) {
  std::cerr << "example_pipeline: " << e.what() << "\n";
  return 1;
}
