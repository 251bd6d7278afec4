#include "storage/pg_schema.hpp"

#include <array>

#include "storage/blobs.hpp"
#include "storage/pg_db.hpp"
#include "storage/store.hpp"

namespace ratchet::pg {
namespace {

// Version 1: the same history as SQLite's schema (docs/storage.md), in
// PostgreSQL's types: times and counters BIGINT, payloads BYTEA. `seq` orders
// rows inserted in the same microsecond (SQLite's rowid does that there), and
// `instances` holds the servers of a fleet with their heartbeats.
constexpr const char* kVersion1 = R"sql(
CREATE TABLE runs (
  id                  TEXT PRIMARY KEY,
  seq                 BIGSERIAL NOT NULL,
  kind                TEXT NOT NULL CHECK (kind IN ('job', 'call')),
  run_key             TEXT,
  status              TEXT NOT NULL CHECK (status IN
                        ('STARTING', 'RUNNING', 'SUCCEEDED', 'FAILED', 'LOST', 'CANCELLED')),
  started_at          BIGINT NOT NULL,
  updated_at          BIGINT NOT NULL,
  finished_at         BIGINT,
  error               TEXT,
  attempts            BIGINT NOT NULL DEFAULT 0,
  lease_expires_at    BIGINT,

  command             TEXT,
  cwd                 TEXT,
  env                 TEXT,
  timeout_us          BIGINT,
  stdout_file         TEXT,
  stderr_file         TEXT,
  host_id             TEXT,
  boot_id             TEXT,
  supervisor_pid      BIGINT,
  supervisor_start    BIGINT,
  pid                 BIGINT,
  pid_start           BIGINT,
  heartbeat_at        BIGINT,
  cancel_requested_at BIGINT,
  cancel_grace_us     BIGINT,
  exit_code           BIGINT,
  signal              TEXT,

  function            TEXT,
  endpoint            TEXT,
  version             TEXT,
  input               BYTEA,
  output              BYTEA,
  error_type          TEXT,
  parent_id           TEXT,
  root_id             TEXT,
  correlation_id      BIGINT,
  expires_at          BIGINT,
  phase               TEXT,
  ready_at            BIGINT,
  lease_owner         TEXT,
  lease_epoch         BIGINT NOT NULL DEFAULT 0,
  state_member        BIGINT,
  poll_min            BIGINT,
  poll_max            BIGINT,
  poll_deadline       BIGINT,
  poll_error          TEXT,
  children_waiting    BIGINT NOT NULL DEFAULT 0,
  results_waiting     BIGINT NOT NULL DEFAULT 0,
  call_status         BIGINT
);

CREATE INDEX runs_by_key ON runs (run_key, started_at, seq) WHERE run_key IS NOT NULL;
CREATE INDEX runs_by_status ON runs (status, finished_at);
CREATE INDEX runs_by_start ON runs (started_at, seq);
CREATE UNIQUE INDEX runs_one_live_per_key ON runs (kind, run_key)
  WHERE run_key IS NOT NULL AND status IN ('STARTING', 'RUNNING');
CREATE INDEX calls_ready ON runs (ready_at) WHERE phase = 'READY';
CREATE INDEX calls_waiting ON runs (poll_deadline) WHERE phase = 'WAITING';
CREATE INDEX calls_leased ON runs (lease_expires_at) WHERE phase = 'LEASED';
CREATE INDEX calls_leased_by ON runs (lease_owner) WHERE phase = 'LEASED';
CREATE INDEX calls_by_parent ON runs (parent_id) WHERE parent_id IS NOT NULL;

CREATE TABLE call_results (
  parent_id      TEXT NOT NULL,
  child_id       TEXT NOT NULL,
  seq            BIGSERIAL NOT NULL,
  correlation_id BIGINT NOT NULL,
  output         BYTEA,
  error_type     TEXT,
  error_message  TEXT,
  arrived_at     BIGINT NOT NULL,
  delivered      BOOLEAN NOT NULL DEFAULT false,
  PRIMARY KEY (parent_id, child_id)
);
CREATE INDEX call_results_waiting ON call_results (parent_id, arrived_at, seq)
  WHERE NOT delivered;

CREATE TABLE coroutine_states (
  call_id TEXT PRIMARY KEY,
  state   BYTEA NOT NULL
);

CREATE TABLE instances (
  id           TEXT PRIMARY KEY,
  started_at   BIGINT NOT NULL,
  heartbeat_at BIGINT NOT NULL
);
)sql";

// Python's traceback of a call's (last) error, for the dashboard.
constexpr const char* kVersion2 = R"sql(
ALTER TABLE runs ADD COLUMN error_traceback TEXT;
)sql";

