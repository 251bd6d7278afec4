#include "storage/schema.hpp"

#include <array>

#include "storage/sqlite_db.hpp"

namespace ratchet::sqlite {
namespace {

// Version 1: the one history of jobs and calls, and the inbox of child results.
constexpr const char* kVersion1 = R"sql(
CREATE TABLE runs (
  id                  TEXT PRIMARY KEY,
  kind                TEXT NOT NULL CHECK (kind IN ('job', 'call')),
  run_key             TEXT,
  status              TEXT NOT NULL CHECK (status IN
                        ('STARTING', 'RUNNING', 'SUCCEEDED', 'FAILED', 'LOST', 'CANCELLED')),
  started_at          INTEGER NOT NULL,
  updated_at          INTEGER NOT NULL,
  finished_at         INTEGER,
  error               TEXT,
  attempts            INTEGER NOT NULL DEFAULT 0,
  lease_expires_at    INTEGER,

  command             TEXT,
  cwd                 TEXT,
  env                 TEXT,
  timeout_us          INTEGER,
  stdout_file         TEXT,
  stderr_file         TEXT,
  boot_id             TEXT,
  supervisor_pid      INTEGER,
  supervisor_start    INTEGER,
  pid                 INTEGER,
  pid_start           INTEGER,
  heartbeat_at        INTEGER,
  cancel_requested_at INTEGER,
  cancel_grace_us     INTEGER,
  exit_code           INTEGER,
  signal              TEXT,

  function            TEXT,
  endpoint            TEXT,
  version             TEXT,
  input               BLOB,
  output              BLOB,
  error_type          TEXT,
  parent_id           TEXT,
  root_id             TEXT,
  correlation_id      INTEGER,
  expires_at          INTEGER,
  phase               TEXT,
  ready_at            INTEGER,
  lease_owner         TEXT,
  lease_epoch         INTEGER NOT NULL DEFAULT 0,
  state_member        INTEGER,
  coroutine_state     BLOB,
  poll_min            INTEGER,
  poll_max            INTEGER,
  poll_deadline       INTEGER,
  poll_error          BLOB,
  children_waiting    INTEGER NOT NULL DEFAULT 0,
  results_waiting     INTEGER NOT NULL DEFAULT 0,
  call_status         INTEGER
);

CREATE INDEX runs_by_key ON runs (run_key, started_at) WHERE run_key IS NOT NULL;
CREATE INDEX runs_by_status ON runs (status, finished_at);
CREATE INDEX runs_by_start ON runs (started_at);
CREATE UNIQUE INDEX runs_one_live_per_key ON runs (kind, run_key)
  WHERE run_key IS NOT NULL AND status IN ('STARTING', 'RUNNING');
CREATE INDEX calls_ready ON runs (ready_at) WHERE phase = 'READY';
CREATE INDEX calls_waiting ON runs (poll_deadline) WHERE phase = 'WAITING';
CREATE INDEX calls_leased ON runs (lease_expires_at) WHERE phase = 'LEASED';
CREATE INDEX calls_by_parent ON runs (parent_id) WHERE parent_id IS NOT NULL;

CREATE TABLE call_results (
  parent_id      TEXT NOT NULL,
  child_id       TEXT NOT NULL,
  correlation_id INTEGER NOT NULL,
  output         BLOB,
  error_type     TEXT,
  error_message  TEXT,
  arrived_at     INTEGER NOT NULL,
  delivered      INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (parent_id, child_id)
);
CREATE INDEX call_results_waiting ON call_results (parent_id, arrived_at) WHERE delivered = 0;
)sql";

// A suspended coroutine's state leaves the runs table: it grows with every
// step of the coroutine, and SQLite rewrites a whole row (overflow pages
// included) whenever any column of it changes, which happens several times a
// step. In a table of its own it is written once per Poll.
constexpr const char* kVersion2 = R"sql(
CREATE TABLE coroutine_states (
  call_id TEXT PRIMARY KEY,
  state   BLOB NOT NULL
);
INSERT INTO coroutine_states (call_id, state)
  SELECT id, coroutine_state FROM runs WHERE coroutine_state IS NOT NULL;
ALTER TABLE runs DROP COLUMN coroutine_state;
)sql";

