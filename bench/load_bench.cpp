// The server under load (issue 10), each figure beside a floor from the same
// run, on loopback in this process (durable SQLite, fsync on, signed requests):
//
// - throughput: root calls of a 10-step coroutine (each step a Poll with no
//   calls that is due at once), steps/s and steps per commit (from /metrics),
//   beside the echo endpoint answering the same number of requests directly;
// - fan-out: one coroutine gathers N children; time to its result, beside
//   the N children dispatched as roots;
// - fairness: the wait of B's first call dispatched behind a flood of A,
//   beside A's median wait and B's wait on an idle server;
// - durable sleep: N coroutines sleep (a Poll with no calls and max_wait);
//   how late each wakes (p50/p99/max), beside std::this_thread::sleep_until's
//   lateness; and the process's RSS idle and with all of them asleep.
//
// It prints figures; it asserts nothing.
// usage: load_bench [--quick] [--only throughput|fan-out|fairness|sleep]
//                   [--sleep-from SECONDS] [--sleep-spread SECONDS]
//
// load_bench --soak SECONDS (scripts/soak.sh; not in the suite): steady load of
// echo calls (200 a second) for SECONDS against an endpoint that fails every
// minute for 10 s (TEMPORARY_ERROR) and throttles for 5 s (HTTP 429); prints
// the RSS every 30 s, then waits (at most 5 minutes) for every call to end
// and accounts for each: dispatched = succeeded + failed, nothing lost.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_support.hpp"
#include "server/server.hpp"

namespace {

namespace pb = dispatch::sdk::v1;
using namespace ratchet;
using namespace ratchet::bench;
using WallClock = std::chrono::system_clock;

std::int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(WallClock::now().time_since_epoch())
      .count();
}

double rss_mb() {
  std::ifstream statm("/proc/self/statm");
  long pages = 0, resident = 0;
  statm >> pages >> resident;
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) / 1e6;
}

// CPU seconds (user + system) of this process, or of its threads named `name`.
double cpu_seconds(const std::string& name = "") {
  auto read = [](const std::string& path, std::string* comm) {
    std::ifstream file(path);
    std::string line;
    std::getline(file, line);
    auto open = line.find('('), close = line.rfind(')');
    if (open == std::string::npos || close == std::string::npos) return 0.0;
    if (comm) *comm = line.substr(open + 1, close - open - 1);
    std::istringstream rest(line.substr(close + 2));
    std::string field;
    double ticks = 0;
    // Fields 14 and 15 (utime, stime); field 3 is the first after the name.
    for (int i = 3; i <= 15 && rest >> field; ++i) {
      if (i >= 14) ticks += std::stod(field);
    }
    return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
  };
  if (name.empty()) return read("/proc/self/stat", nullptr);
  double total = 0;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::string comm;
    double seconds = read(task.path().string() + "/stat", &comm);
    if (comm == name) total += seconds;
  }
  return total;
}

double load_average() {
  std::ifstream file("/proc/loadavg");
  double one = 0;
  file >> one;
  return one;
}

std::int64_t int_of(const google::protobuf::Any& any) {
  google::protobuf::Int64Value v;
  any.UnpackTo(&v);
  return v.value();
}

google::protobuf::Any any_int(std::int64_t value) {
  google::protobuf::Int64Value v;
  v.set_value(value);
  google::protobuf::Any any;
  any.PackFrom(v);
  return any;
}

pb::RunResponse exit_with(std::int64_t value) {
  pb::RunResponse response;
  response.set_status(pb::STATUS_OK);
  *response.mutable_exit()->mutable_result()->mutable_output() = any_int(value);
  return response;
}

// What the endpoint saw: when each call finished, when sleepers woke.
struct Seen {
  std::mutex mutex;
  std::map<std::string, std::int64_t> finished;  // dispatch id -> when its last run came
  std::vector<double> lateness_ms;               // sleepers: woke - due
  std::atomic<long> requests{0};
};

