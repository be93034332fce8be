#!/usr/bin/env bash
# A throwaway PostgreSQL server for the store tests, on 127.0.0.1 and a free port.
#
#   eval "$(bash scripts/ci-postgres.sh)"     # start (or reuse) it; exports LPBOT_TEST_POSTGRES_URL
#   bash scripts/ci-postgres.sh --env-file F  # the same, and write the export line to F
#   bash scripts/ci-postgres.sh --stop        # stop it
#
# Installs Debian's postgresql package when no server binaries are found (needs root), keeps
# its cluster in $LPBOT_PG_DIR (default /tmp/lpbot-ci-postgres), and is idempotent: a second run
# reuses the running server; when none is running it starts a fresh cluster. Trust authentication, local connections only: for tests, never for
# data. Only the export line goes to stdout; on failure the server log goes to stderr.
set -euo pipefail

PG_DIR=${LPBOT_PG_DIR:-/tmp/lpbot-ci-postgres}
DB_NAME=lpbot_test
DB_USER=lpbot
ENV_FILE=
STOP=0
while [ $# -gt 0 ]; do
    case "$1" in
        --env-file) ENV_FILE=$2; shift 2 ;;
        --stop) STOP=1; shift ;;
        *) echo "usage: $0 [--env-file FILE] [--stop]" >&2; exit 2 ;;
    esac
done

DATA=$PG_DIR/data
LOG=$PG_DIR/server.log
PORT_FILE=$PG_DIR/port

find_bin() {
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -n "$dir" ] && [ -x "$dir/pg_ctl" ]; then
        echo "$dir"
    fi
}

BIN=$(find_bin)
if [ "$STOP" = 1 ]; then
    if [ -n "$BIN" ] && [ -f "$DATA/PG_VERSION" ]; then
        as_owner() { if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi; }
        as_owner "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null 2>&1 || true
    fi
    exit 0
fi

if [ -z "$BIN" ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "ci-postgres: PostgreSQL is not installed and this is not root" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends postgresql >/dev/null
    BIN=$(find_bin)
    if [ -z "$BIN" ]; then
        echo "ci-postgres: postgresql installed but no server binaries found" >&2
        exit 1
    fi
fi

# initdb and the server refuse to run as root: run them as the package's postgres user
if [ "$(id -u)" = 0 ]; then
    OWNER=postgres
    as_owner() { (cd / && runuser -u postgres -- "$@"); }
else
    OWNER=$(id -un)
    as_owner() { "$@"; }
fi

mkdir -p "$PG_DIR"
chown "$OWNER" "$PG_DIR"
chmod 700 "$PG_DIR"

fail() {
    echo "ci-postgres: $1" >&2
    [ -f "$LOG" ] && tail -n 40 "$LOG" >&2
    exit 1
}

answers() {
    [ -f "$PORT_FILE" ] && "$BIN/pg_isready" -q -h 127.0.0.1 -p "$(cat "$PORT_FILE")" -t 3
}

if ! answers; then
    # none answers: start a fresh cluster (test data only; nothing to keep from a stopped one)
    if [ -f "$DATA/PG_VERSION" ]; then
        as_owner "$BIN/pg_ctl" -D "$DATA" -m immediate -w -t 10 stop >/dev/null 2>&1 || true
    fi
    rm -rf "$DATA"
    : >"$LOG"
    chown "$OWNER" "$LOG"
    as_owner "$BIN/initdb" -D "$DATA" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 \
        --no-sync >"$PG_DIR/initdb.log" 2>&1 || { cat "$PG_DIR/initdb.log" >&2; exit 1; }
    PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    echo "$PORT" >"$PORT_FILE"
    as_owner "$BIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 start -o \
        "-p $PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
        >/dev/null 2>&1 || fail "the server did not start"
fi
PORT=$(cat "$PORT_FILE")

psql_admin() {
    "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -qtA "$@"
}
for _ in $(seq 1 50); do
    psql_admin -c "SELECT 1" >/dev/null 2>&1 && break
    sleep 0.2
done
psql_admin -c "SELECT 1" >/dev/null 2>&1 || fail "the server does not answer on port $PORT"

if [ -z "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = '$DB_USER'")" ]; then
    psql_admin -c "CREATE ROLE $DB_USER LOGIN CREATEDB" >/dev/null
fi
if [ -z "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'")" ]; then
    psql_admin -c "CREATE DATABASE $DB_NAME OWNER $DB_USER" >/dev/null
fi

LINE="export LPBOT_TEST_POSTGRES_URL=postgresql+psycopg://$DB_USER@127.0.0.1:$PORT/$DB_NAME"
if [ -n "$ENV_FILE" ]; then
    echo "$LINE" >"$ENV_FILE"
fi
echo "$LINE"
