// The SDK's per-step cost: a durable coroutine of N sequential steps (each
// `co_await work(i)`, a plain function), end to end through a Ratchet server
// on loopback (durable SQLite, fsync on, requests signed and verified).
//
// The coroutine notes when it first gets past each step; a step's cost is the
// time from getting past the previous step to getting past this one: the
// Poll that records the call, the call's run, its result, and the resume.
// It runs twice in this process: with the frame cache (a resume continues the
// live frame) and with replay forced (cache size 0: every resume runs the
// coroutine again from its input over the journal). Beside them, the floor
// from the same run: one plain call through the server (dispatch, run, Wait).
// Then both again on a second server whose store does not fsync (SQLite
// synchronous=NORMAL): what a step costs when its two commits cost only their
// statements, which shows how much of it is the disk's flush.
//
// Then a local step (co_await ratchet::step) beside that server call: a
// coroutine of N local steps, each timed from before its co_await to after,
// recorded by the Poll of one durable call at the end. And sleep() wake-up
// lateness: many coroutines sleep at once for staggered durations; lateness
// is when the coroutine got past its sleep minus when it first reached it
// and the duration. It prints figures; it asserts nothing.
//
// Last, the long coroutine (issue 14, "no step ceiling"): one coroutine of
// --long-steps sequential steps (100,000 by default) with the frame cache, and
// the p50 of its first 100 and last 100 steps: a step late in a long run
// should cost what an early one does. --long-steps 0 skips it.
//
// usage: sdk_bench [--quick] [--long-steps N]
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "ratchet/ratchet.hpp"
#include "sdk_bench_server.hpp"

namespace {

using Steady = std::chrono::steady_clock;

struct Figures {
  double p50 = 0, p99 = 0, first_tenth = 0, last_tenth = 0, total_s = 0;
};

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(p * static_cast<double>(v.size() - 1))];
}

// The median of the samples [from, to).
double median(const std::vector<double>& v, std::size_t from, std::size_t to) {
  return percentile(std::vector<double>(v.begin() + from, v.begin() + to), 0.5);
}

// First time the coroutine got past each step, shared by the runs below (one at a time).
std::mutex passed_mutex;
std::vector<Steady::time_point> passed;

struct Run {
  Figures figures;
  std::vector<double> per_step;  // ms, step 2 .. N
};

// One run of the N-step coroutine with the given cache size.
Run run_steps(std::uint16_t server_port, const std::string& public_key, std::size_t cache,
              int steps) {
  ratchet::Dispatch dispatch(
      ratchet::bench::sdk_bench_service_options(server_port, public_key, cache));
  auto work = dispatch.function("work", [](int i) { return i; });
  auto coroutine = dispatch.function("steps", [&](int n) -> ratchet::Task<long long> {
    long long sum = 0;
    for (int i = 1; i <= n; ++i) {
      sum += co_await work(i);
      std::lock_guard lock(passed_mutex);
      if (passed[i] == Steady::time_point{}) passed[i] = Steady::now();
    }
    co_return sum;
  });
  dispatch.start();
  {
    std::lock_guard lock(passed_mutex);
    passed.assign(steps + 1, Steady::time_point{});
  }
  auto start = Steady::now();
  long long sum = coroutine.wait(coroutine.dispatch(steps), std::chrono::minutes(30));
  Figures f;
  f.total_s = std::chrono::duration<double>(Steady::now() - start).count();
  if (sum != static_cast<long long>(steps) * (steps + 1) / 2) {
    std::fprintf(stderr, "wrong result %lld\n", sum);
    std::exit(1);
  }
  std::vector<double> per_step;
  for (int i = 2; i <= steps; ++i) {  // from step 1 on: the first includes the dispatch
    per_step.push_back(
        std::chrono::duration<double, std::milli>(passed[i] - passed[i - 1]).count());
  }
  std::size_t tenth = std::max<std::size_t>(1, per_step.size() / 10);
  f.p50 = percentile(per_step, 0.50);
  f.p99 = percentile(per_step, 0.99);
  f.first_tenth = median(per_step, 0, tenth);
  f.last_tenth = median(per_step, per_step.size() - tenth, per_step.size());
  dispatch.stop();
  return Run{f, std::move(per_step)};
}