// The endpoint's functions:
//   echo(n)            -> n
//   steps(n)           -> a coroutine of n steps (Polls with no calls, due at once)
//   sleep(ms)          -> sleeps ms (a Poll with no calls and max_wait), then ends
//   gather(n)          -> dispatches n echo children, ends when all came back
pb::RunResponse handle(const pb::RunRequest& run, const std::string& self, Seen& seen) {
  seen.requests.fetch_add(1, std::memory_order_relaxed);
  const std::string& f = run.function();
  if (f == "flaky") {
    // By the wall clock: each minute, 10 s of failures then 5 s of throttling.
    long second = static_cast<long>(now_us() / 1'000'000 % 60);
    if (second >= 20 && second < 30) {
      pb::RunResponse failed;
      failed.set_status(pb::STATUS_TEMPORARY_ERROR);
      failed.mutable_exit()->mutable_result()->mutable_error()->set_type("Flaky");
      return failed;
    }
    if (second >= 40 && second < 45) {
      pb::RunResponse throttled;
      throttled.set_status(pb::STATUS_THROTTLED);
      throttled.mutable_exit()->mutable_result()->mutable_error()->set_type("Throttled");
      return throttled;
    }
    return exit_with(int_of(run.input()));
  }
  if (f == "echo") {
    std::lock_guard lock(seen.mutex);
    seen.finished[run.dispatch_id()] = now_us();
    return exit_with(int_of(run.input()));
  }
  pb::RunResponse response;
  response.set_status(pb::STATUS_OK);
  auto* poll = response.mutable_poll();
  if (f == "steps") {
    // State: "<left>"
    std::int64_t left =
        run.has_input() ? int_of(run.input()) : std::stoll(run.poll_result().coroutine_state());
    if (left <= 1) return exit_with(0);
    poll->set_coroutine_state(std::to_string(left - 1));
    poll->mutable_max_wait()->set_nanos(1);
    return response;
  }
  if (f == "sleep") {
    if (!run.has_input()) {
      std::int64_t due = std::stoll(run.poll_result().coroutine_state());
      std::lock_guard lock(seen.mutex);
      seen.lateness_ms.push_back(static_cast<double>(now_us() - due) / 1000.0);
      return exit_with(0);
    }
    std::int64_t ms = int_of(run.input());
    poll->set_coroutine_state(std::to_string(now_us() + ms * 1000));
    poll->mutable_max_wait()->set_seconds(ms / 1000);
    poll->mutable_max_wait()->set_nanos(static_cast<int>(ms % 1000) * 1'000'000);
    return response;
  }
  if (f == "gather") {
    // State: "<expected> <received>"
    std::int64_t expected = 0, received = 0;
    if (run.has_input()) {
      expected = int_of(run.input());
      for (std::int64_t i = 0; i < expected; ++i) {
        auto* call = poll->add_calls();
        call->set_function("echo");
        call->set_endpoint(self);
        *call->mutable_input() = any_int(i);
        call->set_correlation_id(static_cast<std::uint64_t>(i));
      }
    } else {
      std::sscanf(run.poll_result().coroutine_state().c_str(), "%ld %ld", &expected, &received);
      received += run.poll_result().results_size();
      if (received >= expected) {
        std::lock_guard lock(seen.mutex);
        seen.finished[run.dispatch_id()] = now_us();
        return exit_with(received);
      }
    }
    poll->set_coroutine_state(std::to_string(expected) + " " + std::to_string(received));
    poll->set_min_results(static_cast<int>(std::min<std::int64_t>(1000, expected - received)));
    poll->set_max_results(1000);
    poll->mutable_max_wait()->set_seconds(300);
    return response;
  }
  return exit_with(-1);
}

struct Bench {
  Seen seen;
  std::unique_ptr<http::Server> endpoint;
  std::string endpoint_url;
  std::unique_ptr<server::Server> server;
  std::string dir;
  http::Url api;
  http::Client client;

