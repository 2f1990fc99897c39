#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for tests and benchmarks: `scripts/pg-temp.sh start DIR` creates
# it under DIR on a free port (trust auth, listening on 127.0.0.1 and a socket in DIR) and prints
# its URL; `scripts/pg-temp.sh stop DIR` stops it. Runs the server as the `postgres` user when
# started as root (initdb refuses root). Needs Debian's postgresql package.
set -euo pipefail
cmd=${1:?usage: pg-temp.sh start|stop DIR}; dir=${2:?usage: pg-temp.sh start|stop DIR}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$bin" ] || { echo "pg-temp.sh: PostgreSQL is not installed (apt-get install -y postgresql)" >&2; exit 1; }
as_owner() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
case $cmd in
start)
    mkdir -p "$dir"; dir=$(cd "$dir" && pwd)
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    as_owner "$bin/initdb" -D "$dir/cluster" -A trust -U postgres -E UTF8 --no-locale >"$dir/initdb.log" 2>&1
    as_owner "$bin/pg_ctl" -D "$dir/cluster" -l "$dir/server.log" -w \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=on" start >/dev/null
    as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres chat
    echo "postgres://postgres@127.0.0.1:$port/chat"
    ;;
stop)
    [ -d "$dir/cluster" ] && as_owner "$bin/pg_ctl" -D "$dir/cluster" -m fast -w stop >/dev/null 2>&1 || true
    ;;
*) echo "usage: pg-temp.sh start|stop DIR" >&2; exit 2 ;;
esac
