#!/usr/bin/env bash
# Starts `chat-es serve` on the PostgreSQL store with one database per data directory, so a
# suite that gives every server a fresh {data} also gets a fresh log, and a restart on the same
# {data} finds its log again. usage:
#   CHAT_ES_BIN=... CHAT_ES_POSTGRES_BASE=postgres://user@host:port scripts/serve-on-postgres.sh DATA PORT [serve args...]
set -euo pipefail
data=${1:?data dir}; port=${2:?port}; shift 2
base=${CHAT_ES_POSTGRES_BASE:?set CHAT_ES_POSTGRES_BASE to postgres://user@host:port}
mkdir -p "$data"
db="t_$(cd "$data" && pwd | md5sum | cut -c1-16)"
if ! psql "$base/postgres" -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1; then
    psql "$base/postgres" -qc "CREATE DATABASE $db" >/dev/null 2>&1 || true  # a racing start made it
fi
exec "${CHAT_ES_BIN:?set CHAT_ES_BIN}" serve --data "$data" --port "$port" --postgres "$base/$db" "$@"
