// steps_endpoint_main --log FILE [--coroutine-log FILE] [--work-delay-ms D]
//                     [--hold-at K] [--hold-after K] [--diverge-at K]
//                     [--frame-cache N] [--hold-in-step NAME] [--patch-at K]
//                     [--hold-on-divergence 1] [--stop-after K] [--without-nap 1]
//                     [--ratchet-check]
//
// An SDK endpoint as a process of its own, for the tests that kill, stop and
// replace it (sdk_process_e2e_test.cpp). Configured from the DISPATCH_*
// variables; serves until SIGINT or SIGTERM (or SIGKILL). Its functions:
//
//   work(i)   appends the line "i" to the --log file, sleeps --work-delay-ms
//             (so that a kill can land while a step runs), returns i*i.
//   steps(n)  a coroutine: n sequential `co_await work(i)`, i = 1..n; returns
//             the sum. Each time its body starts (a first run, or a replay)
//             it appends "start" to the --coroutine-log: a resume from the
//             frame cache starts nothing.
//   nap(ms)   a coroutine: now(), local step "before", sleep(ms), now(), local
//             step "after"; returns the milliseconds between the two now()s.
//             Appends "nap start" when its body starts, and each step's name
//             when that step's function runs, to the --coroutine-log.
//   ledger()  a coroutine: local steps "a" and "b", `co_await work(1)`, local
//             step "c"; each step appends "step <name>" to the --coroutine-log
//             when its function runs.
//   big(kb)   work(1), a local step whose value is `kb` KiB (it appends "big"
//             to the --coroutine-log when it runs), then work(2); returns the
//             value's length if it came back intact, -1 otherwise.
//   fingerprint(s)  the length of s and its FNV-1a hash, as text.
//   fanout(n) a coroutine: n calls of fingerprint with one 1 MiB input, ten per
//             Poll (a request's body stays under 16 MB); returns how many
//             fingerprints match the input's: n when every child got it whole.
//
// Holds, so that the test kills the process at a known point (each lasts a
// minute, so that a broken test still ends):
// --hold-at K: work(K) logs its line, then does not return: the coroutine is
// suspended at step K.
// --hold-after K: the coroutine, given step K's result, appends "hold" to the
// --coroutine-log and does not go on: it is running, its step K recorded.
// --diverge-at K stands for a code change: step K calls work(1000 + K).
// --patch-at K stands for a change made safely: step K calls work(1000 + K)
// under ratchet::patched("work-plus-1000"), so runs recorded before keep work(K).
// --stop-after K stands for new code that finishes sooner: steps(n) returns
// after step K (its sum so far), whatever n.
// --without-nap 1 stands for a deploy that removed the nap function.
// --hold-on-divergence 1: steps holds its call for an operator when its replay
// diverges (OnDivergence::kHold) instead of restarting.
// --ratchet-check: run the deploy check (Dispatch::check_main) and exit with its
// code instead of serving.
// --frame-cache N is Options::frame_cache_size (0: every resume replays).
// --hold-in-step NAME: ledger's local step NAME logs its line, then does not
// return: the process is killed inside a step that is not yet recorded.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <thread>
#include <vector>

#include "probe_log.hpp"
#include "ratchet/ratchet.hpp"

