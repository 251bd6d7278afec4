// Ratchet beside its peer: the same Python echo endpoint (bench/dispatch_py_echo.py,
// dispatch-py 0.8.0's aiohttp endpoint) behind `ratchet dev` and behind dispatch-py's own
// test server, dispatch.test.Service (tests/dispatch_py/test_server.py), in one run.
//
// Ratchet runs as users run it: durable (SQLite, fsync on every commit) and signing every
// request; once with the endpoint verifying the signatures (DISPATCH_VERIFICATION_KEY, as
// in production) and once without (the endpoint then does the same work as behind the
// test server, which signs nothing). The test server keeps everything in memory. For
// each, `callers` threads each dispatch one call and wait for its result, over and over;
// after a warm-up the run counts calls per second and reads the CPU time
// (/proc/PID/stat) the server and the endpoint spent per call. The floor is the endpoint
// alone: the same callers sending it RunRequests directly. It prints figures; it asserts
// nothing.
//
// usage: dispatch_py_bench --python PY --ratchet RATCHET --echo ECHO.py --test-server SERVER.py
//                          [--callers N] [--seconds S] [--quick]
// with dispatch-py importable by PY (scripts/bench.sh runs it under setup.sh's exports).
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "dispatch/sdk/v1/dispatch.pb.h"
#include "dispatch/sdk/v1/function.pb.h"
#include "http/client.hpp"
#include "protocol/connect.hpp"
#include "support/run_process.hpp"

