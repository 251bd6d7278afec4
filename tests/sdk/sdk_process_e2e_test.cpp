// The SDK end to end across endpoint processes: a real `ratchet server`
// (RATCHET_BIN) drives the `steps` coroutine of steps_endpoint_main, a process
// the tests kill with SIGKILL, stop with SIGTERM and replace on the same port.
// The test process only dispatches and waits (a Dispatch client, no server).
//
// What a step did is read from the endpoint's log: work(i) appends "i" before
// it returns, and steps run strictly in order, so the log says which steps ran
// and how often. Nothing here sleeps to synchronise: every wait is a Wait RPC
// or a poll with a deadline.
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "http/server.hpp"
#include "ratchet/ratchet.hpp"
#include "storage/pg_testing.hpp"
#include "support/run_process.hpp"
#include "support/server_process.hpp"

namespace ratchet {
namespace {

using namespace std::chrono_literals;
using testing::ChildProcess;
using testing::ServerProcess;
using testing::ServerSettings;
using testing::TempDir;
using Steady = std::chrono::steady_clock;

// Generous: a loaded 2-core machine under AddressSanitizer is slow, and a
// deadline only matters when the test is failing anyway.
constexpr auto kStartTimeout = 30s;
constexpr auto kRunTimeout = 90s;

// The sum of i*i for i = 1..n: what steps(n) returns.
int sum_of_squares(int n) { return n * (n + 1) * (2 * n + 1) / 6; }

// The lines of a log written by work(i): one number each.
std::vector<int> read_log(const std::string& path) {
  std::vector<int> numbers;
  std::istringstream lines(testing::read_file(path));
  for (std::string line; std::getline(lines, line);) numbers.push_back(std::stoi(line));
  return numbers;
}

std::size_t count_lines(const std::string& path) {
  std::string text = testing::read_file(path);
  return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

std::map<int, int> occurrences(const std::vector<int>& numbers) {
  std::map<int, int> count;
  for (int n : numbers) ++count[n];
  return count;
}

std::vector<int> sequence(int first, int last) {
  std::vector<int> numbers;
  for (int i = first; i <= last; ++i) numbers.push_back(i);
  return numbers;
}

std::vector<int> concat(std::vector<std::vector<int>> parts) {
  std::vector<int> all;
  for (const auto& part : parts) all.insert(all.end(), part.begin(), part.end());
  return all;
}

// How many lines of `path` are exactly `text`.
std::size_t lines_equal(const std::string& path, const std::string& text) {
  std::istringstream lines(testing::read_file(path));
  std::size_t count = 0;
  for (std::string line; std::getline(lines, line);) count += line == text;
  return count;
}

// How many times the coroutine's body started (see --coroutine-log).
std::size_t starts(const std::string& coroutine_log) { return lines_equal(coroutine_log, "start"); }

// Polls `done` until it is true; false after `timeout`.
template <typename Predicate>
bool wait_until(Predicate done, std::chrono::milliseconds timeout = kRunTimeout) {
  auto deadline = Steady::now() + timeout;
  while (!done()) {
    if (Steady::now() >= deadline) return false;
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

bool wait_for_lines(const std::string& path, std::size_t lines) {
  return wait_until([&] { return count_lines(path) >= lines; });
}

class SdkProcesses : public ::testing::Test {
 protected:
  void SetUp() override { start_server(""); }

  // A `ratchet server` on `db` (empty: a SQLite store in the test's directory).
  void start_server(const std::string& db) {
    auto public_key = testing::keygen(dir_.file("signing.pem"));
    ASSERT_TRUE(public_key.is_ok()) << public_key.status().message();
    public_key_ = *public_key;
    ServerSettings settings;
    settings.home = dir_.path();
    settings.signing_key_file = dir_.file("signing.pem");
    settings.db = db;
    // A request the endpoint never answers fails in seconds, not minutes.
    settings.extra_args = {"--request-timeout", "20s"};
    server_ = std::make_unique<ServerProcess>(std::move(settings));
    Status started = server_->start();
    ASSERT_TRUE(started.is_ok()) << started.message();
  }

  void TearDown() override {
    if (endpoint_) {
      endpoint_->signal(SIGTERM);
      endpoint_->wait_exit(10s);
    }
    if (HasFailure()) std::cerr << diagnostics();
  }

  // Starts `binary` (steps_endpoint_main by default) with `flags` at the
  // endpoint's port (the first start picks a free one, later starts reuse it)
  // and waits until it serves.
  ::testing::AssertionResult start_endpoint(const std::vector<std::string>& flags,
                                            const std::string& binary = STEPS_ENDPOINT_MAIN,
                                            const testing::Env& more_env = {}) {
    if (endpoint_ && endpoint_->running()) {
      return ::testing::AssertionFailure() << "the previous endpoint is still running";
    }
    ++endpoint_starts_;
    std::string err = endpoint_stderr(endpoint_starts_);
    std::vector<std::string> argv = {binary};
    argv.insert(argv.end(), flags.begin(), flags.end());
    testing::Env env = {{"DISPATCH_API_KEY", "k"},
                        {"DISPATCH_API_URL", server_->url()},
                        {"DISPATCH_ENDPOINT_ADDR", "127.0.0.1:" + std::to_string(endpoint_port_)},
                        // Unset: the coroutine's calls go where the server reached it.
                        {"DISPATCH_ENDPOINT_URL", ""},
                        {"DISPATCH_VERIFICATION_KEY", public_key_},
                        {"DISPATCH_TRACE", ""}};
    env.insert(env.end(), more_env.begin(), more_env.end());
    auto child = ChildProcess::spawn(
        argv, env, dir_.file("endpoint-" + std::to_string(endpoint_starts_) + ".out"), err);
    if (!child.is_ok()) return ::testing::AssertionFailure() << child.status().message();
    endpoint_.emplace(std::move(*child));
    static const std::regex kServing("serving durable functions at .* \\(port ([0-9]+)\\)");
    auto deadline = Steady::now() + kStartTimeout;
    while (Steady::now() < deadline) {
      std::smatch match;
      std::string log = testing::read_file(err);
      if (std::regex_search(log, match, kServing)) {
        endpoint_port_ = static_cast<std::uint16_t>(std::stoi(match[1].str()));
        return ::testing::AssertionSuccess();
      }
      if (!endpoint_->running()) {
        return ::testing::AssertionFailure() << "the endpoint exited before it served:\n" << log;
      }
      std::this_thread::sleep_for(5ms);
    }
    return ::testing::AssertionFailure() << "the endpoint did not serve within 30 s";
  }

  // Sends `signal_number` to the endpoint and waits until it is gone; its wait status.
  int stop_endpoint(int signal_number) {
    if (!endpoint_) return -1;
    endpoint_->signal(signal_number);
    int status = endpoint_->wait_exit(30s);
    endpoint_.reset();
    return status;
  }

  // A client of the server's API for the endpoint's functions. Its Functions
  // are declared only, for their typed handles: this process serves nothing.
  Dispatch& client() {
    if (!client_) {
      Options options;
      options.api_key = "k";
      options.api_url = server_->url();
      options.endpoint_url = endpoint_url();
      options.verification_key = "";
      options.trace = false;
      client_ = std::make_unique<Dispatch>(options);
    }
    return *client_;
  }

  // A root call of steps(n) at the endpoint, dispatched through the client.
  Handle<int> dispatch_steps(int n) {
    if (!steps_) steps_.emplace(client().declare<int(int)>("steps"));
    return steps_->dispatch(n);
  }

  // The result of a call; fails the test if it has none in time.
  template <typename R, typename... A>
  std::optional<R> wait_for(const Function<R(A...)>& fn, const Handle<R>& id) {
    try {
      return fn.wait(id, kRunTimeout);
    } catch (const std::exception& e) {
      ADD_FAILURE() << fn.name() << " call " << id.id() << " failed: " << e.what();
      return std::nullopt;
    }
  }
  std::optional<int> wait_steps(const Handle<int>& id) { return wait_for(*steps_, id); }

  // `ratchet status --job-id ID` on the server's store, as JSON.
  nlohmann::json call_status(const std::string& id) const {
    auto status =
        testing::run_process({testing::ratchet_bin(), "status", "--job-id", id},
                             {{"RATCHET_HOME", dir_.path()}, {"RATCHET_DB", server_->db_path()}});
    auto shown = nlohmann::json::parse(status.out, nullptr, false);
    return shown.is_object() ? shown : nlohmann::json::object();
  }

  // `ratchet ARGS...` on the server's store.
  testing::ProcessResult ratchet_cli(std::vector<std::string> args) const {
    args.insert(args.begin(), testing::ratchet_bin());
    return testing::run_process(args, {{"RATCHET_HOME", dir_.path()},
                                       {"RATCHET_DB", server_->db_path()},
                                       {"RATCHET_ACTOR", "alice@test"}});
  }

  // steps_endpoint_main `flags` --ratchet-check, as a deploy's CI runs the new
  // build: it asks the server for the open coroutines (those of its functions
  // and those at the endpoint's URL) and serves nothing. `more`: variables added.
  testing::ProcessResult run_check(std::vector<std::string> flags, const std::string& api_key = "k",
                                   const testing::Env& more = {}) const {
    std::vector<std::string> argv = {STEPS_ENDPOINT_MAIN};
    argv.insert(argv.end(), flags.begin(), flags.end());
    argv.push_back("--ratchet-check");
    testing::Env env = {{"DISPATCH_API_KEY", api_key},
                        {"DISPATCH_API_URL", server_->url()},
                        {"DISPATCH_ENDPOINT_ADDR", "127.0.0.1:0"},
                        {"DISPATCH_ENDPOINT_URL", endpoint_url()},
                        {"DISPATCH_VERIFICATION_KEY", public_key_},
                        {"DISPATCH_TRACE", ""}};
    env.insert(env.end(), more.begin(), more.end());
    return testing::run_process(argv, env);
  }

  // The URL the server calls the endpoint at: the calls' endpoint.
  std::string endpoint_url() const { return "http://127.0.0.1:" + std::to_string(endpoint_port_); }

  std::string endpoint_stderr(int start) const {
    return dir_.file("endpoint-" + std::to_string(start) + ".err");
  }

  std::string diagnostics() const {
    std::string text = server_ ? server_->logs() : "";
    for (int i = 1; i <= endpoint_starts_; ++i) {
      text += "---- endpoint start " + std::to_string(i) + " ----\n";
      text += testing::read_file(endpoint_stderr(i));
    }
    return text;
  }

  std::string file(const std::string& name) const { return dir_.file(name); }
  const ServerProcess& server() const { return *server_; }
  ServerProcess& server() { return *server_; }
  const std::string& public_key() const { return public_key_; }

 private:
  TempDir dir_;
  std::string public_key_;
  std::unique_ptr<ServerProcess> server_;
  std::uint16_t endpoint_port_ = 0;
  int endpoint_starts_ = 0;
  std::optional<ChildProcess> endpoint_;
  std::unique_ptr<Dispatch> client_;
  std::optional<Function<int(int)>> steps_;
};

// The kill of the issue: steps run strictly in order (step i+1 is dispatched
// by the coroutine's resume with step i's result, which the server recorded
// first), so when the kill leaves L lines in the log, steps 1..L-1 were
// recorded and must not run again; only step L (logged, perhaps not answered)
// may. The kill follows a new line closely, so it mostly lands in work(L).
TEST_F(SdkProcesses, KillNineMidCoroutineRerunsOnlyTheUnrecordedStep) {
  const std::string log = file("work.log");
  ASSERT_TRUE(start_endpoint({"--log", log, "--work-delay-ms", "20"}));
  auto id = dispatch_steps(50);
  ASSERT_TRUE(wait_for_lines(log, 20)) << "the steps did not run";

  int status = stop_endpoint(SIGKILL);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "wait status " << status;
  std::vector<int> before = read_log(log);
  const int killed_at = static_cast<int>(before.size());
  ASSERT_LT(killed_at, 50) << "the coroutine finished before the kill: nothing was tested";
  for (int i = 0; i < killed_at; ++i) ASSERT_EQ(before[i], i + 1) << "steps ran out of order";

  ASSERT_TRUE(start_endpoint({"--log", log}));
  std::optional<int> result = wait_steps(id);
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(*result, sum_of_squares(50));

  std::map<int, int> runs = occurrences(read_log(log));
  for (int step = 1; step <= 50; ++step) {
    if (step == killed_at) {
      EXPECT_TRUE(runs[step] == 1 || runs[step] == 2)
          << "step " << step << " (running at the kill) ran " << runs[step] << " times";
    } else {
      EXPECT_EQ(runs[step], 1) << "step " << step << " (killed at step " << killed_at << ")";
    }
  }
  EXPECT_EQ(runs.size(), 50u) << "work ran with arguments outside 1..50";
}

// The same kill landing while the coroutine itself runs: it holds after step
// 25's result, so steps 1..25 are recorded, and none of them may run again.
// The server retries the coroutine's own attempt on the new process, which
// replays the journal. (Its 26th attempt: a resume is not a failed attempt,
// or a coroutine longer than --max-attempts could not survive one failure.)
TEST_F(SdkProcesses, KillNineWhileTheCoroutineRunsRerunsNoStep) {
  const std::string log = file("work.log");
  const std::string coroutine_log = file("coroutine.log");
  ASSERT_TRUE(
      start_endpoint({"--log", log, "--coroutine-log", coroutine_log, "--hold-after", "25"}));
  auto id = dispatch_steps(50);
  ASSERT_TRUE(wait_until([&] {
    return testing::read_file(coroutine_log).find("hold") != std::string::npos;
  })) << "the coroutine did not reach step 25";
  int status = stop_endpoint(SIGKILL);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "wait status " << status;
  ASSERT_EQ(read_log(log), sequence(1, 25));

  ASSERT_TRUE(start_endpoint({"--log", log, "--coroutine-log", coroutine_log}));
  std::optional<int> result = wait_steps(id);
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(*result, sum_of_squares(50));
  EXPECT_EQ(read_log(log), sequence(1, 50)) << "each step ran exactly once";
  EXPECT_EQ(starts(coroutine_log), 2u) << "a first run, and one replay on the new process";
}

// The coroutine is suspended at step 25 (work(25) holds) when its process is
// killed and replaced by one whose coroutine calls work(1005) at step 5. Once
// work(25) ran again there, the replay of the journal answers
// INCOMPATIBLE_STATE naming step 5; per PROTOCOL.md (rule 7) the server then
// restarts the call from its input, so the call completes with the new code's
// result, every step of which ran again. (Past step 20: the restart must not
// count as one more of --max-attempts' attempts on top of every resume.)
// A client waits for a call while the server is killed and started again (a
// deploy of the server): the call goes on in the store, and the wait, within
// its deadline, rides over the refused and dropped connections to its result.
TEST_F(SdkProcesses, AWaitRidesOverARestartOfTheServer) {
  const std::string log = file("work.log");
  ASSERT_TRUE(start_endpoint({"--log", log, "--work-delay-ms", "20"}));
  auto id = dispatch_steps(40);
  auto waited = std::async(std::launch::async, [&] { return wait_steps(id); });
  ASSERT_TRUE(wait_for_lines(log, 5)) << "the steps did not run";
  server().kill(SIGKILL);  // the Wait in flight is cut; new ones are refused
  Status restarted = server().start();
  ASSERT_TRUE(restarted.is_ok()) << restarted.message();
  std::optional<int> result = waited.get();
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(*result, sum_of_squares(40));
}

TEST_F(SdkProcesses, ChangedCodeDivergesAtTheStepAndRestartsFromTheInput) {
  const std::string log = file("work.log");
  ASSERT_TRUE(start_endpoint({"--log", log, "--hold-at", "25"}));
  auto id = dispatch_steps(30);
  ASSERT_TRUE(wait_for_lines(log, 25)) << "the steps did not run";
  int status = stop_endpoint(SIGKILL);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "wait status " << status;

  ASSERT_TRUE(start_endpoint({"--log", log, "--diverge-at", "5"}));
  std::optional<int> result = wait_steps(id);
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(*result, sum_of_squares(30) - 5 * 5 + 1005 * 1005);

  EXPECT_NE(server().logs().find("step 5 diverged: the code now calls work with other arguments"),
            std::string::npos)
      << "the server did not report the divergence naming the step";
  // The old code's steps 1..25; work(25) again (its attempt died with the
  // process); then the new code from its input.
  EXPECT_EQ(read_log(log),
            concat({sequence(1, 25), {25}, sequence(1, 4), {1005}, sequence(6, 30)}));
}

// The same coroutine resumed from the live frame (one process throughout),
// by replay on a second process, and by replay on every resume (no frame
// cache) gives the same result. The cache's bound is unit-tested
// (Runtime.TheFrameCacheIsBounded).
TEST_F(SdkProcesses, CacheAndReplayOnASecondProcessGiveTheSameResult) {
  constexpr int kSteps = 30;
  auto flags = [&](const std::string& name, const std::vector<std::string>& extra) {
    std::vector<std::string> all = {"--log", file(name + ".log"), "--coroutine-log",
                                    file(name + ".coroutine")};
    all.insert(all.end(), extra.begin(), extra.end());
    return all;
  };

  // Cache: the body started once; every resume continued the live frame.
  ASSERT_TRUE(start_endpoint(flags("cached", {})));
  std::optional<int> cached = wait_steps(dispatch_steps(kSteps));
  EXPECT_EQ(starts(file("cached.coroutine")), 1u) << "a resume replayed despite the cache";
  int status = stop_endpoint(SIGTERM);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "wait status " << status;

  // Replay on a second process: the first is killed while the coroutine is
  // suspended at step 10 (work(10) holds). The second, on the same port with
  // an empty cache, runs work(10) again, replays the journal once, and then
  // resumes its own live frame.
  ASSERT_TRUE(start_endpoint(flags("first", {"--hold-at", "10"})));
  auto id = dispatch_steps(kSteps);
  ASSERT_TRUE(wait_for_lines(file("first.log"), 10));
  status = stop_endpoint(SIGKILL);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "wait status " << status;
  ASSERT_TRUE(start_endpoint(flags("second", {})));
  std::optional<int> replayed = wait_steps(id);
  EXPECT_EQ(read_log(file("first.log")), sequence(1, 10));
  EXPECT_EQ(read_log(file("second.log")), sequence(10, kSteps));
  EXPECT_EQ(starts(file("first.coroutine")), 1u);
  EXPECT_EQ(starts(file("second.coroutine")), 1u) << "one replay, then the live frame";
  status = stop_endpoint(SIGTERM);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "wait status " << status;

  // No cache: every resume replays (the first run and kSteps resumes).
  ASSERT_TRUE(start_endpoint(flags("uncached", {"--frame-cache", "0"})));
  std::optional<int> uncached = wait_steps(dispatch_steps(kSteps));
  EXPECT_GE(starts(file("uncached.coroutine")), static_cast<std::size_t>(kSteps + 1));

  ASSERT_TRUE(cached && replayed && uncached);
  EXPECT_EQ(*cached, sum_of_squares(kSteps));
  EXPECT_EQ(*replayed, *cached);
  EXPECT_EQ(*uncached, *cached);
}

// With RATCHET_SPIN_US=0 the service's threads (I/O, workers) sleep as soon
// as they are idle: a coroutine of many steps completes the same.
TEST_F(SdkProcesses, ACoroutineCompletesWithSpinningOffInTheService) {
  constexpr int kSteps = 30;
  ASSERT_TRUE(start_endpoint({"--log", file("steps.log")}, STEPS_ENDPOINT_MAIN,
                             {{"RATCHET_SPIN_US", "0"}}));
  std::optional<int> result = wait_steps(dispatch_steps(kSteps));
  ASSERT_TRUE(result);
  EXPECT_EQ(*result, sum_of_squares(kSteps));
  EXPECT_EQ(read_log(file("steps.log")), sequence(1, kSteps));
  int status = stop_endpoint(SIGTERM);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "wait status " << status;
}

// A coroutine sleeps across a kill -9 of its process: the wake time was
// recorded with the Poll that suspended it, so a new process resumes it when
// it is due, and the local step before the sleep (recorded by that Poll) does
// not run again.
TEST_F(SdkProcesses, ASleepOutlivesAKillNineOfItsProcess) {
  constexpr int kSleepMs = 2000;
  const std::string log = file("coroutine.log");
  ASSERT_TRUE(start_endpoint({"--log", file("work.log"), "--coroutine-log", log}));
  auto nap = client().declare<long long(int)>("nap");
  Handle<long long> call = nap.dispatch(kSleepMs);
  // Sleeping, as the server's store says (what `ratchet status` shows).
  nlohmann::json shown;
  ASSERT_TRUE(wait_until([&] {
    shown = call_status(call.id());
    return shown.value("phase", "") == "WAITING";
  })) << shown.dump();
  EXPECT_TRUE(shown["wakes_by"].is_string()) << shown.dump();
  EXPECT_EQ(lines_equal(log, "before"), 1u);

  int status = stop_endpoint(SIGKILL);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "wait status " << status;
  ASSERT_TRUE(start_endpoint({"--log", file("work.log"), "--coroutine-log", log}));

  std::optional<long long> slept = wait_for(nap, call);
  ASSERT_TRUE(slept.has_value());
  EXPECT_GE(*slept, kSleepMs) << "the recorded times around the sleep";
  EXPECT_EQ(lines_equal(log, "nap start"), 2u) << "a first run, and the replay after the wake";
  EXPECT_EQ(lines_equal(log, "before"), 1u) << "recorded by the sleep's Poll: never again";
  EXPECT_EQ(lines_equal(log, "after"), 1u);
}

// step() results survive a crash and do not run again once recorded: steps a
// and b are recorded by the Poll of work(1); step c, killed while it runs,
// was not recorded, so it runs again (at least once until recorded).
TEST_F(SdkProcesses, RecordedStepsSurviveAKillAndOnlyTheUnrecordedOneRunsAgain) {
  const std::string log = file("coroutine.log");
  ASSERT_TRUE(
      start_endpoint({"--log", file("work.log"), "--coroutine-log", log, "--hold-in-step", "c"}));
  auto ledger = client().declare<int()>("ledger");
  Handle<int> call = ledger.dispatch();
  ASSERT_TRUE(wait_until([&] { return lines_equal(log, "step c") == 1; })) << "step c did not run";
  int status = stop_endpoint(SIGKILL);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "wait status " << status;

  ASSERT_TRUE(start_endpoint({"--log", file("work.log"), "--coroutine-log", log}));
  std::optional<int> result = wait_for(ledger, call);
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(*result, 'a' + 'b' + 1 + 'c');
  EXPECT_EQ(lines_equal(log, "step a"), 1u);
  EXPECT_EQ(lines_equal(log, "step b"), 1u);
  EXPECT_EQ(lines_equal(log, "step c"), 2u) << "killed before it was recorded: ran again";
  EXPECT_EQ(read_log(file("work.log")), std::vector<int>{1}) << "the durable call ran once";
}

// The payment service of the saga: charges once per Idempotency-Key (a
// second request with the key gets the first charge's id), refunds by key.
class PaymentStub {
 public:
  PaymentStub() {
    http::ServerOptions options;
    options.port = 0;
    auto server = http::Server::start_blocking(
        options, [this](const http::Request& request) { return handle(request); });
    EXPECT_TRUE(server.is_ok()) << server.status().message();
    if (server.is_ok()) server_ = std::move(*server);
  }
  ~PaymentStub() {
    if (server_) server_->stop();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(server_->port()); }

  struct Ledger {
    int charge_requests = 0;
    std::map<std::string, std::string> charges;  // key -> charge id
    std::vector<std::string> refunds;            // keys
  };
  Ledger ledger() const {
    std::lock_guard lock(mutex_);
    return ledger_;
  }

 private:
  http::Response handle(const http::Request& request) {
    std::string key(request.header("Idempotency-Key").value_or(""));
    std::lock_guard lock(mutex_);
    if (key.empty()) return http::Response::with_body(400, "text/plain", "no key");
    if (request.path() == "/charge") {
      ++ledger_.charge_requests;
      auto [it, created] =
          ledger_.charges.emplace(key, "ch-" + std::to_string(ledger_.charges.size() + 1));
      return http::Response::with_body(200, "text/plain", it->second);
    }
    if (request.path() == "/refund") {
      ledger_.refunds.push_back(key);
      return http::Response::with_body(200, "text/plain", "refunded");
    }
    return http::Response::with_body(404, "text/plain", "no such route");
  }

  mutable std::mutex mutex_;
  Ledger ledger_;
  std::unique_ptr<http::Server> server_;
};

// The saga of issue 14, with a kill -9 inside the charge: the payment service
// has charged, the step has not returned. The new process runs the charge step
// again (it was not recorded), with the same key, so the service charges once;
// then one reservation of three fails, and the two that succeeded are
// cancelled and the charge refunded.
TEST_F(SdkProcesses, ASagaKilledInsideTheChargeChargesOnceAndCompensates) {
  PaymentStub payments;
  const std::string log = file("saga.log");
  ASSERT_TRUE(start_endpoint({"--payments", payments.url(), "--log", log, "--hold-after-charge"},
                             SAGA_ENDPOINT_MAIN));
  auto order = client().declare<nlohmann::json(nlohmann::json)>("order");
  nlohmann::json input = {{"cents", 2500}, {"items", {"chair", "sold-out-lamp", "desk"}}};
  Handle<nlohmann::json> call = order.dispatch(input);
  ASSERT_TRUE(wait_until([&] {
    return payments.ledger().charges.size() == 1 &&
           testing::read_file(log).find("charged") != std::string::npos;
  })) << "the charge did not happen";
  int status = stop_endpoint(SIGKILL);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "wait status " << status;

  ASSERT_TRUE(start_endpoint({"--payments", payments.url(), "--log", log}, SAGA_ENDPOINT_MAIN));
  std::optional<nlohmann::json> result = wait_for(order, call);
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(*result, (nlohmann::json{{"status", "compensated"},
                                     {"charge", "ch-1"},
                                     {"cancelled", {"res-chair", "res-desk"}},
                                     {"failed", {"sold-out-lamp is sold out"}}}))
      << result->dump();

  PaymentStub::Ledger ledger = payments.ledger();
  const std::string key = call.id() + "/charge";  // derived from ratchet::current()
  EXPECT_EQ(ledger.charge_requests, 2) << "the unrecorded charge step ran again";
  EXPECT_EQ(ledger.charges, (std::map<std::string, std::string>{{key, "ch-1"}})) << "charged once";
  EXPECT_EQ(ledger.refunds, std::vector<std::string>{key});
  EXPECT_EQ(lines_equal(log, "charged ch-1"), 2u);
  EXPECT_EQ(lines_equal(log, "reserve chair"), 1u);
  EXPECT_EQ(lines_equal(log, "reserve desk"), 1u);
  EXPECT_EQ(lines_equal(log, "cancel res-chair"), 1u);
  EXPECT_EQ(lines_equal(log, "cancel res-desk"), 1u);
  EXPECT_EQ(lines_equal(log, "refunded ch-1"), 1u);
  EXPECT_EQ(testing::read_file(log).find("lamp"), std::string::npos)
      << "the failed reservation is not cancelled";
}

// ---- Safe deploys and operator repair (docs/sdk.md) ----

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Two open coroutines: steps(30) suspended at step 25 (work(25) holds), and a
// nap sleeping for ten minutes. A new build whose step 5 changed diverges
// there for the first and resumes the second; the same build, and one that
// made the change under patched(), resume both. No check runs a step.
TEST_F(SdkProcesses, CheckSaysWhichOpenCoroutineResumesAndWhichDivergesAtItsStep) {
  const std::string log = file("work.log");
  ASSERT_TRUE(start_endpoint({"--log", log, "--hold-at", "25"}));
  auto steps = dispatch_steps(30);
  auto nap = client().declare<long long(int)>("nap");
  Handle<long long> napping = nap.dispatch(600'000);
  ASSERT_TRUE(wait_for_lines(log, 25)) << "the steps did not run";
  ASSERT_TRUE(wait_until([&] {
    return call_status(steps.id()).value("phase", "") == "WAITING" &&
           call_status(napping.id()).value("phase", "") == "WAITING";
  })) << call_status(steps.id()).dump()
      << call_status(napping.id()).dump();

  const std::string check_log = file("check.log");
  auto changed = run_check({"--log", check_log, "--diverge-at", "5"});
  EXPECT_EQ(changed.exit_code, 1) << changed.out << changed.err;
  EXPECT_TRUE(contains(changed.out, steps.id() +
                                        " steps (WAITING): diverges at step 5: step 5 diverged: "
                                        "the code now calls work with other arguments"))
      << changed.out;
  EXPECT_TRUE(contains(changed.out, napping.id() + " nap (WAITING): resumes")) << changed.out;
  EXPECT_TRUE(contains(changed.out, "2 open coroutines, 1 resume, 1 diverge")) << changed.out;

  auto same = run_check({"--log", check_log});
  EXPECT_EQ(same.exit_code, 0) << same.out << same.err;
  EXPECT_TRUE(contains(same.out, steps.id() + " steps (WAITING): resumes: its 25 recorded steps "
                                              "replay; it waits for the result of step 25"))
      << same.out;
  auto patched = run_check({"--log", check_log, "--patch-at", "5"});
  EXPECT_EQ(patched.exit_code, 0) << "a run recorded before the patch keeps its old path:\n"
                                  << patched.out << patched.err;
  // A build whose steps returns after step 3: steps 4..25 ran, and would stay
  // as they are (a saga's reservations, uncancelled).
  auto shorter = run_check({"--log", check_log, "--stop-after", "3"});
  EXPECT_EQ(shorter.exit_code, 1) << shorter.out << shorter.err;
  EXPECT_TRUE(contains(shorter.out,
                       steps.id() + " steps (WAITING): diverges at step 4: step 4 diverged: the "
                                    "code now finishes where the journal recorded a call to "
                                    "work and 21 more steps"))
      << shorter.out;
  // A build without nap: its open coroutine at this endpoint would fail for
  // good once deployed, so the check reports it.
  auto removed = run_check({"--log", check_log, "--without-nap", "1"});
  EXPECT_EQ(removed.exit_code, 1) << removed.out << removed.err;
  EXPECT_TRUE(contains(removed.out, napping.id() + " nap (WAITING): not in this build: function "
                                                   "nap has no definition here; its open "
                                                   "coroutines cannot resume\n"))
      << removed.out;
  EXPECT_FALSE(contains(removed.out, "step 0")) << removed.out;
  EXPECT_TRUE(contains(removed.out,
                       "ratchet-check: 2 open coroutines, 1 resume, 0 diverge, 1 not in this "
                       "build\n"))
      << removed.out;
  EXPECT_EQ(testing::read_file(check_log), "") << "a check ran a step";

  auto refused = run_check({"--log", check_log}, "wrong-key");
  EXPECT_EQ(refused.exit_code, 2) << refused.out << refused.err;
  EXPECT_TRUE(contains(refused.err, "DISPATCH_API_KEY")) << refused.err;
  stop_endpoint(SIGKILL);  // work(25) holds for a minute
}

// More open coroutines than the server lists at once (pages of 1 here, as of
// 1,000 in production): the check pages through ListOpen after the last id of
// each page and checks every one once, in dispatch id order.
TEST_F(SdkProcesses, CheckPagesThroughMoreOpenCoroutinesThanTheServerListsAtOnce) {
  ASSERT_TRUE(start_endpoint({"--log", file("work.log")}));
  auto nap = client().declare<long long(int)>("nap");
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) ids.push_back(nap.dispatch(600'000).id());
  ASSERT_TRUE(wait_until([&] {
    for (const auto& id : ids) {
      if (call_status(id).value("phase", "") != "WAITING") return false;
    }
    return true;
  })) << "the naps did not suspend";

  auto paged = run_check({"--log", file("check.log")}, "k", {{"RATCHET_CHECK_PAGE_SIZE", "1"}});
  EXPECT_EQ(paged.exit_code, 0) << paged.out << paged.err;
  std::sort(ids.begin(), ids.end());
  std::size_t previous = 0;
  for (const auto& id : ids) {
    const std::string line = id + " nap (WAITING): resumes";
    std::size_t at = paged.out.find(line);
    ASSERT_NE(at, std::string::npos) << line << "\n" << paged.out;
    EXPECT_GE(at, previous) << "not in id order:\n" << paged.out;
    EXPECT_EQ(paged.out.find(line, at + 1), std::string::npos) << "checked twice:\n" << paged.out;
    previous = at;
  }
  EXPECT_TRUE(contains(paged.out, "ratchet-check: 3 open coroutines, 3 resume, 0 diverge\n"))
      << paged.out;
  EXPECT_EQ(testing::read_file(file("check.log")), "") << "a check ran a step";
}

// The new build holds its calls on a divergence: the call stops, HELD with the
// report, instead of restarting from its input (no step runs again); an
// operator's rewind to the diverging step resumes it on the new code, which
// keeps steps 1..4 and runs step 5 on. The action is in the call's record.
TEST_F(SdkProcesses, ADivergedCallIsHeldUntilAnOperatorRewindsIt) {
  const std::string log = file("work.log");
  ASSERT_TRUE(start_endpoint({"--log", log, "--hold-at", "25"}));
  auto id = dispatch_steps(30);
  ASSERT_TRUE(wait_for_lines(log, 25)) << "the steps did not run";
  stop_endpoint(SIGKILL);
  ASSERT_TRUE(start_endpoint({"--log", log, "--diverge-at", "5", "--hold-on-divergence", "1"}));

  nlohmann::json shown;
  ASSERT_TRUE(wait_until([&] {
    shown = call_status(id.id());
    return shown.value("phase", "") == "HELD";
  })) << shown.dump();
  EXPECT_EQ(shown["status"], "RUNNING");
  std::string report = shown["error"].value("message", "");
  EXPECT_TRUE(contains(report, "step 5 diverged: the code now calls work with other arguments"))
      << report;
  EXPECT_TRUE(contains(report, "held for an operator")) << report;
  EXPECT_EQ(read_log(log), concat({sequence(1, 25), {25}}))
      << "held: nothing restarted from the input";

  auto rewound = ratchet_cli({"rewind", "--job-id", id.id(), "--to-step", "5"});
  ASSERT_EQ(rewound.exit_code, 0) << rewound.out << rewound.err;
  auto answer = nlohmann::json::parse(rewound.out, nullptr, false);
  ASSERT_TRUE(answer.is_object()) << rewound.out;
  EXPECT_EQ(answer["phase"], "READY");
  EXPECT_TRUE(contains(answer["action"].value("detail", ""), "rewound to step 5 of 25"))
      << rewound.out;

  std::optional<int> result = wait_steps(id);
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(*result, sum_of_squares(30) - 5 * 5 + 1005 * 1005);
  EXPECT_EQ(read_log(log), concat({sequence(1, 25), {25}, {1005}, sequence(6, 30)}))
      << "steps 1..4 kept, step 5 on run again";
  shown = call_status(id.id());
  ASSERT_TRUE(shown["actions"].is_array()) << shown.dump();
  ASSERT_EQ(shown["actions"].size(), 1u);
  EXPECT_EQ(shown["actions"][0]["action"], "rewind");
  EXPECT_EQ(shown["actions"][0]["actor"], "alice@test");
}

// An operator gives the step a coroutine waits on its result while the call
// of that step is still running: the coroutine resumes with it at once, the
// running call is abandoned, and the rest of the tree runs.
TEST_F(SdkProcesses, SetResultGivesAStepOfARunningTreeItsResult) {
  const std::string log = file("work.log");
  ASSERT_TRUE(start_endpoint({"--log", log, "--hold-at", "3"}));
  auto id = dispatch_steps(5);
  ASSERT_TRUE(wait_for_lines(log, 3)) << "the steps did not run";
  ASSERT_TRUE(wait_until([&] { return call_status(id.id()).value("phase", "") == "WAITING"; }));

  // Step 2 recorded work(2)'s number: a string would fail the coroutine for good.
  auto mistyped =
      ratchet_cli({"set-result", "--job-id", id.id(), "--step", "2", "--output", "\"four\""});
  EXPECT_EQ(mistyped.exit_code, 2) << mistyped.out << mistyped.err;
  EXPECT_TRUE(contains(mistyped.err, "step 2 recorded a number (4), --output is a string"))
      << mistyped.err;
  EXPECT_EQ(std::count(mistyped.err.begin(), mistyped.err.end(), '\n'), 1) << mistyped.err;
  auto set = ratchet_cli({"set-result", "--job-id", id.id(), "--step", "3", "--output", "100"});
  ASSERT_EQ(set.exit_code, 0) << set.out << set.err;
  std::optional<int> result = wait_steps(id);
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(*result, 1 + 4 + 100 + 16 + 25);
  EXPECT_EQ(read_log(log), sequence(1, 5));
  auto shown = call_status(id.id());
  ASSERT_EQ(shown["actions"].size(), 1u) << shown.dump();
  EXPECT_EQ(shown["actions"][0]["detail"], "set the result of step 3 (call work) to output 100");

  auto finished = ratchet_cli({"set-result", "--job-id", id.id(), "--step", "3", "--output", "1"});
  EXPECT_NE(finished.exit_code, 0);
  EXPECT_TRUE(contains(finished.err, "has finished")) << finished.err;
  auto bad = ratchet_cli({"rewind", "--job-id", id.id()});
  EXPECT_EQ(bad.exit_code, 2) << "a missing --to-step is a usage error";
  // A negative or zero step is a usage error, whether or not the call exists
  // (CLI11 would read -1 into the unsigned step as its largest value).
  for (const std::string& job : {id.id(), std::string("no-such-call")}) {
    auto negative = ratchet_cli({"rewind", "--job-id", job, "--to-step", "-1"});
    EXPECT_EQ(negative.exit_code, 2) << negative.err;
    auto zero = ratchet_cli({"set-result", "--job-id", job, "--step", "0", "--output", "1"});
    EXPECT_EQ(zero.exit_code, 2) << zero.err;
    auto minus = ratchet_cli({"set-result", "--job-id", job, "--step", "-3", "--output", "1"});
    EXPECT_EQ(minus.exit_code, 2) << minus.err;
  }
  stop_endpoint(SIGKILL);  // work(3) holds for a minute
}

// ---- Journal deltas (issue 14, "no step ceiling"), on both backends ----

// The same processes on a SQLite store and on PostgreSQL (RATCHET_TEST_PG):
// the store keeps a coroutine's journal as a base and one delta per Poll.
class DeltaProcesses : public SdkProcesses, public ::testing::WithParamInterface<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "postgres") {
      RATCHET_OPEN_PG_DATABASE(pg_);
      start_server(pg_->url());
    } else {
      start_server("");
    }
  }

  // The first column of the first row of `sql` on the server's store (-1: none).
  long long store_number(const std::string& sql) {
    if (pg_) {
      auto n = pg_->number(sql);
      EXPECT_TRUE(n.is_ok()) << n.status().message();
      return n.is_ok() ? *n : -1;
    }
    sqlite3* db = nullptr;
    long long n = -1;
    if (sqlite3_open_v2(server().db_path().c_str(), &db, SQLITE_OPEN_READONLY, nullptr) ==
        SQLITE_OK) {
      sqlite3_busy_timeout(db, 10'000);
      sqlite3_stmt* query = nullptr;
      if (sqlite3_prepare_v2(db, sql.c_str(), -1, &query, nullptr) == SQLITE_OK &&
          sqlite3_step(query) == SQLITE_ROW) {
        n = sqlite3_column_int64(query, 0);
      }
      sqlite3_finalize(query);
    }
    sqlite3_close(db);
    EXPECT_NE(n, -1) << "no answer from the store to " << sql;
    return n;
  }

  // Runs `sql`, a change by hand, on the server's store.
  void store_change(const std::string& sql) {
    if (pg_) {
      auto n = pg_->number(sql + " RETURNING 1");
      EXPECT_TRUE(n.is_ok()) << n.status().message();
      return;
    }
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(server().db_path().c_str(), &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 10'000);
    char* error = nullptr;
    EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error), SQLITE_OK)
        << (error ? error : "");
    sqlite3_free(error);
    sqlite3_close(db);
  }

  long long deltas_of(const std::string& id) {
    return store_number("SELECT count(*) FROM coroutine_deltas WHERE call_id = '" + id + "'");
  }

  // Two calls of steps(30) at an endpoint that holds work(25): both WAITING
  // until the test ends.
  void two_waiting_steps(std::optional<Handle<int>>& first, std::optional<Handle<int>>& second) {
    const std::string log = file("work.log");
    ASSERT_TRUE(start_endpoint({"--log", log, "--hold-at", "25"}));
    auto steps = client().declare<int(int)>("steps");
    first = steps.dispatch(30);
    second = steps.dispatch(30);
    ASSERT_TRUE(wait_for_lines(log, 50)) << "the steps did not run";
    ASSERT_TRUE(wait_until([&] {
      return call_status(first->id()).value("phase", "") == "WAITING" &&
             call_status(second->id()).value("phase", "") == "WAITING";
    })) << call_status(first->id()).dump()
        << call_status(second->id()).dump();
  }

  // big(1024) of steps_endpoint_main, suspended after its 1 MiB local step:
  // the Poll that recorded the step is a delta in the store (its value a
  // blob), and the service (logging to `log` and `coroutine_log`) holds at
  // work(2). `id` is the call. Wrap in ASSERT_NO_FATAL_FAILURE.
  void suspend_after_a_mebibyte_step(const std::string& log, const std::string& coroutine_log,
                                     std::optional<Handle<int>>& id) {
    ASSERT_TRUE(start_endpoint({"--log", log, "--coroutine-log", coroutine_log, "--hold-at", "2"}));
    id = big().dispatch(1024);
    ASSERT_TRUE(wait_for_lines(log, 2)) << "work(2) did not start";
    ASSERT_TRUE(wait_until([&] { return deltas_of(id->id()) == 1; }))
        << "the Poll after the big step was not a delta";
  }

  // steps_endpoint_main's big(kib): work(1), a local step whose value is `kib` KiB, work(2).
  // (Declared once: a client declares a name once.)
  Function<int(int)>& big() {
    if (!big_) big_.emplace(client().declare<int(int)>("big"));
    return *big_;
  }

 private:
  std::optional<testing::PgTestDatabase> pg_;
  std::optional<Function<int(int)>> big_;
};

INSTANTIATE_TEST_SUITE_P(Stores, DeltaProcesses, ::testing::Values("sqlite", "postgres"),
                         [](const auto& info) { return info.param; });

// A coroutine of 2,000 steps served by this process. Halfway, the store holds
// a base and a few delta rows (compaction: protocol::merge_from), not a row
// per Poll. (bench/sdk_bench runs 100,000 steps
// and prints their cost; here a step on PostgreSQL under a sanitizer on a
// loaded machine can take 15 ms, and the suite runs this on both stores.)
TEST_P(DeltaProcesses, TwoThousandStepsCompleteAndTheStoreKeepsFewDeltaRows) {
  constexpr int kSteps = 2'000;
  Options options;
  options.api_key = "k";
  options.api_url = server().url();
  options.endpoint_addr = "127.0.0.1:0";
  options.endpoint_url = "";
  options.verification_key = public_key();
  options.trace = false;
  Dispatch dispatch(options);
  auto work = dispatch.function("work", [](int i) { return i; });
  std::promise<void> halfway;
  std::promise<void> go_on;
  std::shared_future<void> going = go_on.get_future().share();
  std::atomic<bool> paused{false};
  // Lets the coroutine go on however this test ends (an ASSERT returns early).
  struct Release {
    std::promise<void>& go;
    void now() {
      try {
        go.set_value();
      } catch (const std::future_error&) {
        // released already
      }
    }
    ~Release() { now(); }
  } release{go_on};
  auto count = dispatch.function("count", [&, work](int n) -> Task<long long> {
    long long sum = 0;
    for (int i = 1; i <= n; ++i) {
      sum += co_await work(i);
      if (i == n / 2 && !paused.exchange(true)) {
        halfway.set_value();
        going.wait_for(std::chrono::minutes(10));
      }
    }
    co_return sum;
  });
  dispatch.start();
  auto id = count.dispatch(kSteps);
  // Bounds for a loaded machine under a sanitizer: PostgreSQL's steps there
  // take several milliseconds each.
  constexpr auto kLongRunTimeout = std::chrono::minutes(10);
  ASSERT_EQ(halfway.get_future().wait_for(kLongRunTimeout), std::future_status::ready)
      << "step " << kSteps / 2 << " not reached";
  EXPECT_GE(deltas_of(id.id()), 1);
  EXPECT_LE(deltas_of(id.id()), 24) << "the deltas of 1,000 Polls were not compacted";
  release.now();
  long long sum = 0;
  try {
    sum = count.wait(id, kLongRunTimeout);
  } catch (const std::exception& e) {
    ADD_FAILURE() << "count failed: " << e.what();
  }
  EXPECT_EQ(sum, static_cast<long long>(kSteps) * (kSteps + 1) / 2);
  EXPECT_EQ(deltas_of(id.id()), 0) << "a finished call keeps no state";
  dispatch.stop();
}

// The service and the server killed with SIGKILL at once in the middle of a
// 600-step coroutine, while the store compacts its deltas (a merge every 8
// Polls, a fold into a new base as the journal doubles): the journal the
// store holds assembles to what was recorded, whatever the kill interrupted.
// The new process has no frame, so the server sends it the whole journal
// (at once, after a JournalNotHeld answer, when the echo of the latest delta
// reached it first); it replays and goes on, and no recorded step runs again.
TEST_P(DeltaProcesses, AKillNineOfTheServiceResumesFromTheStoredDeltasOnANewProcess) {
  constexpr int kSteps = 600;
  const std::string log = file("work.log");
  const std::string coroutine_log = file("coroutine.log");
  ASSERT_TRUE(start_endpoint({"--log", log, "--coroutine-log", coroutine_log}));
  auto id = dispatch_steps(kSteps);
  ASSERT_TRUE(wait_for_lines(log, 150)) << "the steps did not run";
  EXPECT_GT(deltas_of(id.id()), 0);
  EXPECT_LE(deltas_of(id.id()), 24) << "the deltas were not compacted";
  server().kill(SIGKILL);
  stop_endpoint(SIGKILL);
  const int killed_at = static_cast<int>(read_log(log).size());
  ASSERT_LT(killed_at, kSteps) << "the coroutine finished before the kill: nothing was tested";
  Status restarted = server().start();
  ASSERT_TRUE(restarted.is_ok()) << restarted.message();

  ASSERT_TRUE(start_endpoint({"--log", log, "--coroutine-log", coroutine_log}));
  std::optional<int> result = wait_steps(id);
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(*result, sum_of_squares(kSteps));
  EXPECT_EQ(starts(coroutine_log), 2u) << "one start per process: the second one replayed";
  std::map<int, int> runs = occurrences(read_log(log));
  for (int step = 1; step <= kSteps; ++step) {
    int allowed = step == killed_at ? 2 : 1;
    EXPECT_TRUE(runs[step] >= 1 && runs[step] <= allowed)
        << "step " << step << " ran " << runs[step] << " times (killed at " << killed_at << ")";
  }
}

// A call allowed one attempt whose process restarted while it waited: the
// first attempt after its Poll carries a delta the new process does not hold
// (JournalNotHeld), and the server sends the whole journal at once as the
// same attempt, so the call still ends well.
TEST_P(DeltaProcesses, ACallOfOneAttemptGoesOnAfterItsProcessRestartedBetweenPolls) {
  const std::string log = file("work.log");
  const std::string coroutine_log = file("coroutine.log");
  ASSERT_TRUE(start_endpoint({"--log", log, "--coroutine-log", coroutine_log, "--hold-at", "20"}));
  auto steps = client().declare<int(int)>("steps");
  auto id = steps.with(CallOptions().max_attempts(1)).dispatch(30);
  ASSERT_TRUE(wait_for_lines(log, 20)) << "the steps did not run";
  ASSERT_TRUE(wait_until([&] { return call_status(id.id()).value("phase", "") == "WAITING"; }));
  stop_endpoint(SIGKILL);  // work(20) fails, and its retry goes to the new process
  ASSERT_TRUE(start_endpoint({"--log", log, "--coroutine-log", coroutine_log}));
  std::optional<int> result = wait_for(steps, id);
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(*result, sum_of_squares(30));
  EXPECT_EQ(starts(coroutine_log), 2u) << "the new process replayed the whole journal once";
  EXPECT_EQ(read_log(log), concat({sequence(1, 20), sequence(20, 30)}));
}

// A 100 KiB local step result, recorded by a delta, survives a kill -9 of the
// server and of the service: both restart, the new process gets the whole
// journal with the value, and the step does not run again.
TEST_P(DeltaProcesses, ALargeStepResultSurvivesARestart) {
  const std::string log = file("work.log");
  const std::string coroutine_log = file("coroutine.log");
  ASSERT_TRUE(start_endpoint({"--log", log, "--coroutine-log", coroutine_log, "--hold-at", "2"}));
  auto big = client().declare<int(int)>("big");
  auto id = big.dispatch(100);
  ASSERT_TRUE(wait_for_lines(log, 2)) << "work(2) did not start";
  // work(2) may start before the commit of the Poll that made it is visible.
  EXPECT_TRUE(wait_until([&] { return deltas_of(id.id()) == 1; }))
      << "the Poll after the big step was not a delta";
  stop_endpoint(SIGKILL);
  server().kill(SIGKILL);
  Status restarted = server().start();
  ASSERT_TRUE(restarted.is_ok()) << restarted.message();

  ASSERT_TRUE(start_endpoint({"--log", log, "--coroutine-log", coroutine_log}));
  std::optional<int> result = wait_for(big, id);
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(*result, 100 * 1024) << "the value did not come back intact";
  EXPECT_EQ(lines_equal(coroutine_log, "big"), 1u) << "the big step ran again";
}

// A 1 MiB local step result is stored once, out of line: the delta that
// recorded it keeps only its digest. The process is killed; a new one, which
// has no frame (and keeps none: every resume replays, every Poll carries the
// whole journal), gets the value back byte for byte and the step does not run
// again. When the call ends, its journal's blobs go with it.
TEST_P(DeltaProcesses, AOneMebibyteStepResultResumesExactlyOnAnotherProcess) {
  const std::string log = file("work.log");
  const std::string coroutine_log = file("coroutine.log");
  std::optional<Handle<int>> id;
  ASSERT_NO_FATAL_FAILURE(suspend_after_a_mebibyte_step(log, coroutine_log, id));
  EXPECT_EQ(store_number("SELECT count(*) FROM blobs"), 1);
  EXPECT_GT(store_number("SELECT length(bytes) FROM blobs"), 1024 * 1024);
  EXPECT_EQ(
      store_number("SELECT length(delta) FROM coroutine_deltas WHERE call_id = '" + id->id() + "'"),
      0)
      << "the delta's row keeps the bytes";
  stop_endpoint(SIGKILL);

  ASSERT_TRUE(
      start_endpoint({"--log", log, "--coroutine-log", coroutine_log, "--frame-cache", "0"}));
  std::optional<int> result = wait_for(big(), *id);
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(*result, 1024 * 1024) << "the value did not come back intact";
  EXPECT_EQ(lines_equal(coroutine_log, "big"), 1u) << "the big step ran again";
  EXPECT_EQ(store_number("SELECT count(*) FROM blobs"), 0) << "the journal's blobs outlived it";
}

// A blob deleted by hand under a suspended coroutine (its 1 MiB step result)
// stops only that call: when it is due, it is held for an operator with the
// reason, and the other calls go on as usual.
TEST_P(DeltaProcesses, AMissingBlobHoldsOnlyTheCallThatNeedsIt) {
  const std::string log = file("work.log");
  const std::string coroutine_log = file("coroutine.log");
  std::optional<Handle<int>> id;
  ASSERT_NO_FATAL_FAILURE(suspend_after_a_mebibyte_step(log, coroutine_log, id));
  ASSERT_EQ(store_number("SELECT count(*) FROM blobs"), 1);
  store_change("DELETE FROM blobs");
  // work(2) held: the kill fails it, and its retry on the new process
  // answers, which makes the coroutine due.
  stop_endpoint(SIGKILL);
  ASSERT_TRUE(start_endpoint({"--log", log, "--coroutine-log", coroutine_log}));

  // The turn that finds the missing blob fails once (a dispatch in it would be
  // refused as unavailable); then the call is held and the others go on.
  nlohmann::json shown;
  ASSERT_TRUE(wait_until([&] {
    shown = call_status(id->id());
    return shown.value("phase", "") == "HELD";
  })) << shown.dump();
  EXPECT_EQ(shown["error"].value("type", ""), "MissingBlob") << shown.dump();
  EXPECT_TRUE(contains(shown["error"].value("message", ""), "missing from the store"))
      << shown.dump();
  auto steps = dispatch_steps(10);
  std::optional<int> result = wait_steps(steps);
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(*result, sum_of_squares(10));
  auto after = dispatch_steps(3);
  std::optional<int> again = wait_steps(after);
  ASSERT_TRUE(again.has_value()) << "a call dispatched after the hold runs too";
  EXPECT_EQ(*again, sum_of_squares(3));
}

// One coroutine whose latest delta row was broken by hand: `ratchet check`
// reports it (exit 1, as for a divergence) and checks the other as usual; a
// rewind of it works from its last good revision and says so.
TEST_P(DeltaProcesses, CheckReportsTheCoroutineWhoseDeltasDoNotAssembleAndChecksTheOthers) {
  std::optional<Handle<int>> good, broken;
  ASSERT_NO_FATAL_FAILURE(two_waiting_steps(good, broken));
  const std::string garbage = GetParam() == "postgres" ? "'\\x0aff'::bytea" : "X'0aff'";
  store_change("UPDATE coroutine_deltas SET delta = " + garbage + " WHERE call_id = '" +
               broken->id() +
               "' AND revision = (SELECT MAX(revision) FROM coroutine_deltas WHERE " +
               "call_id = '" + broken->id() + "')");

  auto checked = run_check({"--log", file("check.log")});
  EXPECT_EQ(checked.exit_code, 1) << checked.out << checked.err;
  // The server's reason as it recorded it, then the repair.
  EXPECT_TRUE(contains(checked.out, broken->id() +
                                        " steps (WAITING): broken journal: the stored coroutine "
                                        "state "))
      << checked.out;
  EXPECT_TRUE(contains(checked.out,
                       "the journal cannot be assembled from its deltas; repair it with `ratchet "
                       "rewind --job-id " +
                           broken->id() + " --to-step N` (docs/sdk.md, \"Operator repair\")\n"))
      << checked.out;
  EXPECT_FALSE(contains(checked.out, "step 0")) << checked.out;
  EXPECT_TRUE(contains(checked.out, good->id() + " steps (WAITING): resumes")) << checked.out;
  EXPECT_TRUE(contains(checked.out,
                       "ratchet-check: 2 open coroutines, 1 resume, 0 diverge, 1 with a broken "
                       "journal\n"))
      << checked.out;

  auto rewound = ratchet_cli({"rewind", "--job-id", broken->id(), "--to-step", "5"});
  EXPECT_EQ(rewound.exit_code, 0) << rewound.out << rewound.err;
  EXPECT_TRUE(contains(rewound.out, "the last that assembles")) << rewound.out;
  stop_endpoint(SIGKILL);  // work(25) holds for a minute
}

// Two coroutines of another SDK (their states made opaque bytes in the store,
// as dispatch-py's Polls store them), of a function this build has: one whose
// call names this service's endpoint, which this build would get and could
// not resume (exit 1), and one at another endpoint, another service's that
// the check lists by its function's name and does not count against the
// deploy (exit 0 when it is the only one).
TEST_P(DeltaProcesses, CheckSaysWhichCoroutinesAreAnotherSdksAndWhichOfThemAreThisServices) {
  std::optional<Handle<int>> ours, theirs;
  ASSERT_NO_FATAL_FAILURE(two_waiting_steps(ours, theirs));
  const std::string opaque = GetParam() == "postgres" ? "'\\x707931'::bytea" : "X'707931'";
  for (const auto& id : {ours->id(), theirs->id()}) {
    store_change("DELETE FROM coroutine_deltas WHERE call_id = '" + id + "'");
    store_change("UPDATE coroutine_states SET state = " + opaque +
                 ", state_blob = NULL WHERE call_id = '" + id + "'");
    // Poll.coroutine_state, another SDK's bytes.
    store_change("UPDATE runs SET state_member = 1 WHERE id = '" + id + "'");
  }
  store_change("UPDATE runs SET endpoint = 'http://127.0.0.1:1' WHERE id = '" + theirs->id() + "'");

  auto both = run_check({"--log", file("check.log")});
  EXPECT_EQ(both.exit_code, 1) << both.out << both.err;
  EXPECT_TRUE(contains(both.out, ours->id() + " steps (WAITING): not a C++ coroutine: its state "
                                              "is another SDK's, and this build cannot resume it "
                                              "(it would restart from its input)\n"))
      << both.out;
  EXPECT_TRUE(contains(both.out, theirs->id() + " steps (WAITING): another service's: its state is "
                                                "not a C++ journal and its call names "
                                                "http://127.0.0.1:1, not this service's endpoint; "
                                                "not checked\n"))
      << both.out;
  EXPECT_FALSE(contains(both.out, "step 0")) << both.out;
  EXPECT_TRUE(contains(both.out,
                       "ratchet-check: 2 open coroutines, 0 resume, 0 diverge, 1 not a C++ "
                       "coroutine, 1 of another service\n"))
      << both.out;

  // Ours ends; only another service's is left, which is not this deploy's.
  auto cancelled = ratchet_cli({"cancel", "--job-id", ours->id()});
  ASSERT_EQ(cancelled.exit_code, 0) << cancelled.out << cancelled.err;
  auto theirs_only = run_check({"--log", file("check.log")});
  EXPECT_EQ(theirs_only.exit_code, 0) << theirs_only.out << theirs_only.err;
  EXPECT_TRUE(contains(theirs_only.out,
                       "ratchet-check: 1 open coroutine, 0 resume, 0 diverge, 1 of another "
                       "service\n"))
      << theirs_only.out;
  stop_endpoint(SIGKILL);  // work(25) holds for a minute
}

// A coroutine's 100 children, all with one 1 MiB input: the store keeps the
// input once. The server is killed with SIGKILL while they run and restarted,
// and every child still gets the input whole (fanout counts the children whose
// fingerprint of their input matches).
TEST_P(DeltaProcesses, AHundredChildrenWithOneLargeInputStoreItOnceAcrossARestart) {
  const std::string log = file("work.log");
  ASSERT_TRUE(start_endpoint({"--log", log}));
  auto fanout = client().declare<int(int)>("fanout");
  auto id = fanout.dispatch(100);
  const std::string children = "SELECT count(*) FROM runs WHERE parent_id = '" + id.id() + "'";
  ASSERT_TRUE(wait_until([&] { return store_number(children) >= 20; }))
      << "the first children were not dispatched";
  server().kill(SIGKILL);
  EXPECT_EQ(store_number("SELECT count(*) FROM blobs"), 1);
  EXPECT_EQ(store_number("SELECT count(DISTINCT input_blob) FROM runs WHERE parent_id = '" +
                         id.id() + "'"),
            1);
  Status restarted = server().start();
  ASSERT_TRUE(restarted.is_ok()) << restarted.message();

  std::optional<int> intact = wait_for(fanout, id);
  ASSERT_TRUE(intact.has_value());
  EXPECT_EQ(*intact, 100) << "a child did not get the input whole";
  EXPECT_EQ(store_number(children), 100);
  EXPECT_EQ(store_number("SELECT count(*) FROM runs WHERE input_blob IS NOT NULL"), 100);
  EXPECT_EQ(store_number("SELECT count(*) FROM blobs"), 1) << "the input is stored once";
  EXPECT_LT(store_number("SELECT coalesce(sum(length(input)), 0) FROM runs"), 64 * 1024);
}

}  // namespace
}  // namespace ratchet
