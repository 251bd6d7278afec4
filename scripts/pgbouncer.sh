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

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

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
  if [ "$(id -u)" -eq 0 ]; then chown postgres: "$dir"; fi
  local attempt port
  for attempt in 1 2 3 4 5 6 7 8 9 10; do
    port=$((20000 + RANDOM % 20000))
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then continue; fi
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
    if [ "$(id -u)" -eq 0 ]; then chown postgres: "$dir"/pgbouncer.ini "$dir"/users.txt; fi
    if as_owner pgbouncer -d "$dir/pgbouncer.ini" >/dev/null 2>&1; then
      for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
          echo "postgres://$user@127.0.0.1:$port/$database?ratchet_pooler=transaction"
          return 0
        fi
        sleep 0.05
      done
    fi
  done
  echo "pgbouncer.sh: could not start PgBouncer; its log:" >&2
  tail -n 20 "$dir/pgbouncer.log" >&2 || true
  exit 1
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