// A call's own limit on attempts (Call.max_attempts, Ratchet's extension);
// NULL: the server's.
constexpr const char* kCallMaxAttempts = R"sql(
ALTER TABLE runs ADD COLUMN max_attempts INTEGER;
)sql";

// Jobs for orchestrators, as SQLite's kJobLineage (docs/storage.md): lineage,
// run-once keys and their unlocks, retries, and why a job was cancelled; the
// jobs recorded before are numbered in the order they started. Flags are
// BIGINT 0/1, as in SQLite, so that both read them with one row reader.
constexpr const char* kJobLineage = R"sql(
ALTER TABLE runs ADD COLUMN attempt_no BIGINT;
ALTER TABLE runs ADD COLUMN rerun_of_job_id TEXT;
ALTER TABLE runs ADD COLUMN rerun_reason TEXT;
ALTER TABLE runs ADD COLUMN started_by TEXT;
ALTER TABLE runs ADD COLUMN strict BIGINT NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN strict_override_used BIGINT NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN retries BIGINT NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN retry_delay_us BIGINT;
ALTER TABLE runs ADD COLUMN cancel_reason TEXT;

UPDATE runs SET attempt_no = numbered.n, rerun_of_job_id = numbered.previous, started_by = 'start'
  FROM (SELECT id,
               ROW_NUMBER() OVER key_order AS n,
               LAG(id) OVER key_order AS previous
          FROM runs WHERE kind = 'job'
        WINDOW key_order AS (PARTITION BY run_key ORDER BY started_at, seq)) AS numbered
  WHERE runs.id = numbered.id;

CREATE INDEX runs_by_rerun_of ON runs (rerun_of_job_id) WHERE rerun_of_job_id IS NOT NULL;

CREATE TABLE job_unlocks (
  run_key    TEXT PRIMARY KEY,
  reason     TEXT,
  created_at BIGINT NOT NULL,
  expires_at BIGINT
);
)sql";

// The dashboard's runs list (storage/browse.hpp, pg_browse.cpp): jobs and root
// calls newest first, by status, kind or name, each page one backward range
// of an index. Partial indexes over the roots only, so that the children of a
// fan-out cost the scheduler no extra index writes. A run's name is a call's
// function or a job's program (its command's first word); the function that
// computes it never fails, so that a malformed command cannot fail an insert.
constexpr const char* kDashboardIndexes = R"sql(
CREATE FUNCTION ratchet_run_name(TEXT, TEXT) RETURNS TEXT
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
  IF $1 IS NOT NULL THEN RETURN $1; END IF;
  BEGIN
    RETURN $2::jsonb ->> 0;
  EXCEPTION WHEN others THEN
    RETURN NULL;
  END;
END
$$;
CREATE INDEX runs_roots ON runs (started_at, seq) WHERE parent_id IS NULL;
CREATE INDEX runs_roots_by_status ON runs (status, started_at, seq) WHERE parent_id IS NULL;
CREATE INDEX runs_roots_by_kind ON runs (kind, started_at, seq) WHERE parent_id IS NULL;
CREATE INDEX runs_roots_by_name ON runs (ratchet_run_name(function, command), started_at, seq)
  WHERE parent_id IS NULL;
)sql";

