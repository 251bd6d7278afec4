#!/usr/bin/env bash
# A private PostgreSQL cluster for tests and benchmarks: Debian's server binaries,
# a data directory of its own, a free port on 127.0.0.1, run as an unprivileged
# user (initdb refuses root: as root it runs as the `postgres` user).
#
# usage: scripts/pg-cluster.sh start DIR [--durable]   prints the URL of its database;
#                                                      a restart keeps its port
#        scripts/pg-cluster.sh stop DIR                 stops it (fast shutdown); idempotent
#        scripts/pg-cluster.sh url DIR                  prints the URL again
#
# Without --durable the cluster does not fsync (a throwaway for tests); with it,
# commits wait for the disk as in production (for benchmarks).
set -euo pipefail

command="${1:-}"
dir="${2:-}"
if [ -z "$command" ] || [ -z "$dir" ]; then
  echo "usage: $0 start|stop|url DIR [--durable]" >&2
  exit 2
fi

bindir=""
for candidate in /usr/lib/postgresql/*/bin; do
  if [ -x "$candidate/initdb" ]; then bindir="$candidate"; fi
done
if [ -z "$bindir" ]; then
  echo "pg-cluster: no PostgreSQL server binaries (apt-get install postgresql)" >&2
  exit 1
fi

source "$(dirname "$0")/pg-common.sh"

print_url() {
  local port
  port="$(cat "$dir/port")"
  echo "postgres://ratchet@127.0.0.1:$port/ratchet"
}

start() {
  local durable="${1:-}"
  mkdir -p "$dir"
  give_to_owner "$dir"
  chmod 0700 "$dir"
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    as_owner "$bindir/initdb" -D "$dir/data" -U ratchet -A trust -E UTF8 --locale C.UTF-8 \
      --no-sync >"$dir/initdb.log" 2>&1 || {
      cat "$dir/initdb.log" >&2
      exit 1
    }
  fi
  local fsync="off"
  if [ "$durable" = "--durable" ]; then fsync="on"; fi
  local attempt port
  for attempt in 1 2 3 4 5 6 7 8 9 10; do
    if [ -f "$dir/port" ]; then
      port="$(cat "$dir/port")"  # a restart: the clients have its URL
    else
      port="$(random_free_port)"
    fi
    # pg_stat_statements: the benchmark counts the statements a call costs.
    if as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=$fsync \
          -c max_connections=200 -c shared_buffers=64MB \
          -c shared_preload_libraries=pg_stat_statements" >/dev/null; then
      if [ ! -f "$dir/port" ]; then
        echo "$port" >"$dir/port"
        as_owner "$bindir/createdb" -h 127.0.0.1 -p "$port" -U ratchet ratchet
      fi
      print_url
      return 0
    fi
    if [ -f "$dir/port" ]; then break; fi
  done
  give_up "pg-cluster: could not start PostgreSQL" "$dir/server.log"
}

stop() {
  if [ -f "$dir/data/postmaster.pid" ]; then
    as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null 2>&1 || true
  fi
}

case "$command" in
  start) start "${3:-}" ;;
  stop) stop ;;
  url) print_url ;;
  *)
    echo "usage: $0 start|stop|url DIR [--durable]" >&2
    exit 2
    ;;
esac
