#!/usr/bin/env bash
# A local PostgreSQL cluster run as the OS user postgres (the server refuses root).
#   cluster.sh start DIR PORT [CONF...]   initdb if needed, then start; CONF lines go to postgresql.conf
#   cluster.sh stop DIR [MODE]            stop (mode: fast, immediate)
#   cluster.sh status DIR
set -euo pipefail
PG_MAJOR=${PG_MAJOR:-15}
PG_BIN=/usr/lib/postgresql/$PG_MAJOR/bin
cmd=$1 dir=$2

as_pg() {
    if [ "$(id -un)" = postgres ]; then "$@"; else sudo -u postgres -- "$@"; fi
}

case "$cmd" in
start)
    port=$3; shift 3
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    chown postgres: "$dir" 2>/dev/null || true
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        as_pg "$PG_BIN/initdb" -D "$dir/data" --auth=trust --username=postgres --encoding=UTF8 --no-locale >"$dir/initdb.log"
        {
            echo "port = $port"
            echo "listen_addresses = 'localhost'"
            echo "unix_socket_directories = '$dir'"
            for line in "$@"; do echo "$line"; done
        } | as_pg tee -a "$dir/data/postgresql.conf" >/dev/null
    fi
    if ! as_pg "$PG_BIN/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
        as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w start >/dev/null
    fi
    ;;
stop)
    mode=${3:-fast}
    if [ -f "$dir/data/postmaster.pid" ]; then
        as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -m "$mode" -w stop >/dev/null || true
    fi
    ;;
status)
    as_pg "$PG_BIN/pg_ctl" -D "$dir/data" status
    ;;
*)
    echo "usage: $0 start|stop|status DIR [PORT]" >&2
    exit 2
    ;;
esac