// An endpoint's error, serialized, beside its type and message (SQLite's version
// 7): the dashboard reads a Python traceback from it, so error_traceback goes.
constexpr const char* kErrorBytes = R"sql(
ALTER TABLE runs ADD COLUMN error_proto BYTEA;
ALTER TABLE call_results ADD COLUMN error_proto BYTEA;
ALTER TABLE runs DROP COLUMN error_traceback;
)sql";

// What operators did to calls (`ratchet rewind`, `ratchet set-result`): who,
// when, what; the same table as SQLite's (schema.cpp), seq keeping the order.
constexpr const char* kCallActions = R"sql(
CREATE TABLE call_actions (
  seq     BIGSERIAL PRIMARY KEY,
  call_id TEXT NOT NULL,
  at      BIGINT NOT NULL,
  actor   TEXT NOT NULL,
  action  TEXT NOT NULL,
  detail  TEXT NOT NULL
);
CREATE INDEX call_actions_by_call ON call_actions (call_id, at);
)sql";

// Who runs each instance, so that a server of the same host takes over the
// leases of one whose process is gone at once (storage/instance.hpp).
constexpr const char* kInstanceIdentity = R"sql(
ALTER TABLE instances ADD COLUMN host_id TEXT;
ALTER TABLE instances ADD COLUMN pid BIGINT;
ALTER TABLE instances ADD COLUMN pid_start BIGINT;
)sql";

// Journal deltas, as SQLite's (schema.cpp): one row per Poll after the first.
constexpr const char* kCoroutineDeltas = R"sql(
CREATE TABLE coroutine_deltas (
  call_id  TEXT NOT NULL,
  revision BIGINT NOT NULL,
  delta    BYTEA NOT NULL,
  PRIMARY KEY (call_id, revision)
);
ALTER TABLE coroutine_states ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;
)sql";

// Fair claims, expiry and each call's history (issue 10): as SQLite's.
constexpr const char* kHistory = R"sql(
CREATE INDEX calls_ready_by_queue ON runs (endpoint, function, ready_at) WHERE phase = 'READY';
CREATE INDEX calls_expiring ON runs (expires_at)
  WHERE expires_at IS NOT NULL AND phase != 'DONE';
CREATE TABLE call_history (
  call_id     TEXT NOT NULL,
  number      BIGINT NOT NULL,
  kind        TEXT NOT NULL,
  at          BIGINT NOT NULL,
  duration_us BIGINT,
  attempt     BIGINT NOT NULL DEFAULT 0,
  call_status BIGINT NOT NULL DEFAULT 0,
  outcome     TEXT NOT NULL DEFAULT '',
  detail      TEXT NOT NULL DEFAULT '',
  children    BIGINT NOT NULL DEFAULT 0,
  results     BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (call_id, number)
);
)sql";

// Values over 64 KiB out of line, as SQLite's (schema.cpp).
constexpr const char* kBlobs = R"sql(
CREATE TABLE blobs (
  digest BYTEA PRIMARY KEY,
  bytes  BYTEA NOT NULL
);
ALTER TABLE runs ADD COLUMN input_blob BYTEA;
ALTER TABLE runs ADD COLUMN output_blob BYTEA;
ALTER TABLE call_results ADD COLUMN output_blob BYTEA;
ALTER TABLE coroutine_states ADD COLUMN state_blob BYTEA;
ALTER TABLE coroutine_deltas ADD COLUMN delta_blob BYTEA;
CREATE INDEX runs_by_input_blob ON runs (input_blob) WHERE input_blob IS NOT NULL;
CREATE INDEX runs_by_output_blob ON runs (output_blob) WHERE output_blob IS NOT NULL;
CREATE INDEX call_results_by_blob ON call_results (output_blob) WHERE output_blob IS NOT NULL;
CREATE INDEX coroutine_states_by_blob ON coroutine_states (state_blob)
  WHERE state_blob IS NOT NULL;
