#include "storage/pg_schema.hpp"

#include <array>

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

// Python's traceback of a call's (last) error, for the dashboard. (This
// backend does not write it yet: the SQLite one does.)
constexpr const char* kVersion2 = R"sql(
ALTER TABLE runs ADD COLUMN error_traceback TEXT;
)sql";

// A call's own limit on attempts (Call.max_attempts, Ratchet's extension);
// NULL: the server's.
constexpr const char* kCallMaxAttempts = R"sql(
ALTER TABLE runs ADD COLUMN max_attempts INTEGER;
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

constexpr std::array<const char*, 4> kMigrations{kVersion1, kVersion2, kCallMaxAttempts,
                                                kCallActions};

}  // namespace

std::span<const char* const> migrations() { return kMigrations; }

}  // namespace ratchet::pg
