// A tour of the C++ SDK: one program that serves its durable functions and
// runs each feature once through a Ratchet server, checking every result.
// `scripts/tour.sh` runs it against a fresh `ratchet dev`; by hand:
//
//   ratchet dev http://127.0.0.1:8000    # in another terminal; prints the exports
//   export DISPATCH_API_URL=... DISPATCH_API_KEY=...        # the four lines it prints
//   export DISPATCH_ENDPOINT_URL=... DISPATCH_VERIFICATION_KEY=...
//   ./example_tour
//
// It exits 0 when every step gave what it should, and 1 with the reason otherwise.
#include <atomic>
#include <chrono>
#include <future>
#include <iostream>
#include <memory>
#include <numeric>
#include <ratchet/ratchet.hpp>
#include <string>
#include <thread>
#include <vector>

#include "publish.hpp"

namespace {

using nlohmann::json;

// fn.run(args...), giving up after a minute rather than run()'s ten.
template <typename Fn, typename... A>
auto run(const Fn& fn, A... args) {
  return fn.wait(fn.dispatch(std::move(args)...), std::chrono::minutes(1));
}

// Numbers the steps and prints what each gave; keeps the first surprise.
class Checklist {
 public:
  void step(const std::string& title) { std::cout << "\n" << ++steps_ << ". " << title << "\n"; }
  void check(bool as_expected, const std::string& outcome) {
    std::cout << "   -> " << outcome << (as_expected ? "" : "   (NOT what the tour expected)")
              << "\n";
    if (!as_expected && failure_.empty()) {
      failure_ = "step " + std::to_string(steps_) + ": " + outcome;
    }
  }
  int finish() const {
    if (!failure_.empty()) {
      std::cout << "\ntour: failed at " << failure_ << "\n";
      return 1;
    }
    std::cout << "\ntour: all " << steps_ << " steps gave what they should\n";
    return 0;
  }

 private:
  int steps_ = 0;
  std::string failure_;
};

}  // namespace