// Jobs record the host their supervisor runs on: on a store shared by hosts,
// a job of another host is live while its heartbeat lease (lease_expires_at)
// is, since its pid means nothing here.
constexpr const char* kVersion3 = R"sql(
ALTER TABLE runs ADD COLUMN host_id TEXT;
)sql";

// The dashboard's runs list (storage/browse.hpp): jobs and root calls, newest
// first, by status, kind or name (a call's function, a job's program). Partial
// indexes over the roots only, so that the many child calls of a fan-out cost
// the scheduler no extra index writes. The name expression must be written
// exactly so in queries for SQLite to use the index (sqlite_browse.cpp); its
// json_valid keeps a malformed command from failing the whole statement.
constexpr const char* kDashboardIndexes = R"sql(
CREATE INDEX runs_roots ON runs (started_at) WHERE parent_id IS NULL;
CREATE INDEX runs_roots_by_status ON runs (status, started_at) WHERE parent_id IS NULL;
CREATE INDEX runs_roots_by_kind ON runs (kind, started_at) WHERE parent_id IS NULL;
-- Python's traceback of a call's (last) error, for the dashboard.
ALTER TABLE runs ADD COLUMN error_traceback TEXT;
CREATE INDEX runs_roots_by_name ON runs (
  coalesce(function, CASE WHEN json_valid(command) THEN json_extract(command, '$[0]') END),
  started_at) WHERE parent_id IS NULL;
)sql";

// A call's own limit on attempts (Call.max_attempts, Ratchet's extension);
// NULL: the server's. (The once-ever run-key lookup now reads runs_by_key_created.)
constexpr const char* kCallMaxAttempts = R"sql(
ALTER TABLE runs ADD COLUMN max_attempts INTEGER;
)sql";

// Jobs for orchestrators: lineage (each job's number within its key and the
// job it follows), run-once keys and their unlocks, retries, and why a job was
// cancelled. Jobs recorded before this version are numbered in the order they
// started, each following the previous job of its key.
constexpr const char* kJobLineage = R"sql(
ALTER TABLE runs ADD COLUMN attempt_no INTEGER;
ALTER TABLE runs ADD COLUMN rerun_of_job_id TEXT;
ALTER TABLE runs ADD COLUMN rerun_reason TEXT;
ALTER TABLE runs ADD COLUMN started_by TEXT;
ALTER TABLE runs ADD COLUMN strict INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN strict_override_used INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN retries INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN retry_delay_us INTEGER;
ALTER TABLE runs ADD COLUMN cancel_reason TEXT;

UPDATE runs SET attempt_no = numbered.n, rerun_of_job_id = numbered.previous, started_by = 'start'
  FROM (SELECT id,
               ROW_NUMBER() OVER key_order AS n,
               LAG(id) OVER key_order AS previous
          FROM runs WHERE kind = 'job'
        WINDOW key_order AS (PARTITION BY run_key ORDER BY started_at, rowid)) AS numbered
  WHERE runs.id = numbered.id;

CREATE INDEX runs_by_rerun_of ON runs (rerun_of_job_id) WHERE rerun_of_job_id IS NOT NULL;

CREATE TABLE job_unlocks (
  run_key    TEXT PRIMARY KEY,
  reason     TEXT,
  created_at INTEGER NOT NULL,
  expires_at INTEGER
);
)sql";

// An error that came from an endpoint keeps every field it came with (the pickled
// exception and traceback of a Python error, fields this server does not know): the
// serialized dispatch.sdk.v1.Error, opaque bytes handed on as they came. NULL for errors
// the server made itself, which have a type and a message only. A Python error's
// traceback travels in these bytes, and the dashboard reads it from them: the
// traceback column of version 4 goes (one source for one fact).
constexpr const char* kErrorBytes = R"sql(
ALTER TABLE runs ADD COLUMN error_proto BLOB;
ALTER TABLE call_results ADD COLUMN error_proto BLOB;
ALTER TABLE runs DROP COLUMN error_traceback;
)sql";

