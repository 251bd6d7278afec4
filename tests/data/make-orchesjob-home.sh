#!/bin/sh
# Writes an orchesjob 1.0 state directory, as orchesjob creates it, for the
# tests of `ratchet import`: orchesjob.db (SQLite, WAL) with its `jobs` and
# `run_keys` tables, and logs/<job_id>.stdout|.stderr.
# usage: make-orchesjob-home.sh DIR [LIVE_PID]
#   LIVE_PID: also write a RUNNING job whose worker is that (running) process.
set -eu
dir="$1"
live_pid="${2:-}"
mkdir -p "$dir/logs"
sqlite3 "$dir/orchesjob.db" >/dev/null <<SQL
PRAGMA journal_mode=WAL;
CREATE TABLE jobs (
  job_id TEXT PRIMARY KEY,
  run_key TEXT,
  worker_pid INTEGER,
  target_pid INTEGER,
  command TEXT NOT NULL,
  status TEXT NOT NULL,
  exit_code INTEGER,
  stdout_file TEXT,
  stderr_file TEXT,
  started_at TEXT,
  finished_at TEXT
);
CREATE TABLE run_keys (
  run_key TEXT PRIMARY KEY,
  job_id TEXT NOT NULL,
  created_at TEXT NOT NULL
);
INSERT INTO jobs VALUES
  ('oj-nightly-1', 'nightly', 4000001, 4000002, '["/usr/local/bin/backup.sh", "--full"]',
   'SUCCEEDED', 0, '$dir/logs/oj-nightly-1.stdout', '$dir/logs/oj-nightly-1.stderr',
   '2026-01-01T02:00:00.000001+09:00', '2026-01-01T02:05:42.654321+09:00'),
  ('oj-nightly-2', 'nightly', 4000003, 4000004, '["/usr/local/bin/backup.sh", "--full"]',
   'FAILED', 3, '$dir/logs/oj-nightly-2.stdout', '$dir/logs/oj-nightly-2.stderr',
   '2026-01-02T02:00:00.000000+09:00', '2026-01-02T02:00:09.000000+09:00'),
  ('oj-report-1', 'report', 4000005, NULL, '["no-such-report-tool"]',
   'FAILED', -1, NULL, NULL, '2026-01-01T08:00:00+00:00', '2026-01-01T08:00:00.5+00:00'),
  ('oj-report-2', 'report', 4000006, 4000007, '["sleep", "600"]',
   'CANCELLED', -15, '$dir/logs/oj-report-2.stdout', '$dir/logs/oj-report-2.stderr',
   '2026-01-03T08:00:00+00:00', '2026-01-03T08:01:00+00:00'),
  -- pids past the kernel's limit (PID_MAX_LIMIT, 4194304): no process has them
  ('oj-stale-1', 'stale', 4194400, 4194401, '["sleep", "86400"]',
   'RUNNING', NULL, '$dir/logs/oj-stale-1.stdout', '$dir/logs/oj-stale-1.stderr',
   '2026-01-04T00:00:00+00:00', NULL),
  ('oj-named-1', NULL, 4000010, 4000011, '["true"]',
   'SUCCEEDED', 0, NULL, NULL, '2026-01-05T00:00:00+00:00', '2026-01-05T00:00:01+00:00');
INSERT INTO run_keys VALUES
  ('nightly', 'oj-nightly-2', '2026-01-02T02:00:00.000000+09:00'),
  ('report', 'oj-report-2', '2026-01-03T08:00:00+00:00'),
  ('stale', 'oj-stale-1', '2026-01-04T00:00:00+00:00'),
  ('named', 'oj-named-1', '2026-01-05T00:00:00+00:00');
SQL
printf 'backup done\n' > "$dir/logs/oj-nightly-1.stdout"
: > "$dir/logs/oj-nightly-1.stderr"
printf 'partial\n' > "$dir/logs/oj-nightly-2.stdout"
printf 'disk quota exceeded\n' > "$dir/logs/oj-nightly-2.stderr"
printf 'waiting\n' > "$dir/logs/oj-report-2.stdout"
if [ -n "$live_pid" ]; then
  sqlite3 "$dir/orchesjob.db" "INSERT INTO jobs VALUES ('oj-live-1', 'live', $live_pid, NULL,
    '[\"sleep\", \"300\"]', 'RUNNING', NULL, NULL, NULL, '2026-01-06T00:00:00+00:00', NULL);"
fi
