#!/usr/bin/env bash
# A local PostgreSQL cluster run as the OS user postgres (the server refuses root).
#   cluster.sh start DIR PORT [CONF...]   initdb if needed, then start; CONF lines go to postgresql.conf
#   cluster.sh stop DIR [MODE]            stop (mode: fast, immediate)
#   cluster.sh status DIR
#   cluster.sh port DIR [DEFAULT]         the port DIR's cluster listens on (DEFAULT before its initdb)
# A cluster never takes another's place: DIR is its own, and when PORT is already taken on this
# machine (another checkout's cluster, another engineer's) a new cluster takes the next free port
# (and says so); `port` tells it, and callers (the Makefile, scripts/test.sh) ask it. An existing
# cluster keeps the port it was made with, and fails to start if something else holds it.
set -euo pipefail
PG_MAJOR=${PG_MAJOR:-15}
PG_BIN=/usr/lib/postgresql/$PG_MAJOR/bin
cmd=$1 dir=$2

as_pg() {
    if [ "$(id -un)" = postgres ]; then "$@"; else sudo -u postgres -- "$@"; fi
}

# True when something accepts connections on localhost:$1.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# The port in DIR's postgresql.conf; nothing when DIR has no cluster yet. A configuration that is
# there but cannot be read is an error that says so (a silent failure here once ended a test run with
# a bare exit status).
conf_port() {
    local conf=$1/data/postgresql.conf
    [ -e "$conf" ] || return 0
    [ -r "$conf" ] || { echo "cluster.sh: cannot read $conf: $(ls -ld "$1/data" "$conf" 2>&1 | tr '\n' ' ')" >&2; return 1; }
    sed -n 's/^port = \([0-9]*\).*/\1/p' "$conf" | tail -n 1
}

case "$cmd" in
start)
    port=$3; shift 3
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    chown postgres: "$dir" 2>/dev/null || true
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        want=$port
        while port_busy "$port"; do port=$((port + 1)); done
        [ "$port" = "$want" ] || echo "cluster.sh: port $want is taken on this machine; $dir uses port $port" >&2
        as_pg "$PG_BIN/initdb" -D "$dir/data" --auth=trust --username=postgres --encoding=UTF8 --no-locale >"$dir/initdb.log"
        {
            echo "port = $port"
            echo "listen_addresses = 'localhost'"
            echo "unix_socket_directories = '$dir'"
            for line in "$@"; do echo "$line"; done
        } | as_pg tee -a "$dir/data/postgresql.conf" >/dev/null
    fi
    if ! as_pg "$PG_BIN/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
        if port_busy "$(conf_port "$dir")"; then
            echo "cluster.sh: port $(conf_port "$dir") of $dir is taken by another server; not starting" >&2
            exit 1
        fi
        as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w start >/dev/null
    fi
    ;;
stop)
    mode=${3:-fast}
    if [ -f "$dir/data/postmaster.pid" ]; then
        as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -m "$mode" -w stop >/dev/null || true
    fi
    ;;
port)
    p=$(conf_port "$dir") || exit 1
    echo "${p:-${3:?no cluster in $dir and no default port}}"
    ;;
status)
    as_pg "$PG_BIN/pg_ctl" -D "$dir/data" status
    ;;
*)
    echo "usage: $0 start|stop|status|port DIR [PORT]" >&2
    exit 2
    ;;
esac
