// An order saga: charge the card, reserve every item at once, and if any
// reservation fails, cancel the others and refund the charge. docs/sdk.md
// ("Sagas and errors") walks through it.
//
//   ratchet dev http://127.0.0.1:8000    # in another terminal; prints the exports
//   export DISPATCH_...                  # the lines it prints
//   ./example_saga order-1 chair desk           # confirmed
//   ./example_saga order-2 chair sold-out-lamp  # compensated: chair cancelled, refunded
//   ./example_saga order-1 chair desk           # order-1 again: its first call's result
//
// The payment provider here is a stand-in in this process; like a real one,
// it charges once per idempotency key, which is what makes the charge step
// safe to run more than once.
#include <algorithm>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <ratchet/ratchet.hpp>
#include <stdexcept>
#include <string>
#include <vector>

namespace shop {

// Errors of the domain, registered with the status they stand for.
struct OutOfStock : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct CardDeclined : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class PaymentProvider {
 public:
  // Charges once per key: a second charge with the key returns the first one's id.
  std::string charge(const std::string& key, int cents) {
    if (cents > 100'000) throw CardDeclined("the card was declined for " + std::to_string(cents));
    std::lock_guard lock(mutex_);
    auto [it, created] = charges_.emplace(key, "ch-" + std::to_string(charges_.size() + 1));
    if (created) std::cout << "  payments: charged " << cents << " as " << it->second << "\n";
    return it->second;
  }
  void refund(const std::string& key) {
    std::lock_guard lock(mutex_);
    if (refunded_.emplace(key, true).second) std::cout << "  payments: refunded " << key << "\n";
  }

 private:
  std::mutex mutex_;
  std::map<std::string, std::string> charges_;
  std::map<std::string, bool> refunded_;
};

}  // namespace shop

int main(int argc, char** argv) try {
  using nlohmann::json;
  ratchet::register_error<shop::OutOfStock>(ratchet::CallStatus::kPermanentError);
  ratchet::register_error<shop::CardDeclined>(ratchet::CallStatus::kPermanentError);
  auto payments = std::make_shared<shop::PaymentProvider>();
  ratchet::Dispatch dispatch;

  auto reserve = dispatch.function("reserve", [](std::string item) -> std::string {
    // OutOfStock: permanent, not retried; the saga sees it in gather_settled.
    // (A TemporaryError would be retried by the server; a plain
    // std::runtime_error is PERMANENT_ERROR: not retried either.)
    if (item.rfind("sold-out", 0) == 0) throw shop::OutOfStock(item + " is sold out");
    return "res-" + item;
  });
  auto cancel = dispatch.function("cancel", [](std::string reservation) {
    std::cout << "  warehouse: cancelled " << reservation << "\n";
  });

  auto order = dispatch.function(
      "order",
      [payments, reserve, cancel](std::vector<std::string> items,
                                  int cents) -> ratchet::Task<json> {
        // The same on every attempt and replay of this call.
        const std::string key = ratchet::current().dispatch_id + "/charge";

        // A local step runs here, at least once until recorded: the key makes
        // a second run harmless. co_await is not allowed in a catch block, so
        // the handler notes the failure and the code after it acts.
        std::optional<std::string> declined;
        std::string charge;
        try {
          charge = co_await ratchet::step("charge", [&] { return payments->charge(key, cents); });
        } catch (const shop::CardDeclined& e) {
          declined = e.what();
        }
        if (declined) co_return json{{"status", "declined"}, {"reason", *declined}};

        // Every reservation at once; each outcome, success or error, in order.
        std::vector<ratchet::Call<std::string>> calls;
        for (const auto& item : items) calls.push_back(reserve(item));
        std::vector<std::string> reserved;
        std::vector<std::string> failed;
        for (const auto& r : co_await ratchet::gather_settled(std::move(calls))) {
          if (r.ok()) {
            reserved.push_back(r.value());
          } else {
            failed.push_back(r.error().what());
          }
        }
        if (failed.empty()) {
          co_return json{{"status", "confirmed"}, {"charge", charge}, {"reserved", reserved}};
        }

        // Compensation: undo what succeeded.
        std::vector<ratchet::Call<void>> cancels;
        for (const auto& reservation : reserved) cancels.push_back(cancel(reservation));
        co_await ratchet::gather(std::move(cancels));
        co_await ratchet::step("refund", [&] { payments->refund(key); });
        co_return json{{"status", "compensated"}, {"failed", failed}, {"cancelled", reserved}};
      });

  dispatch.start();
  std::string order_id = argc > 1 ? argv[1] : "order-1";
  std::vector<std::string> items(argv + std::min(argc, 2), argv + argc);
  if (items.empty()) items = {"chair", "sold-out-lamp", "desk"};
  // Once ever per order id: dispatching it again returns the first call, and
  // waiting on that gives its result (nothing is charged twice).
  auto once = order.with(ratchet::CallOptions().run_key(order_id, ratchet::RunKeyScope::kOnceEver));
  ratchet::Handle<json> call = once.dispatch(items, 2500);
  json result = once.wait(call, std::chrono::minutes(1));
  std::cout << order_id << " (call " << call.id() << "): " << result.dump() << "\n";
  dispatch.stop();
  return 0;
} catch (const std::exception& e) {
  std::cerr << "example_saga: " << e.what() << "\n";
  return 1;
}
