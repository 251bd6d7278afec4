#include "jobs/report.hpp"

#include <cstring>

namespace ratchet::jobs {
namespace {

constexpr char kJobTag = 'J';
constexpr char kErrorTag = 'E';

class Writer {
 public:
  explicit Writer(char tag) { out_.push_back(tag); }
  void put(std::int64_t value) { out_.append(reinterpret_cast<const char*>(&value), sizeof value); }
  void put(std::string_view text) {
    put(static_cast<std::int64_t>(text.size()));
    out_.append(text);
  }
  template <typename T>
  void put(const std::optional<T>& value) {
    put(static_cast<std::int64_t>(value.has_value()));
    if (value) put(*value);
  }
  void put(const std::optional<ProcessIdentity>& identity) {
    put(static_cast<std::int64_t>(identity.has_value()));
    if (!identity) return;
    put(static_cast<std::int64_t>(identity->pid));
    put(identity->start_ticks);
    put(identity->boot_id);
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

// Reads what Writer wrote; any short or inconsistent input sets `failed`.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool failed() const { return failed_; }
  // Everything read, and nothing left over.
  bool whole() const { return !failed_ && in_.empty(); }

  std::int64_t number() {
    std::int64_t value = 0;
    if (in_.size() < sizeof value) return fail(), 0;
    std::memcpy(&value, in_.data(), sizeof value);
    in_.remove_prefix(sizeof value);
    return value;
  }
  std::string text() {
    std::int64_t size = number();
    if (size < 0 || static_cast<std::uint64_t>(size) > in_.size()) return fail(), std::string();
    std::string value(in_.substr(0, static_cast<std::size_t>(size)));
    in_.remove_prefix(static_cast<std::size_t>(size));
    return value;
  }
  bool flag() { return number() != 0; }
  std::optional<std::int64_t> optional_number() {
    return flag() ? std::optional<std::int64_t>(number()) : std::nullopt;
  }
  std::optional<std::string> optional_text() {
    return flag() ? std::optional<std::string>(text()) : std::nullopt;
  }
  std::optional<ProcessIdentity> identity() {
    if (!flag()) return std::nullopt;
    ProcessIdentity identity;
    identity.pid = static_cast<int>(number());
    identity.start_ticks = number();
    identity.boot_id = text();
    return identity;
  }

 private:
  void fail() { failed_ = true; }
  std::string_view in_;
  bool failed_ = false;
};

std::optional<std::int64_t> widen(const std::optional<int>& value) {
  return value ? std::optional<std::int64_t>(*value) : std::nullopt;
}

void put_job(Writer& out, const JobRecord& job) {
  out.put(job.id);
  out.put(job.run_key);
  out.put(static_cast<std::int64_t>(job.status));
  out.put(static_cast<std::int64_t>(job.command.size()));
  for (const auto& arg : job.command) out.put(arg);
  out.put(job.cwd);
  out.put(static_cast<std::int64_t>(job.env.size()));
  for (const auto& [name, value] : job.env) {
    out.put(name);
    out.put(value);
  }
  out.put(job.timeout);
  out.put(job.stdout_file);
  out.put(job.stderr_file);
  out.put(job.started_at);
  out.put(job.finished_at);
  out.put(job.supervisor);
  out.put(job.process);
  out.put(job.heartbeat_at);
  out.put(job.cancel_requested_at);
  out.put(job.cancel_grace);
  out.put(widen(job.exit_code));
  out.put(job.signal);
  out.put(job.error);
  out.put(static_cast<std::int64_t>(job.attempt_no));
  out.put(job.rerun_of_job_id);
  out.put(job.rerun_reason);
  out.put(static_cast<std::int64_t>(job.trigger));
  out.put(static_cast<std::int64_t>(job.strict));
  out.put(static_cast<std::int64_t>(job.strict_override_used));
  out.put(static_cast<std::int64_t>(job.retries));
  out.put(job.retry_delay);
  out.put(job.cancel_reason);
  out.put(job.host_id);
  out.put(job.lease_expires_at);
}

JobRecord read_job(Reader& in) {
  JobRecord job;
  job.id = in.text();
  job.run_key = in.text();
  job.status = static_cast<RunStatus>(in.number());
  for (std::int64_t n = in.number(); n > 0 && !in.failed(); --n) job.command.push_back(in.text());
  job.cwd = in.text();
  for (std::int64_t n = in.number(); n > 0 && !in.failed(); --n) {
    std::string name = in.text();
    job.env.emplace_back(std::move(name), in.text());
  }
  job.timeout = in.optional_number();
  job.stdout_file = in.text();
  job.stderr_file = in.text();
  job.started_at = in.number();
  job.finished_at = in.optional_number();
  job.supervisor = in.identity();
  job.process = in.identity();
  job.heartbeat_at = in.optional_number();
  job.cancel_requested_at = in.optional_number();
  job.cancel_grace = in.number();
  if (auto code = in.optional_number()) job.exit_code = static_cast<int>(*code);
  job.signal = in.optional_text();
  job.error = in.optional_text();
  job.attempt_no = static_cast<int>(in.number());
  job.rerun_of_job_id = in.optional_text();
  job.rerun_reason = in.optional_text();
  job.trigger = static_cast<JobTrigger>(in.number());
  job.strict = in.flag();
  job.strict_override_used = in.flag();
  job.retries = static_cast<int>(in.number());
  job.retry_delay = in.optional_number();
  job.cancel_reason = in.optional_text();
  job.host_id = in.text();
  job.lease_expires_at = in.optional_number();
  return job;
}

}  // namespace

std::string encode_report(const StartedJob& started) {
  Writer out(kJobTag);
  out.put(static_cast<std::int64_t>(started.existing));
  out.put(static_cast<std::int64_t>(started.accepted));
  put_job(out, started.job);
  return out.take();
}

std::string encode_report(const Status& failure) {
  Writer out(kErrorTag);
  out.put(static_cast<std::int64_t>(failure.code()));
  out.put(failure.message());
  return out.take();
}

Result<StartedJob> decode_report(std::string_view bytes) {
  auto malformed = [] { return internal_error("the job's supervisor sent a malformed report"); };
  if (bytes.empty()) return malformed();
  char tag = bytes.front();
  Reader in(bytes.substr(1));
  if (tag == kErrorTag) {
    auto code = static_cast<Code>(in.number());
    std::string message = in.text();
    if (!in.whole() || code == Code::kOk) return malformed();
    return Status(code, std::move(message));
  }
  if (tag != kJobTag) return malformed();
  StartedJob started;
  started.existing = in.flag();
  started.accepted = in.flag();
  started.job = read_job(in);
  if (!in.whole()) return malformed();
  return started;
}

}  // namespace ratchet::jobs
