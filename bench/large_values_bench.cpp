// Large values through the SDK and a Ratchet server (issue 14: values over
// 64 KiB stored out of line, once): what a step whose result is 100 KiB costs
// in time and in store bytes, beside the same coroutine with 1 KiB results in
// the same run; and a fan-out of 100 children with one 1 MiB input.
//
// The server runs in this process on loopback (durable SQLite, fsync on,
// requests signed and verified), as in sdk_bench. A step's time is from
// getting past the previous step to getting past this one (the Poll that
// records the call, the call's run, its result, the resume). The store's
// size is read through a connection of its own: (page_count - freelist) x
// page_size, the bytes its rows take, WAL included. It prints figures; it
// asserts nothing.
//
// usage: large_values_bench [--quick] [--steps N]   (default 1,000; --quick 200)
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include "ratchet/ratchet.hpp"
#include "sdk_bench_server.hpp"

namespace {

using Steady = std::chrono::steady_clock;

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(p * static_cast<double>(v.size() - 1))];
}

ratchet::Options endpoint_options(std::uint16_t server_port, const std::string& public_key) {
  return ratchet::bench::sdk_bench_service_options(server_port, public_key, 1024);
}

// `size` bytes that differ for each `seed`, so that no two steps share a value.
std::string value_of(std::size_t size, int seed) {
  std::string value(size, ' ');
  for (std::size_t i = 0; i < size; ++i) value[i] = static_cast<char>('a' + (i * 7 + seed) % 26);
  std::string tag = std::to_string(seed) + ":";
  value.replace(0, std::min(tag.size(), size), tag, 0, std::min(tag.size(), size));
  return value;
}

// The bytes the rows of the store at `path` take now.
long long store_bytes(const std::string& path) {
  sqlite3* db = nullptr;
  long long bytes = -1;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* query = nullptr;
    const char* sql =
        "SELECT (p.page_count - f.freelist_count) * s.page_size FROM pragma_page_count() p, "
        "pragma_freelist_count() f, pragma_page_size() s";
    if (sqlite3_prepare_v2(db, sql, -1, &query, nullptr) == SQLITE_OK &&
        sqlite3_step(query) == SQLITE_ROW) {
      bytes = sqlite3_column_int64(query, 0);
    }
    sqlite3_finalize(query);
  }
  sqlite3_close(db);
  return bytes;
}

struct Figures {
  double p50_ms = 0, p99_ms = 0, total_s = 0;
  long long store_bytes = 0;
};

std::mutex passed_mutex;
std::vector<Steady::time_point> passed;

// A coroutine of `steps` durable calls, each returning `size` bytes.
Figures run_steps(std::uint16_t port, const std::string& public_key, const std::string& db,
                  int steps, std::size_t size) {
  ratchet::Dispatch dispatch(endpoint_options(port, public_key));
  auto make = dispatch.function("make", [size](int i) { return value_of(size, i); });
  auto coroutine = dispatch.function("steps", [&, make](int n) -> ratchet::Task<long long> {
    long long total = 0;
    for (int i = 1; i <= n; ++i) {
      std::string value = co_await make(i);
      total += static_cast<long long>(value.size());
      std::lock_guard lock(passed_mutex);
      if (passed[i] == Steady::time_point{}) passed[i] = Steady::now();
    }
    co_return total;
  });
  dispatch.start();
  {
    std::lock_guard lock(passed_mutex);
    passed.assign(steps + 1, Steady::time_point{});
  }
  const long long before = store_bytes(db);
  auto start = Steady::now();
  long long total = coroutine.wait(coroutine.dispatch(steps), std::chrono::minutes(30));
  Figures f;
  f.total_s = std::chrono::duration<double>(Steady::now() - start).count();
  if (total != static_cast<long long>(steps) * static_cast<long long>(size)) {
    std::fprintf(stderr, "wrong result %lld\n", total);
    std::exit(1);
  }
  std::vector<double> per_step;
  for (int i = 2; i <= steps; ++i) {
    per_step.push_back(
        std::chrono::duration<double, std::milli>(passed[i] - passed[i - 1]).count());
  }
  f.p50_ms = percentile(per_step, 0.5);
  f.p99_ms = percentile(per_step, 0.99);
  dispatch.stop();
  f.store_bytes = store_bytes(db) - before;
  return f;
}

// A coroutine that calls `size_of` 100 times with one 1 MiB input, ten per Poll.
Figures run_fanout(std::uint16_t port, const std::string& public_key, const std::string& db) {
  ratchet::Dispatch dispatch(endpoint_options(port, public_key));
  auto size_of = dispatch.function(
      "size_of", [](std::string value) { return static_cast<long long>(value.size()); });
  auto fanout = dispatch.function("fanout", [size_of](int n) -> ratchet::Task<long long> {
    const std::string input = value_of(1024 * 1024, 0);
    long long total = 0;
    for (int first = 0; first < n; first += 10) {
      std::vector<ratchet::Call<long long>> calls;
      for (int i = first; i < n && i < first + 10; ++i) calls.push_back(size_of(input));
      std::vector<long long> sizes = co_await ratchet::gather(std::move(calls));
      for (long long s : sizes) total += s;
    }
    co_return total;
  });
  dispatch.start();
  const long long before = store_bytes(db);
  auto start = Steady::now();
  long long total = fanout.wait(fanout.dispatch(100), std::chrono::minutes(30));
  Figures f;
  f.total_s = std::chrono::duration<double>(Steady::now() - start).count();
  if (total != 100LL * 1024 * 1024) {
    std::fprintf(stderr, "wrong fan-out result %lld\n", total);
    std::exit(1);
  }
  dispatch.stop();
  f.store_bytes = store_bytes(db) - before;
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  int steps = 1000;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--steps" && i + 1 < argc) {
      steps = std::max(10, std::atoi(argv[++i]));
    } else if (arg == "--quick") {
      steps = 200;
    } else {
      std::fprintf(stderr, "usage: large_values_bench [--quick] [--steps N]\n");
      return 2;
    }
  }
  std::string dir = "/tmp/ratchet-large-values-bench-" + std::to_string(getpid());
  auto server = ratchet::bench::start_sdk_bench_server(dir);
  if (!server) return 1;
  const std::uint16_t port = server->port;
  const std::string public_key = server->public_key;

  Figures small = run_steps(port, public_key, server->db_path, steps, 1024);
  Figures large = run_steps(port, public_key, server->db_path, steps, 100 * 1024);
  std::printf("%d sequential steps            %10s %10s %9s %12s %14s\n", steps, "p50 ms", "p99 ms",
              "total s", "store MB", "store KB/step");
  auto row = [steps](const char* what, const Figures& f) {
    std::printf("%-30s %10.3f %10.3f %9.2f %12.1f %14.1f\n", what, f.p50_ms, f.p99_ms, f.total_s,
                static_cast<double>(f.store_bytes) / 1e6,
                static_cast<double>(f.store_bytes) / 1024.0 / steps);
  };
  row("results of 1 KiB (baseline)", small);
  row("results of 100 KiB", large);

  Figures fan = run_fanout(port, public_key, server->db_path);
  std::printf("\n100 children, one 1 MiB input    %9s %12s\n", "total s", "store MB");
  std::printf("%-32s %9.2f %12.1f\n", "fan-out, 10 children per Poll", fan.total_s,
              static_cast<double>(fan.store_bytes) / 1e6);

  server->server->stop();
  if (!std::getenv("KEEP_BENCH_DIR")) std::filesystem::remove_all(dir);
  return 0;
}
