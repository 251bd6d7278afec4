// The scheduler server's figures, each beside its floor from the same run:
// throughput of 10,000 independent calls through `ratchet server` (durable
// SQLite, fsync on, requests signed) against the same RunRequests sent
// straight to the endpoint, and the latency of one call (dispatch, run,
// result) against one direct request. Everything runs on loopback in this
// process. It prints figures; it asserts nothing.
//
// usage: server_bench [--quick]
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bench_support.hpp"
#include "dispatch/sdk/v1/dispatch.pb.h"
#include "dispatch/sdk/v1/function.pb.h"
#include "google/protobuf/wrappers.pb.h"
#include "http/client.hpp"
#include "http/server.hpp"
#include "protocol/connect.hpp"
#include "server/server.hpp"

namespace {

namespace pb = dispatch::sdk::v1;
using namespace ratchet;
using namespace ratchet::bench;

long long succeeded_calls(sqlite3* db) {
  sqlite3_stmt* stmt = nullptr;
  sqlite3_prepare_v2(db, "SELECT count(*) FROM runs WHERE status = 'SUCCEEDED'", -1, &stmt,
                     nullptr);
  long long n = sqlite3_step(stmt) == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : -1;
  sqlite3_finalize(stmt);
  return n;
}

std::pair<double, double> percentiles(std::vector<double> samples) {
  std::sort(samples.begin(), samples.end());
  return {samples[samples.size() / 2], samples[samples.size() * 99 / 100]};
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = argc > 1 && std::string(argv[1]) == "--quick";
  const int calls = quick ? 2000 : 10000;
  const int latency_samples = quick ? 100 : 500;
  const int batch = 100;

  std::atomic<int> served{0};
  auto endpoint = start_endpoint(&served);
  std::string endpoint_url = "http://127.0.0.1:" + std::to_string(endpoint->port());

  std::string dir = "/tmp/ratchet-server-bench-" + std::to_string(getpid());
  std::filesystem::create_directories(dir);
  auto server = server::Server::start(bench_server_config(dir + "/ratchet.db"));
  if (!server.is_ok()) {
    std::fprintf(stderr, "server: %s\n", server.status().message().c_str());
    return 1;
  }
  auto api = *http::parse_url("http://127.0.0.1:" + std::to_string((*server)->port()));
  auto direct = *http::parse_url(endpoint_url);
  http::Client client;

  // Floor: the RunRequests straight to the endpoint.
  double floor_ms = blast(client, direct, calls, 64, [](int i) {
    return post(std::string(protocol::kRunPath), run_request_body(i));
  });

  // Through the server: dispatch in batches, then until every call succeeded.
  sqlite3* reader = nullptr;
  sqlite3_open((dir + "/ratchet.db").c_str(), &reader);
  auto start = Steady::now();
  blast(client, api, calls / batch, 8,
        [&](int b) { return dispatch_batch(endpoint_url, b, batch); });
  while (succeeded_calls(reader) < calls) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  double server_ms = ms_since(start);

  // Latency of one call, one at a time: Dispatch then Wait, against one direct Run.
  std::vector<double> through, straight;
  for (int i = 0; i < latency_samples; ++i) {
    auto t = Steady::now();
    auto sent =
        client.send_sync(direct, post(std::string(protocol::kRunPath), run_request_body(i)));
    straight.push_back(ms_since(t));
    t = Steady::now();
    pb::DispatchRequest request;
    auto* call = request.add_calls();
    call->set_function("echo");
    call->set_endpoint(endpoint_url);
    auto dispatched = client.send_sync(
        api, post(std::string(protocol::kDispatchPath), request.SerializeAsString()));
    pb::DispatchResponse ids;
    if (!dispatched.is_ok() || !ids.ParseFromString(dispatched->body) ||
        ids.dispatch_ids_size() != 1) {
      std::fprintf(stderr, "dispatch failed\n");
      return 1;
    }
    auto waited =
        client.send_sync(api, post(std::string(protocol::kWaitPath), ids.dispatch_ids(0)));
    through.push_back(ms_since(t));
    if (!waited.is_ok() || waited->status != 200) {
      std::fprintf(stderr, "wait failed\n");
      return 1;
    }
  }
  auto [through_p50, through_p99] = percentiles(through);
  auto [straight_p50, straight_p99] = percentiles(straight);

  std::printf("%-52s %12s %12s\n", "what", "server", "floor");
  std::printf("%-52s %12.0f %12.0f\n",
              ("calls/s, " + std::to_string(calls) + " independent calls").c_str(),
              calls / (server_ms / 1000), calls / (floor_ms / 1000));
  std::printf("%-52s %12.3f %12.3f\n", "one call p50 ms (dispatch+run+result vs run)", through_p50,
              straight_p50);
  std::printf("%-52s %12.3f %12.3f\n", "one call p99 ms", through_p99, straight_p99);
  std::printf("%-52s %12.3f\n", "server overhead p50 ms", through_p50 - straight_p50);
  sqlite3_close(reader);
  (*server)->stop();
  std::filesystem::remove_all(dir);
  return 0;
}
