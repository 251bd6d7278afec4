#include "storage/pg_db.hpp"

#include <endian.h>
#include <libpq-fe.h>

#include <algorithm>
#include <cstring>

#include "storage/blobs.hpp"
#include "storage/store.hpp"

namespace ratchet::pg {
namespace {

// The type oids of the parameters Ratchet binds (pg_type.h).
constexpr unsigned kByteaOid = 17;
constexpr unsigned kInt8Oid = 20;
constexpr unsigned kInt2Oid = 21;
constexpr unsigned kInt4Oid = 23;
constexpr unsigned kTextOid = 25;
constexpr unsigned kBoolOid = 16;

std::string one_line(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  std::replace(text.begin(), text.end(), '\n', ' ');
  return text;
}

bool contains(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

// What a failed connection attempt means: the server is not there (yet, or any
// more), which is worth retrying, or the store is misconfigured, which is not.
// libpq gives no SQLSTATE for these; its own messages are in the C locale.
Code connect_failure_code(std::string_view message) {
  for (std::string_view transient :
       {"Connection refused", "could not connect", "timeout expired", "the database system is",
        "server closed the connection", "No such file or directory", "too many clients",
        "Connection reset"}) {
    if (contains(message, transient)) return Code::kBusy;
  }
  return Code::kUnavailable;
}

Code code_for_sqlstate(std::string_view state) {
  if (state.starts_with("08") || state.starts_with("53") || state == "57P01" || state == "57P02" ||
      state == "57P03" || state == "55P03" || state == "40001" || state == "40P01") {
    return Code::kBusy;
  }
  if (state == "22021" || state == "22P05") return Code::kInvalidArgument;
  if (state == RATCHET_MISSING_BLOB_SQLSTATE) return Code::kDataLoss;
  if (state.starts_with("28") || state == "3D000" || state == "42501") return Code::kUnavailable;
  return Code::kInternal;
}

}  // namespace

Params& Params::add(std::int64_t value) {
  std::uint64_t big = htobe64(static_cast<std::uint64_t>(value));
  values_.emplace_back(reinterpret_cast<const char*>(&big), sizeof big);
  null_.push_back(false);
  types_.push_back(kInt8Oid);
  return *this;
}

Params& Params::add(std::string_view text) {
  values_.emplace_back(text);
  null_.push_back(false);
  types_.push_back(kTextOid);
  return *this;
}

Params& Params::add_bytes(std::string_view bytes) {
  values_.emplace_back(bytes);
  null_.push_back(false);
  types_.push_back(kByteaOid);
  return *this;
}

std::string join(const std::vector<std::string>& items, char separator) {
  std::string joined;
  for (const auto& item : items) {
    if (!joined.empty()) joined += separator;
    joined += item;
  }
  return joined;
}

Params& Params::add_null() {
  values_.emplace_back();
  null_.push_back(true);
  types_.push_back(0);  // inferred from the statement
  return *this;
}

bool Row::is_null(int column) const { return PQgetisnull(result_, row_, column) != 0; }

std::int64_t Row::int64(int column) const {
  if (is_null(column)) return 0;
  const char* data = PQgetvalue(result_, row_, column);
  switch (PQftype(result_, column)) {
    case kInt8Oid: {
      std::uint64_t big;
      std::memcpy(&big, data, sizeof big);
      return static_cast<std::int64_t>(be64toh(big));
    }
    case kInt4Oid: {
      std::uint32_t big;
      std::memcpy(&big, data, sizeof big);
      return static_cast<std::int32_t>(be32toh(big));
    }
    case kInt2Oid: {
      std::uint16_t big;
      std::memcpy(&big, data, sizeof big);
      return static_cast<std::int16_t>(be16toh(big));
    }
    case kBoolOid:
      return data[0] != 0;
    default:
      return 0;
  }
}

std::string Row::text(int column) const {
  if (is_null(column)) return {};
  return std::string(PQgetvalue(result_, row_, column),
                     static_cast<std::size_t>(PQgetlength(result_, row_, column)));
}

std::optional<std::int64_t> Row::optional_int64(int column) const {
  if (is_null(column)) return std::nullopt;
  return int64(column);
}

std::optional<std::string> Row::optional_text(int column) const {
  if (is_null(column)) return std::nullopt;
  return text(column);
}

Rows::Rows(pg_result* result) : result_(result) {}
Rows::Rows(Rows&& other) noexcept : result_(other.result_) { other.result_ = nullptr; }
Rows& Rows::operator=(Rows&& other) noexcept {
  if (this != &other) {
    PQclear(result_);
    result_ = other.result_;
    other.result_ = nullptr;
  }
  return *this;
}
Rows::~Rows() { PQclear(result_); }
int Rows::size() const { return result_ ? PQntuples(result_) : 0; }
int Rows::affected() const {
  const char* tuples = result_ ? PQcmdTuples(result_) : nullptr;
  return tuples && *tuples ? std::atoi(tuples) : 0;
}

Connection::Connection(pg_conn* conn, std::string url, ConnectOptions options)
    : conn_(conn), url_(std::move(url)), options_(options) {}

Connection::~Connection() { PQfinish(conn_); }

namespace {

// Takes Ratchet's own parameter out of the URL's query (libpq refuses unknown
// ones): ratchet_pooler=transaction says a transaction-mode pooler (PgBouncer)
// is in the way, so no session state may be relied on.
std::string without_ratchet_parameters(const std::string& url, bool* pooled) {
  auto query = url.find('?');
  if (query == std::string::npos) return url;
  std::string kept;
  std::size_t start = query + 1;
  while (start <= url.size()) {
    auto end = url.find('&', start);
    if (end == std::string::npos) end = url.size();
    std::string parameter = url.substr(start, end - start);
    if (parameter == "ratchet_pooler=transaction") {
      *pooled = true;
    } else if (!parameter.empty()) {
      kept += (kept.empty() ? "?" : "&") + parameter;
    }
    start = end + 1;
  }
  return url.substr(0, query) + kept;
}

}  // namespace

Result<std::unique_ptr<Connection>> Connection::open(const std::string& url,
                                                     const ConnectOptions& given) {
  ConnectOptions options = given;
  std::string libpq_url = without_ratchet_parameters(url, &options.pooled);
  std::string timeout =
      std::to_string(std::max<Micros>(2, options.connect_timeout / kMicrosPerSecond));
  // Defaults first: whatever the URL says comes later and wins.
  const char* keywords[] = {"connect_timeout",
                            "application_name",
                            "keepalives_idle",
                            "keepalives_interval",
                            "keepalives_count",
                            "dbname",
                            nullptr};
  const char* values[] = {timeout.c_str(), "ratchet", "10", "5", "3", libpq_url.c_str(), nullptr};
  pg_conn* conn = PQconnectdbParams(keywords, values, /*expand_dbname=*/1);
  if (!conn) return internal_error("out of memory connecting to PostgreSQL");
  // Notices (a NOTICE of CREATE ... IF NOT EXISTS, a FATAL of a terminated
  // session) would go to stderr: errors reach the user as Status, in one line.
  PQsetNoticeProcessor(
      conn, [](void*, const char*) {}, nullptr);
  auto connection = std::unique_ptr<Connection>(new Connection(conn, url, options));
  if (PQstatus(conn) != CONNECTION_OK) return connection->connection_error("cannot connect");
  RETURN_IF_ERROR(connection->configure());
  return connection;
}

std::string Connection::settings(const char* set) const {
  std::string sql =
      std::string(set) +
      " lock_timeout = " + std::to_string(std::max<Micros>(1, options_.lock_timeout / 1000)) +
      "; " + set + " idle_in_transaction_session_timeout = " +
      std::to_string(std::max<Micros>(1, options_.idle_in_transaction_timeout / 1000));
  if (!options_.durable) sql += std::string("; ") + set + " synchronous_commit = off";
  return sql;
}

Status Connection::configure() {
  // Behind a transaction pooler the session is not ours: each transaction
  // sets them for itself (begin_sql).
  return options_.pooled ? Status::ok() : exec(settings("SET"));
}

std::string Connection::begin_sql() const {
  return options_.pooled ? "BEGIN; " + settings("SET LOCAL") : "BEGIN";
}

Status Connection::connection_error(std::string_view what) const {
  std::string message = one_line(PQerrorMessage(conn_));
  Code code = connect_failure_code(message);
  if (PQstatus(conn_) == CONNECTION_BAD && code == Code::kUnavailable && what != "cannot connect") {
    code = Code::kBusy;  // an established connection broke: the server went away
  }
  std::string hint = code == Code::kBusy ? " (retry once it is back)" : "";
  return Status(code, std::string(what) + " to the PostgreSQL store " + display_location(url_) +
                          ": " + message + hint);
}

Status Connection::error_from(const pg_result* result, std::string_view what) const {
  const char* state = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  if (!state || PQstatus(conn_) == CONNECTION_BAD) return connection_error("lost the connection");
  std::string message = one_line(PQresultErrorMessage(result));
  Code code = code_for_sqlstate(state);
  std::string store = "the PostgreSQL store " + display_location(url_);
  switch (code) {
    case Code::kBusy:
      return Status(code, store + " stayed busy (" + std::string(state) + ": " + message +
                              "); RATCHET_LOCK_TIMEOUT waits longer");
    case Code::kInvalidArgument:
      return Status(code, store + " refused a value: " + message +
                              " (PostgreSQL keeps text as UTF-8 without NUL bytes)");
    case Code::kUnavailable:
      return Status(code, "cannot use " + store + ": " + message);
    default:
      return Status(code, "store error in " + store + " (" + std::string(what) + "): " + message);
  }
}

Status Connection::ensure_connected() {
  if (PQstatus(conn_) == CONNECTION_OK) return Status::ok();
  statements_.clear();  // they died with the old server session
  PQreset(conn_);
  ++round_trips_;
  if (PQstatus(conn_) != CONNECTION_OK) return connection_error("cannot reconnect");
  return configure();
}

void Connection::rollback() {
  if (PQstatus(conn_) != CONNECTION_OK || PQtransactionStatus(conn_) == PQTRANS_IDLE) return;
  PQclear(PQexec(conn_, "ROLLBACK"));
  ++round_trips_;
}

Status Connection::exec(const std::string& sql, std::string_view what) {
  pg_result* result = PQexec(conn_, sql.c_str());
  ++round_trips_;
  Rows owned(result);
  auto status = result ? PQresultStatus(result) : PGRES_FATAL_ERROR;
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) return error_from(result, what);
  return Status::ok();
}

Result<std::string> Connection::prepared_name(const char* sql, const Params& params) {
  auto found = statements_.find(std::string_view(sql));
  if (found != statements_.end()) return found->second;
  std::string name = "ratchet_" + std::to_string(statements_.size() + 1);
  pg_result* result = PQprepare(conn_, name.c_str(), sql, params.size(),
                                params.types_.empty() ? nullptr : params.types_.data());
  ++round_trips_;
  Rows owned(result);
  if (!result || PQresultStatus(result) != PGRES_COMMAND_OK) return error_from(result, sql);
  statements_.emplace(sql, name);
  return name;
}

Result<Rows> Connection::query(const char* sql, const Params& params) {
  // Outside a transaction a lost connection can be replaced: nothing is half done.
  if (!in_transaction_) RETURN_IF_ERROR(ensure_connected());
  std::vector<const char*> values(params.values_.size());
  std::vector<int> lengths(params.values_.size());
  std::vector<int> formats(params.values_.size(), 1);
  for (std::size_t i = 0; i < values.size(); ++i) {
    values[i] = params.null_[i] ? nullptr : params.values_[i].data();
    lengths[i] = static_cast<int>(params.values_[i].size());
  }
  pg_result* result = nullptr;
  if (options_.pooled) {
    // A statement prepared on one server session is unknown to the next one
    // the pooler hands out: parse it with every execution (same round trips).
    result = PQexecParams(conn_, sql, params.size(),
                          params.types_.empty() ? nullptr : params.types_.data(), values.data(),
                          lengths.data(), formats.data(), /*resultFormat=*/1);
  } else {
    ASSIGN_OR_RETURN(std::string name, prepared_name(sql, params));
    result = PQexecPrepared(conn_, name.c_str(), params.size(), values.data(), lengths.data(),
                            formats.data(), /*resultFormat=*/1);
  }
  ++round_trips_;
  Rows rows(result);
  auto status = result ? PQresultStatus(result) : PGRES_FATAL_ERROR;
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) return error_from(result, sql);
  return rows;
}

Result<int> Connection::run(const char* sql, const Params& params) {
  ASSIGN_OR_RETURN(Rows rows, query(sql, params));
  return rows.affected();
}

int Connection::backend_pid() const { return PQbackendPID(conn_); }

int Connection::socket() const { return PQstatus(conn_) == CONNECTION_OK ? PQsocket(conn_) : -1; }

Result<std::vector<int>> Connection::take_notifications() {
  if (PQconsumeInput(conn_) == 0 || PQstatus(conn_) != CONNECTION_OK) {
    return connection_error("lost the notification connection");
  }
  std::vector<int> senders;
  while (PGnotify* notify = PQnotifies(conn_)) {
    senders.push_back(notify->be_pid);
    PQfreemem(notify);
  }
  return senders;
}

}  // namespace ratchet::pg
