#!/usr/bin/env bash
# Start a throw-away PostgreSQL server on loopback for the store's tests and print its URL.
# Installs Debian's postgresql package if the server binaries are missing (needs root).
set -euo pipefail
PORT="${AUTOMETA_PG_PORT:-54329}"
DIR="${AUTOMETA_PG_DIR:-/tmp/autometa-pg}"
BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$BIN" ] || [ ! -x "$BIN/initdb" ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null && apt-get install -y -qq postgresql >/dev/null
  BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
fi
RUN=()
if [ "$(id -u)" = "0" ]; then RUN=(runuser -u postgres --); fi
if ! "${RUN[@]}" "$BIN/pg_ctl" -D "$DIR" status >/dev/null 2>&1; then
  rm -rf "$DIR"; mkdir -p "$DIR"
  [ "$(id -u)" = "0" ] && chown postgres "$DIR"
  "${RUN[@]}" "$BIN/initdb" -D "$DIR" -A trust -U postgres >/dev/null
  "${RUN[@]}" "$BIN/pg_ctl" -D "$DIR" -l "$DIR/server.log" -w \
    -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
fi
"${RUN[@]}" "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -tAc \
  "SELECT 1 FROM pg_database WHERE datname='autometa_test'" | grep -q 1 \
  || "${RUN[@]}" "$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U postgres autometa_test
echo "postgresql+psycopg://postgres@127.0.0.1:$PORT/autometa_test"
