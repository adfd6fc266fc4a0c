# Sourced by scripts/test: makes sure ASCEND_TEST_DATABASE_URL points at a PostgreSQL
# that answers. It uses the given URL (default: the machine's server on 127.0.0.1:5432);
# where nothing answers there, it starts a throwaway server from the machine's PostgreSQL
# binaries (initdb into a temp dir, a free port) and stops it when the tests end.

export ASCEND_TEST_DATABASE_URL="${ASCEND_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"

pg_answers() {
  psql "$1" -Atqc 'select 1' >/dev/null 2>&1
}

pg_bin_dir() {
  local initdb
  initdb=$(command -v initdb 2>/dev/null || ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1)
  [ -n "$initdb" ] && dirname "$initdb"
}

start_throwaway_postgres() {
  local bin port dir
  bin=$(pg_bin_dir) || { echo "scripts/test: PostgreSQL does not answer at $ASCEND_TEST_DATABASE_URL and no initdb was found (apt-get install postgresql)" >&2; return 1; }
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  dir=$(mktemp -d /tmp/ascend-pg.XXXXXX)
  local run=()
  if [ "$(id -u)" = 0 ]; then
    chown postgres "$dir" 2>/dev/null || { useradd -r postgres && chown postgres "$dir"; }
    run=(runuser -u postgres --)
  fi
  "${run[@]}" "$bin/initdb" -D "$dir/data" -U postgres --auth=trust >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; return 1; }
  "${run[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null || { cat "$dir/server.log" >&2; return 1; }
  ASCEND_THROWAWAY_PG=("${run[@]}" "$bin/pg_ctl" -D "$dir/data" -m fast stop)
  ASCEND_THROWAWAY_PG_DIR=$dir
  export ASCEND_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
  echo "scripts/test: started a throwaway PostgreSQL at $ASCEND_TEST_DATABASE_URL"
}

stop_throwaway_postgres() {
  if [ -n "${ASCEND_THROWAWAY_PG+x}" ]; then
    "${ASCEND_THROWAWAY_PG[@]}" >/dev/null 2>&1 || true
    rm -rf "$ASCEND_THROWAWAY_PG_DIR"
  fi
}

if pg_answers "$ASCEND_TEST_DATABASE_URL"; then
  echo "scripts/test: using PostgreSQL at $ASCEND_TEST_DATABASE_URL"
else
  echo "scripts/test: nothing answers at $ASCEND_TEST_DATABASE_URL; starting a throwaway PostgreSQL"
  start_throwaway_postgres
fi