  bool start() {
    endpoint = start_endpoint(
        [this](const pb::RunRequest& run) { return handle(run, endpoint_url, seen); });
    endpoint_url = "http://127.0.0.1:" + std::to_string(endpoint->port());
    dir = "/tmp/ratchet-load-bench-" + std::to_string(getpid());
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    auto running = server::Server::start(bench_server_config(dir + "/ratchet.db"));
    if (!running.is_ok()) {
      std::fprintf(stderr, "server: %s\n", running.status().message().c_str());
      return false;
    }
    server = std::move(running).value();
    api = *http::parse_url("http://127.0.0.1:" + std::to_string(server->port()));
    return true;
  }
  ~Bench() {
    if (server) server->stop();
    std::filesystem::remove_all(dir);
  }

  // Dispatches `count` calls of `function` with `input(i)`, in batches; their ids.
  std::vector<std::string> dispatch(const std::string& function, int count,
                                    const std::function<std::int64_t(int)>& input) {
    std::vector<std::string> ids;
    for (int start = 0; start < count; start += 1000) {
      pb::DispatchRequest request;
      for (int i = start; i < std::min(count, start + 1000); ++i) {
        auto* call = request.add_calls();
        call->set_function(function);
        call->set_endpoint(endpoint_url);
        *call->mutable_input() = any_int(input(i));
      }
      auto sent = client.send_sync(
          api, post(std::string(protocol::kDispatchPath), request.SerializeAsString()));
      pb::DispatchResponse response;
      if (!sent.is_ok() || sent->status != 200 || !response.ParseFromString(sent->body)) {
        std::fprintf(stderr, "dispatch failed\n");
        std::exit(1);
      }
      for (const auto& id : response.dispatch_ids()) ids.push_back(id);
    }
    return ids;
  }

  // Waits until `id` has a result (Wait, again and again).
  void await(const std::string& id) {
    while (true) {
      auto waited = client.send_sync(api, post(std::string(protocol::kWaitPath), id));
      if (waited.is_ok() && waited->status == 200) return;
    }
  }

  // A figure of /metrics (the first sample of that name).
  double metric(const std::string& name) {
    http::Request request;
    request.method = "GET";
    request.target = "/metrics";
    request.headers.add("Authorization", "Bearer bench");
    auto got = client.send_sync(api, std::move(request));
    if (!got.is_ok()) return -1;
    auto at = got->body.find("\n" + name + " ");
    if (at == std::string::npos) return -1;
    return std::stod(got->body.substr(at + name.size() + 2));
  }
};

std::vector<double> percentiles(std::vector<double> samples) {
  if (samples.empty()) return {0, 0, 0};
  std::sort(samples.begin(), samples.end());
  return {samples[samples.size() / 2], samples[samples.size() * 99 / 100], samples.back()};
}

void row(const char* what, double value, double floor, const char* goal) {
  std::printf("%-58s %12.1f %12.1f   %s\n", what, value, floor, goal);
}

}  // namespace

long count_calls(Bench& b, const char* status) {
  // Through `ratchet status`-free means: the figures of /metrics.
  return static_cast<long>(b.metric(
      std::string("ratchet_calls_ended_total{function=\"flaky\",status=\"") + status + "\"}"));
}