// What operators did to calls (`ratchet rewind`, `ratchet set-result`, and
// since issue 10 cancel and retry now): who, when, what. One row per action,
// deleted with its call; what the scheduler did is in call_history.
constexpr const char* kCallActions = R"sql(
CREATE TABLE call_actions (
  call_id TEXT NOT NULL,
  at      INTEGER NOT NULL,
  actor   TEXT NOT NULL,
  action  TEXT NOT NULL,
  detail  TEXT NOT NULL
);
CREATE INDEX call_actions_by_call ON call_actions (call_id, at);
)sql";

// Server instances with their heartbeats, so that a server takes over the
// leases of one that is gone (storage/instance.hpp); leases name their
// instance in lease_owner. As PostgreSQL's, with who runs it (host, pid).
constexpr const char* kInstances = R"sql(
CREATE TABLE instances (
  id           TEXT PRIMARY KEY,
  started_at   INTEGER NOT NULL,
  heartbeat_at INTEGER NOT NULL,
  host_id      TEXT,
  pid          INTEGER,
  pid_start    INTEGER
);
CREATE INDEX calls_leased_by ON runs (lease_owner) WHERE phase = 'LEASED';
)sql";

// Journal deltas (protocol/journal_delta.hpp): a C++ coroutine's Polls after
// the first carry what changed, appended here one row per Poll, so that a
// step writes a few hundred bytes however long the coroutine has run. The base
// they apply to stays in coroutine_states, with its revision.
constexpr const char* kCoroutineDeltas = R"sql(
CREATE TABLE coroutine_deltas (
  call_id  TEXT NOT NULL,
  revision INTEGER NOT NULL,
  delta    BLOB NOT NULL,
  PRIMARY KEY (call_id, revision)
);
ALTER TABLE coroutine_states ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
)sql";

// Fair claims, expiry and each call's history (issue 10). Ready calls are
// claimed queue by queue (one function at one endpoint); live calls with an
// expiration are found by it; the history is bounded per call (call.hpp).
constexpr const char* kHistory = R"sql(
CREATE INDEX calls_ready_by_queue ON runs (endpoint, function, ready_at) WHERE phase = 'READY';
CREATE INDEX calls_expiring ON runs (expires_at)
  WHERE expires_at IS NOT NULL AND phase != 'DONE';
CREATE TABLE call_history (
  call_id     TEXT NOT NULL,
  number      INTEGER NOT NULL,
  kind        TEXT NOT NULL,
  at          INTEGER NOT NULL,
  duration_us INTEGER,
  attempt     INTEGER NOT NULL DEFAULT 0,
  call_status INTEGER NOT NULL DEFAULT 0,
  outcome     TEXT NOT NULL DEFAULT '',
  detail      TEXT NOT NULL DEFAULT '',
  children    INTEGER NOT NULL DEFAULT 0,
  results     INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (call_id, number)
) WITHOUT ROWID;
)sql";

// Values over 64 KiB out of line, stored once by their SHA-256 (storage/blobs.hpp):
// a value column keeps '' and its `_blob` column the digest. The indexes find
// a blob's references when a delete may have left it garbage.
constexpr const char* kBlobs = R"sql(
CREATE TABLE blobs (
  digest BLOB PRIMARY KEY,
  bytes  BLOB NOT NULL
);
ALTER TABLE runs ADD COLUMN input_blob BLOB;
ALTER TABLE runs ADD COLUMN output_blob BLOB;
ALTER TABLE call_results ADD COLUMN output_blob BLOB;
ALTER TABLE coroutine_states ADD COLUMN state_blob BLOB;
ALTER TABLE coroutine_deltas ADD COLUMN delta_blob BLOB;
CREATE INDEX runs_by_input_blob ON runs (input_blob) WHERE input_blob IS NOT NULL;
CREATE INDEX runs_by_output_blob ON runs (output_blob) WHERE output_blob IS NOT NULL;
CREATE INDEX call_results_by_blob ON call_results (output_blob) WHERE output_blob IS NOT NULL;
CREATE INDEX coroutine_states_by_blob ON coroutine_states (state_blob)
  WHERE state_blob IS NOT NULL;
CREATE INDEX coroutine_deltas_by_blob ON coroutine_deltas (delta_blob)
  WHERE delta_blob IS NOT NULL;
)sql";

