// What a deploy (SIGTERM), a crash (kill -9), a full disk, a damaged store and
// absurd inputs do to the real `ratchet server`, run as a child process
// against the test endpoint (test_endpoint.hpp). docs/server.md, "Deploys,
// crashes and full disks", describes the behaviour these tests hold.
//
// Nothing here sleeps to synchronise: every wait is for an event, with a bound.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "dispatch/sdk/v1/function.pb.h"
#include "protocol/signing.hpp"
#include "protocol/values.hpp"
#include "support/api_client.hpp"
#include "support/run_process.hpp"
#include "support/server_process.hpp"
#include "test_endpoint.hpp"

namespace ratchet {
namespace {

namespace pb = dispatch::sdk::v1;
using namespace std::chrono_literals;
using nlohmann::json;
using testing::ApiClient;
using testing::eventually;
using testing::make_call;
using testing::ServerProcess;
using testing::ServerSettings;
using testing::TempDir;
using testing::TestEndpoint;
using Steady = std::chrono::steady_clock;

int count_of(const std::string& text, const std::string& needle) {
  int n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

class Resilience : public ::testing::Test {
 protected:
  void SetUp() override {
    auto key = testing::keygen_verification_key(dir_.file("signing.pem"));
    ASSERT_TRUE(key.is_ok()) << key.status().message();
    testing::EndpointOptions options;
    options.verification_key = *key;
    endpoint_ = std::make_unique<TestEndpoint>(options);
  }
  void TearDown() override {
    if (HasFailure() && server_) std::cerr << server_->logs();
  }

  Status start_server(std::vector<std::string> args, const std::string& db = "") {
    server_ = std::make_unique<ServerProcess>(
        ServerSettings{dir_.path(), "k", dir_.file("signing.pem"), std::move(args), db});
    RETURN_IF_ERROR(server_->start());
    client_ = std::make_unique<ApiClient>(server_->url(), "k");
    return Status::ok();
  }

  std::vector<std::string> dispatch(const std::vector<pb::Call>& calls) {
    auto ids = client_->dispatch(calls);
    EXPECT_TRUE(ids.is_ok()) << ids.status().message();
    return ids.is_ok() ? *ids : std::vector<std::string>(calls.size());
  }

  std::vector<pb::Call> calls(const std::string& function, const google::protobuf::Any& input,
                              int n) {
    return std::vector<pb::Call>(static_cast<std::size_t>(n),
                                 make_call(endpoint_->url(), function, input));
  }

  // `ratchet status --job-id` on the server's store.
  json status_of(const std::string& id) {
    auto shown = testing::run_process(
        {testing::ratchet_bin(), "status", "--job-id", id},
        {{"RATCHET_HOME", server_->home()}, {"RATCHET_DB", server_->db_path()}});
    EXPECT_EQ(shown.exit_code, 0) << shown.err;
    auto parsed = json::parse(shown.out, nullptr, false);
    return parsed.is_object() ? parsed : json::object();
  }

  bool each_sent(const std::vector<std::string>& ids, std::size_t times,
                 std::chrono::milliseconds bound) {
    return eventually(
        [&] {
          for (const auto& id : ids) {
            if (endpoint_->requests_for(id).size() < times) return false;
          }
          return true;
        },
        bound);
  }

  TempDir dir_;
  std::unique_ptr<TestEndpoint> endpoint_;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<ApiClient> client_;
};

// A lease of 11 minutes: only the takeover of the dead instance can explain a
// second run within the test's bounds. Hanging calls never raise the
// endpoint's in-flight limit (AIMD): it starts high enough for all of them.
const std::vector<std::string> kLongLease = {"--request-timeout", "10m", "--endpoint-initial-limit",
                                             "64"};

TEST_F(Resilience, AfterKillNineAndARestartEveryCallInFlightRunsAgainAtOnce) {
  ASSERT_TRUE(start_server(kLongLease).is_ok());
  auto ids = dispatch(calls("hang", protocol::pack_null(), 50));
  ASSERT_TRUE(each_sent(ids, 1, 30s)) << "the calls never reached the endpoint";
  int status = server_->kill(SIGKILL);
  ASSERT_TRUE(WIFSIGNALED(status)) << "wait status " << status;
  auto restarted = Steady::now();
  ASSERT_TRUE(server_->start().is_ok());
  EXPECT_TRUE(each_sent(ids, 2, 60s))
      << "the calls of the killed server waited for their leases to expire";
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Steady::now() - restarted);
  std::cout << "every call in flight ran again " << took.count()
            << " ms after the restart began (bench/recovery_bench measures it)\n";
}

TEST_F(Resilience, SigtermRecordsRepliesWithinTheGraceAndGivesTheRestBack) {
  ASSERT_TRUE(start_server({"--request-timeout", "10m", "--shutdown-grace", "8s"}).is_ok());
  auto answered = dispatch(calls("slow", protocol::pack_int64(1500), 5));
  auto hanging = dispatch(calls("hang", protocol::pack_null(), 3));
  ASSERT_TRUE(each_sent(answered, 1, 30s));
  ASSERT_TRUE(each_sent(hanging, 1, 30s));
  // The slow calls answer 1.5 s after they were sent, within the grace; the
  // hanging ones never do. A second server on the same store (another host's
  // port, the same file) takes what the first gives back.
  int status = server_->kill(SIGTERM, 45s);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "wait status " << status;
  for (const auto& id : answered) {
    json shown = status_of(id);
    EXPECT_EQ(shown.value("status", ""), "SUCCEEDED")
        << "a reply that came within the grace is recorded: " << shown.dump();
  }
  for (const auto& id : hanging) {
    json shown = status_of(id);
    EXPECT_EQ(shown.value("phase", ""), "READY")
        << "a call still in flight at the end of the grace is given back: " << shown.dump();
  }
  EXPECT_NE(server_->logs().find("released the 3 calls still in flight"), std::string::npos);
  ASSERT_TRUE(server_->start().is_ok());
  EXPECT_TRUE(each_sent(hanging, 2, 30s)) << "the restarted server runs them at once";
  for (const auto& id : answered) EXPECT_EQ(endpoint_->requests_for(id).size(), 1u);
}

TEST_F(Resilience, SigtermWithNothingInFlightExitsAtOnceWhateverTheGrace) {
  ASSERT_TRUE(start_server({"--shutdown-grace", "10m"}).is_ok());
  auto id = dispatch(calls("echo", protocol::pack_int64(1), 1));
  ASSERT_TRUE(client_->await_result(id[0]).is_ok());
  int status = server_->kill(SIGTERM, 60s);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "wait status " << status;
}

TEST_F(Resilience, ADamagedStoreIsRefusedAtStartWithOneLine) {
  ASSERT_TRUE(start_server({}).is_ok());
  std::string big(2000, 'x');
  auto ids = dispatch(calls("echo", protocol::pack_string(big), 300));
  for (const auto& id : ids) ASSERT_TRUE(client_->await_result(id).is_ok());
  ASSERT_EQ(server_->kill(SIGTERM), 0);
  std::string db = server_->db_path();
  // Everything into the database file, then a page in its middle overwritten.
  sqlite3* handle = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &handle), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(handle, "PRAGMA wal_checkpoint(TRUNCATE)", nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(handle);
  auto size = std::filesystem::file_size(db);
  ASSERT_GT(size, 100u * 4096);
  int fd = open(db.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  std::string garbage(4096, '\xa5');
  ASSERT_EQ(pwrite(fd, garbage.data(), garbage.size(), static_cast<off_t>(size / 2 / 4096 * 4096)),
            4096);
  close(fd);

  auto result = testing::run_process(
      {testing::ratchet_bin(), "server", "--listen", "127.0.0.1:0", "--db", db, "--api-key", "k"},
      {{"RATCHET_HOME", dir_.path()}}, 60s);
  EXPECT_FALSE(result.timed_out) << "a server started on a damaged store";
  EXPECT_EQ(result.exit_code, 1) << result.err;
  EXPECT_NE(result.err.find("ratchet: the store " + db + " is damaged"), std::string::npos)
      << result.err;
  EXPECT_EQ(count_of(result.err, "\n"), 1) << result.err;
}

TEST_F(Resilience, AnExpirationTooLargeToCountSaturatesAndTheCallRuns) {
  ASSERT_TRUE(start_server({}).is_ok());
  pb::Call call = make_call(endpoint_->url(), "echo", protocol::pack_int64(5));
  call.mutable_expiration()->set_seconds(9'300'000'000'000LL);
  auto id = client_->dispatch_one(call);
  ASSERT_TRUE(id.is_ok()) << id.status().message();
  auto result = client_->await_result(*id);
  ASSERT_TRUE(result.is_ok()) << result.status().message();
  EXPECT_FALSE(result->has_error()) << result->error().message();
  auto requests = endpoint_->requests_for(*id);
  ASSERT_EQ(requests.size(), 1u);
  // Read as 100 years (protocol::kMaxDurationMicros), not as a time in the past.
  EXPECT_GT(requests[0].expiration_time_us - requests[0].creation_time_us,
            99LL * 365 * 24 * 3600 * 1'000'000)
      << "sent with an expiration as far away as the server counts";
}

// ---------------------------------------------------------------------------
// A full disk: a small tmpfs holds the store (CI runs as root; elsewhere the
// test is skipped, saying why).

class FullDisk : public Resilience {
 protected:
  void SetUp() override {
    Resilience::SetUp();
    mount_ = dir_.file("disk");
    std::filesystem::create_directories(mount_);
    if (mount("ratchet-test", mount_.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "size=24m") != 0) {
      int error = errno;
      mount_.clear();
      GTEST_SKIP() << "cannot mount a tmpfs for the store (" << std::strerror(error)
                   << "): this test needs root";
    }
  }
  void TearDown() override {
    Resilience::TearDown();
    if (server_) server_->kill(SIGKILL);
    if (!mount_.empty()) umount2(mount_.c_str(), MNT_DETACH);
  }

  // Writes a file until the disk is full; its size.
  std::size_t fill(const std::string& path) {
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    EXPECT_GE(fd, 0);
    std::string block(64 * 1024, 'f');
    std::size_t written = 0;
    while (true) {
      ssize_t n = write(fd, block.data(), block.size());
      if (n <= 0) break;
      written += static_cast<std::size_t>(n);
    }
    close(fd);
    return written;
  }

  std::string mount_;
};

TEST_F(FullDisk, CommitsBackOffRefuseDispatchesAndRecoverByThemselvesWhenSpaceReturns) {
  ASSERT_TRUE(start_server({"--max-attempts", "100"}, mount_ + "/ratchet.db").is_ok());
  // Calls that retry (temporary errors 3 times): some are READY, due again,
  // while the disk is full.
  auto retrying = dispatch(calls("fail_then_ok", protocol::pack_int64(3), 20));
  ASSERT_TRUE(each_sent(retrying, 1, 30s));
  ASSERT_GT(fill(mount_ + "/filler"), 0u);

  // Dispatch until the store cannot record: big inputs need new WAL pages.
  std::map<std::string, std::string> acknowledged;  // id -> input
  Status refused = Status::ok();
  for (int i = 0; i < 400 && refused.is_ok(); ++i) {
    std::string input = std::to_string(i) + std::string(200'000, 'x');
    auto id =
        client_->dispatch_one(make_call(endpoint_->url(), "echo", protocol::pack_string(input)));
    if (id.is_ok()) {
      acknowledged[*id] = input;
    } else {
      refused = id.status();
    }
  }
  ASSERT_FALSE(refused.is_ok()) << "the disk never filled";
  EXPECT_EQ(refused.code(), Code::kUnavailable) << refused.message();
  EXPECT_NE(refused.message().find("HTTP 503"), std::string::npos) << refused.message();
  ASSERT_TRUE(eventually(
      [&] { return server_->logs().find("the store fails") != std::string::npos; }, 10s));
  EXPECT_NE(server_->logs().find("is full"), std::string::npos) << server_->logs();
  // The WAL does not keep the space: it is moved into the database and truncated.
  std::string wal = mount_ + "/ratchet.db-wal";
  EXPECT_TRUE(eventually([&] { return std::filesystem::file_size(wal) < (1u << 20); }, 10s))
      << "the WAL holds " << std::filesystem::file_size(wal) << " bytes of a full disk";

  // While the disk stays full, what was claimed is not sent again and again.
  std::size_t requests = endpoint_->request_count();
  EXPECT_FALSE(endpoint_->wait_for_requests(requests + 3 * retrying.size(), 3s))
      << "calls were re-sent in a loop while nothing could be recorded";
  auto again = client_->dispatch_one(make_call(endpoint_->url(), "echo", protocol::pack_int64(1)));
  EXPECT_EQ(again.status().code(), Code::kUnavailable) << "still refused while the disk is full";

  // Space returns: the server recovers by itself, and nothing acknowledged is lost.
  std::filesystem::remove(mount_ + "/filler");
  Result<std::string> accepted = Status(Code::kUnavailable, "not tried");
  ASSERT_TRUE(eventually(
      [&] {
        accepted =
            client_->dispatch_one(make_call(endpoint_->url(), "echo", protocol::pack_int64(9)));
        return accepted.is_ok();
      },
      30s))
      << accepted.status().message();
  for (const auto& [id, input] : acknowledged) {
    auto result = client_->await_result(id, 60s);
    ASSERT_TRUE(result.is_ok()) << id << ": " << result.status().message();
    EXPECT_EQ(result->output().SerializeAsString(),
              protocol::pack_string(input).SerializeAsString());
  }
  for (const auto& id : retrying) {
    auto result = client_->await_result(id, 60s);
    ASSERT_TRUE(result.is_ok()) << result.status().message();
    EXPECT_FALSE(result->has_error()) << result->error().message();
    EXPECT_LE(endpoint_->requests_for(id).size(), 6u)
        << "4 attempts, and at most one unrecorded send per failing episode";
  }
  std::string logs = server_->logs();
  EXPECT_GE(count_of(logs, "the store works again"), 1) << logs;
  EXPECT_EQ(count_of(logs, "the store fails"), count_of(logs, "the store works again"))
      << "one line when it starts failing, one when it works again: " << logs;
  EXPECT_LE(count_of(logs, "the store fails"), 3) << logs;
  if (std::getenv("RATCHET_TEST_LOGS")) std::cerr << logs;
}

}  // namespace
}  // namespace ratchet
