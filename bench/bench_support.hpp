// What the server benchmarks share: an echo endpoint, API requests, and a
// client that keeps a number of requests in flight.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "dispatch/sdk/v1/dispatch.pb.h"
#include "dispatch/sdk/v1/function.pb.h"
#include "google/protobuf/wrappers.pb.h"
#include "http/client.hpp"
#include "http/server.hpp"
#include "protocol/connect.hpp"
#include "server/server.hpp"

namespace ratchet::bench {

namespace pb = dispatch::sdk::v1;
using Steady = std::chrono::steady_clock;

inline double ms_since(Steady::time_point start) {
  return std::chrono::duration<double, std::milli>(Steady::now() - start).count();
}

// An endpoint on loopback (one I/O thread) that answers each RunRequest with
// `answer`'s RunResponse.
inline std::unique_ptr<http::Server> start_endpoint(
    std::function<pb::RunResponse(const pb::RunRequest&)> answer) {
  http::ServerOptions options;
  options.io_threads = 1;
  auto server = http::Server::start(
      options, [answer = std::move(answer)](http::Request request, http::Responder responder) {
        pb::RunRequest run;
        run.ParseFromString(request.body);
        responder.send(
            http::Response::with_body(200, "application/proto", answer(run).SerializeAsString()));
      });
  if (!server.is_ok()) {
    std::fprintf(stderr, "endpoint: %s\n", server.status().message().c_str());
    std::exit(1);
  }
  return std::move(server).value();
}

// The endpoint: answers every RunRequest with its input as the output.
inline std::unique_ptr<http::Server> start_endpoint(std::atomic<int>* served) {
  return start_endpoint([served](const pb::RunRequest& run) {
    pb::RunResponse response;
    response.set_status(pb::STATUS_OK);
    *response.mutable_exit()->mutable_result()->mutable_output() = run.input();
    served->fetch_add(1, std::memory_order_relaxed);
    return response;
  });
}

// The benchmarks' server: a free loopback port, a durable SQLite store at
// `db_path` (fsync on every commit), the API key "bench", requests signed.
inline server::ServerConfig bench_server_config(std::string db_path) {
  server::ServerConfig config;
  config.port = 0;
  config.db_path = std::move(db_path);
  config.durable = true;
  config.api.api_keys = {"bench"};
  config.signing_key = *protocol::SigningKey::generate();
  return config;
}

inline std::string run_request_body(int i) {
  pb::RunRequest run;
  run.set_function("echo");
  run.set_dispatch_id("direct-" + std::to_string(i));
  google::protobuf::Int64Value value;
  value.set_value(i);
  run.mutable_input()->PackFrom(value);
  return run.SerializeAsString();
}

inline http::Request post(std::string path, std::string body) {
  http::Request request;
  request.method = "POST";
  request.target = std::move(path);
  request.headers.add("Content-Type", "application/proto");
  request.headers.add("Authorization", "Bearer bench");
  request.body = std::move(body);
  return request;
}

// Sends `count` requests made by `make`, at most `concurrency` at a time.
inline double blast(http::Client& client, const http::Url& url, int count, int concurrency,
                    const std::function<http::Request(int)>& make) {
  std::mutex mutex;
  std::condition_variable done_cv;
  int next = 0, done = 0, failures = 0;
  std::function<void()> launch;
  launch = [&] {
    int i;
    {
      std::lock_guard lock(mutex);
      if (next >= count) return;
      i = next++;
    }
    client.send(url, make(i), {}, [&](Result<http::Response> response) {
      bool ok = response.is_ok() && response->status == 200;
      launch();
      // Counted last, and notified under the lock: once `done` reaches
      // `count`, blast returns and its locals are gone.
      std::lock_guard lock(mutex);
      ++done;
      if (!ok) ++failures;
      done_cv.notify_one();
    });
  };
  auto start = Steady::now();
  for (int i = 0; i < concurrency; ++i) launch();
  std::unique_lock lock(mutex);
  done_cv.wait(lock, [&] { return done == count; });
  if (failures) std::fprintf(stderr, "%d requests failed\n", failures);
  return ms_since(start);
}

// A DispatchRequest of `batch` echo calls to `endpoint_url`, inputs b*batch...
inline http::Request dispatch_batch(const std::string& endpoint_url, int b, int batch) {
  pb::DispatchRequest request;
  for (int i = 0; i < batch; ++i) {
    auto* call = request.add_calls();
    call->set_function("echo");
    call->set_endpoint(endpoint_url);
    google::protobuf::Int64Value value;
    value.set_value(b * batch + i);
    call->mutable_input()->PackFrom(value);
  }
  return post(std::string(protocol::kDispatchPath), request.SerializeAsString());
}

}  // namespace ratchet::bench
