// Dispatch: the SDK's entry point. It holds the configuration, the registry of
// durable functions, the client of the server's API, and the endpoint that
// runs functions when the server asks.
//
//   ratchet::Dispatch dispatch;      // configured from DISPATCH_* variables
//   auto greet = dispatch.function("greet", [](std::string name) { return "hi " + name; });
//   int main() {
//     greet.dispatch("World");       // a durable call: the server runs it
//     dispatch.serve();              // run functions at DISPATCH_ENDPOINT_ADDR
//   }
//
// Configuration: each Options field that is set wins over its variable.
//
//   DISPATCH_API_KEY           the server's API key (needed to dispatch)
//   DISPATCH_API_URL           the server (default http://127.0.0.1:4450)
//   DISPATCH_ENDPOINT_URL      where the server reaches this service (needed to dispatch;
//                              when unset, start()'s address once it listens, e.g. on
//                              127.0.0.1:0, the port it picked)
//   DISPATCH_ENDPOINT_ADDR     where start()/serve() listen; when unset, the host and port
//                              of an http DISPATCH_ENDPOINT_URL (a DNS name other than
//                              localhost: 0.0.0.0), else 127.0.0.1:8000
//   DISPATCH_VERIFICATION_KEY  the server's public key (PEM or base64); when set,
//                              unsigned, badly signed or stale requests are refused
//   DISPATCH_TRACE             1: print each coroutine journal as it is saved
//
// A value that is needed and missing raises ConfigurationError naming it.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "ratchet/call.hpp"
#include "ratchet/errors.hpp"
#include "ratchet/function.hpp"

namespace ratchet {

struct Options {
  std::optional<std::string> api_key;
  std::optional<std::string> api_url;
  std::optional<std::string> endpoint_url;
  std::optional<std::string> endpoint_addr;
  std::optional<std::string> verification_key;
  std::optional<bool> trace;
  // Suspended coroutine frames kept alive in this process, so that resuming
  // one here does not replay it (least recently used go first). 0: always replay.
  std::size_t frame_cache_size = 1024;
  // Threads that run functions in serve(): a function blocked on I/O holds one.
  int worker_threads = 16;
  // Bound on one request to the server's API.
  std::chrono::milliseconds api_timeout{30'000};
  // The clock of ratchet::sleep and ratchet::now (empty: the system clock); a
  // test may pass a fake one.
  std::function<std::chrono::system_clock::time_point()> clock;
};

// The resolved configuration.
struct Config {
  std::string api_key;  // empty when not configured
  std::string api_url;
  std::string endpoint_url;  // empty when not configured
  std::string endpoint_addr;
  // Where endpoint_addr came from: "DISPATCH_ENDPOINT_ADDR" (or Options),
  // "DISPATCH_ENDPOINT_URL" (derived from it), or "the default".
  std::string endpoint_addr_source;
  std::string verification_key;  // empty: requests are not verified
  bool trace = false;
};

// An HTTP request and response, framework-agnostic, for handle().
struct Request {
  std::string method;
  std::string path;  // the request target: path and optional query
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  // The first header of that name (case-insensitive).
  std::optional<std::string_view> header(std::string_view name) const;
};

struct Response {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

using Handler = std::function<Response(const Request&)>;

// What `--ratchet-check` found for one open coroutine.
struct CheckResult {
  std::string dispatch_id;
  std::string function;
  std::string phase;       // READY, LEASED, WAITING or HELD
  bool resumes = false;    // false: it diverges
  std::uint64_t step = 0;  // the step it diverges at (0: before any step)
  std::string message;     // what was recorded there and what the code does now
  // The server could not assemble its journal from the stored deltas (a row
  // edited by hand, a broken SDK): `resumes` is false, `message` the server's
  // reason; `ratchet rewind` repairs it (docs/sdk.md, "Operator repair").
  bool broken_journal = false;
  // Its function has no definition in this build (removed, renamed, or only
  // declared): its run cannot resume here. `resumes` is false.
  bool not_in_build = false;
  // Its state is not a C++ journal: another SDK's coroutine. `resumes` is false.
  bool not_cpp = false;
  // With not_cpp: its call names another endpoint than this service's
  // (DISPATCH_ENDPOINT_URL), so it is another service's coroutine whose
  // function has the name of one of this build's; it does not stop a deploy.
  bool another_service = false;
  std::string endpoint;  // the endpoint its call names
};

class Dispatch {
 public:
  Dispatch();  // from the environment
  explicit Dispatch(Options options);
  ~Dispatch();
  Dispatch(const Dispatch&) = delete;
  Dispatch& operator=(const Dispatch&) = delete;

