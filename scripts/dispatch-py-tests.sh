#!/usr/bin/env bash
# dispatch-py 0.8.0's own test suite and examples against `ratchet dev`
# (tests/dispatch_py/suite.py): every endpoint flavour of its dispatch.test.TestCase
# harness (stdlib http.server, aiohttp, FastAPI, Flask) with and without signature
# verification, tests/test_client.py, and examples/ (the internet replaced by a local
# stub). Prints the counts per flavour; exits non-zero if a test fails, or if one of the
# known defects of dispatch-py listed in suite.py stops failing.
# usage: scripts/dispatch-py-tests.sh [BUILD_DIR] [suite.py options...]
#   BUILD_DIR  a build with the ratchet binary (default build/release); dispatch-py is
#              copied and its C extension built in BUILD_DIR/dispatch-py.
#   --postgres URL  each `ratchet dev` keeps its calls in a fresh database on this
#              PostgreSQL server (scripts/pg-cluster.sh start DIR prints one) instead of
#              a SQLite file.
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build/release}"
[ $# -gt 0 ] && shift
setup=../shared/interop/setup.sh
if [ ! -f "$setup" ]; then
  echo "dispatch-py-tests: $setup is missing: the interop tests need ../shared/interop" >&2
  exit 1
fi
eval "$(bash "$setup" "$PWD/$build/dispatch-py")"
exec "$DISPATCH_PY" tests/dispatch_py/suite.py --ratchet "$build/src/cli/ratchet" \
  --dispatch-py "$DISPATCH_PY_SRC" "$@"