int main() try {
  examples::FlakyServer service(/*failures=*/2);  // an HTTP service: 503, 503, then 200
  ratchet::Dispatch dispatch;                     // configured from DISPATCH_* variables
  Checklist tour;

  // ---- The durable functions. Plain functions are one step; coroutines
  // (Task<T>) record each co_await, and are resumed from that record.

  auto transform = dispatch.function(
      "transform", [](std::string msg) -> ratchet::Task<std::string> { co_return msg + "!"; });

  auto publish_attempts = std::make_shared<std::atomic<int>>(0);
  auto publish = dispatch.function("publish", [publish_attempts](std::string url, json payload) {
    ++*publish_attempts;
    return examples::publish(std::move(url), std::move(payload));  // 5xx: TemporaryError
  });

  auto pipeline = dispatch.function(
      "pipeline",
      [transform, publish](std::string url, std::string msg) -> ratchet::Task<std::string> {
        msg = co_await transform(msg);
        json payload = {{"msg", msg}};  // built first: GCC 12 rejects it inside co_await
        co_await publish(url, payload);
        co_return msg;
      });

  auto square = dispatch.function("square", [](int x) { return x * x; });
  auto sum_of_squares = dispatch.function("sum_of_squares", [square](int n) -> ratchet::Task<long> {
    std::vector<ratchet::Call<int>> calls;
    for (int i = 1; i <= n; ++i) calls.push_back(square(i));
    std::vector<int> squares = co_await ratchet::gather(std::move(calls));  // fan-in, in order
    co_return std::accumulate(squares.begin(), squares.end(), 0L);
  });

  auto lookup = dispatch.function("lookup", [](std::string replica) -> std::string {
    if (replica != "replica-c") throw ratchet::NotFoundError(replica + " has no copy");
    return "42 (from " + replica + ")";
  });
  auto first_copy = dispatch.function(
      "first_copy", [lookup](std::vector<std::string> replicas) -> ratchet::Task<std::string> {
        std::vector<ratchet::Call<std::string>> calls;
        for (const auto& replica : replicas) calls.push_back(lookup(replica));
        co_return co_await ratchet::any(std::move(calls));  // the first success
      });

  auto after = dispatch.function("after", [](int ms, std::string who) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return who;
  });
  auto fastest = dispatch.function("fastest", [after]() -> ratchet::Task<std::string> {
    std::vector<ratchet::Call<std::string>> calls;
    calls.push_back(after(1500, "tortoise"));
    calls.push_back(after(0, "hare"));
    co_return co_await ratchet::race(std::move(calls));  // the first to finish
  });

  auto charge = dispatch.function("charge", [](int cents) -> std::string {
    if (cents <= 0) {
      throw std::invalid_argument("amount must be positive, got " + std::to_string(cents));
    }
    return "charged " + std::to_string(cents);
  });
  auto checkout = dispatch.function("checkout", [charge](int cents) -> ratchet::Task<std::string> {
    try {
      co_return co_await charge(cents);
    } catch (const ratchet::InvalidArgumentError& e) {  // the child's std::invalid_argument
      co_return "refused: " + e.type() + ": " + e.what();
    }
  });

  auto ship = dispatch.function(
      "ship", [](int order) { return "order " + std::to_string(order) + " shipped"; });
  auto fulfil = dispatch.function("fulfil", [ship](int order) -> ratchet::Task<std::string> {
    co_return ratchet::tail_call(ship(order));  // this call becomes ship(order), same id
  });

  std::promise<void> release;  // `report` runs until the tour lets it finish
  std::shared_future<void> released = release.get_future().share();
  auto report = dispatch.function("report", [released](std::string day) {
    released.wait_for(std::chrono::seconds(30));
    return "report for " + day;
  });

  auto nap = dispatch.function("nap", [](int ms) -> ratchet::Task<long long> {
    auto before = co_await ratchet::now();  // a local step: recorded, replayed as is
    co_await ratchet::sleep(std::chrono::milliseconds(ms));  // durable: the process may exit
    auto after = co_await ratchet::now();
    co_return std::chrono::duration_cast<std::chrono::milliseconds>(after - before).count();
  });

  auto reserve = dispatch.function("reserve", [](std::string item) -> std::string {
    if (item.rfind("sold-out", 0) == 0) throw ratchet::PermanentError(item + " is sold out");
    return "res-" + item;
  });
  auto reserve_all = dispatch.function(
      "reserve_all", [reserve](std::vector<std::string> items) -> ratchet::Task<json> {
        std::vector<ratchet::Call<std::string>> calls;
        for (const auto& item : items) calls.push_back(reserve(item));
        json outcomes = json::array();
        for (const auto& r : co_await ratchet::gather_settled(std::move(calls))) {
          outcomes.push_back(r.ok() ? r.value() : std::string("failed: ") + r.error().what());
        }
        co_return outcomes;
      });

  // ---- The tour.

  dispatch.start();  // serve the functions at DISPATCH_ENDPOINT_ADDR
  std::cout << "Ratchet C++ SDK tour: server " << dispatch.config().api_url
            << ", functions served at " << dispatch.config().endpoint_url << "\n";

  tour.step("pipeline(\"hello\"): transform, then publish to a service that answers 503 twice");
  std::string message = run(pipeline, service.url("/messages"), "hello");
  tour.check(message == "hello!" && *publish_attempts == 3,
             "\"" + message + "\"; publish was attempted " + std::to_string(*publish_attempts) +
                 " times (the server retried both 503s)");

  tour.step("sum_of_squares(100): a fan-out of 100 calls to square, gathered");
  long sum = run(sum_of_squares, 100);
  tour.check(sum == 338350, std::to_string(sum));

  tour.step("first_copy: any() of three lookups, two of which fail");
  std::vector<std::string> replicas = {"replica-a", "replica-b", "replica-c"};
  std::string copy = run(first_copy, replicas);
  tour.check(copy == "42 (from replica-c)", copy);

  tour.step("fastest: race() of a call that takes 1.5 s and one that returns at once");
  std::string winner = run(fastest);
  tour.check(winner == "hare", winner);

  tour.step("checkout(-5): the child throws std::invalid_argument; the parent catches it");
  std::string refusal = run(checkout, -5);
  tour.check(refusal == "refused: std::invalid_argument: amount must be positive, got -5", refusal);

  tour.step("fulfil(7): a tail call hands the call over to ship(7)");
  std::string shipped = run(fulfil, 7);
  tour.check(shipped == "order 7 shipped", shipped);

  tour.step("report: dispatched twice with one run key while it runs");
  auto daily = report.with(ratchet::CallOptions().run_key("report-2025-01-31"));
  ratchet::Handle<std::string> first = daily.dispatch("2025-01-31");
  ratchet::Handle<std::string> second = daily.dispatch("2025-01-31");
  release.set_value();
  std::string text = report.wait(first, std::chrono::minutes(1));
  tour.check(first == second && text == "report for 2025-01-31",
             (first == second ? "one call, " + first.id()
                              : "two calls, " + first.id() + " and " + second.id()) +
                 ": \"" + text + "\"");

  tour.step("a batch: three calls in one Dispatch request");
  auto batch = dispatch.batch();
  batch.add(square(7)).add(transform("batched")).add(square(8));
  std::vector<std::string> ids = batch.dispatch();  // ids: the calls' types differ
  int a = square.wait(ratchet::Handle<int>(ids.at(0)), std::chrono::minutes(1));
  std::string b = transform.wait(ratchet::Handle<std::string>(ids.at(1)), std::chrono::minutes(1));
  int c = square.wait(ratchet::Handle<int>(ids.at(2)), std::chrono::minutes(1));
  std::string results = std::to_string(a) + ", \"" + b + "\", " + std::to_string(c);
  tour.check(ids.size() == 3 && results == "49, \"batched!\", 64",
             std::to_string(ids.size()) + " ids; results " + results);

  tour.step("nap(1000): now(), a durable sleep of one second, now()");
  long long slept = run(nap, 1000);
  tour.check(slept >= 1000, "the recorded times are " + std::to_string(slept) + " ms apart");

  tour.step("reserve_all: gather_settled of three reservations, one sold out, once ever");
  auto once = reserve_all.with(
      ratchet::CallOptions().run_key("reservation-7", ratchet::RunKeyScope::kOnceEver));
  std::vector<std::string> items = {"chair", "sold-out-lamp", "desk"};
  ratchet::Handle<json> booked = once.dispatch(items);
  json outcomes = once.wait(booked, std::chrono::minutes(1));
  ratchet::Handle<json> again = once.dispatch(items);  // the key's finished call, not a new one
  tour.check(
      again == booked &&
          outcomes == json::array({"res-chair", "failed: sold-out-lamp is sold out", "res-desk"}),
      outcomes.dump() + (again == booked ? "; dispatched again: the same call"
                                         : "; dispatched again: ANOTHER call"));

  dispatch.stop();
  return tour.finish();
} catch (const std::exception& e) {
  std::cout.flush();
  std::cerr << "tour: failed: " << e.what() << "\n";
  return 1;
}
