#include "jobs/report.hpp"

#include <gtest/gtest.h>

namespace ratchet::jobs {
namespace {

JobRecord full_record() {
  JobRecord job;
  job.id = "id-1";
  job.run_key = std::string("key\xff\0x", 6);
  job.status = RunStatus::kCancelled;
  job.command = {"sh", "-c", "echo 'a b'", ""};
  job.cwd = "/tmp";
  job.env = {{"A", "1"}, {"B", ""}};
  job.timeout = 5 * kMicrosPerSecond;
  job.stdout_file = "/logs/id-1.stdout";
  job.stderr_file = "/logs/id-1.stderr";
  job.started_at = 1'700'000'000'000'000;
  job.finished_at = job.started_at + 1;
  job.supervisor = ProcessIdentity{10, 20, "boot"};
  job.process = ProcessIdentity{11, 21, "boot"};
  job.heartbeat_at = job.started_at;
  job.cancel_requested_at = job.started_at;
  job.cancel_grace = 3;
  job.exit_code = -1;
  job.signal = "SIGTERM";
  job.error = "cancelled by ratchet cancel: why";
  job.attempt_no = 7;
  job.rerun_of_job_id = "id-0";
  job.rerun_reason = "because";
  job.trigger = JobTrigger::kRetry;
  job.strict = true;
  job.strict_override_used = true;
  job.retries = 4;
  job.retry_delay = 100;
  job.cancel_reason = "why";
  job.host_id = "host-a";
  job.lease_expires_at = 99;
  return job;
}

TEST(Report, AJobComesBackFieldForField) {
  StartedJob sent{full_record(), true, false};
  auto received = decode_report(encode_report(sent));
  ASSERT_TRUE(received.is_ok()) << received.status().message();
  EXPECT_TRUE(received->existing);
  EXPECT_FALSE(received->accepted);
  const JobRecord& a = sent.job;
  const JobRecord& b = received->job;
  EXPECT_EQ(b.id, a.id);
  EXPECT_EQ(b.run_key, a.run_key);
  EXPECT_EQ(b.status, a.status);
  EXPECT_EQ(b.command, a.command);
  EXPECT_EQ(b.cwd, a.cwd);
  EXPECT_EQ(b.env, a.env);
  EXPECT_EQ(b.timeout, a.timeout);
  EXPECT_EQ(b.stdout_file, a.stdout_file);
  EXPECT_EQ(b.stderr_file, a.stderr_file);
  EXPECT_EQ(b.started_at, a.started_at);
  EXPECT_EQ(b.finished_at, a.finished_at);
  EXPECT_EQ(b.supervisor->pid, 10);
  EXPECT_EQ(b.process->start_ticks, 21);
  EXPECT_EQ(b.process->boot_id, "boot");
  EXPECT_EQ(b.heartbeat_at, a.heartbeat_at);
  EXPECT_EQ(b.cancel_requested_at, a.cancel_requested_at);
  EXPECT_EQ(b.cancel_grace, a.cancel_grace);
  EXPECT_EQ(b.exit_code, a.exit_code);
  EXPECT_EQ(b.signal, a.signal);
  EXPECT_EQ(b.error, a.error);
  EXPECT_EQ(b.attempt_no, a.attempt_no);
  EXPECT_EQ(b.rerun_of_job_id, a.rerun_of_job_id);
  EXPECT_EQ(b.rerun_reason, a.rerun_reason);
  EXPECT_EQ(b.trigger, a.trigger);
  EXPECT_EQ(b.strict, a.strict);
  EXPECT_EQ(b.strict_override_used, a.strict_override_used);
  EXPECT_EQ(b.retries, a.retries);
  EXPECT_EQ(b.retry_delay, a.retry_delay);
  EXPECT_EQ(b.cancel_reason, a.cancel_reason);
  EXPECT_EQ(b.host_id, a.host_id);
  EXPECT_EQ(b.lease_expires_at, a.lease_expires_at);
}

TEST(Report, AnEmptyRecordComesBackEmpty) {
  auto received = decode_report(encode_report(StartedJob{}));
  ASSERT_TRUE(received.is_ok());
  EXPECT_FALSE(received->job.supervisor.has_value());
  EXPECT_FALSE(received->job.exit_code.has_value());
  EXPECT_TRUE(received->job.command.empty());
}

TEST(Report, AnErrorComesBackAsItsStatus) {
  auto received = decode_report(encode_report(busy("the store is locked")));
  ASSERT_FALSE(received.is_ok());
  EXPECT_EQ(received.status().code(), Code::kBusy);
  EXPECT_EQ(received.status().message(), "the store is locked");
}

TEST(Report, TruncatedOrPaddedBytesAreMalformedNotACrash) {
  std::string whole = encode_report(StartedJob{full_record(), false, true});
  for (std::size_t size = 0; size < whole.size(); ++size) {
    auto received = decode_report(std::string_view(whole).substr(0, size));
    ASSERT_FALSE(received.is_ok()) << "cut at " << size;
    EXPECT_EQ(received.status().code(), Code::kInternal);
  }
  EXPECT_FALSE(decode_report(whole + "x").is_ok());
  EXPECT_FALSE(decode_report("Zjunk").is_ok());
  std::string huge_length = whole.substr(0, 3) + std::string(8, '\x7f');
  EXPECT_FALSE(decode_report(huge_length).is_ok());
}

}  // namespace
}  // namespace ratchet::jobs
