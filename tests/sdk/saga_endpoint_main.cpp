// saga_endpoint_main --payments URL --log FILE [--hold-after-charge]
//
// The order saga of issue 14 as an endpoint process of its own, for the test
// that kills it inside the charge (sdk_process_e2e_test.cpp). Configured from
// the DISPATCH_* variables; serves until SIGTERM (or SIGKILL). Its functions:
//
//   order({"cents": N, "items": [...]})  a coroutine: charges N through the
//       payment service at --payments in a local step, with an idempotency key
//       derived from ratchet::current(); reserves every item at once
//       (gather_settled); if any reservation failed, cancels the others and
//       refunds the charge (compensation). Returns what it did, as JSON.
//   reserve(item)       "res-<item>"; an item named "sold-out..." throws
//                       OutOfStock (registered as PERMANENT_ERROR).
//   cancel(reservation) cancels a reservation.
//
// Every effect appends a line to --log ("charged ID", "reserve ITEM", "cancel
// RES", "refunded ID"). --hold-after-charge: once the payment service has
// answered the charge, the step logs "charged ID" and does not return (a
// minute), so that the test kills the process inside the charge.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "http/client.hpp"
#include "http/url.hpp"
#include "probe_log.hpp"
#include "ratchet/ratchet.hpp"

namespace {

using nlohmann::json;

struct OutOfStock : std::runtime_error {
  using std::runtime_error::runtime_error;
};

using ratchet::testing::append_line;

// The payment service: POST {path} with an Idempotency-Key; its answer's body.
std::string pay(const std::string& base, const std::string& path, const std::string& key,
                const std::string& body) {
  auto url = ratchet::http::parse_url(base);
  if (!url.is_ok()) throw std::invalid_argument("--payments: " + url.status().message());
  ratchet::http::Request request;
  request.method = "POST";
  request.target = path;
  request.headers.set("Idempotency-Key", key);
  request.body = body;
  ratchet::http::Client client;
  auto response = client.send_sync(*url, std::move(request));
  if (!response.is_ok()) throw ratchet::TcpError("payments: " + response.status().message());
  ratchet::check_http_status(response->status, "the payment service");  // 5xx: retried
  return response->body;
}

struct Flags {
  std::string payments;
  std::string log;
  bool hold_after_charge = false;
};

void define_saga(ratchet::Dispatch& dispatch, const Flags& flags) {
  ratchet::register_error<OutOfStock>(ratchet::CallStatus::kPermanentError);
  const std::string log = flags.log;
  auto reserve = dispatch.function("reserve", [log](std::string item) -> std::string {
    if (item.rfind("sold-out", 0) == 0) throw OutOfStock(item + " is sold out");
    append_line(log, "reserve " + item);
    return "res-" + item;
  });
  auto cancel = dispatch.function(
      "cancel", [log](std::string reservation) { append_line(log, "cancel " + reservation); });
  dispatch.function("order", [flags, reserve, cancel](json order) -> ratchet::Task<json> {
    // The same on every attempt and replay of this call: the payment service
    // charges once per key, however often the step runs.
    const std::string key = ratchet::current().dispatch_id + "/charge";
    std::string charge = co_await ratchet::step("charge", [&] {
      std::string id = pay(flags.payments, "/charge", key, order.at("cents").dump());
      append_line(flags.log, "charged " + id);
      if (flags.hold_after_charge) std::this_thread::sleep_for(std::chrono::minutes(1));
      return id;
    });

    std::vector<ratchet::Call<std::string>> reservations;
    for (const auto& item : order.at("items"))
      reservations.push_back(reserve(item.get<std::string>()));
    json reserved = json::array();
    json failed = json::array();
    for (const auto& r : co_await ratchet::gather_settled(std::move(reservations))) {
      if (r.ok()) {
        reserved.push_back(r.value());
      } else {
        failed.push_back(r.error().what());
      }
    }
    if (failed.empty()) co_return json{{"status", "confirmed"}, {"charge", charge}};

    // Compensation: undo what succeeded, in reverse order of the saga.
    std::vector<ratchet::Call<void>> cancels;
    for (const auto& reservation : reserved) cancels.push_back(cancel(reservation));
    co_await ratchet::gather(std::move(cancels));
    co_await ratchet::step("refund", [&] {
      pay(flags.payments, "/refund", key, charge);
      append_line(flags.log, "refunded " + charge);
    });
    co_return json{
        {"status", "compensated"}, {"charge", charge}, {"cancelled", reserved}, {"failed", failed}};
  });
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag == "--hold-after-charge") {
      flags.hold_after_charge = true;
    } else if (flag == "--payments" && i + 1 < argc) {
      flags.payments = argv[++i];
    } else if (flag == "--log" && i + 1 < argc) {
      flags.log = argv[++i];
    } else {
      std::fprintf(stderr,
                   "usage: saga_endpoint_main --payments URL --log FILE "
                   "[--hold-after-charge]\n");
      return 2;
    }
  }
  try {
    ratchet::Dispatch dispatch;
    define_saga(dispatch, flags);
    dispatch.serve();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "saga_endpoint_main: %s\n", e.what());
    return 1;
  }
  return 0;
}
