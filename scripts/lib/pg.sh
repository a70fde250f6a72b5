# Sourced by scripts/test and scripts/bench: a private PostgreSQL server on 127.0.0.1, data under
# /tmp, for the length of the calling script. Installs Debian `postgresql` when missing.
#
#   pg_start      starts it; sets PG_BIN, PG_DIR, PG_PORT and PG_URL (database `postgres`) and
#                 stops and removes it when the calling script exits
#   as_pg CMD…    runs a PostgreSQL tool as its owner (PostgreSQL refuses to run as root)

if [ "$(id -u)" = 0 ]; then
  as_pg() { runuser -u postgres -- "$@"; }
  export ZYGO_TEST_PG_USER=postgres
else
  as_pg() { "$@"; }
fi

pg_stop() {
  [ -n "${PG_DIR:-}" ] || return 0
  as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$PG_DIR"
  PG_DIR=
}

pg_start() {
  if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null
    else
      sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null
    fi
  fi
  PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  PG_DIR=$(mktemp -d /tmp/zygo-pg.XXXXXX)
  [ "$(id -u)" = 0 ] && chown postgres: "$PG_DIR"
  trap pg_stop EXIT
  as_pg "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres -A trust --no-sync >/dev/null
  # A non-default port that is free: try a few from a random start (other runs may hold some).
  PG_PORT=
  local attempt port
  for attempt in $(seq 1 20); do
    port=$(( 20000 + (RANDOM % 20000) ))
    if as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -w -t 30 -l "$PG_DIR/server.log" \
         -o "-p $port -c listen_addresses=127.0.0.1 -k $PG_DIR -c fsync=off -c max_connections=400" \
         start >/dev/null 2>&1; then
      PG_PORT=$port
      break
    fi
  done
  if [ -z "$PG_PORT" ]; then
    echo "cannot start PostgreSQL; its log:" >&2
    cat "$PG_DIR/server.log" >&2 || true
    return 1
  fi
  PG_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
  echo "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PG_PORT, data in $PG_DIR"
}