CREATE INDEX coroutine_deltas_by_blob ON coroutine_deltas (delta_blob)
  WHERE delta_blob IS NOT NULL;
)sql";

// The error of a read whose blob is gone (RATCHET_STORED, storage/blobs.hpp),
// so that it fails with the digest named instead of reading as NULL. SQLite's
// is a function each connection registers (sqlite_db.cpp).
constexpr const char* kMissingBlob = R"sql(
CREATE FUNCTION ratchet_missing_blob(digest BYTEA) RETURNS BYTEA LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'a value over 64 KiB is missing from the store: no blob with SHA-256 %',
    encode(digest, 'hex') USING ERRCODE = 'data_corrupted';
END
$$;
)sql";

// A call's children in the order the dashboard's tree reads them, so that a
// read of the first N children of a call stops after N index entries instead
// of sorting them all. It replaces calls_by_parent, whose leading column it has.
constexpr const char* kChildrenInOrder = R"sql(
CREATE INDEX calls_by_parent_started ON runs (parent_id, started_at, seq)
  WHERE parent_id IS NOT NULL;
DROP INDEX calls_by_parent;
)sql";

// ratchet_missing_blob with an SQLSTATE of Ratchet's own, which pg_db.cpp reads
// as Code::kDataLoss (the scheduler holds the calls that need the value), so
// no test of its message is needed; data_corrupted (XX001), which it raised
// before, is also PostgreSQL's own for a damaged page.
constexpr const char* kMissingBlobState = R"sql(
CREATE OR REPLACE FUNCTION ratchet_missing_blob(digest BYTEA) RETURNS BYTEA LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'a value over 64 KiB is missing from the store: no blob with SHA-256 %',
    encode(digest, 'hex') USING ERRCODE = ')sql" RATCHET_MISSING_BLOB_SQLSTATE R"sql(';
END
$$;
)sql";

// A key's newest job is the one with the greatest attempt_no (each new job
// takes the newest's + 1: the order they were created), not the one with the
// latest started_at: the wall clock can step back (docs/jobs.md). seq breaks
// ties; calls, without an attempt_no, come after a key's jobs.
constexpr const char* kKeyCreationOrder = R"sql(
CREATE INDEX runs_by_key_created ON runs (run_key, attempt_no DESC NULLS LAST, seq DESC)
  WHERE run_key IS NOT NULL;
)sql";

// ListOpen's page (pg_repair.cpp, open_coroutines) reads the open coroutines
// in byte order, as SQLite's: the primary key's index, in the database's
// collation, cannot serve that order, so without this each page read and sorted
// every row of coroutine_states.
constexpr const char* kCoroutinesInByteOrder = R"sql(
CREATE INDEX coroutine_states_in_byte_order ON coroutine_states (call_id COLLATE "C");
)sql";

// Oldest first, each by its name (storage/migrations.hpp): a new migration goes
// at the end, with a name of its own, and none of these ever moves. A store's
// version from before names counted the first kNumbered.
constexpr std::array<Migration, 16> kMigrations{{
    {"runs", kVersion1},
    {"error_traceback", kVersion2},
    {"call_max_attempts", kCallMaxAttempts},
    {"job_lineage", kJobLineage},
    {"dashboard_indexes", kDashboardIndexes},
    {"error_bytes", kErrorBytes},
    {"call_actions", kCallActions},
    {"instance_identity", kInstanceIdentity},
    {"coroutine_deltas", kCoroutineDeltas},
    {"call_history", kHistory},
    {"blobs", kBlobs},
    {"missing_blob", kMissingBlob},
    {"children_in_order", kChildrenInOrder},
    {"missing_blob_state", kMissingBlobState},
    {"key_creation_order", kKeyCreationOrder},
    {"coroutines_in_byte_order", kCoroutinesInByteOrder},
}};
constexpr std::size_t kNumbered = 15;

