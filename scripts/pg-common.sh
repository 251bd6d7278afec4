# What scripts/pg-cluster.sh and scripts/pgbouncer.sh share (sourced).

# Runs a command as the owner of the servers: PostgreSQL and PgBouncer refuse
# root, so as root it runs as the `postgres` user.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# Makes DIR (and what follows it) the owner's.
give_to_owner() {
  if [ "$(id -u)" -eq 0 ]; then chown postgres: "$@"; fi
}

# True when something listens on 127.0.0.1:PORT.
port_taken() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# A port nobody listens on now, from 20000-39999 (the caller retries if it is
# taken by the time it binds).
random_free_port() {
  local port
  while true; do
    port=$((20000 + RANDOM % 20000))
    if ! port_taken "$port"; then
      echo "$port"
      return
    fi
  done
}

# Prints the last lines of LOG under MESSAGE on stderr, and exits 1.
give_up() {
  echo "$1; its log:" >&2
  tail -n 20 "$2" >&2 || true
  exit 1
}