// A call's children in the order the dashboard's tree reads them (started_at,
// then rowid, which every SQLite index ends with), so that a read of the first
// N children of a call stops after N index entries instead of sorting them all.
// It replaces calls_by_parent, whose leading column it has.
constexpr const char* kChildrenInOrder = R"sql(
CREATE INDEX calls_by_parent_started ON runs (parent_id, started_at) WHERE parent_id IS NOT NULL;
DROP INDEX calls_by_parent;
)sql";

// A key's newest job is the one with the greatest attempt_no (each new job
// takes the newest's + 1: the order they were created), not the one with the
// latest started_at: the wall clock can step back (docs/jobs.md). Every SQLite
// index ends with the rowid, which breaks ties (calls have no attempt_no).
constexpr const char* kKeyCreationOrder = R"sql(
CREATE INDEX runs_by_key_created ON runs (run_key, attempt_no) WHERE run_key IS NOT NULL;
)sql";

// Oldest first, each by its name (storage/migrations.hpp): a new migration goes
// at the end, with a name of its own, and none of these ever moves. A store's
// version from before names counted the first kNumbered.
constexpr std::array<Migration, 14> kMigrations{{
    {"runs", kVersion1},
    {"coroutine_states", kVersion2},
    {"job_host", kVersion3},
    {"dashboard_indexes", kDashboardIndexes},
    {"call_max_attempts", kCallMaxAttempts},
    {"job_lineage", kJobLineage},
    {"error_bytes", kErrorBytes},
    {"call_actions", kCallActions},
    {"instances", kInstances},
    {"coroutine_deltas", kCoroutineDeltas},
    {"call_history", kHistory},
    {"blobs", kBlobs},
    {"children_in_order", kChildrenInOrder},
    {"key_creation_order", kKeyCreationOrder},
}};
constexpr std::size_t kNumbered = 14;

// The store's side of storage/migrations.hpp: names in ratchet_migrations,
// their count in user_version (so that a ratchet from before names refuses a
// store with more migrations than it knows).
class Target final : public MigrationTarget {
 public:
  explicit Target(Database& db) : db_(db) {}
  std::string store() const override { return "the store " + db_.path(); }
  Status transaction(const std::function<Status()>& body) override {
    return db_.write_transaction(body);
  }

  // The version and whether names are recorded in one statement, so from one
  // snapshot; then the names, which another process may have added since: the
  // names found are then the newer fact.
  Result<RecordedMigrations> recorded() override {
    RecordedMigrations recorded;
    ASSIGN_OR_RETURN(Statement * state,
                     db_.prepare("SELECT (SELECT user_version FROM pragma_user_version), "
                                 "EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                                 "name = 'ratchet_migrations')"));
    ASSIGN_OR_RETURN(bool row, state->step());
    if (row) {
      recorded.version = state->int64(0);
      recorded.has_names = state->int64(1) != 0;
    }
    state->reset();  // an unfinished SELECT would hold its read transaction open
    if (!recorded.has_names) return recorded;
    ASSIGN_OR_RETURN(Statement * names, db_.prepare("SELECT name FROM ratchet_migrations"));
    while (true) {
      ASSIGN_OR_RETURN(bool name_row, names->step());
      if (!name_row) break;
      recorded.names.push_back(names->text(0));
    }
    return recorded;
  }

  Status run(const Migration& migration, const std::string& what) override {
    return db_.exec(migration.sql, what);
  }

  Status record(const std::vector<std::string>& names, std::size_t count) override {
    RETURN_IF_ERROR(
        db_.exec("CREATE TABLE IF NOT EXISTS ratchet_migrations (name TEXT PRIMARY KEY NOT NULL)"));
    ASSIGN_OR_RETURN(Statement * insert,
                     db_.prepare("INSERT INTO ratchet_migrations (name) VALUES (?1)"));
    for (const std::string& name : names) {
      insert->reset();
      RETURN_IF_ERROR(insert->bind(1, name).run().status());
    }
    std::string version = "PRAGMA user_version=" + std::to_string(count);
    return db_.exec(version.c_str());
  }

 private:
  Database& db_;
};

}  // namespace

MigrationList migrations() { return {kMigrations, kNumbered}; }

std::unique_ptr<MigrationTarget> migration_target(Database& db) {
  return std::make_unique<Target>(db);
}

}  // namespace ratchet::sqlite
