#!/usr/bin/env bash
# Sets everything up and runs two short tours: the job runner on a temporary
# state directory (start, an idempotent second start, status, logs, a failing
# job, wait, history and clean), then the C++ SDK's examples/tour.cpp against a
# fresh `ratchet dev` (scripts/sdk-tour.sh). Exits non-zero if the SDK's tour
# does not give what it expects.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh release >/dev/null
ratchet="$PWD/build/release/src/cli/ratchet"
export RATCHET_HOME="$(mktemp -d)"
trap 'rm -rf "$RATCHET_HOME"' EXIT

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { step "$@"; "$@" || echo "(exit $?)"; }

echo "Ratchet tour, state in $RATCHET_HOME"
run "$ratchet" start --run-key greet --env NAME=ratchet -- sh -c 'echo "hello from $NAME"; sleep 1'
run "$ratchet" start --run-key greet --env NAME=ratchet -- sh -c 'echo "hello from $NAME"; sleep 1'
run "$ratchet" wait --run-key greet
run "$ratchet" logs --run-key greet
run "$ratchet" start --run-key fails --sync -- sh -c 'echo oops >&2; exit 3'
run "$ratchet" logs --run-key fails --stream stderr
run "$ratchet" status --run-key greet --all
run "$ratchet" list --limit 5
run "$ratchet" clean --before "$(date -d tomorrow +%F)" --dry-run

printf '\n\033[1m== The C++ SDK: examples/tour.cpp against a fresh ratchet dev\033[0m\n'
bash scripts/sdk-tour.sh "$ratchet" "$PWD/build/release/examples/example_tour"
