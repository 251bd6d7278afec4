#!/usr/bin/env bash
# Sets everything up and runs the whole test suite.
# usage: scripts/test.sh [--with-asan]
#   --with-asan  also builds with AddressSanitizer + UBSan and runs the suite again.
# The release suite runs twice: once as usual, once in random order at twice the
# parallelism (a loaded machine: what flakes shows here). Then each fuzzer runs
# on its seed corpus for 20 s (scripts/fuzz.sh runs them longer).
set -euo pipefail
cd "$(dirname "$0")/.."

# Each phase's line says how long the run has taken so far (CI's budget is 30 minutes).
started=$SECONDS
phase() { echo "== [$((SECONDS - started)) s] $*"; }

# A private PostgreSQL cluster for the PostgreSQL half of the suite, stopped
# however the run ends. RATCHET_TEST_PG already set: use that database instead.
bash scripts/install-deps.sh
if [ -z "${RATCHET_TEST_PG:-}" ]; then
  pg_dir="$(mktemp -d "${TMPDIR:-/tmp}/ratchet-pg-XXXXXX")"
  trap 'bash scripts/pg-cluster.sh stop "$pg_dir"; rm -rf "$pg_dir"' EXIT
  RATCHET_TEST_PG="$(bash scripts/pg-cluster.sh start "$pg_dir")"
  export RATCHET_TEST_PG
fi
phase "PostgreSQL for the tests: $RATCHET_TEST_PG"

run_suite() {
  local preset="$1"
  phase "building ($preset)"
  bash scripts/build.sh "$preset"
  phase "testing ($preset)"
  ctest --preset "$preset" -j "$(nproc)" --timeout 300
}

# playwright-core for the dashboard's browser test, at the version its lock file pins.
phase "installing the browser test's npm packages"
(cd tests/dashboard && npm ci --no-audit --no-fund --loglevel=error)
run_suite release
phase "testing (release, random order, -j $((2 * $(nproc))))"
ctest --preset release -j "$((2 * $(nproc)))" --schedule-random --timeout 300
phase "checking the installed SDK (release)"
bash scripts/check-install.sh build/release
phase "dispatch-py's tests and examples against ratchet dev (release)"
bash scripts/dispatch-py-tests.sh build/release
phase "dispatch-py's tests and examples against ratchet dev on PostgreSQL (release)"
bash scripts/dispatch-py-tests.sh build/release --postgres "$RATCHET_TEST_PG"
phase "fuzzing (20 s per target)"
bash scripts/fuzz.sh 20
if [ "${1:-}" = "--with-asan" ]; then
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
  run_suite asan
  phase "dispatch-py's tests and examples against ratchet dev (asan)"
  bash scripts/dispatch-py-tests.sh build/asan
fi
phase "done"