// Held while migrating, so that processes opening a fresh database at once do
// not race to create the schema.
constexpr const char* kMigrationLock = "SELECT pg_advisory_xact_lock(7310423615)";

// The store's side of storage/migrations.hpp: names in ratchet_migrations,
// their count in the one row of ratchet_schema (so that a ratchet from before
// names refuses a store with more migrations than it knows).
class Target final : public MigrationTarget {
 public:
  explicit Target(Connection& db) : db_(db) {}
  std::string store() const override {
    return "the PostgreSQL store " + display_location(db_.url());
  }
  Status transaction(const std::function<Status()>& body) override {
    return db_.transaction([&]() -> Status {
      RETURN_IF_ERROR(db_.exec(kMigrationLock));
      return body();
    });
  }

  // Two round trips: which of the two tables exist, then, in one statement
  // (one snapshot), the version and the names they hold.
  Result<RecordedMigrations> recorded() override {
    RecordedMigrations recorded;
    ASSIGN_OR_RETURN(Tables tables, find_tables());
    recorded.has_names = tables.names;
    std::string sql;
    if (tables.version) sql = "SELECT NULL, max(version) FROM ratchet_schema";
    if (tables.names) {
      sql += std::string(tables.version ? " UNION ALL " : "") +
             "SELECT name, NULL FROM ratchet_migrations";
    }
    if (sql.empty()) return recorded;
    ASSIGN_OR_RETURN(Rows rows, db_.query(sql.c_str()));
    for (int i = 0; i < rows.size(); ++i) {
      if (auto name = rows[i].optional_text(0)) {
        recorded.names.push_back(*name);
      } else {
        recorded.version = rows[i].optional_int64(1).value_or(0);
      }
    }
    return recorded;
  }

  Status run(const Migration& migration, const std::string& what) override {
    return db_.exec(migration.sql, what);
  }

  Status record(const std::vector<std::string>& names, std::size_t count) override {
    RETURN_IF_ERROR(
        db_.exec("CREATE TABLE IF NOT EXISTS ratchet_schema (version BIGINT NOT NULL); "
                 "CREATE TABLE IF NOT EXISTS ratchet_migrations (name TEXT PRIMARY KEY)"));
    for (const std::string& name : names) {
      RETURN_IF_ERROR(
          db_.run("INSERT INTO ratchet_migrations (name) VALUES ($1)", Params().add(name))
              .status());
    }
    return db_.exec("DELETE FROM ratchet_schema; INSERT INTO ratchet_schema VALUES (" +
                    std::to_string(count) + ")");
  }

 private:
  // Which of the two tables exist: ratchet_schema (the version) and
  // ratchet_migrations (the names).
  struct Tables {
    bool version = false;
    bool names = false;
  };
  // Read from pg_class in the statement's snapshot: to_regclass's cached
  // lookups miss a table another process created while this one waited for
  // the migration lock.
  Result<Tables> find_tables() {
    ASSIGN_OR_RETURN(Rows rows, db_.query("SELECT relname::text FROM pg_catalog.pg_class WHERE "
                                          "relname IN ('ratchet_schema', 'ratchet_migrations') "
                                          "AND relnamespace = to_regnamespace(current_schema())"));
    Tables tables;
    for (int i = 0; i < rows.size(); ++i) {
      const std::string table = rows[i].text(0);
      tables.version = tables.version || table == "ratchet_schema";
      tables.names = tables.names || table == "ratchet_migrations";
    }
    return tables;
  }

  Connection& db_;
};

}  // namespace

MigrationList migrations() { return {kMigrations, kNumbered}; }

std::unique_ptr<MigrationTarget> migration_target(Connection& db) {
  return std::make_unique<Target>(db);
}

}  // namespace ratchet::pg
