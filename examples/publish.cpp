// A pipeline whose last step publishes over HTTP to a service that answers 503
// twice before it accepts: each 503 fails the publish call with a temporary
// error, the server retries that call with backoff, and the third attempt goes
// through. Only the failed step is retried: the pipeline's transform step is
// recorded, and the pipeline is resumed once publish has a result.
// (publish() and the local service are in publish.hpp.)
//
//   ratchet dev http://127.0.0.1:8000    # in another terminal; prints the exports
//   export DISPATCH_API_KEY=... DISPATCH_ENDPOINT_URL=... DISPATCH_VERIFICATION_KEY=...
//   ./example_publish hello
#include "publish.hpp"

#include <atomic>
#include <chrono>
#include <iostream>
#include <memory>
#include <ratchet/ratchet.hpp>
#include <string>

int main(int argc, char** argv) try {
  examples::FlakyServer service(/*failures=*/2);  // 503, 503, then 200
  ratchet::Dispatch dispatch;

  auto attempts = std::make_shared<std::atomic<int>>(0);
  auto transform = dispatch.function(
      "transform", [](std::string msg) -> ratchet::Task<std::string> { co_return msg + "!"; });
  auto publish = dispatch.function("publish", [attempts](std::string url, nlohmann::json payload) {
    ++*attempts;
    return examples::publish(std::move(url), std::move(payload));
  });

  // The URL is an argument, not read from `service` inside: a coroutine must
  // make the same calls when it is replayed, possibly by another process.
  auto pipeline = dispatch.function(
      "pipeline",
      [transform, publish](std::string url, std::string msg) -> ratchet::Task<std::string> {
        msg = co_await transform(msg);
        nlohmann::json payload = {{"msg", msg}};  // built first: see call.hpp on GCC 12
        std::string answer = co_await publish(url, payload);
        co_return msg + " (" + answer + ")";
      });

  dispatch.start();
  auto call = pipeline.dispatch(service.url("/messages"), argc > 1 ? argv[1] : "hello");
  std::cout << "dispatched pipeline as " << call.id() << "\n";
  std::string result = pipeline.wait(call, std::chrono::minutes(1));
  std::cout << "result: " << result << "\n"
            << "publish was attempted " << *attempts << " times\n";
  dispatch.stop();
  return *attempts == 3 ? 0 : 1;
} catch (const std::exception& e) {
  std::cerr << "example_publish: " << e.what() << "\n";
  return 1;
}
