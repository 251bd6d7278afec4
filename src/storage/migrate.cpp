#include "storage/migrate.hpp"

#include <map>
#include <memory>
#include <vector>

#include "common/byte_text.hpp"
#include "storage/pg_db.hpp"
#include "storage/pg_store.hpp"
#include "storage/sqlite_db.hpp"
#include "storage/sqlite_store.hpp"

namespace ratchet {
namespace {

// Rows per INSERT: few round trips, well under PostgreSQL's 65,535 parameters.
constexpr int kBatchRows = 200;
// Blobs are over 64 KiB each (up to a request's 16 MB): a few per INSERT.
constexpr int kBlobBatchRows = 4;

enum class ColumnType { kInt, kText, kBytes, kBool };

// How a text value is sent. PostgreSQL's text must be UTF-8; SQLite keeps any
// bytes. The PostgreSQL store keeps a job's bytes in their lossless byte text
// (common/byte_text.hpp), and the copy writes them as it would, so that the
// job reads the same from either store.
enum class TextForm {
  kText,    // as it is; bytes that are not UTF-8 (a message quoting them) as byte text
  kJobKey,  // a job's run key: SQLite keeps the bytes (a call's is kText)
  kCwd,     // byte text in SQLite too since the stores wrote it so, raw bytes before
};

struct Column {
  std::string name;
  ColumnType type;
  TextForm form = TextForm::kText;
};

TextForm text_form(const std::string& table, const std::string& column) {
  if (column == "run_key" && (table == "runs" || table == "job_unlocks")) return TextForm::kJobKey;
  if (table == "runs" && column == "cwd") return TextForm::kCwd;
  return TextForm::kText;
}

// `value` as the PostgreSQL store writes it; `is_job`: its row is a job's.
std::string postgres_text(const std::string& value, TextForm form, bool is_job) {
  switch (form) {
    case TextForm::kJobKey:
      if (is_job) return bytes_to_text(value);
      break;
    case TextForm::kCwd:
      return bytes_to_text(text_to_bytes(value));
    case TextForm::kText:
      break;
  }
  return utf8_or_byte_text(value);
}

// A table's columns that both schemas have, with the PostgreSQL type each
// value is converted to (SQLite stores what it is given; PostgreSQL checks).
Result<std::vector<Column>> shared_columns(sqlite::Database& source, pg::Connection& target,
                                           const std::string& table) {
  ASSIGN_OR_RETURN(pg::Rows types,
                   target.query("SELECT column_name::text, data_type::text FROM "
                                "information_schema.columns WHERE table_name = $1 AND "
                                "table_schema = current_schema()",
                                pg::Params().add(table)));
  std::map<std::string, ColumnType> target_types;
  for (int i = 0; i < types.size(); ++i) {
    std::string type = types[i].text(1);
    target_types[types[i].text(0)] = type == "bigint"    ? ColumnType::kInt
                                     : type == "bytea"   ? ColumnType::kBytes
                                     : type == "boolean" ? ColumnType::kBool
                                                         : ColumnType::kText;
  }
  std::string pragma = "PRAGMA table_info(" + table + ")";
  ASSIGN_OR_RETURN(sqlite::Statement * info, source.prepare(pragma.c_str()));
  std::vector<Column> columns;
  while (true) {
    ASSIGN_OR_RETURN(bool row, info->step());
    if (!row) break;
    std::string name = info->text(1);
    auto found = target_types.find(name);
    if (found == target_types.end()) {
      info->reset();
      return failed_precondition("the SQLite store has a column " + table + "." + name +
                                 " that the PostgreSQL schema lacks: upgrade ratchet");
    }
    columns.push_back(Column{name, found->second, text_form(table, name)});
  }
  info->reset();
  return columns;
}

// Copies one table in rowid order (PostgreSQL's seq then keeps the order of
// rows inserted in the same microsecond).
class TableCopy {
 public:
  // `order`: rowid, or a table WITHOUT ROWID's primary key.
  TableCopy(sqlite::Database& source, pg::Connection& target, std::string table,
            std::vector<Column> columns, std::string order = "rowid", int batch_rows = kBatchRows)
      : source_(source),
        target_(target),
        table_(std::move(table)),
        columns_(std::move(columns)),
        order_(std::move(order)),
        batch_rows_(batch_rows) {
    for (std::size_t i = 0; i < columns_.size(); ++i) {
      if (table_ == "runs" && columns_[i].name == "kind") kind_column_ = static_cast<int>(i);
    }
  }

