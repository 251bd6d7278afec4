#!/usr/bin/env bash
# A soak test, not part of the suite: 10 minutes (or $1 seconds) of steady load
# (200 calls a second) on loopback against an endpoint that fails for 10 s and
# throttles for 5 s every minute. Prints the server process's RSS every 30 s,
# then accounts for every call (succeeded + failed = dispatched). Exit 1 if a
# call is unaccounted for. Bounded: SECONDS x 200 calls, plus 5 minutes to drain.
# usage: scripts/soak.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x build/release/bench/load_bench ] || bash scripts/build.sh release
exec build/release/bench/load_bench --soak "${1:-600}"