// Floor: one plain call at a time through the server (dispatch, run, Wait).
std::vector<double> plain_calls(std::uint16_t server_port, const std::string& public_key,
                                int count) {
  ratchet::Dispatch dispatch(ratchet::bench::sdk_bench_service_options(server_port, public_key, 0));
  auto work = dispatch.function("work", [](int i) { return i; });
  dispatch.start();
  std::vector<double> samples;
  for (int i = 0; i < count; ++i) {
    auto t = Steady::now();
    work.run(i);
    samples.push_back(std::chrono::duration<double, std::milli>(Steady::now() - t).count());
  }
  dispatch.stop();
  return samples;
}

}  // namespace

// N local steps in one coroutine: the time of each co_await ratchet::step.
std::vector<double> local_steps(std::uint16_t server_port, const std::string& public_key,
                                int steps) {
  ratchet::Dispatch dispatch(
      ratchet::bench::sdk_bench_service_options(server_port, public_key, 1024));
  auto work = dispatch.function("work", [](int i) { return i; });
  std::vector<double> samples;
  std::mutex mutex;
  auto coroutine = dispatch.function("local", [&, work](int n) -> ratchet::Task<long long> {
    long long sum = 0;
    std::vector<double> mine;
    for (int i = 1; i <= n; ++i) {
      auto t = Steady::now();
      sum += co_await ratchet::step("s", [i] { return i; });
      mine.push_back(std::chrono::duration<double, std::micro>(Steady::now() - t).count());
    }
    {
      std::lock_guard lock(mutex);
      if (samples.empty()) samples = mine;  // the first run, not the replays
    }
    sum += co_await work(0);  // one Poll records every step
    co_return sum;
  });
  dispatch.start();
  long long sum = coroutine.run(steps);
  if (sum != static_cast<long long>(steps) * (steps + 1) / 2) {
    std::fprintf(stderr, "wrong result %lld\n", sum);
    std::exit(1);
  }
  dispatch.stop();
  return samples;
}

// `sleepers` coroutines sleeping at once, sleeper i for `base_ms` + 10 i ms:
// each one's lateness in ms.
std::vector<double> sleep_lateness(std::uint16_t server_port, const std::string& public_key,
                                   int sleepers, int base_ms) {
  ratchet::Dispatch dispatch(
      ratchet::bench::sdk_bench_service_options(server_port, public_key, 1024));
  std::mutex mutex;
  std::map<int, Steady::time_point> reached;
  std::map<int, Steady::time_point> woke;
  auto nap = dispatch.function("nap", [&](int i, int ms) -> ratchet::Task<int> {
    {
      std::lock_guard lock(mutex);
      reached.emplace(i, Steady::now());  // the first time only (replays keep it)
    }
    co_await ratchet::sleep(std::chrono::milliseconds(ms));
    std::lock_guard lock(mutex);
    woke.emplace(i, Steady::now());
    co_return i;
  });
  dispatch.start();
  std::vector<ratchet::Handle<int>> calls;
  for (int i = 0; i < sleepers; ++i) calls.push_back(nap.dispatch(i, base_ms + 10 * i));
  for (auto& call : calls) nap.wait(call, std::chrono::minutes(5));
  dispatch.stop();
  std::vector<double> lateness;
  for (int i = 0; i < sleepers; ++i) {
    double slept = std::chrono::duration<double, std::milli>(woke[i] - reached[i]).count();
    lateness.push_back(slept - (base_ms + 10 * i));
  }
  return lateness;
}

