#include "storage/sqlite_db.hpp"

#include <sqlite3.h>

#include <cstring>
#include <string>

#include "storage/blobs.hpp"

namespace ratchet::sqlite {

Statement& Statement::bind(int index, std::int64_t value) {
  sqlite3_bind_int64(stmt_, index, value);
  return *this;
}

Statement& Statement::bind(int index, std::string_view text) {
  sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
  return *this;
}

Statement& Statement::bind_blob(int index, std::string_view bytes) {
  sqlite3_bind_blob(stmt_, index, bytes.data(), static_cast<int>(bytes.size()), SQLITE_TRANSIENT);
  return *this;
}

Statement& Statement::bind_null(int index) {
  sqlite3_bind_null(stmt_, index);
  return *this;
}

Result<bool> Statement::step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  // The statement must be reset before the connection can be used again.
  Status failure = owner_->error(rc, "query");
  sqlite3_reset(stmt_);
  return failure;
}

Result<int> Statement::run() {
  auto stepped = step();
  if (!stepped.is_ok()) return stepped.status();
  return owner_->changes();
}

void Statement::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

bool Statement::is_null(int column) const {
  return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

std::int64_t Statement::int64(int column) const { return sqlite3_column_int64(stmt_, column); }

std::string Statement::text(int column) const {
  const void* data = sqlite3_column_blob(stmt_, column);
  int size = sqlite3_column_bytes(stmt_, column);
  return data ? std::string(static_cast<const char*>(data), static_cast<std::size_t>(size))
              : std::string();
}

std::optional<std::int64_t> Statement::optional_int64(int column) const {
  if (is_null(column)) return std::nullopt;
  return int64(column);
}

std::optional<std::string> Statement::optional_text(int column) const {
  if (is_null(column)) return std::nullopt;
  return text(column);
}

namespace {

// The result code of ratchet_missing_blob's error: an extended code of
// SQLITE_ERROR of Ratchet's own, far above SQLite's, which Database::error
// reads back (sqlite3_extended_errcode) as Code::kDataLoss.
constexpr int kMissingBlobCode = SQLITE_ERROR | (0x5242 << 8);

// ratchet_missing_blob(digest): the error of a value whose blob is gone
// (RATCHET_STORED in storage/blobs.hpp), so that such a read fails with the
// digest named instead of giving an empty value.
void missing_blob(sqlite3_context* context, int, sqlite3_value** args) {
  static const char* kDigits = "0123456789abcdef";
  const auto* digest = static_cast<const unsigned char*>(sqlite3_value_blob(args[0]));
  std::string message = std::string(blobs::kMissingMessage) + ": no blob with SHA-256 ";
  for (int i = 0; digest && i < sqlite3_value_bytes(args[0]); ++i) {
    message += kDigits[digest[i] >> 4];
    message += kDigits[digest[i] & 15];
  }
  sqlite3_result_error(context, message.c_str(), static_cast<int>(message.size()));
  sqlite3_result_error_code(context, kMissingBlobCode);  // after: result_error resets it
}

// The settings of every connection, read-write or read-only.
void configure(sqlite3* db, int busy_timeout_ms) {
  sqlite3_busy_timeout(db, busy_timeout_ms);
  sqlite3_extended_result_codes(db, 0);
  sqlite3_create_function(db, "ratchet_missing_blob", 1, SQLITE_UTF8, nullptr, missing_blob,
                          nullptr, nullptr);
}

Result<sqlite3*> open_handle(const std::string& path, int flags, int busy_timeout_ms,
                             const std::string& what) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, flags | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string message = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return Status(Code::kUnavailable, "cannot open " + what + path + ": " + message);
  }
  configure(db, busy_timeout_ms);
  return db;
}

}  // namespace

Result<std::unique_ptr<Database>> Database::open(const std::string& path, int busy_timeout_ms,
                                                 int wal_pages, bool deferred) {
  ASSIGN_OR_RETURN(sqlite3 * db, open_handle(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                                             busy_timeout_ms, "the store "));
  // Short-lived CLI processes open and close the store constantly. Without
  // these, the last one out checkpoints and deletes the WAL, and the next one
  // recreates it: a growing file makes every commit's fsync a journal commit
  // of the file system too (~10 ms here instead of ~0.1 ms). Checkpoints
  // happen automatically instead, every `wal_pages` pages of WAL; the first
  // process to open the store re-reads the WAL (SQLite's recovery), so a
  // short-lived process wants that bound small.
  sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
  int persist_wal = 1;
  sqlite3_file_control(db, "main", SQLITE_FCNTL_PERSIST_WAL, &persist_wal);
  std::unique_ptr<Database> database(new Database(db, path, busy_timeout_ms));
  database->wal_pages_ = wal_pages;
  if (!deferred) {
    sqlite3_wal_autocheckpoint(db, wal_pages);
  } else {
    // Replaces the automatic checkpoint (itself a WAL hook): count, do not act.
    sqlite3_wal_hook(
        db,
        [](void* self, sqlite3*, const char*, int frames) {
          static_cast<Database*>(self)->wal_frames_ = frames;
          return SQLITE_OK;
        },
        database.get());
  }
  return database;
}

