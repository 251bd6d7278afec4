// The endpoint's HTTP contract: routes, body limits, unknown functions, and
// request signature verification (PROTOCOL.md, "Request signing").
#include <gtest/gtest.h>

#include <cstdlib>
#include <future>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/clock.hpp"
#include "http/client.hpp"
#include "http/test_support.hpp"
#include "protocol/base64.hpp"
#include "protocol/signing.hpp"
#include "ratchet/ratchet.hpp"
#include "sdk/core.hpp"
#include "sdk/test_support.hpp"

namespace ratchet {
namespace {

using nlohmann::json;
using namespace ratchet::testing;

std::string connect_code(const Response& response) {
  return json::parse(response.body).value("code", "");
}

TEST(Endpoint, UnknownFunctionIs404ConnectJson) {
  Dispatch dispatch(test_options());
  Response response = dispatch.handle(http_request(first_run("missing", 1)));
  EXPECT_EQ(response.status, 404);
  EXPECT_EQ(connect_code(response), "not_found");
  EXPECT_NE(response.body.find("missing"), std::string::npos);
}

TEST(Endpoint, OtherPathsAre404) {
  Dispatch dispatch(test_options());
  Request request = http_request(first_run("f", 1));
  request.path = "/other";
  EXPECT_EQ(dispatch.handle(request).status, 404);
}

TEST(Endpoint, EmptyAndOversizedBodiesAre400) {
  Dispatch dispatch(test_options());
  Request request = http_request(first_run("f", 1));
  request.body.clear();
  Response response = dispatch.handle(request);
  EXPECT_EQ(response.status, 400);
  EXPECT_EQ(connect_code(response), "invalid_argument");
  request.body.assign(16'000'001, 'x');
  EXPECT_EQ(dispatch.handle(request).status, 400);
}

TEST(Endpoint, GarbageBodyIs400) {
  Dispatch dispatch(test_options());
  Request request = http_request(first_run("f", 1));
  request.body = "\xff\xff\xff";
  EXPECT_EQ(dispatch.handle(request).status, 400);
}

TEST(Endpoint, MountsUnderAPathPrefix) {
  Dispatch dispatch(test_options());
  dispatch.function("f", [](int x) { return x; });
  Request request = http_request(first_run("f", 1));
  request.path = "/api/dispatch.sdk.v1.FunctionService/Run?x=1";
  EXPECT_EQ(dispatch.handle(request).status, 200);
}

// The key pair of PROTOCOL.md's test vector.
std::string test_private_key() {
  const std::string hex = "0ecafbc9a94763276652e49779f0ae9001e8d994a6d440f6a72190625c217a21";
  std::string raw;
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    raw += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  }
  return raw;
}
constexpr const char* kPublicKey = "Z+nTe2VRcw8t8Ihx++D+nXtbO28nwjWIOTLRgzrelYs=";

class Verification : public ::testing::Test {
 protected:
  Verification() : dispatch_(options()) {
    dispatch_.function("greet", [](std::string name) { return "hi " + name; });
  }
  static Options options() {
    Options o = test_options();
    o.verification_key = kPublicKey;
    return o;
  }
  Request signed_request(std::int64_t created_seconds) {
    Request request = http_request(first_run("greet", "World"));
    auto key = protocol::SigningKey::from_raw_private_key(test_private_key()).value();
    auto headers = protocol::sign_request(key, "POST", request.path, "127.0.0.1:8000",
                                          "application/proto", request.body, created_seconds)
                       .value();
    request.headers.emplace_back("Content-Digest", headers.content_digest);
    request.headers.emplace_back("Signature-Input", headers.signature_input);
    request.headers.emplace_back("Signature", headers.signature);
    return request;
  }
  static std::int64_t now_seconds() { return SystemClock::instance().now() / kMicrosPerSecond; }

  Dispatch dispatch_;
};

TEST_F(Verification, AcceptsAGoodSignature) {
  Response response = dispatch_.handle(signed_request(now_seconds()));
  EXPECT_EQ(response.status, 200) << response.body;
}

// The signature's time checks read the endpoint's clock (a FakeClock here),
// through both checks: the built-in server's on the header and handle()'s on
// the whole request. Each edge to the microsecond, with no real time involved.
class SignatureTime : public ::testing::Test {
 protected:
  static constexpr std::int64_t kCreated = 1'800'000'000;  // seconds since the epoch
  static constexpr Micros at(std::int64_t seconds) { return seconds * kMicrosPerSecond; }