namespace {

struct Flags {
  std::string log;
  std::string coroutine_log;
  int work_delay_ms = 0;
  int hold_at = 0;
  int hold_after = 0;
  int diverge_at = 0;
  std::size_t frame_cache = 1024;
  std::string hold_in_step;
  int patch_at = 0;
  bool hold_on_divergence = false;
  int stop_after = 0;
  bool without_nap = false;
};

using ratchet::testing::append_line;

int usage(const std::string& why) {
  std::fprintf(stderr,
               "steps_endpoint_main: %s\nusage: steps_endpoint_main --log FILE "
               "[--coroutine-log FILE] [--work-delay-ms D] [--hold-at K] [--hold-after K] "
               "[--diverge-at K] [--frame-cache N] [--hold-in-step NAME]\n",
               why.c_str());
  return 2;
}

using Clock = std::chrono::system_clock;

// `kb` KiB of letters and digits in a pattern, so that a value cut or
// shifted anywhere differs.
std::string big_value(int kb) {
  static const char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string value(static_cast<std::size_t>(kb) * 1024, ' ');
  for (std::size_t i = 0; i < value.size(); ++i) value[i] = kAlphabet[(i * 7 + i / 37) % 36];
  return value;
}

std::string fingerprint_of(const std::string& value) {
  std::uint64_t hash = 14695981039346656037ull;
  for (unsigned char c : value) hash = (hash ^ c) * 1099511628211ull;
  return std::to_string(value.size()) + ":" + std::to_string(hash);
}

// fingerprint and fanout (see the top of this file).
void define_fanout(ratchet::Dispatch& dispatch) {
  auto fingerprint =
      dispatch.function("fingerprint", [](std::string value) { return fingerprint_of(value); });
  dispatch.function("fanout", [fingerprint](int n) -> ratchet::Task<int> {
    const std::string input = big_value(1024);
    const std::string expected = fingerprint_of(input);
    int intact = 0;
    for (int first = 0; first < n; first += 10) {
      std::vector<ratchet::Call<std::string>> calls;
      for (int i = first; i < n && i < first + 10; ++i) calls.push_back(fingerprint(input));
      std::vector<std::string> prints = co_await ratchet::gather(std::move(calls));
      for (const auto& print : prints) intact += print == expected;
    }
    co_return intact;
  });
}

void define_nap(ratchet::Dispatch& dispatch, const std::string& log) {
  dispatch.function("nap", [log](int ms) -> ratchet::Task<long long> {
    append_line(log, "nap start");
    Clock::time_point before = co_await ratchet::now();
    co_await ratchet::step("before", [&] { append_line(log, "before"); });
    co_await ratchet::sleep(std::chrono::milliseconds(ms));
    Clock::time_point after = co_await ratchet::now();
    co_await ratchet::step("after", [&] { append_line(log, "after"); });
    co_return std::chrono::duration_cast<std::chrono::milliseconds>(after - before).count();
  });
}

// nap and ledger (see the top of this file).
void define_steps_and_sleeps(ratchet::Dispatch& dispatch, const Flags& flags,
                             ratchet::Function<int(int)> work) {
  const std::string log = flags.coroutine_log;
  if (!flags.without_nap) define_nap(dispatch, log);
  const std::string hold = flags.hold_in_step;
  dispatch.function("ledger", [log, hold, work]() -> ratchet::Task<int> {
    auto logged_step = [&](const std::string& name) {
      auto run = [&log, &hold, name] {
        append_line(log, "step " + name);
        if (name == hold) std::this_thread::sleep_for(std::chrono::minutes(1));
        return static_cast<int>(name[0]);
      };
      return ratchet::step(name, run);
    };
    int a = co_await logged_step("a");
    int b = co_await logged_step("b");
    int w = co_await work(1);  // suspends: the Poll records steps a and b
    int c = co_await logged_step("c");
    co_return a + b + w + c;
  });
  dispatch.function("big", [log, work](int kb) -> ratchet::Task<int> {
    auto make = [&log, kb] {
      append_line(log, "big");
      return big_value(kb);
    };
    co_await work(1);
    std::string value = co_await ratchet::step("big", make);
    co_await work(2);  // suspends: the Poll (a delta) records the big value
    co_return value == big_value(kb) ? static_cast<int>(value.size()) : -1;
  });
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag == "--ratchet-check") continue;  // Dispatch::check_main's
    if (i + 1 >= argc) return usage("missing value for " + flag);
    std::string value = argv[++i];
    if (flag == "--log") {
      flags.log = value;
    } else if (flag == "--coroutine-log") {
      flags.coroutine_log = value;
    } else if (flag == "--work-delay-ms") {
      flags.work_delay_ms = std::atoi(value.c_str());
    } else if (flag == "--hold-after") {
      flags.hold_after = std::atoi(value.c_str());
    } else if (flag == "--hold-at") {
      flags.hold_at = std::atoi(value.c_str());
    } else if (flag == "--diverge-at") {
      flags.diverge_at = std::atoi(value.c_str());
    } else if (flag == "--frame-cache") {
      flags.frame_cache = static_cast<std::size_t>(std::strtoul(value.c_str(), nullptr, 10));
    } else if (flag == "--hold-in-step") {
      flags.hold_in_step = value;
    } else if (flag == "--patch-at") {
      flags.patch_at = std::atoi(value.c_str());
    } else if (flag == "--hold-on-divergence") {
      flags.hold_on_divergence = value == "1";
    } else if (flag == "--stop-after") {
      flags.stop_after = std::atoi(value.c_str());
    } else if (flag == "--without-nap") {
      flags.without_nap = value == "1";
    } else {
      return usage("unknown flag " + flag);
    }
  }
  if (flags.log.empty()) return usage("--log is required");

  try {
    ratchet::Options options;
    options.frame_cache_size = flags.frame_cache;
    ratchet::Dispatch dispatch(options);

    auto work = dispatch.function("work", [&flags](int i) {
      append_line(flags.log, std::to_string(i));
      std::this_thread::sleep_for(std::chrono::milliseconds(flags.work_delay_ms));
      if (i == flags.hold_at) std::this_thread::sleep_for(std::chrono::minutes(1));
      return i * i;
    });
    ratchet::FunctionOptions steps_options;
    if (flags.hold_on_divergence) steps_options.on_divergence = ratchet::OnDivergence::kHold;
    auto steps = dispatch.function(
        "steps",
        [&flags, work](int n) -> ratchet::Task<int> {
          append_line(flags.coroutine_log, "start");
          int sum = 0;
          for (int i = 1; i <= n; ++i) {
            int argument = i == flags.diverge_at ? 1000 + i : i;
            if (i == flags.patch_at && ratchet::patched("work-plus-1000")) argument = 1000 + i;
            sum += co_await work(argument);
            if (i == flags.hold_after) {
              append_line(flags.coroutine_log, "hold");
              std::this_thread::sleep_for(std::chrono::minutes(1));
            }
            if (i == flags.stop_after) break;
          }
          co_return sum;
        },
        steps_options);
    (void)steps;
    define_steps_and_sleeps(dispatch, flags, work);
    define_fanout(dispatch);
    if (auto code = dispatch.check_main(argc, argv)) return *code;
    dispatch.serve();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "steps_endpoint_main: %s\n", e.what());
    return 1;
  }
  return 0;
}
