#!/usr/bin/env bash
# Runs the SDK's tour (examples/tour.cpp) against a fresh `ratchet dev`: starts
# the server on a free port with a temporary store, exports the DISPATCH_*
# variables it prints, runs the tour, stops the server and cleans up.
# scripts/tour.sh calls it; so does the `example_tour` test.
# usage: scripts/sdk-tour.sh RATCHET_BIN TOUR_BIN
set -euo pipefail
ratchet="$1"
tour="$2"

work="$(mktemp -d)"
dev_pid=""
# shellcheck disable=SC2317  # run by the EXIT trap
stop_dev() {
  [ -n "$dev_pid" ] || return 0
  kill -TERM "$dev_pid" 2>/dev/null || true
  for _ in $(seq 100); do  # 10 s for a graceful stop, then SIGKILL
    kill -0 "$dev_pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$dev_pid" 2>/dev/null || true
  wait "$dev_pid" 2>/dev/null || true
  dev_pid=""
}
trap 'stop_dev; rm -rf "$work"' EXIT

# A port nothing listens on, for the tour's own endpoint (below the kernel's
# ephemeral range, so that no outgoing connection holds it either).
free_port() {
  local port
  for _ in $(seq 50); do
    port=$((20000 + RANDOM % 12000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  echo "sdk-tour: no free local port found" >&2
  return 1
}
endpoint_port="$(free_port)"

# --port 0: the server picks a free port and prints it in the exports.
"$ratchet" dev "http://127.0.0.1:$endpoint_port" --port 0 --db "$work/ratchet.db" \
  >"$work/dev.out" 2>"$work/dev.err" &
dev_pid=$!
for _ in $(seq 600); do  # up to 60 s: sanitizer builds on a busy machine start slowly
  grep -q DISPATCH_VERIFICATION_KEY "$work/dev.out" && break
  if ! kill -0 "$dev_pid" 2>/dev/null; then
    echo "sdk-tour: ratchet dev exited: $(tail -n 1 "$work/dev.err")" >&2
    exit 1
  fi
  sleep 0.1
done
if ! grep -q DISPATCH_VERIFICATION_KEY "$work/dev.out"; then
  echo "sdk-tour: ratchet dev printed no configuration within 60 s" >&2
  exit 1
fi

bold="" plain=""
if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; fi
printf '%s$ ratchet dev http://127.0.0.1:%s --port 0 --db %s &%s\n' \
  "$bold" "$endpoint_port" "$work/ratchet.db" "$plain"
cat "$work/dev.out"
# shellcheck disable=SC1090  # the export lines ratchet dev printed
# (DISPATCH_ENDPOINT_ADDR among them: where the tour listens)
source <(grep -E '^ *export DISPATCH_[A-Z_]+=' "$work/dev.out")

printf '\n%s$ # the export lines above%s\n' "$bold" "$plain"
printf '%s$ %s%s\n' "$bold" "$(basename "$tour")" "$plain"
status=0
"$tour" || status=$?
if [ "$status" -ne 0 ]; then
  echo "sdk-tour: the tour failed (exit $status); ratchet dev's log:" >&2
  tail -n 20 "$work/dev.err" >&2
fi
exit "$status"