  // The request signed as created at kCreated, expiring at `expires` if given.
  static Request signed_request(std::optional<std::int64_t> expires = std::nullopt) {
    Request request = http_request(first_run("greet", "World"));
    const std::string digest = protocol::content_digest_sha512(request.body);
    std::string params =
        R"(("@method" "@path" "@authority" "content-type" "content-digest");created=)" +
        std::to_string(kCreated);
    if (expires) params += ";expires=" + std::to_string(*expires);
    params += R"(;keyid="default";alg="ed25519")";
    const std::string base = "\"@method\": POST\n\"@path\": " + request.path +
                             "\n\"@authority\": 127.0.0.1:8000\n\"content-type\": "
                             "application/proto\n\"content-digest\": " +
                             digest + "\n\"@signature-params\": " + params;
    auto key = protocol::SigningKey::from_raw_private_key(test_private_key()).value();
    request.headers.emplace_back("Content-Digest", digest);
    request.headers.emplace_back("Signature-Input", "dispatch=" + params);
    request.headers.emplace_back(
        "Signature", "dispatch=:" + protocol::base64_encode(key.sign(base).value()) + ":");
    return request;
  }

  // What an endpoint whose clock reads `now` answers `request`: "" when it
  // accepts it, else the refusal's status and message. Both checks must agree.
  static std::string answer_at(Micros now, const Request& request) {
    FakeClock clock(now);
    Options options = test_options();
    options.verification_key = kPublicKey;
    detail::DispatchCore core(options, clock);
    auto header = detail::check_request_header(core, request);
    auto whole = detail::check_request_signature(core, request);
    EXPECT_EQ(header.has_value(), whole.has_value()) << "the header check and the whole disagree";
    if (!whole) return "";
    return std::to_string(whole->status) + " " + whole->body;
  }
};

TEST_F(SignatureTime, CreatedFiveSecondsAheadIsTheBound) {
  Request request = signed_request();
  EXPECT_EQ(answer_at(at(kCreated) - 5 * kMicrosPerSecond, request), "");
  std::string refused = answer_at(at(kCreated) - 5 * kMicrosPerSecond - 1, request);
  EXPECT_EQ(refused.substr(0, 4), "403 ") << refused;
  EXPECT_NE(refused.find("future"), std::string::npos) << refused;
}

TEST_F(SignatureTime, ExpiredByOneMicrosecondIsRefused) {
  Request request = signed_request(kCreated + 10);
  EXPECT_EQ(answer_at(at(kCreated + 10), request), "");
  std::string refused = answer_at(at(kCreated + 10) + 1, request);
  EXPECT_EQ(refused.substr(0, 4), "403 ") << refused;
  EXPECT_NE(refused.find("expired"), std::string::npos) << refused;
}

TEST_F(SignatureTime, FiveMinutesOldIsTheBound) {
  Request request = signed_request();
  EXPECT_EQ(answer_at(at(kCreated + 300), request), "");
  std::string refused = answer_at(at(kCreated + 300) + 1, request);
  EXPECT_EQ(refused.substr(0, 4), "403 ") << refused;
  EXPECT_NE(refused.find("stale"), std::string::npos) << refused;
}

TEST_F(Verification, RefusesAnUnsignedRequest) {
  Response response = dispatch_.handle(http_request(first_run("greet", "World")));
  EXPECT_EQ(response.status, 403);
  EXPECT_EQ(connect_code(response), "permission_denied");
}

TEST_F(Verification, RefusesABadSignature) {
  Request request = signed_request(now_seconds());
  request.body = first_run("greet", "Mallory").SerializeAsString();  // digest no longer matches
  EXPECT_EQ(dispatch_.handle(request).status, 403);
  request = signed_request(now_seconds());
  for (auto& [name, value] : request.headers) {
    if (name == "Signature") value[12] = value[12] == 'A' ? 'B' : 'A';
  }
  EXPECT_EQ(dispatch_.handle(request).status, 403);
}

TEST_F(Verification, RefusesAStaleSignature) {
  Response response = dispatch_.handle(signed_request(now_seconds() - 10 * 60));
  EXPECT_EQ(response.status, 403);
}

// Issue 8, item 10: the protocol has no nonce, so a captured request could be
// sent again within the signature's 5 minutes and run its function again.
TEST_F(Verification, RefusesARequestSentAgainWithTheSameSignature) {
  int runs = 0;
  dispatch_.function("count", [&runs](int) { return ++runs; });
  Request request = http_request(first_run("count", 1));
  auto key = protocol::SigningKey::from_raw_private_key(test_private_key()).value();
  auto headers = protocol::sign_request(key, "POST", request.path, "127.0.0.1:8000",
                                        "application/proto", request.body, now_seconds())
                     .value();
  request.headers.emplace_back("Content-Digest", headers.content_digest);
  request.headers.emplace_back("Signature-Input", headers.signature_input);
  request.headers.emplace_back("Signature", headers.signature);
  EXPECT_EQ(dispatch_.handle(request).status, 200);
  Response replayed = dispatch_.handle(request);
  EXPECT_EQ(replayed.status, 503) << replayed.body;
  EXPECT_NE(replayed.body.find("already"), std::string::npos) << replayed.body;
  EXPECT_EQ(runs, 1);
  // Another signature of the same request (a later second) is a new request.
  auto later = protocol::sign_request(key, "POST", request.path, "127.0.0.1:8000",
                                      "application/proto", request.body, now_seconds() + 1)
                   .value();
  for (auto& [name, value] : request.headers) {
    if (name == "Signature-Input") value = later.signature_input;
    if (name == "Signature") value = later.signature;
  }
  EXPECT_EQ(dispatch_.handle(request).status, 200);
  EXPECT_EQ(runs, 2);
}

TEST_F(Verification, RefusesAnotherKeyId) {
  Request request = signed_request(now_seconds());
  for (auto& [name, value] : request.headers) {
    if (name == "Signature-Input") {
      value.replace(value.find("keyid=\"default\""), 15, "keyid=\"other\"");
    }
  }
  EXPECT_EQ(dispatch_.handle(request).status, 401);
}

// Found by the protocol review: the built-in server read a whole body (up to
// 16 MB, on each of 512 connections) before it checked the signature, so anyone
// who could reach the endpoint's public URL could make it hold 8 GB. The
// signature covers the Content-Digest header, not the body: it is checked once
// the header has arrived, and the digest against the body once that has.
TEST_F(Verification, TheBuiltInServerRefusesABadSignatureBeforeReadingTheBody) {
  std::uint16_t port = dispatch_.start();
  const std::string authority = "127.0.0.1:" + std::to_string(port);
  const std::string head = "POST " + std::string(protocol::kRunPath) +
                           " HTTP/1.1\r\nHost: " + authority +
                           "\r\nContent-Type: application/proto\r\nContent-Length: 16000000\r\n";
  Request good = http_request(first_run("greet", "World"));
  auto key = protocol::SigningKey::from_raw_private_key(test_private_key()).value();
  auto signed_headers = protocol::sign_request(key, "POST", good.path, authority,
                                               "application/proto", good.body, now_seconds())
                            .value();
  std::string forged = signed_headers.signature;
  forged[12] = forged[12] == 'A' ? 'B' : 'A';
  const std::string unsigned_head = head + "\r\n";
  const std::string forged_head = head + "Content-Digest: " + signed_headers.content_digest +
                                  "\r\nSignature-Input: " + signed_headers.signature_input +
                                  "\r\nSignature: " + forged + "\r\n\r\n";
  for (const std::string& bytes : {unsigned_head, forged_head}) {
    int fd = http::testing::connect_to(port);
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(http::testing::write_all(fd, bytes));
    // No body sent: the answer comes from the header alone (within the 5 s
    // receive timeout; before, the server waited 60 s for the body).
    std::string answer = http::testing::read_message(fd);
    close(fd);
    EXPECT_EQ(http::testing::status_of(answer), 403) << answer.substr(0, 300);
    EXPECT_NE(answer.find("permission_denied"), std::string::npos) << answer.substr(0, 300);
  }
  // A good signature still reads the body; the body's digest is still checked.
  for (const std::string& body : {good.body, first_run("greet", "Mallory").SerializeAsString()}) {
    std::string request =
        "POST " + std::string(protocol::kRunPath) + " HTTP/1.1\r\nHost: " + authority +
        "\r\nContent-Type: application/proto\r\nContent-Length: " + std::to_string(body.size()) +
        "\r\nContent-Digest: " + signed_headers.content_digest +
        "\r\nSignature-Input: " + signed_headers.signature_input +
        "\r\nSignature: " + signed_headers.signature + "\r\n\r\n" + body;
    int fd = http::testing::connect_to(port);
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(http::testing::write_all(fd, request));
    std::string answer = http::testing::read_message(fd);
    close(fd);
    EXPECT_EQ(http::testing::status_of(answer), body == good.body ? 200 : 403)
        << answer.substr(0, 300);
  }
  dispatch_.stop();
}

TEST(Serve, ABlockedFunctionDoesNotBlockOtherCalls) {
  Options options = test_options();
  options.worker_threads = 4;
  Dispatch dispatch(options);
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  dispatch.function("blocked", [released](int) {
    released.wait();
    return 0;
  });
  dispatch.function("quick", [](int x) { return x; });
  std::uint16_t port = dispatch.start();

  auto post = [port](const std::string& function) {
    http::Request request;
    request.method = "POST";
    request.target = "http://127.0.0.1:" + std::to_string(port) + std::string(protocol::kRunPath);
    request.headers.set("Content-Type", "application/proto");
    request.body = first_run(function, 1).SerializeAsString();
    return request;
  };
  http::Client client;
  std::promise<int> blocked_status;
  client.send(post("blocked"), {}, [&](Result<http::Response> r) {
    blocked_status.set_value(r.is_ok() ? r->status : -1);
  });
  auto quick = client.send_sync(post("quick"));
  ASSERT_TRUE(quick.is_ok()) << quick.status().message();
  EXPECT_EQ(quick->status, 200);
  release.set_value();
  EXPECT_EQ(blocked_status.get_future().get(), 200);
  dispatch.stop();
}

// Issue 8, item 1: a trailer Beast could not store aborted the endpoint's
// process before the signature was even checked.
TEST(Serve, HostileHttpIsAnswered4xxAndTheEndpointKeepsServing) {
  Dispatch dispatch(test_options());
  dispatch.function("quick", [](int x) { return x; });
  std::uint16_t port = dispatch.start();
  const std::string run = "POST " + std::string(protocol::kRunPath) +
                          " HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n";
  for (const std::string& bytes :
       {run + "X: " + std::string(65534, 'a') + "\r\n\r\n",
        run + std::string(65534, 'n') + ": v\r\n\r\n",
        std::string("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, br\r\n\r\nabc")}) {
    std::string answer = http::testing::exchange(port, bytes);
    int status = http::testing::status_of(answer);
    EXPECT_TRUE(status == 400 || status == 431) << answer.substr(0, 200);
  }
  http::Request request;
  request.method = "POST";
  request.target = "http://127.0.0.1:" + std::to_string(port) + std::string(protocol::kRunPath);
  request.headers.set("Content-Type", "application/proto");
  request.body = first_run("quick", 5).SerializeAsString();
  http::Client client;
  auto response = client.send_sync(request);
  ASSERT_TRUE(response.is_ok()) << response.status().message();
  EXPECT_EQ(response->status, 200);
  dispatch.stop();
}

// Issue 8, item 1, the SDK's client: a hostile API server aborted the process.
TEST(Client, HostileApiServerIsAnErrorNotACrash) {
  http::testing::ScriptedPeer hostile(
      "HTTP/1.1 200 OK\r\nContent-Type: application/proto\r\nTransfer-Encoding: chunked\r\n\r\n"
      "0\r\nX: " +
      std::string(65534, 'a') + "\r\n\r\n");
  Options options = test_options();
  options.api_url = hostile.url();
  Dispatch dispatch(options);
  auto f = dispatch.function("f", [](int x) { return x; });
  try {
    (void)f.dispatch(1);
    ADD_FAILURE() << "dispatch succeeded against a hostile server";
  } catch (const InvalidResponseError& e) {
    EXPECT_NE(std::string(e.what()).find("malformed HTTP response"), std::string::npos) << e.what();
  }
  EXPECT_THROW((void)f.wait(Handle<int>("some-id")), InvalidResponseError);
}

// Bytes that are not UTF-8 in a run key or an argument are refused before
// anything is sent, saying what: sent, the server would refuse the whole
// request as "not a DispatchRequest" (protobuf's strings are UTF-8).
TEST(Client, ARunKeyOrArgumentThatIsNotUtf8IsRefusedBeforeSending) {
  Dispatch dispatch(test_options());  // its API URL refuses connections
  auto echo = dispatch.function("echo", [](std::string s) { return s; });
  try {
    (void)echo.dispatch(RunKey{"order-\xff"}, "x");
    ADD_FAILURE() << "dispatched";
  } catch (const InvalidArgumentError& e) {
    EXPECT_NE(std::string(e.what()).find("run key of echo is not UTF-8"), std::string::npos)
        << e.what();
  }
  try {
    (void)echo.dispatch("\xc0\x80");
    ADD_FAILURE() << "dispatched";
  } catch (const InvalidArgumentError& e) {
    EXPECT_NE(std::string(e.what()).find("is not UTF-8"), std::string::npos) << e.what();
  }
}

TEST(Configuration, AMalformedVerificationKeyNamesTheVariable) {
  Options options = test_options();
  options.verification_key = "not a key";
  try {
    Dispatch dispatch(options);
    FAIL() << "no error";
  } catch (const ConfigurationError& e) {
    EXPECT_NE(std::string(e.what()).find("DISPATCH_VERIFICATION_KEY"), std::string::npos);
  }
}

// A dispatch with `options` fails with a ConfigurationError naming `variable`.
void expect_dispatch_names(const Options& options, const std::string& variable) {
  Dispatch dispatch(options);
  auto f = dispatch.function("f", [](int x) { return x; });
  try {
    (void)f.dispatch(1);
    ADD_FAILURE() << "no error";
  } catch (const ConfigurationError& e) {
    EXPECT_NE(std::string(e.what()).find(variable), std::string::npos) << e.what();
  }
}

TEST(Configuration, DispatchWithoutAnApiKeyNamesTheVariable) {
  Options options = test_options();
  options.api_key = "";
  expect_dispatch_names(options, "DISPATCH_API_KEY");
}

TEST(Configuration, DispatchWithoutAnEndpointUrlNamesTheVariable) {
  Options options = test_options();
  options.endpoint_url = "";
  expect_dispatch_names(options, "DISPATCH_ENDPOINT_URL");
}

TEST(Configuration, WithoutAnEndpointUrlDispatchesNameTheStartedServer) {
  Options options = test_options();
  options.endpoint_url = "";
  options.endpoint_addr = "127.0.0.1:0";
  Dispatch dispatch(options);
  auto f = dispatch.function("f", [](int x) { return x; });
  EXPECT_THROW((void)f.dispatch(1), ConfigurationError);  // not listening yet
  std::uint16_t port = dispatch.start();
  // The dispatch itself fails (no Ratchet server at the API URL), but no longer
  // for want of an endpoint URL.
  try {
    (void)f.dispatch(1);
  } catch (const ConfigurationError& e) {
    ADD_FAILURE() << "still a configuration error after start() on port " << port << ": "
                  << e.what();
  } catch (const Error&) {
  }
  dispatch.stop();
}

// Unsets the DISPATCH_* variables for the test's lifetime.
class CleanEnvironment {
 public:
  CleanEnvironment() {
    for (const char* name : kNames) {
      if (const char* value = std::getenv(name)) saved_.emplace_back(name, value);
      unsetenv(name);
    }
  }
  ~CleanEnvironment() {
    for (const auto& [name, value] : saved_) setenv(name.c_str(), value.c_str(), 1);
  }

