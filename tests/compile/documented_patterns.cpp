// Every pattern docs/sdk.md shows, compiled with -Wall -Wextra -Werror by the
// compile.documented_patterns test: if the SDK's API drifts from its docs,
// this stops compiling. It is never run.
#include <chrono>
#include <cstdint>
#include <optional>
#include <ratchet/ratchet.hpp>
#include <stdexcept>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using nlohmann::json;

namespace shop {
struct OutOfStock : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct PaymentDeclined : std::runtime_error {
  using std::runtime_error::runtime_error;
};
std::string charge_card(const std::string&, int) { return "ch-1"; }
void refund_card(const std::string&) {}
}  // namespace shop

int main() {
  ratchet::Dispatch dispatch;
  ratchet::register_error<shop::OutOfStock>(ratchet::CallStatus::kPermanentError);
  ratchet::register_error<shop::PaymentDeclined>(ratchet::CallStatus::kPermanentError);

  // Plain functions and coroutines; Functions captured by value.
  auto transform = dispatch.function(
      "transform", [](std::string msg) -> ratchet::Task<std::string> { co_return msg + "!"; });
  auto pipeline = dispatch.function("pipeline",
                                    [transform](std::string msg) -> ratchet::Task<std::string> {
                                      msg = co_await transform(msg);
                                      co_return msg;
                                    });

  // Recursion and forward references: declare, then define.
  ratchet::Function<int(int)> countdown = dispatch.declare<int(int)>("countdown");
  dispatch.define(countdown, [countdown](int n) -> ratchet::Task<int> {
    if (n == 0) co_return 0;
    co_return 1 + co_await countdown(n - 1);
  });
  auto greet = dispatch.declare<std::string(std::string)>("greet");
  auto welcome = dispatch.function("welcome", [greet](std::string name) -> ratchet::Task<std::string> {
    co_return co_await greet(name) + ", welcome";
  });
  dispatch.define(greet, [](std::string name) { return "hi " + name; });

  // Local steps, durable time, the call's identity.
  auto reminder = dispatch.function("reminder", [](std::string who) -> ratchet::Task<json> {
    std::chrono::system_clock::time_point started = co_await ratchet::now();
    std::uint64_t nonce = co_await ratchet::random();
    std::string key = ratchet::current().dispatch_id + "/email";
    co_await ratchet::step("email", [&] { return who + key; });
    co_await ratchet::sleep(24h);
    co_await ratchet::sleep_until(started + 48h);
    co_await ratchet::sleep(0s);  // a checkpoint
    co_return json{{"nonce", std::to_string(nonce)}, {"attempt", ratchet::current().attempt}};
  });

  // A saga: a charge step, a fan-out settled, compensation, the catch pattern.
  auto reserve = dispatch.function("reserve", [](std::string item) -> std::string {
    if (item.empty()) throw shop::OutOfStock("nothing to reserve");
    return "res-" + item;
  });
  auto cancel = dispatch.function("cancel", [](std::string reservation) { (void)reservation; });
  auto order = dispatch.function("order", [reserve, cancel](std::vector<std::string> items,
                                                           int cents) -> ratchet::Task<json> {
    const std::string key = ratchet::current().dispatch_id + "/charge";
    std::optional<std::string> declined;
    std::string charge;
    try {
      charge = co_await ratchet::step("charge", [&] { return shop::charge_card(key, cents); });
    } catch (const shop::PaymentDeclined& e) {
      declined = e.what();  // no co_await in a handler: note it, act after
    }
    if (declined) co_return json{{"status", "declined"}, {"reason", *declined}};

    std::vector<ratchet::Call<std::string>> calls;
    for (const auto& item : items) calls.push_back(reserve(item));
    (void)co_await reserve.with(ratchet::CallOptions().max_attempts(3))(items.front());
    std::vector<ratchet::Settled<std::string>> settled =
        co_await ratchet::gather_settled(std::move(calls));
    std::vector<std::string> reserved;
    bool failed = false;
    for (const auto& r : settled) {
      if (r.ok()) {
        reserved.push_back(r.value());
      } else {
        failed = true;
        (void)r.error().status();
      }
    }
    if (!failed) co_return json{{"status", "confirmed"}};
    std::vector<ratchet::Call<void>> cancels;
    for (const auto& reservation : reserved) cancels.push_back(cancel(reservation));
    co_await ratchet::gather(std::move(cancels));
    co_await ratchet::step("refund", [&] { shop::refund_card(key); });
    co_return json{{"status", "compensated"}};
  });

  // Dispatching: typed handles, per-call options, the local wait's own timeout.
  dispatch.start();
  ratchet::Handle<std::string> handle = pipeline.dispatch("hello");
  std::string result = pipeline.wait(handle);
  auto options = ratchet::CallOptions()
                     .run_key("order-42", ratchet::RunKeyScope::kOnceEver)
                     .expiration(1h)
                     .max_attempts(5);
  ratchet::Handle<json> placed = order.with(options).dispatch({"chair"}, 2500);
  try {
    json done = order.wait(placed, 30s);
    (void)done;
  } catch (const ratchet::WaitTimeoutError& e) {
    (void)e.dispatch_id();  // the call goes on: wait again later
  } catch (const ratchet::TimeoutError&) {
    // the call itself timed out on the server
  }
  std::string stored = handle.id();
  (void)pipeline.wait(ratchet::Handle<std::string>(stored));
  (void)pipeline.dispatch(ratchet::RunKey{"once-while-running"}, "x");
  auto batch = dispatch.batch();
  batch.add(countdown(3)).add(welcome("Ada"));
  std::vector<std::string> ids = batch.dispatch();
  (void)countdown.wait(ratchet::Handle<int>(ids.at(0)));
  (void)reminder;
  (void)result;
  dispatch.stop();
  return 0;
}