int main(int argc, char** argv) {
  bool quick = false;
  int long_steps = 100'000;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--quick") {
      quick = true;
    } else if (arg == "--long-steps" && i + 1 < argc) {
      long_steps = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: sdk_bench [--quick] [--long-steps N]\n");
      return 2;
    }
  }
  const int steps = quick ? 200 : 1000;

  std::string dir = "/tmp/ratchet-sdk-bench-" + std::to_string(getpid());
  auto server = ratchet::bench::start_sdk_bench_server(dir);
  if (!server) return 1;
  const std::uint16_t port = server->port;
  const std::string public_key = server->public_key;

  auto plain = plain_calls(port, public_key, quick ? 100 : 300);
  Figures cached = run_steps(port, public_key, 1024, steps).figures;
  Figures replayed = run_steps(port, public_key, 0, steps).figures;

  std::printf("%d sequential steps, ms per step   %10s %10s %12s %12s %9s\n", steps, "p50", "p99",
              "p50 first10%", "p50 last10%", "total s");
  auto row = [](const char* what, const Figures& f) {
    std::printf("%-36s %10.3f %10.3f %12.3f %12.3f %9.2f\n", what, f.p50, f.p99, f.first_tenth,
                f.last_tenth, f.total_s);
  };
  row("with the frame cache", cached);
  row("replay forced (cache off)", replayed);
  std::printf("%-36s %10.3f %10.3f\n", "floor: one plain call (dispatch+Wait)",
              percentile(plain, 0.5), percentile(plain, 0.99));
  // The same on a store that does not fsync its commits: what is left of a
  // step when its two commits cost nothing but their statements.
  {
    auto unsynced = ratchet::bench::start_sdk_bench_server(dir + "-nofsync", false);
    if (!unsynced) return 1;
    auto plain_unsynced = plain_calls(unsynced->port, unsynced->public_key, quick ? 100 : 300);
    row("with the frame cache, no fsync",
        run_steps(unsynced->port, unsynced->public_key, 1024, steps).figures);
    std::printf("%-36s %10.3f %10.3f\n", "one plain call, no fsync",
                percentile(plain_unsynced, 0.5), percentile(plain_unsynced, 0.99));
    unsynced->server->stop();
    std::filesystem::remove_all(dir + "-nofsync");
  }

  auto local = local_steps(port, public_key, steps);
  std::printf("\n%d local steps (co_await ratchet::step)  %10s %10s %12s\n", steps, "p50 us",
              "p99 us", "vs a call");
  std::printf("%-36s %10.2f %10.2f %11.0fx\n", "one local step", percentile(local, 0.5),
              percentile(local, 0.99), cached.p50 * 1000 / percentile(local, 0.5));
  std::printf("%-36s %10.2f %10.2f\n", "one durable call step (cache, above)", cached.p50 * 1000,
              cached.p99 * 1000);

  const int sleepers = quick ? 20 : 100;
  const int base_ms = 500;
  auto lateness = sleep_lateness(port, public_key, sleepers, base_ms);
  std::printf("\n%d coroutines sleeping %d..%d ms at once  %8s %8s %8s\n", sleepers, base_ms,
              base_ms + 10 * (sleepers - 1), "p50", "p99", "max");
  std::printf("%-36s %8.2f %8.2f %8.2f\n", "wake-up lateness, ms", percentile(lateness, 0.5),
              percentile(lateness, 0.99), percentile(lateness, 1.0));

  if (long_steps >= 201) {
    Run run = run_steps(port, public_key, 1024, long_steps);
    const auto& v = run.per_step;
    double first = median(v, 0, 100);
    double last = median(v, v.size() - 100, v.size());
    // The worst single step and where: the store's compaction of the journal's
    // deltas rewrites more on some steps (every 8th, and more at powers of 8).
    auto worst = std::max_element(v.begin(), v.end());
    std::printf("\none coroutine of %d steps, ms per step  %10s %10s %8s %9s %9s %8s\n", long_steps,
                "p50 first", "p50 last", "last/1st", "total s", "max", "at step");
    std::printf("%-36s %10.3f %10.3f %8.2f %9.1f %9.2f %8zu\n", "100 steps, with the frame cache",
                first, last, last / first, run.figures.total_s, *worst,
                static_cast<std::size_t>(worst - v.begin()) + 2);
  }

  server->server->stop();
  std::filesystem::remove_all(dir);
  return 0;
}