 private:
  static constexpr const char* kNames[] = {"DISPATCH_API_KEY",          "DISPATCH_API_URL",
                                           "DISPATCH_ENDPOINT_URL",     "DISPATCH_ENDPOINT_ADDR",
                                           "DISPATCH_VERIFICATION_KEY", "DISPATCH_TRACE"};
  std::vector<std::pair<std::string, std::string>> saved_;
};

// It used to assert a value it had set itself; now nothing is set.
TEST(Configuration, DefaultsApply) {
  CleanEnvironment clean;
  Dispatch dispatch{Options{}};
  const Config& config = dispatch.config();
  EXPECT_EQ(config.api_url, "http://127.0.0.1:4450");
  EXPECT_EQ(config.endpoint_addr, "127.0.0.1:8000");
  EXPECT_EQ(config.api_key, "");
  EXPECT_EQ(config.endpoint_url, "");
  EXPECT_EQ(config.verification_key, "");
  EXPECT_FALSE(config.trace);
}

TEST(Configuration, TheEnvironmentFillsWhatOptionsLeaveOut) {
  CleanEnvironment clean;
  setenv("DISPATCH_API_URL", "http://10.0.0.1:9", 1);
  setenv("DISPATCH_ENDPOINT_ADDR", "0.0.0.0:7", 1);
  setenv("DISPATCH_TRACE", "1", 1);
  Options options;
  options.endpoint_addr = "127.0.0.1:6";
  Dispatch dispatch(options);
  EXPECT_EQ(dispatch.config().api_url, "http://10.0.0.1:9");
  EXPECT_EQ(dispatch.config().endpoint_addr, "127.0.0.1:6") << "options win";
  EXPECT_TRUE(dispatch.config().trace);
}

TEST(Configuration, TheListenAddressIsTheHostAndPortOfAnHttpEndpointUrl) {
  EXPECT_EQ(detail::listen_address_for("http://127.0.0.1:9000"), "127.0.0.1:9000");
  EXPECT_EQ(detail::listen_address_for("http://localhost:9000/api"), "127.0.0.1:9000");
  EXPECT_EQ(detail::listen_address_for("http://[::1]:9000"), "[::1]:9000");
  EXPECT_EQ(detail::listen_address_for("http://10.1.2.3"), "10.1.2.3:80");
  // Reached through a name: every interface.
  EXPECT_EQ(detail::listen_address_for("http://orders.internal:8080"), "0.0.0.0:8080");
  // https is a proxy's address: it says nothing about where this process listens.
  EXPECT_EQ(detail::listen_address_for("https://orders.example.com"), std::nullopt);
  EXPECT_EQ(detail::listen_address_for("not a url"), std::nullopt);
}

// Options without an endpoint address, and no DISPATCH_ENDPOINT_ADDR either.
Options options_without_address(const std::string& endpoint_url) {
  unsetenv("DISPATCH_ENDPOINT_ADDR");
  Options options = test_options();
  options.endpoint_addr.reset();
  options.endpoint_url = endpoint_url;
  return options;
}

// The newcomer's first run: `ratchet dev` called the port of
// DISPATCH_ENDPOINT_URL while the service listened on the default 8000.
TEST(Configuration, WithoutAnAddressTheServiceListensWhereItsUrlSays) {
  std::uint16_t free = 0;
  {
    Dispatch probe(test_options());  // endpoint_addr 127.0.0.1:0: a port the kernel picks
    free = probe.start();
  }
  Dispatch dispatch(options_without_address("http://127.0.0.1:" + std::to_string(free)));
  EXPECT_EQ(dispatch.config().endpoint_addr, "127.0.0.1:" + std::to_string(free));
  EXPECT_EQ(dispatch.config().endpoint_addr_source, "DISPATCH_ENDPOINT_URL");
  ::testing::internal::CaptureStderr();
  std::uint16_t port = dispatch.start();
  std::string logged = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(port, free);
  EXPECT_NE(logged.find("serving durable functions at 127.0.0.1:" + std::to_string(free)),
            std::string::npos)
      << logged;
  EXPECT_NE(logged.find("the address of DISPATCH_ENDPOINT_URL"), std::string::npos) << logged;
  EXPECT_EQ(logged.find("warning"), std::string::npos) << logged;
  dispatch.stop();
}

TEST(Configuration, AnHttpsUrlLeavesTheDefaultAddress) {
  Dispatch dispatch(options_without_address("https://orders.example.com"));
  EXPECT_EQ(dispatch.config().endpoint_addr, "127.0.0.1:8000");
  EXPECT_EQ(dispatch.config().endpoint_addr_source, "the default");
}

TEST(Configuration, StartWarnsWhenTheUrlNamesAnotherPortThanItListensOn) {
  Options options = test_options();  // URL http://127.0.0.1:8000, address 127.0.0.1:0
  Dispatch dispatch(options);
  ::testing::internal::CaptureStderr();
  std::uint16_t port = dispatch.start();
  std::string logged = ::testing::internal::GetCapturedStderr();
  ASSERT_NE(port, 8000);
  EXPECT_NE(logged.find("warning: DISPATCH_ENDPOINT_URL (http://127.0.0.1:8000) names port 8000, "
                        "but this service listens on port " +
                        std::to_string(port)),
            std::string::npos)
      << logged;
  dispatch.stop();
}

TEST(Registration, RejectsDuplicateAndInvalidNames) {
  Dispatch dispatch(test_options());
  dispatch.function("f", [](int x) { return x; });
  EXPECT_THROW(dispatch.function("f", [](int x) { return x; }), std::invalid_argument);
  EXPECT_THROW(dispatch.function("1bad", [](int x) { return x; }), std::invalid_argument);
}

}  // namespace
}  // namespace ratchet
