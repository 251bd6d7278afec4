// A thin RAII layer over the SQLite C API: one connection, prepared statements
// cached by their SQL text, and SQLite result codes turned into typed Status
// values (busy -> kBusy, cannot open -> kUnavailable, the rest -> kInternal).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/status.hpp"
#include "common/text_map.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace ratchet::sqlite {

class Database;

class Statement {
 public:
  Statement(sqlite3_stmt* stmt, const Database* owner) : stmt_(stmt), owner_(owner) {}
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  // Binding: 1-based like SQLite. An empty optional binds NULL.
  Statement& bind(int index, std::int64_t value);
  Statement& bind(int index, int value) { return bind(index, static_cast<std::int64_t>(value)); }
  Statement& bind(int index, std::string_view text);
  Statement& bind(int index, const char* text) { return bind(index, std::string_view(text)); }
  Statement& bind(int index, const std::string& text) {
    return bind(index, std::string_view(text));
  }
  Statement& bind_blob(int index, std::string_view bytes);
  Statement& bind_null(int index);
  template <typename T>
  Statement& bind(int index, const std::optional<T>& value) {
    return value ? bind(index, *value) : bind_null(index);
  }

  // Steps once: true when a row is available, false when done.
  Result<bool> step();
  // Runs a statement that returns no rows; the number of rows it changed.
  Result<int> run();
  void reset();

  bool is_null(int column) const;
  std::int64_t int64(int column) const;
  std::string text(int column) const;
  std::optional<std::int64_t> optional_int64(int column) const;
  std::optional<std::string> optional_text(int column) const;

 private:
  sqlite3_stmt* stmt_;
  const Database* owner_;
};

class Database {
 public:
  // Opens (creating if needed) the file; `busy_timeout_ms` bounds lock waits;
  // the WAL is checkpointed every `wal_pages` pages, by the commit that takes
  // it there, or (`deferred`) by the next checkpoint_if_due().
  static Result<std::unique_ptr<Database>> open(const std::string& path, int busy_timeout_ms,
                                                int wal_pages, bool deferred = false);
  // Opens a database someone else owns, to read it only (`ratchet import`).
  static Result<std::unique_ptr<Database>> open_read_only(const std::string& path,
                                                          int busy_timeout_ms);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  Status exec(const char* sql);
  // Likewise, naming a failure by `what` instead of by its (long) SQL.
  Status exec(const char* sql, std::string_view what);
  // A statement prepared once per connection; it is reset and unbound when returned.
  Result<Statement*> prepare(const char* sql);

  // BEGIN IMMEDIATE ... COMMIT, rolled back if `body` fails.
  template <typename Body>
  Status write_transaction(Body&& body) {
    last_error_ = 0;
    RETURN_IF_ERROR(control(Control::kBegin));
    Status status = body();
    if (!status.is_ok()) {
      (void)control(Control::kRollback);
      return status;
    }
    status = control(Control::kCommit);
    if (!status.is_ok()) (void)control(Control::kRollback);
    return status;
  }

  // With deferred checkpoints: checkpoints (PASSIVE) if the WAL has reached
  // its pages since the last one.
  Status checkpoint_if_due();

  // The Status for SQLite result code `rc` (remembered as last_error()).
  Status error(int rc, std::string_view what) const;
  // The result code of the last error since the last write_transaction began
  // (0: none), e.g. SQLITE_FULL.
  int last_error() const { return last_error_; }
  const std::string& path() const { return path_; }
  // The WAL's file as SQLite names it (symlinks resolved); empty if unknown.
  std::string wal_path() const;
  int changes() const;
  sqlite3* handle() const { return db_; }

 private:
  Database(sqlite3* db, std::string path, int busy_timeout_ms)
      : db_(db), path_(std::move(path)), busy_timeout_ms_(busy_timeout_ms) {}

  // A transaction's own statements, prepared once: a server runs them at
  // every turn, and sqlite3_exec would compile them each time.
  enum class Control { kBegin, kCommit, kRollback };
  Status control(Control which);
  Result<Statement*> prepare_new(const char* sql);

  sqlite3* db_;
  std::string path_;
  int busy_timeout_ms_;
  mutable int last_error_ = 0;
  TextMap<std::unique_ptr<Statement>> statements_;  // by SQL text
  // The same statements by the address of their text, which is a literal's
  // nearly always: found without hashing the text, then checked against it by
  // one comparison (the text at an address may change: SQL built at run time).
  struct Known {
    Statement* statement;
    const std::string* sql;  // statements_'s key
  };
  std::unordered_map<const char*, Known> by_address_;
  sqlite3_stmt* control_[3] = {nullptr, nullptr, nullptr};
  int wal_pages_ = 0;
  int wal_frames_ = 0;  // frames in the WAL after the last commit (deferred checkpoints)
};

}  // namespace ratchet::sqlite
