#!/usr/bin/env bash
# What a DBA looks at besides speed: the building backend's private memory and the index's growth
# under churn, synthivf beside pgvector's IVFFlat when the vector extension is installed.
# - Build memory: CREATE INDEX over ROWS x DIMS vectors (512 dimensions: 2 kB a value, stored
#   TOASTed out of line) with maintenance_work_mem = MWM; the peak of the backend's RssAnon
#   (private memory: palloc and the Rust heap, not shared buffers), sampled every 20 ms from
#   /proc, against its value before the statement, with the extension's library already loaded
#   in the session (LOAD): loading synthsearch's costs a backend about 175 MB of its own
#   (libtorch's relocated data and static registrations) unless shared_preload_libraries loads it
#   once in the postmaster, and that is not the build's. The load is measured too.
# - Churn: ROUNDS rounds of UPDATE of 20% of the rows (new vectors) then VACUUM; the index's size
#   after them over its size after the build.
#   bash scripts/bench-index-memory.sh
#   ROWS=20000 MWM=32MB bash scripts/bench-index-memory.sh
#   PGVECTOR=0 ...                          # ours alone even where pgvector is installed
source "$(dirname "$0")/bench-lib.bash"
export PGOPTIONS="-c client_min_messages=warning"
BENCH_DIR=$PWD/.synth/bench-index
BENCH_PORT=${BENCH_PORT:-25389}
ROWS=${ROWS:-60000}
DIMS=${DIMS:-512}
MWM=${MWM:-64MB}
ROUNDS=${ROUNDS:-3}
LISTS=${LISTS:-$((ROWS / 1000 > 10 ? ROWS / 1000 : 10))}

bench_cluster "$BENCH_DIR" "$BENCH_PORT" "shared_buffers = '1GB'" "max_wal_size = '8GB'" \
    "checkpoint_timeout = '30min'" "jit = off"
"${psql[@]}" -d postgres -tA -c "SELECT 1 FROM pg_database WHERE datname = 'bench'" | grep -q 1 \
    || "${psql[@]}" -d postgres -c "CREATE DATABASE bench"
"${psql[@]}" -d bench -c "DROP EXTENSION IF EXISTS synthsearch CASCADE" -c "CREATE EXTENSION synthsearch"
pgvector=0
if [ "${PGVECTOR:-1}" = 1 ] && [ -n "$("${psql[@]}" -d bench -tA -c "SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")" ]; then
    "${psql[@]}" -d bench -c "CREATE EXTENSION IF NOT EXISTS vector"
    pgvector=1
fi

echo "machine: $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo); PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}')"
[ $pgvector = 1 ] || echo "pgvector is not installed here (or PGVECTOR=0): synthivf alone"

# Rows drawn around 64 centres, so the lists are not all alike; one table per index kind, the same
# values (setseed).
"${psql[@]}" -d bench <<SQL
DROP TABLE IF EXISTS mem_synth, mem_vector;
SELECT setseed(0.42);
CREATE TEMP TABLE centres AS
SELECT c, array_agg(random()::real ORDER BY d) AS a FROM generate_series(0, 63) c, generate_series(1, $DIMS) d GROUP BY c;
CREATE TABLE mem_synth (id int PRIMARY KEY, a real[], emb embedding);
ALTER TABLE mem_synth ALTER COLUMN emb SET STORAGE EXTERNAL;
INSERT INTO mem_synth
SELECT i, v, v::embedding FROM (
    SELECT i, (SELECT array_agg(x + (random()::real - 0.5) * 0.4 ORDER BY o) FROM unnest(c.a) WITH ORDINALITY u(x, o)) AS v
    FROM generate_series(1, $ROWS) i JOIN centres c ON c.c = i % 64) s;
VACUUM ANALYZE mem_synth;
SQL
if [ $pgvector = 1 ]; then
    "${psql[@]}" -d bench -c "CREATE TABLE mem_vector AS SELECT id, a, a::vector($DIMS) AS emb FROM mem_synth" \
        -c "ALTER TABLE mem_vector ADD PRIMARY KEY (id)" -c "ALTER TABLE mem_vector ALTER COLUMN emb SET STORAGE EXTERNAL" \
        -c "UPDATE mem_vector SET emb = emb" -c "VACUUM FULL mem_vector" -c "VACUUM ANALYZE mem_vector"
fi
toast=$("${psql[@]}" -d bench -tA -c "SELECT pg_size_pretty(pg_relation_size(reltoastrelid)) FROM pg_class WHERE relname = 'mem_synth'")