namespace {

namespace pb = dispatch::sdk::v1;
using namespace ratchet;
using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;

[[noreturn]] void die(const std::string& message) {
  std::fprintf(stderr, "dispatch_py_bench: %s\n", message.c_str());
  std::exit(1);
}

// utime + stime of a process and all its threads, in milliseconds.
double cpu_ms(pid_t pid) {
  std::ifstream file("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  auto after_name = text.rfind(')');  // the command name may hold spaces
  if (after_name == std::string::npos) return 0;
  std::istringstream fields(text.substr(after_name + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14 || i == 15) ticks += std::stod(field);  // utime, stime
  }
  return ticks * 1000.0 / static_cast<double>(sysconf(_SC_CLK_TCK));
}

std::string from_hex(const std::string& hex) {
  std::string bytes;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    bytes.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return bytes;
}

// A child whose first stdout lines matter: waits for a line matching `pattern`.
std::string read_line_matching(testing::Process& process, const std::regex& pattern,
                               const std::string& what) {
  auto deadline = Steady::now() + 60s;
  std::smatch match;
  while (Steady::now() < deadline) {
    const std::string& out = process.stdout_so_far();
    if (std::regex_search(out, match, pattern)) return match[1].str();
    process.read_stdout_until("\x01", 100ms);  // never printed: reads what comes for 100 ms
  }
  die(what + " did not start: " + process.finish(0ms).err);
}

struct Endpoint {
  testing::Process process;
  std::string url;
  std::string input;  // the serialized Any of echo("hello")
};

Endpoint start_endpoint(const std::string& python, const std::string& script,
                        const std::string& verification_key) {
  testing::Env env;
  if (!verification_key.empty()) env.emplace_back("DISPATCH_VERIFICATION_KEY", verification_key);
  auto process = testing::Process::spawn({python, script}, env);
  std::string url =
      read_line_matching(process, std::regex("listening on (\\S+)\n"), "the endpoint");
  std::string input =
      read_line_matching(process, std::regex("input ([0-9a-f]+)\n"), "the endpoint");
  return Endpoint{std::move(process), url, from_hex(input)};
}

struct Figures {
  double calls_per_second = 0;
  double server_cpu_ms_per_call = 0;
  double endpoint_cpu_ms_per_call = 0;
  long long calls = 0;
  long long failures = 0;
};

http::Request post(std::string_view path, std::string body, const std::string& api_key) {
  http::Request r;
  r.method = "POST";
  r.target = std::string(path);
  r.headers.add("Content-Type", "application/proto");
  if (!api_key.empty()) r.headers.add("Authorization", "Bearer " + api_key);
  r.body = std::move(body);
  return r;
}

// One call through a server: Dispatch, then Wait for its result.
bool call_through(http::Client& client, const http::Url& api, const std::string& api_key,
                  const std::string& dispatch_body) {
  auto sent = client.send_sync(api, post(protocol::kDispatchPath, dispatch_body, api_key));
  pb::DispatchResponse ids;
  if (!sent.is_ok() || sent->status != 200 || !ids.ParseFromString(sent->body) ||
      ids.dispatch_ids_size() != 1) {
    return false;
  }
  http::RequestOptions wait_options;
  wait_options.timeout = 60s;
  auto result =
      client.send_sync(api, post(protocol::kWaitPath, ids.dispatch_ids(0), api_key), wait_options);
  pb::CallResult call_result;
  return result.is_ok() && result->status == 200 && call_result.ParseFromString(result->body) &&
         !call_result.has_error();
}

// `callers` threads make one call at a time each (`one_call`), measured after a warm-up.
Figures load(const std::function<bool(http::Client&, int)>& one_call, const Endpoint& endpoint,
             std::optional<pid_t> server_pid, int callers, std::chrono::seconds warmup,
             std::chrono::seconds measured) {
  http::ClientOptions options;
  options.max_connections_per_host = static_cast<std::size_t>(callers) * 2;
  http::Client client(options);
  std::atomic<bool> counting{false}, stopping{false};
  std::atomic<long long> done{0}, failed{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < callers; ++i) {
    threads.emplace_back([&, i] {
      for (int n = 0; !stopping; ++n) {
        bool ok = one_call(client, i * 1'000'000 + n);
        if (!counting) continue;
        (ok ? done : failed).fetch_add(1);
      }
    });
  }
  std::this_thread::sleep_for(warmup);
  double server_before = server_pid ? cpu_ms(*server_pid) : 0;
  double endpoint_before = cpu_ms(endpoint.process.pid());
  auto start = Steady::now();
  counting = true;
  std::this_thread::sleep_for(measured);
  counting = false;
  double seconds = std::chrono::duration<double>(Steady::now() - start).count();
  double server_cpu = server_pid ? cpu_ms(*server_pid) - server_before : 0;
  double endpoint_cpu = cpu_ms(endpoint.process.pid()) - endpoint_before;
  stopping = true;
  for (auto& thread : threads) thread.join();
  Figures f;
  f.calls = done.load();
  f.failures = failed.load();
  f.calls_per_second = static_cast<double>(f.calls) / seconds;
  if (f.calls > 0) {
    f.server_cpu_ms_per_call = server_cpu / static_cast<double>(f.calls);
    f.endpoint_cpu_ms_per_call = endpoint_cpu / static_cast<double>(f.calls);
  }
  return f;
}

std::string arg(const std::map<std::string, std::string>& args, const std::string& name) {
  auto found = args.find(name);
  if (found == args.end()) die("missing " + name + " (see the usage at the top of the source)");
  return found->second;
}

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, std::string> args;
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--quick") {
      quick = true;
    } else if (i + 1 < argc) {
      args[a] = argv[++i];
    }
  }
  const std::string python = arg(args, "--python"), ratchet = arg(args, "--ratchet");
  const std::string echo = arg(args, "--echo"), test_server = arg(args, "--test-server");
  const int callers = args.count("--callers") ? std::stoi(args["--callers"]) : 32;
  const auto measured = std::chrono::seconds(args.count("--seconds") ? std::stoi(args["--seconds"])
                                                                     : (quick ? 3 : 10));
  const auto warmup = quick ? 1s : 2s;

  std::string dir = "/tmp/ratchet-dispatch-py-bench-" + std::to_string(getpid());
  std::filesystem::create_directories(dir);

  // Ratchet: a signing key the endpoint verifies, a durable store.
  auto keygen = testing::run_process({ratchet, "keygen", "--out", dir + "/signing.pem"});
  std::smatch key;
  static const std::regex kKey("DISPATCH_VERIFICATION_KEY=(\\S+)");
  if (keygen.exit_code != 0 || !std::regex_search(keygen.out, key, kKey)) {
    die("ratchet keygen failed: " + keygen.err);
  }
  auto dispatch_body = [](const Endpoint& endpoint) {
    pb::DispatchRequest dispatch;
    pb::Call* call = dispatch.add_calls();
    call->set_endpoint(endpoint.url);
    call->set_function("echo");
    call->mutable_input()->ParseFromString(endpoint.input);
    return dispatch.SerializeAsString();
  };
  auto through = [&](const std::string& api_url, const std::string& api_key,
                     const Endpoint& endpoint) {
    http::Url api = *http::parse_url(api_url);
    std::string body = dispatch_body(endpoint);
    return [api, api_key, body](http::Client& client, int) {
      return call_through(client, api, api_key, body);
    };
  };
  // Ratchet, the endpoint verifying (with_key) or not.
  auto on_ratchet = [&](bool with_key) {
    Endpoint endpoint = start_endpoint(python, echo, with_key ? key[1].str() : "");
    std::string db = dir + (with_key ? "/verified.db" : "/unverified.db");
    auto server =
        testing::Process::spawn({ratchet, "dev", endpoint.url, "--port", "0", "--api-key", "bench",
                                 "--db", db, "--signing-key", dir + "/signing.pem"});
    std::string api = read_line_matching(server, std::regex("export DISPATCH_API_URL=\"(\\S+)\"\n"),
                                         "ratchet dev");
    return load(through(api, "bench", endpoint), endpoint, server.pid(), callers, warmup, measured);
  };
  Figures verified = on_ratchet(true);
  Figures unverified = on_ratchet(false);
  Figures on_service;
  {
    Endpoint endpoint = start_endpoint(python, echo, "");
    auto server = testing::Process::spawn({python, test_server});
    std::string api =
        read_line_matching(server, std::regex("listening on (\\S+)\n"), "dispatch.test.Service");
    on_service = load(through(api, "916CC3D280BB46DDBDA984B3DD10059A", endpoint), endpoint,
                      server.pid(), callers, warmup, measured);
  }
  Figures floor;
  {
    Endpoint endpoint = start_endpoint(python, echo, "");
    http::Url url = *http::parse_url(endpoint.url);
    floor = load(
        [&](http::Client& client, int n) {
          pb::RunRequest run;
          run.set_function("echo");
          run.set_dispatch_id("direct-" + std::to_string(n));
          run.set_root_dispatch_id(run.dispatch_id());
          run.mutable_input()->ParseFromString(endpoint.input);
          auto answer =
              client.send_sync(url, post(protocol::kRunPath, run.SerializeAsString(), ""));
          return answer.is_ok() && answer->status == 200;
        },
        endpoint, std::nullopt, callers, warmup, measured);
  }
  std::filesystem::remove_all(dir);

  std::printf("%d callers, each making one call at a time; %lld s measured\n", callers,
              static_cast<long long>(measured.count()));
  std::printf("%-36s %14s %14s %14s %14s\n", "", "ratchet dev", "ratchet dev", "dispatch.test",
              "endpoint");
  std::printf("%-36s %14s %14s %14s %14s\n", "", "(verified)", "(unverified)", "", "alone");
  const Figures* all[] = {&verified, &unverified, &on_service, &floor};
  auto row = [&](const char* what, double Figures::*field, const char* format) {
    std::printf("%-36s", what);
    for (const Figures* f : all) std::printf(format, f->*field);
    std::printf("\n");
  };
  row("calls/s", &Figures::calls_per_second, " %14.0f");
  row("server CPU ms per call", &Figures::server_cpu_ms_per_call, " %14.3f");
  row("endpoint CPU ms per call (Python)", &Figures::endpoint_cpu_ms_per_call, " %14.3f");
  std::printf("%-36s", "failed calls");
  for (const Figures* f : all) std::printf(" %14lld", f->failures);
  std::printf("\n");
  if (on_service.calls_per_second > 0 && on_service.server_cpu_ms_per_call > 0) {
    std::printf(
        "ratchet dev / dispatch.test: %.2fx (verified) and %.2fx (unverified) the calls/s, "
        "%.2fx the server CPU per call\n",
        verified.calls_per_second / on_service.calls_per_second,
        unverified.calls_per_second / on_service.calls_per_second,
        unverified.server_cpu_ms_per_call / on_service.server_cpu_ms_per_call);
  }
  return 0;
}