int soak(int seconds) {
  Bench b;
  if (!b.start()) return 1;
  const int per_second = 200;
  long dispatched = 0;
  std::vector<double> rss;
  auto start = Steady::now();
  auto next = start;
  while (ms_since(start) < seconds * 1000.0) {
    b.dispatch("flaky", per_second, [](int i) { return i; });
    dispatched += per_second;
    if (static_cast<long>(ms_since(start)) / 30000 >= static_cast<long>(rss.size())) {
      rss.push_back(rss_mb());
      std::printf("t=%4.0f s  dispatched %7ld  RSS %6.1f MB  in flight %4.0f  limit %4.0f\n",
                  ms_since(start) / 1000, dispatched, rss.back(), b.metric("ratchet_in_flight"),
                  b.metric("ratchet_endpoint_limit{endpoint=\"" + b.endpoint_url + "\"}"));
      std::fflush(stdout);
    }
    next += std::chrono::seconds(1);
    std::this_thread::sleep_until(next);
  }
  auto drained = Steady::now();
  long ended = 0, succeeded = 0, failed = 0;
  while (ms_since(drained) < 300'000) {
    succeeded = std::max(0L, count_calls(b, "SUCCEEDED"));
    failed = std::max(0L, count_calls(b, "FAILED"));
    ended = succeeded + failed;
    if (ended >= dispatched) break;
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  auto [low, high] = std::minmax_element(rss.begin(), rss.end());
  std::printf("dispatched %ld, succeeded %ld, failed %ld, unaccounted %ld; drained in %.1f s\n",
              dispatched, succeeded, failed, dispatched - ended, ms_since(drained) / 1000);
  std::printf("RSS first %.1f MB, min %.1f, max %.1f, last %.1f\n", rss.front(), *low, *high,
              rss.back());
  return ended == dispatched ? 0 : 1;
}

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // each figure as it comes, into a file too
  if (argc > 2 && std::string(argv[1]) == "--soak") return soak(std::stoi(argv[2]));
  bool quick = false;
  std::string only;  // one section, to profile or re-measure it alone
  // Sleepers are due over `spread_s` seconds, `from_s` after their first step.
  int spread_s = 5;
  int from_s = 5;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--quick") {
      quick = true;
    } else if (arg == "--only" && i + 1 < argc) {
      only = argv[++i];
    } else if (arg == "--sleep-spread" && i + 1 < argc) {
      spread_s = std::max(1, std::atoi(argv[++i]));
    } else if (arg == "--sleep-from" && i + 1 < argc) {
      from_s = std::max(1, std::atoi(argv[++i]));
    } else {
      std::fprintf(stderr,
                   "usage: load_bench [--quick] [--only SECTION] [--sleep-spread SECONDS] | --soak "
                   "SECONDS\n");
      return 2;
    }
  }
  auto runs = [&](const char* section) { return only.empty() || only == section; };
  const int roots = quick ? 1000 : 10000;
  const int fan_out = quick ? 2000 : 10000;
  const int flood = quick ? 5000 : 50000;
  const int sleepers = quick ? 10000 : 100000;

  Bench b;
  if (!b.start()) return 1;
  double idle_rss = rss_mb();
  std::printf("%-58s %12s %12s   %s\n", "what", "server", "floor", "goal");

  // Throughput: 10-step coroutines.
  if (runs("throughput")) {
    long before = b.seen.requests.load();
    double commits_before = b.metric("ratchet_commit_seconds_count");
    double cpu_before = cpu_seconds(), loop_before = cpu_seconds("ratchet-loop");
    double load_before = load_average();
    // Watched through /metrics rather than Wait: each Wait is a turn of the
    // scheduler that carries no step, and 10,000 of them would count as
    // commits (reading the figures makes no turn). Read before the dispatch:
    // on a quiet machine the first roots end before the last are dispatched.
    const std::string done = "ratchet_calls_ended_total{function=\"steps\",status=\"SUCCEEDED\"}";
    double done_before = std::max(0.0, b.metric(done));
    auto start = Steady::now();
    b.dispatch("steps", roots, [](int) { return 10; });
    while (b.metric(done) - done_before < roots) {
      if (ms_since(start) > 600'000) {
        std::fprintf(stderr, "throughput: the roots did not all end within 10 minutes\n");
        return 1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    double ms = ms_since(start);
    double commits = b.metric("ratchet_commit_seconds_count") - commits_before;
    long steps = b.seen.requests.load() - before;
    double cpu = cpu_seconds() - cpu_before, loop = cpu_seconds("ratchet-loop") - loop_before;
    double floor_ms =
        blast(b.client, *http::parse_url(b.endpoint_url), static_cast<int>(steps), 64,
              [](int i) { return post(std::string(protocol::kRunPath), run_request_body(i)); });
    row(("steps/s, " + std::to_string(roots) + " roots x 10 steps").c_str(), steps / (ms / 1000),
        steps / (floor_ms / 1000), ">= 10,000");
    row("steps per commit (fsync)", steps / std::max(1.0, commits), 0, "");
    row("CPU us per step, the whole process", cpu * 1e6 / steps, 0, "");
    row("CPU us per step, the scheduler's loop thread", loop * 1e6 / steps, 0, "");
    std::printf("load average: %.1f before, %.1f after\n", load_before, load_average());
  }

  // Fan-out: gather of N children.
  if (runs("fan-out")) {
    auto start = Steady::now();
    auto parent = b.dispatch("gather", 1, [&](int) { return fan_out; });
    b.await(parent[0]);
    double ms = ms_since(start);
    start = Steady::now();
    auto ids = b.dispatch("echo", fan_out, [](int i) { return i; });
    for (const auto& id : ids) b.await(id);
    double floor_ms = ms_since(start);
    row(("fan-out: gather of " + std::to_string(fan_out) + ", ms to the result").c_str(), ms,
        floor_ms, "<= 2,000 ms (floor: as roots)");
  }

  // Fairness: B behind a flood of A (a coroutine of 3 steps, so that A's
  // flood keeps the endpoint busy), beside B alone.
  if (runs("fairness")) {
    auto start = Steady::now();
    auto b_alone = b.dispatch("echo", 1, [](int) { return 0; });
    b.await(b_alone[0]);
    double alone_ms = ms_since(start);
    auto flood_start = Steady::now();
    auto a = b.dispatch("steps", flood, [](int) { return 3; });
    auto b_start = Steady::now();
    auto b_ids = b.dispatch("echo", 10, [](int i) { return i; });
    b.await(b_ids[0]);
    double b_ms = ms_since(b_start);
    for (const auto& id : a) b.await(id);
    double flood_ms = ms_since(flood_start);
    row(("fairness: B's first call behind " + std::to_string(flood) + " A, ms").c_str(), b_ms,
        alone_ms, "(floor: B alone)");
    row("fairness: the whole flood of A, ms", flood_ms, 0, "");
  }

  // Durable sleep: N sleepers of 5 to 10 s (--sleep-from, --sleep-spread).
  if (runs("sleep")) {
    const int spread_ms = spread_s * 1000, from_ms = from_s * 1000;
    auto ids = b.dispatch("sleep", sleepers, [&](int i) { return from_ms + (i % spread_ms); });
    // Before the first is due: RSS then.
    std::this_thread::sleep_for(std::chrono::milliseconds(from_ms - 1000));
    double asleep_rss = rss_mb();
    for (const auto& id : ids) b.await(id);
    auto late = percentiles(b.seen.lateness_ms);
    std::vector<double> os_late;
    for (int i = 0; i < 200; ++i) {
      auto due = WallClock::now() + std::chrono::milliseconds(5);
      std::this_thread::sleep_until(due);
      os_late.push_back(std::chrono::duration<double, std::milli>(WallClock::now() - due).count());
    }
    auto os = percentiles(os_late);
    row(("sleep lateness p50 ms, " + std::to_string(sleepers) + " due " + std::to_string(from_s) +
         "-" + std::to_string(from_s + spread_s) + " s on")
            .c_str(),
        late[0], os[0], "each <= 50 ms");
    row("sleep lateness p99 ms", late[1], os[1], "");
    row("sleep lateness max ms", late[2], os[2], "");
    row("RSS idle, MB", idle_rss, 0, "");
    row(("RSS with " + std::to_string(sleepers) + " asleep, MB").c_str(), asleep_rss, 0,
        ("<= " + std::to_string(50 + sleepers / 1024) + " MB").c_str());
  }
  return 0;
}