kb() { awk '/^RssAnon/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
# Runs the statement $2 in a session named $1 and prints "baseline_kB peak_kB seconds".
peak_anon() {
    local app=$1 sql=$2 pid="" base peak v start
    start=$(date +%s.%N)
    PGAPPNAME=$app "${psql[@]}" -d bench -c "SET maintenance_work_mem = '$MWM'" -c "SET max_parallel_maintenance_workers = 0" \
        -c "LOAD '$3'" -c "SELECT pg_sleep(0.5)" -c "$sql" >/dev/null &
    local client=$!
    for ((i = 0; i < 100; i++)); do
        pid=$("${psql[@]}" -d bench -tA -c "SELECT pid FROM pg_stat_activity WHERE application_name = '$app' AND query LIKE '%pg_sleep%'")
        [ -n "$pid" ] && break
        sleep 0.02
    done
    sleep 0.3
    base=$(kb "$pid") peak=$base
    while kill -0 "$client" 2>/dev/null; do
        v=$(kb "$pid")
        [ -n "$v" ] && [ "$v" -gt "$peak" ] && peak=$v
        sleep 0.02
    done
    wait "$client"
    echo "$base $peak $(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a - 0.5 }')"
}
size() { "${psql[@]}" -d bench -tA -c "SELECT pg_relation_size('$1')"; }
churn() { # table: ROUNDS rounds of updating 20% of the rows, then VACUUM
    local r
    for ((r = 1; r <= ROUNDS; r++)); do
        "${psql[@]}" -d bench -c "UPDATE $1 SET emb = (SELECT array_agg(x + (random()::real - 0.5) * 0.1 ORDER BY o)
            FROM unnest(a) WITH ORDINALITY u(x, o))::${2} WHERE (id + $r * 7) % 5 = 0" -c "VACUUM $1"
    done
}

echo
echo "$ROWS x $DIMS (TOAST $toast), maintenance_work_mem $MWM, $LISTS lists, $ROUNDS rounds of updating 20% + VACUUM"
echo
echo "| index | build s | backend RssAnon, library loaded | peak during build | peak - before | size after build | after churn | growth |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
row() { # name table index-sql cast library
    local r base peak secs s0 s1
    r=$(peak_anon "mem_$2" "$3" "$5")
    read -r base peak secs <<<"$r"
    s0=$(size "$2_idx")
    churn "$2" "$4"
    s1=$(size "$2_idx")
    awk -v n="$1" -v b="$base" -v p="$peak" -v t="$secs" -v s0="$s0" -v s1="$s1" 'BEGIN {
        printf "| %s | %.1f | %.0f MB | %.0f MB | %.0f MB | %.1f MB | %.1f MB | %.2fx |\n",
            n, t, b / 1024, p / 1024, (p - b) / 1024, s0 / 1048576, s1 / 1048576, s1 / s0 }'
}
row "synthivf (lists $LISTS)" mem_synth "CREATE INDEX mem_synth_idx ON mem_synth USING synthivf (emb embedding_l2_ops) WITH (lists = $LISTS)" embedding synthsearch
if [ $pgvector = 1 ]; then
    row "pgvector IVFFlat (lists $LISTS)" mem_vector "CREATE INDEX mem_vector_idx ON mem_vector USING ivfflat (emb vector_l2_ops) WITH (lists = $LISTS)" "vector($DIMS)" vector
fi
# What loading the library costs a backend that has not (no shared_preload_libraries here).
loaded() {
    PGAPPNAME=mem_load "${psql[@]}" -d bench -c "SELECT pg_sleep(0.6)" -c "LOAD '$1'" -c "SELECT pg_sleep(1.5)" >/dev/null &
    local client=$! pid="" a b
    for ((i = 0; i < 100; i++)); do
        pid=$("${psql[@]}" -d bench -tA -c "SELECT pid FROM pg_stat_activity WHERE application_name = 'mem_load'")
        [ -n "$pid" ] && break
        sleep 0.02
    done
    sleep 0.2
    a=$(kb "$pid")
    sleep 0.9
    b=$(kb "$pid")
    wait "$client"
    awk -v n="$1" -v a="$a" -v b="$b" 'BEGIN { printf "| %s | %.0f MB | %.0f MB |\n", n, a / 1024, b / 1024 }'
}
echo
echo "| LOAD in a fresh backend | RssAnon before | after |"
echo "|---|---:|---:|"
loaded synthsearch
[ $pgvector = 1 ] && loaded vector
true
