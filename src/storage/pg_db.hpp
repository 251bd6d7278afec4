// A thin layer over libpq, the mirror of sqlite_db.hpp: one connection,
// statements prepared once per connection and cached by their SQL text,
// parameters and results in binary form (no escaping, no text parsing, bytes
// kept byte for byte), and failures turned into typed Status values from the
// SQLSTATE and the connection's state:
//   kBusy         the server is unreachable or restarting, a lock was not had
//                 within the lock timeout, a deadlock or serialization failure:
//                 worth retrying (the CLI exits 5);
//   kUnavailable  the store cannot be used as configured (authentication, no
//                 such database, a malformed URL);
//   kInvalidArgument  a value PostgreSQL cannot store (text that is not UTF-8);
//   kInternal     anything else.
// No libpq type leaves this header's implementation.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/clock.hpp"
#include "common/status.hpp"
#include "common/text_map.hpp"

struct pg_conn;
struct pg_result;

namespace ratchet::pg {

// Items as one text parameter for string_to_array($n, separator), rather than
// an array's binary form: a comma for ids (UUIDs), another byte for text that
// may hold commas.
std::string join(const std::vector<std::string>& items, char separator = ',');

// Positional parameters $1, $2, ... in the order they are added.
class Params {
 public:
  Params& add(std::int64_t value);
  Params& add(int value) { return add(static_cast<std::int64_t>(value)); }
  Params& add(std::string_view text);
  Params& add(const char* text) { return add(std::string_view(text)); }
  Params& add(const std::string& text) { return add(std::string_view(text)); }
  Params& add_bytes(std::string_view bytes);  // bytea
  // bytea, or NULL for no bytes (an error the server made has no Error bytes).
  Params& add_bytes_or_null(std::string_view bytes) {
    return bytes.empty() ? add_null() : add_bytes(bytes);
  }
  Params& add_null();
  template <typename T>
  Params& add(const std::optional<T>& value) {
    return value ? add(*value) : add_null();
  }

  int size() const { return static_cast<int>(values_.size()); }

 private:
  friend class Connection;
  std::vector<std::string> values_;
  std::vector<bool> null_;
  std::vector<unsigned> types_;
};

class Rows;

// One row of a result; valid while its Rows lives.
class Row {
 public:
  bool is_null(int column) const;
  std::int64_t int64(int column) const;
  std::string text(int column) const;  // text or bytea, as stored; "" for NULL
  std::optional<std::int64_t> optional_int64(int column) const;
  std::optional<std::string> optional_text(int column) const;

 private:
  friend class Rows;
  Row(const pg_result* result, int row) : result_(result), row_(row) {}
  const pg_result* result_;
  int row_;
};

// A result set (owned).
class Rows {
 public:
  explicit Rows(pg_result* result);
  Rows(Rows&& other) noexcept;
  Rows& operator=(Rows&& other) noexcept;
  ~Rows();
  int size() const;
  bool empty() const { return size() == 0; }
  Row operator[](int row) const { return Row(result_, row); }
  // Rows changed by an INSERT, UPDATE or DELETE.
  int affected() const;

 private:
  pg_result* result_;
};

struct ConnectOptions {
  Micros lock_timeout = 10 * kMicrosPerSecond;  // SET lock_timeout
  Micros connect_timeout = 10 * kMicrosPerSecond;
  bool durable = true;  // off: synchronous_commit = off (still crash-safe for the server)
  // A transaction left open this long (its process paused or hung) is ended
  // by PostgreSQL, so that the row and advisory locks it holds do not stop
  // the rest of the fleet.
  Micros idle_in_transaction_timeout = 8 * kMicrosPerSecond;
  // A transaction-mode pooler (PgBouncer) is between us and the server: no
  // prepared statements, settings per transaction. Set by the URL parameter
  // ratchet_pooler=transaction (which is not passed on to libpq).
  bool pooled = false;
};

class Connection {
 public:
  static Result<std::unique_ptr<Connection>> open(const std::string& url,
                                                  const ConnectOptions& options);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // A statement prepared on first use (per connection) and run with `params`.
  Result<Rows> query(const char* sql, const Params& params = {});
  // The same, for statements that return no rows: how many rows they changed.
  Result<int> run(const char* sql, const Params& params = {});
  // Runs one or more statements without parameters (the simple protocol).
  Status exec(const std::string& sql) { return exec(sql, sql); }
  // The same; an error names `what` instead of the SQL.
  Status exec(const std::string& sql, std::string_view what);

  // BEGIN ... COMMIT, rolled back if `body` fails; `before_commit` (SQL, may be
  // empty) goes out with the COMMIT in one round trip. A connection found
  // broken is re-established first: a server that came back is used again.
  template <typename Body>
  Status transaction(Body&& body, const std::string& before_commit = "") {
    RETURN_IF_ERROR(ensure_connected());
    RETURN_IF_ERROR(exec(begin_sql()));
    in_transaction_ = true;
    Status status = body();
    if (status.is_ok()) status = exec(before_commit + "COMMIT");
    if (!status.is_ok()) rollback();
    in_transaction_ = false;
    return status;
  }

  // Reconnects if the connection was lost (prepared statements are prepared again).
  Status ensure_connected();
  // The server process serving this connection (to tell our own NOTIFYs apart).
  int backend_pid() const;
  // The socket, to wait for notifications; -1 if broken.
  int socket() const;
  // Reads what arrived and returns the NOTIFY payloads' sender pids, or an
  // error once the connection is broken.
  Result<std::vector<int>> take_notifications();
  const std::string& url() const { return url_; }
  std::uint64_t round_trips() const { return round_trips_; }

 private:
  Connection(pg_conn* conn, std::string url, ConnectOptions options);
  Status error_from(const pg_result* result, std::string_view what) const;
  Status connection_error(std::string_view what) const;
  Result<std::string> prepared_name(const char* sql, const Params& params);
  Status configure();
  // The session settings, as SET or SET LOCAL statements.
  std::string settings(const char* set) const;
  std::string begin_sql() const;
  void rollback();

  pg_conn* conn_;
  std::string url_;
  ConnectOptions options_;
  TextMap<std::string> statements_;  // by SQL text
  bool in_transaction_ = false;
  std::uint64_t round_trips_ = 0;
};

}  // namespace ratchet::pg