Status Database::checkpoint_if_due() {
  if (wal_frames_ < wal_pages_) return Status::ok();
  int rc = sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
  if (rc != SQLITE_OK && rc != SQLITE_BUSY) return error(rc, "checkpoint");
  wal_frames_ = 0;
  return Status::ok();
}

Result<std::unique_ptr<Database>> Database::open_read_only(const std::string& path,
                                                           int busy_timeout_ms) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string message = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return Status(Code::kUnavailable, "cannot open " + path + ": " + message);
  }
  configure(db, busy_timeout_ms);
  return std::unique_ptr<Database>(new Database(db, path, busy_timeout_ms));
}

Database::~Database() {
  for (auto& [sql, statement] : statements_) statement.reset();
  // Finalize every cached statement before closing.
  sqlite3_stmt* stmt = nullptr;
  while ((stmt = sqlite3_next_stmt(db_, nullptr)) != nullptr) sqlite3_finalize(stmt);
  sqlite3_close(db_);
}

Status Database::error(int rc, std::string_view what) const {
  last_error_ = rc;
  std::string message = std::string(what) + ": " + sqlite3_errmsg(db_);
  // Worth retrying: the write succeeds once space is freed (the server backs
  // off and recovers; a job's supervisor keeps its outcome until then).
  if (rc == SQLITE_FULL) {
    return Status(Code::kUnavailable,
                  "the disk of the store " + path_ + " is full (" + message + "): free some space");
  }
  if (rc == SQLITE_IOERR) {
    return Status(Code::kUnavailable, "I/O error on the store " + path_ + ": " + message);
  }
  if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) {
    return Status(Code::kBusy, "the store " + path_ + " stayed locked for " +
                                   std::to_string(busy_timeout_ms_) +
                                   " ms by another process (RATCHET_LOCK_TIMEOUT waits longer)");
  }
  if (rc == SQLITE_ERROR && sqlite3_extended_errcode(db_) == kMissingBlobCode) {
    return Status(Code::kDataLoss, "store error in " + path_ + ": " + message);
  }
  if (rc == SQLITE_CANTOPEN || rc == SQLITE_PERM || rc == SQLITE_READONLY || rc == SQLITE_NOTADB ||
      rc == SQLITE_CORRUPT) {
    return Status(Code::kUnavailable, "cannot use the store " + path_ + ": " + message);
  }
  return Status(Code::kInternal, "store error in " + path_ + ": " + message);
}

std::string Database::wal_path() const {
  sqlite3_filename name = sqlite3_db_filename(db_, "main");
  if (name == nullptr) return "";
  const char* wal = sqlite3_filename_wal(name);
  return wal ? wal : "";
}

Status Database::exec(const char* sql) { return exec(sql, sql); }

Status Database::exec(const char* sql, std::string_view what) {
  char* raw_error = nullptr;
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &raw_error);
  sqlite3_free(raw_error);
  if (rc != SQLITE_OK) return error(rc, what);
  return Status::ok();
}

Result<Statement*> Database::prepare(const char* sql) {
  auto known = by_address_.find(sql);
  if (known != by_address_.end() && std::strcmp(known->second.sql->c_str(), sql) == 0) {
    known->second.statement->reset();
    return known->second.statement;
  }
  auto found = statements_.find(std::string_view(sql));
  if (found == statements_.end()) return prepare_new(sql);
  // Addresses of SQL built at run time come and go: they must not pile up.
  if (by_address_.size() >= 4 * statements_.size() + 64) by_address_.clear();
  by_address_[sql] = Known{found->second.get(), &found->first};
  found->second->reset();
  return found->second.get();
}

Result<Statement*> Database::prepare_new(const char* sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) return error(rc, "prepare");
  auto [it, inserted] = statements_.emplace(sql, std::make_unique<Statement>(stmt, this));
  by_address_[sql] = Known{it->second.get(), &it->first};
  return it->second.get();
}

Status Database::control(Control which) {
  static constexpr const char* kSql[] = {"BEGIN IMMEDIATE", "COMMIT", "ROLLBACK"};
  const auto index = static_cast<std::size_t>(which);
  sqlite3_stmt*& stmt = control_[index];
  if (stmt == nullptr) {
    int rc = sqlite3_prepare_v3(db_, kSql[index], -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    if (rc != SQLITE_OK) {
      stmt = nullptr;
      return error(rc, kSql[index]);
    }
  }
  int rc = sqlite3_step(stmt);
  // As sqlite3_exec: the error is read before the reset.
  Status status = rc == SQLITE_DONE ? Status::ok() : error(rc, kSql[index]);
  sqlite3_reset(stmt);
  return status;
}

int Database::changes() const { return sqlite3_changes(db_); }

}  // namespace ratchet::sqlite