  // Registers `fn` (a plain callable, or a coroutine returning Task<T>) under
  // `name` (^[a-zA-Z_][a-zA-Z0-9_<>.]*$; unique). The callable is kept for the
  // Dispatch's lifetime; register functions before serving.
  // `options`: what the function does beside its code (FunctionOptions).
  template <typename F>
  auto function(std::string name, F fn, FunctionOptions options = {}) {
    static_assert(detail::check_callable<F>());
    using Traits = detail::CallableTraits<std::decay_t<F>>;
    using R = typename Traits::result;
    return make_function<R>(std::move(name), std::move(fn), typename Traits::args{}, options);
  }

  // Declares a function of `Signature` (R(Args...), R the result: T for a
  // coroutine returning Task<T>) before defining it, so that it can be called
  // from functions defined before it, including its own definition. start()
  // refuses to serve while a declared function is not defined.
  template <typename Signature>
  Function<Signature> declare(std::string name) {
    detail::declare_function(*core_, name);
    return Function<Signature>(core_.get(), std::move(name));
  }
  // Defines a declared function; `fn` must have the declared parameters and result.
  template <typename R, typename... Args, typename F>
  void define(const Function<R(Args...)>& declared, F fn, FunctionOptions options = {}) {
    static_assert(detail::check_callable<F>());
    using Traits = detail::CallableTraits<std::decay_t<F>>;
    static_assert(std::is_same_v<typename Traits::args, detail::TypeList<std::decay_t<Args>...>>,
                  "ratchet::Dispatch::define: the parameters differ from the declaration's");
    static_assert(
        std::is_same_v<typename detail::ResultOf<typename Traits::result>::type, R>,
        "ratchet::Dispatch::define: the result differs from the declaration's (a coroutine "
        "declared R returns Task<R>)");
    detail::define_function(*core_, declared.name(),
                            detail::make_entry<typename Traits::result>(
                                std::move(fn), typename Traits::args{}, options));
  }

  // Several calls in one Dispatch request.
  class Batch {
   public:
    // `run_key`, when given, replaces the call's options' key (kWhileRunning).
    template <typename T>
    Batch& add(Call<T> call, std::string run_key = {}) {
      detail::CallSpec spec = std::move(call).spec();
      if (!run_key.empty()) spec.options = spec.options.run_key(std::move(run_key));
      calls_.push_back(std::move(spec));
      return *this;
    }
    std::size_t size() const { return calls_.size(); }
    // Sends them; their dispatch ids, in order (Handle<T>(id) to wait on one).
    // The batch is empty afterwards.
    std::vector<std::string> dispatch();

   private:
    friend class Dispatch;
    explicit Batch(detail::DispatchCore* core) : core_(core) {}
    detail::DispatchCore* core_;
    std::vector<detail::CallSpec> calls_;
  };
  Batch batch() { return Batch(core_.get()); }

  // The endpoint: answers the server's FunctionService/Run requests (and 404
  // for anything else). Runs the function on the calling thread: mount it on a
  // server with a thread pool. Thread-safe.
  Response handle(const Request& request);
  Handler handler();

  // Starts the built-in HTTP server at DISPATCH_ENDPOINT_ADDR (port 0 picks a
  // free one) on a pool of worker threads; returns the bound port, and logs
  // the address to stderr. ConfigurationError when it cannot listen there or a
  // declared function is not defined.
  std::uint16_t start();
  // start(), then blocks until stop() or SIGINT/SIGTERM.
  void serve();
  // Stops the built-in server (waits for running functions). Idempotent.
  void stop();

  const Config& config() const;

  // Safe deploys (docs/sdk.md): fetches the journal of every open coroutine of
  // this build's coroutine functions, and of any function at its endpoint URL
  // (Options::endpoint_url, DISPATCH_ENDPOINT_URL), from the server (Ratchet's
  // Journal service) and replays each against this build's code, running no step.
  // Raises like dispatch() when the server cannot be asked. The server lists at
  // most 1,000 open coroutines at once; check() asks page after page until it
  // has all (a server older than paging lists only its first page: the others
  // are not checked, said on stderr, and check_main then fails).
  std::vector<CheckResult> check();
  // For a service's main(): with `--ratchet-check` among the arguments, runs
  // check(), prints one line per open coroutine on stdout and returns the exit
  // code (0: every one resumes, or is another service's; 1: one diverges, has
  // a broken journal, is not in this build, or is another SDK's at this
  // service's endpoint; 2: the server could not be asked, or, older than
  // paging, listed only its first 1,000); nullopt without the flag.
  //   if (auto code = dispatch.check_main(argc, argv)) return *code;
  std::optional<int> check_main(int argc, const char* const* argv);

 private:
  template <typename R, typename F, typename... A>
  auto make_function(std::string name, F fn, detail::TypeList<A...> args, FunctionOptions options) {
    using T = typename detail::ResultOf<R>::type;
    detail::register_function(*core_, name, detail::make_entry<R>(std::move(fn), args, options));
    return Function<T(A...)>(core_.get(), std::move(name));
  }

  Response handle_run(const Request& request);

  std::unique_ptr<detail::DispatchCore> core_;
};

}  // namespace ratchet
