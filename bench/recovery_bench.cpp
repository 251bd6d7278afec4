// How long the calls in flight wait when their server goes away: after a
// `kill -9` and a restart, and after a SIGTERM (a deploy) and a restart, until
// every call in flight has been sent to its endpoint again. The baseline, from
// the same run: a fresh server's start until the calls dispatched to it are
// sent (what any restart costs). Before instances were recorded, those calls
// waited for their leases to expire (the request timeout + 60 s: 6 minutes by
// default). It prints figures; it asserts nothing.
//
// The real `ratchet server` runs as a child process on a durable SQLite store,
// against the test endpoint (tests/server/test_endpoint.hpp), whose `hang`
// function never answers.
//
// usage: recovery_bench RATCHET_BIN [--quick]
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "protocol/values.hpp"
#include "support/api_client.hpp"
#include "support/server_process.hpp"
#include "test_endpoint.hpp"

namespace {

using namespace ratchet;
using namespace std::chrono_literals;
using testing::ApiClient;
using testing::ServerProcess;
using testing::ServerSettings;
using testing::TempDir;
using testing::TestEndpoint;
using Steady = std::chrono::steady_clock;

double ms_since(Steady::time_point start) {
  return std::chrono::duration<double, std::milli>(Steady::now() - start).count();
}

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "recovery_bench: %s\n", what.c_str());
  std::exit(1);
}

// One server on a fresh store with `calls` hanging calls sent to the endpoint.
class Scene {
 public:
  Scene(int calls, std::vector<std::string> args) {
    args.insert(args.end(), {"--request-timeout", "10m"});  // leases never expire here
    // All of them in flight at once: hanging calls never raise the endpoint's limit.
    args.insert(args.end(), {"--endpoint-initial-limit", std::to_string(calls)});
    server_.emplace(ServerSettings{dir_.path(), "k", "", std::move(args), ""});
    auto started = Steady::now();
    if (Status s = server_->start(); !s.is_ok()) die(s.message());
    ApiClient client(server_->url(), "k");
    std::vector<dispatch::sdk::v1::Call> batch(
        static_cast<std::size_t>(calls),
        testing::make_call(endpoint_.url(), "hang", protocol::pack_null()));
    auto ids = client.dispatch(batch);
    if (!ids.is_ok()) die(ids.status().message());
    ids_ = *ids;
    if (!each_sent(1)) die("the calls never reached the endpoint");
    fresh_start_ms_ = ms_since(started);
  }

  // Whether every call has been sent `times` times, waiting at most 60 s.
  bool each_sent(std::size_t times) {
    for (auto deadline = Steady::now() + 60s; Steady::now() < deadline;) {
      bool all = std::all_of(ids_.begin(), ids_.end(), [&](const std::string& id) {
        return endpoint_.requests_for(id).size() >= times;
      });
      if (all) return true;
      std::this_thread::sleep_for(1ms);
    }
    return false;
  }

  // Stops the server with `signal_number`; how long it took to exit.
  double stop(int signal_number) {
    auto sent = Steady::now();
    int status = server_->kill(signal_number, 60s);
    if (status == -1) die("the server did not exit");
    return ms_since(sent);
  }

  // Restarts the server on the same store; how long until every call was sent again.
  double restart_until_resent() {
    auto started = Steady::now();
    if (Status s = server_->start(); !s.is_ok()) die(s.message());
    if (!each_sent(2)) die("the calls were not sent again within 60 s");
    return ms_since(started);
  }

  double fresh_start_ms() const { return fresh_start_ms_; }

 private:
  TempDir dir_;
  TestEndpoint endpoint_;
  std::optional<ServerProcess> server_;
  std::vector<std::string> ids_;
  double fresh_start_ms_ = 0;
};

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) die("usage: recovery_bench RATCHET_BIN [--quick]");
  setenv("RATCHET_BIN", argv[1], 1);
  bool quick = argc > 2 && std::string(argv[2]) == "--quick";
  const int rounds = quick ? 1 : 5;
  const int calls = 200;

  std::vector<double> fresh, kill_resent, term_exit, term_resent;
  for (int round = 0; round < rounds; ++round) {
    {
      Scene scene(calls, {});
      fresh.push_back(scene.fresh_start_ms());
      scene.stop(SIGKILL);
      kill_resent.push_back(scene.restart_until_resent());
    }
    {
      // A grace of 1 s that the hanging calls use up, then they are given back.
      Scene scene(calls, {"--shutdown-grace", "1s"});
      term_exit.push_back(scene.stop(SIGTERM));
      term_resent.push_back(scene.restart_until_resent());
    }
  }
  std::printf("%d calls in flight (hanging), median of %d rounds, durable SQLite\n", calls, rounds);
  std::printf("  baseline: fresh start until dispatched calls are sent   %8.0f ms\n",
              median(fresh));
  std::printf("  kill -9: restart until every call is sent again          %8.0f ms\n",
              median(kill_resent));
  std::printf("  SIGTERM (--shutdown-grace 1s): signal until exit         %8.0f ms\n",
              median(term_exit));
  std::printf("  SIGTERM: restart until every call is sent again          %8.0f ms\n",
              median(term_resent));
  std::printf(
      "  without the takeover: the leases' expiry, request timeout + 60 s (default 360000 ms)\n");
  return 0;
}