  Status run(MigrationProgress& progress,
             const std::function<void(const MigrationProgress&)>& report) {
    std::string names;
    for (const auto& c : columns_) names += (names.empty() ? "" : ", ") + c.name;
    select_ = "SELECT " + names + " FROM " + table_ + " ORDER BY " + order_;
    ASSIGN_OR_RETURN(sqlite::Statement * rows, source_.prepare(select_.c_str()));
    progress.table = table_;
    progress.copied = 0;
    pg::Params batch;
    int in_batch = 0;
    while (true) {
      ASSIGN_OR_RETURN(bool has_row, rows->step());
      if (has_row) {
        add_row(*rows, batch);
        ++in_batch;
      }
      if (in_batch == batch_rows_ || (!has_row && in_batch > 0)) {
        RETURN_IF_ERROR(target_.run(insert_sql(in_batch), batch).status());
        progress.copied += in_batch;
        progress.done += in_batch;
        report(progress);
        batch = pg::Params();
        in_batch = 0;
      }
      if (!has_row) break;
    }
    rows->reset();
    return Status::ok();
  }

 private:
  void add_row(const sqlite::Statement& row, pg::Params& params) const {
    // runs holds jobs and calls; job_unlocks only jobs' keys.
    const bool is_job = kind_column_ < 0 || row.text(kind_column_) == "job";
    for (std::size_t i = 0; i < columns_.size(); ++i) {
      int column = static_cast<int>(i);
      if (row.is_null(column)) {
        params.add_null();
        continue;
      }
      switch (columns_[i].type) {
        case ColumnType::kInt:
        case ColumnType::kBool:
          params.add(row.int64(column));
          break;
        case ColumnType::kBytes:
          params.add_bytes(row.text(column));
          break;
        case ColumnType::kText:
          params.add(postgres_text(row.text(column), columns_[i].form, is_job));
          break;
      }
    }
  }

  // INSERT ... VALUES for `rows` rows, built once per size and kept: the
  // connection caches prepared statements by the SQL's address.
  const char* insert_sql(int rows) {
    auto& sql = inserts_[rows];
    if (!sql.empty()) return sql.c_str();
    std::string names;
    for (const auto& c : columns_) names += (names.empty() ? "" : ", ") + c.name;
    sql = "INSERT INTO " + table_ + " (" + names + ") VALUES ";
    int n = 0;
    for (int r = 0; r < rows; ++r) {
      sql += r == 0 ? "(" : ", (";
      for (std::size_t c = 0; c < columns_.size(); ++c) {
        std::string param = "$" + std::to_string(++n);
        if (columns_[c].type == ColumnType::kBool) param = "(" + param + "::bigint <> 0)";
        sql += (c == 0 ? "" : ", ") + param;
      }
      sql += ")";
    }
    return sql.c_str();
  }

