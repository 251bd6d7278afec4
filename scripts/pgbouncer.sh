#!/usr/bin/env bash
# A PgBouncer in transaction mode in front of a PostgreSQL server, for the test
# of a fleet behind a pooler (which drops LISTEN and session state). As root it
# runs as the `postgres` user (PgBouncer refuses root).
#
# usage: scripts/pgbouncer.sh start DIR POSTGRES_URL   prints the pooled URL (same database)
#        scripts/pgbouncer.sh stop DIR
set -euo pipefail

command="${1:-}"
dir="${2:-}"
if [ -z "$command" ] || [ -z "$dir" ]; then
  echo "usage: $0 start DIR POSTGRES_URL | stop DIR" >&2
  exit 2
fi
if ! command -v pgbouncer >/dev/null; then
  echo "pgbouncer.sh: no pgbouncer (apt-get install pgbouncer)" >&2
  exit 1
fi

source "$(dirname "$0")/pg-common.sh"

start() {
  local upstream="$1"
  # postgres://user@host:port/database
  local rest="${upstream#*://}"
  local user="${rest%%@*}"
  rest="${rest#*@}"
  local hostport="${rest%%/*}"
  local database="${rest#*/}"
  database="${database%%\?*}"
  mkdir -p "$dir"
  give_to_owner "$dir"
  local attempt port
  for attempt in 1 2 3 4 5 6 7 8 9 10; do
    port="$(random_free_port)"
    cat >"$dir/pgbouncer.ini" <<INI
[databases]
* = host=${hostport%%:*} port=${hostport##*:}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $dir/users.txt
pool_mode = transaction
max_client_conn = 500
default_pool_size = 20
ignore_startup_parameters = extra_float_digits
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
INI
    echo "\"$user\" \"\"" >"$dir/users.txt"
    give_to_owner "$dir"/pgbouncer.ini "$dir"/users.txt
    if as_owner pgbouncer -d "$dir/pgbouncer.ini" >/dev/null 2>&1; then
      for _ in $(seq 1 100); do
        if port_taken "$port"; then
          echo "postgres://$user@127.0.0.1:$port/$database?ratchet_pooler=transaction"
          return 0
        fi
        sleep 0.05
      done
    fi
  done
  give_up "pgbouncer.sh: could not start PgBouncer" "$dir/pgbouncer.log"
}

stop() {
  if [ -f "$dir/pgbouncer.pid" ]; then
    kill "$(cat "$dir/pgbouncer.pid")" 2>/dev/null || true
  fi
}

case "$command" in
  start) start "${3:?POSTGRES_URL}" ;;
  stop) stop ;;
  *) echo "usage: $0 start DIR POSTGRES_URL | stop DIR" >&2; exit 2 ;;
esac
