#!/usr/bin/env bash
# Sets everything up, builds the release configuration and runs the benchmarks.
# Each prints its figures beside a baseline measured in the same run.
# usage: scripts/bench.sh [--quick]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh release
echo "== jobs"
build/release/bench/jobs_bench build/release/src/cli/ratchet "$@"
echo "== server"
build/release/bench/server_bench "$@"
echo "== under load (throughput, fan-out, fairness, durable sleep, memory)"
build/release/bench/load_bench "$@"
echo "== recovery (kill -9, SIGTERM)"
build/release/bench/recovery_bench build/release/src/cli/ratchet "$@"
echo "== fleet (PostgreSQL, a private durable cluster)"
pg_dir="$(mktemp -d "${TMPDIR:-/tmp}/ratchet-bench-pg-XXXXXX")"
trap 'bash scripts/pg-cluster.sh stop "$pg_dir"; rm -rf "$pg_dir"' EXIT
pg_url="$(bash scripts/pg-cluster.sh start "$pg_dir" --durable)"
build/release/bench/fleet_bench "$pg_url" "$@"
echo "== ListOpen's pages over 100,000 open coroutines (PostgreSQL)"
RATCHET_TEST_PG="$pg_url" build/release/bench/list_open_bench "$@"
echo "== SDK"
build/release/bench/sdk_bench "$@"
echo "== large values (SDK: 100 KiB step results, a 1 MiB fan-out input)"
build/release/bench/large_values_bench "$@"
echo "== dashboard"
build/release/bench/dashboard_bench "$@"
echo "== dispatch-py's echo endpoint behind ratchet dev and behind dispatch.test.Service"
(
  eval "$(bash ../shared/interop/setup.sh "$PWD/build/release/dispatch-py")"
  build/release/bench/dispatch_py_bench --python "$DISPATCH_PY" \
    --ratchet build/release/src/cli/ratchet --echo bench/dispatch_py_echo.py \
    --test-server tests/dispatch_py/test_server.py "$@"
)
