#!/usr/bin/env bash
# Sets everything up and runs two short tours: the job runner on a temporary
# state directory (start, an idempotent second start, status, logs, a failing
# job, wait, a run-once key, retries, history and clean), then the C++ SDK's examples/tour.cpp against a
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
run "$ratchet" start --run-key once --strict --sync -- echo "a strict key runs once"
run "$ratchet" start --run-key once --strict --sync -- echo "a strict key runs once"
run "$ratchet" start --run-key flaky --retries 2 --retry-delay 100ms --sync -- \
  sh -c 'n=$(cat "$0" 2>/dev/null || echo 0); echo $((n + 1)) > "$0"; [ "$n" -ge 1 ]' \
  "$RATCHET_HOME/tries"
run "$ratchet" status --run-key greet --all
run "$ratchet" list --limit 5
run "$ratchet" clean --before "$(date -d tomorrow +%F)" --dry-run

printf '\n\033[1m== The C++ SDK: examples/tour.cpp against a fresh ratchet dev\033[0m\n'
bash scripts/sdk-tour.sh "$ratchet" "$PWD/build/release/examples/example_tour"