  sqlite::Database& source_;
  pg::Connection& target_;
  std::string table_;
  std::vector<Column> columns_;
  std::string order_;
  int batch_rows_;
  int kind_column_ = -1;  // runs' kind, or -1
  std::string select_;
  std::map<int, std::string> inserts_;
};

Result<std::int64_t> count_rows(sqlite::Database& source, const char* sql) {
  ASSIGN_OR_RETURN(sqlite::Statement * count, source.prepare(sql));
  ASSIGN_OR_RETURN(bool row, count->step());
  std::int64_t n = row ? count->int64(0) : 0;
  count->reset();
  return n;
}

}  // namespace

Result<MigrationCounts> copy_sqlite_to_postgres(
    const std::string& sqlite_path, const std::string& pg_url, const Clock& clock,
    const std::function<void(const MigrationProgress&)>& progress) {
  // Both schemas brought up to date by opening them as stores.
  ASSIGN_OR_RETURN(auto source_store, open_sqlite_store(sqlite_path, clock, {}));
  source_store.reset();
  ASSIGN_OR_RETURN(auto target_store, open_postgres_store(pg_url, clock, {}));
  target_store.reset();
  ASSIGN_OR_RETURN(auto source, sqlite::Database::open(sqlite_path, 10'000, 1000));
  ASSIGN_OR_RETURN(auto target, pg::Connection::open(pg_url, pg::ConnectOptions{}));

  MigrationCounts counts;
  // The source's write lock, held until the copy is committed (or failed):
  // nothing changes it meanwhile, and nothing is written to it.
  RETURN_IF_ERROR(source->exec("BEGIN IMMEDIATE"));
  auto copy_all = [&]() -> Status {
    ASSIGN_OR_RETURN(counts.runs, count_rows(*source, "SELECT count(*) FROM runs"));
    ASSIGN_OR_RETURN(counts.call_results, count_rows(*source, "SELECT count(*) FROM call_results"));
    ASSIGN_OR_RETURN(counts.coroutine_states,
                     count_rows(*source, "SELECT count(*) FROM coroutine_states"));
    ASSIGN_OR_RETURN(auto unlocks, count_rows(*source, "SELECT count(*) FROM job_unlocks"));
    ASSIGN_OR_RETURN(auto actions, count_rows(*source, "SELECT count(*) FROM call_actions"));
    ASSIGN_OR_RETURN(auto deltas, count_rows(*source, "SELECT count(*) FROM coroutine_deltas"));
    ASSIGN_OR_RETURN(auto history, count_rows(*source, "SELECT count(*) FROM call_history"));
    ASSIGN_OR_RETURN(counts.blobs, count_rows(*source, "SELECT count(*) FROM blobs"));
    MigrationProgress state;
    state.total = counts.runs + counts.call_results + counts.coroutine_states + unlocks + actions +
                  deltas + history + counts.blobs;
    Status status = target->transaction([&]() -> Status {
      ASSIGN_OR_RETURN(pg::Rows existing, target->query("SELECT count(*) FROM runs"));
      if (existing[0].int64(0) > 0) {
        return failed_precondition("the PostgreSQL store " + display_location(pg_url) +
                                   " already holds " + std::to_string(existing[0].int64(0)) +
                                   " runs; migrate into an empty database");
      }
      for (const char* table : {"runs", "call_results", "coroutine_states", "coroutine_deltas",
                                "job_unlocks", "call_actions"}) {
        ASSIGN_OR_RETURN(auto columns, shared_columns(*source, *target, table));
        TableCopy copy(*source, *target, table, std::move(columns));
        RETURN_IF_ERROR(copy.run(state, progress));
      }
      ASSIGN_OR_RETURN(auto columns, shared_columns(*source, *target, "call_history"));
      TableCopy history_copy(*source, *target, "call_history", std::move(columns),
                             "call_id, number");
      RETURN_IF_ERROR(history_copy.run(state, progress));
      ASSIGN_OR_RETURN(auto blob_columns, shared_columns(*source, *target, "blobs"));
      TableCopy blob_copy(*source, *target, "blobs", std::move(blob_columns), "rowid",
                          kBlobBatchRows);
      RETURN_IF_ERROR(blob_copy.run(state, progress));
      // The servers of the old store are gone: their leases end now.
      return target
          ->run(
              "UPDATE runs SET lease_expires_at = $1 WHERE phase = 'LEASED' AND "
              "lease_expires_at > $1",
              pg::Params().add(clock.now()))
          .status();
    });
    return status;
  };
  Status copied = copy_all();
  (void)source->exec("ROLLBACK");
  if (!copied.is_ok()) return copied;
  return counts;
}

}  // namespace ratchet
