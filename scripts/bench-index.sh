#!/usr/bin/env bash
# The synthivf index through SQL: seeded clustered vectors (rows/1000 centers drawn N(0,1) per
# dimension, each point a center plus uniform noise of standard deviation 0.5) loaded into a
# table by SQL, then CREATE INDEX time, index size, and
# recall@10 and queries/s from one client (pgbench, 1 connection) at several nprobe settings,
# beside the exact sequential scan. Prints markdown tables; BENCHMARKS.md records them.
#   bash scripts/bench-index.sh                 # 1M x 128 and 100k x 512
#   SETS="100000x128" bash scripts/bench-index.sh
source "$(dirname "$0")/bench-lib.bash"
BENCH_DIR=$PWD/.synth/bench-index
BENCH_PORT=${BENCH_PORT:-25389}
SETS=${SETS:-"1000000x128 100000x512"}
NPROBES=${NPROBES:-"1 2 4 8 16 32"}
QUERIES=${QUERIES:-100}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}

bench_cluster "$BENCH_DIR" "$BENCH_PORT" "shared_buffers = '3GB'" \
    "maintenance_work_mem = '1GB'" "max_parallel_workers_per_gather = 0" "max_wal_size = '8GB'" \
    "checkpoint_timeout = '30min'" "jit = off"
"${psql[@]}" -d postgres -tA -c "SELECT 1 FROM pg_database WHERE datname = 'bench'" | grep -q 1 \
    || "${psql[@]}" -d postgres -c "CREATE DATABASE bench"
"${psql[@]}" -d bench -c "DROP EXTENSION IF EXISTS synthsearch CASCADE" -c "CREATE EXTENSION synthsearch"

now() { date +%s.%N; }
qps() { # file, extra options, seconds
    PGOPTIONS="$2" "$PG_BIN/pgbench" -n -h localhost -p "$BENCH_PORT" -U postgres -c 1 -T "$3" -f "$1" bench 2>/dev/null \
        | awk '/^tps/ {printf "%.0f", $3}'
}

for set in $SETS; do
    rows=${set%x*} dims=${set#*x}
    clusters=$((rows / 1000))
    t=v_${rows}_${dims}
    start=$(now)
    # Two loaders in parallel, each half of the rows; the mixture is fixed by setseed.
    "${psql[@]}" -d bench <<SQL
DROP TABLE IF EXISTS $t, ${t}_centers, ${t}_queries, ${t}_truth;
SELECT setseed(0.42);
CREATE TABLE ${t}_centers AS
SELECT c, array_agg((sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()))::real) AS mu
FROM generate_series(0, $clusters - 1) c, generate_series(1, $dims) d GROUP BY c;
CREATE TABLE $t (id int, emb embedding($dims));
CREATE TABLE ${t}_queries (qid int PRIMARY KEY, emb embedding($dims));
INSERT INTO ${t}_queries
SELECT q, (SELECT array_agg(m + (random() * 2 - 1) * 0.866) FROM unnest(mu) m)::embedding
FROM generate_series(1, $QUERIES) q JOIN ${t}_centers ON c = (q::bigint * 7919) % $clusters;
SQL
    loaders=()
    for part in 0 1; do
        "${psql[@]}" -d bench -c "SELECT setseed(0.$((part + 1))); INSERT INTO $t
            SELECT i, (SELECT array_agg(m + (random() * 2 - 1) * 0.866) FROM unnest(mu) m)::embedding
            FROM generate_series($part * $rows / 2 + 1, ($part + 1) * $rows / 2) i JOIN ${t}_centers ON c = (i::bigint * 104729) % $clusters" &
        loaders+=($!)
    done
    for p in "${loaders[@]}"; do wait "$p"; done
    "${psql[@]}" -d bench -c "VACUUM ANALYZE $t" -c "CHECKPOINT"
    load=$(awk -v a="$start" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }')

    # Exact answers, by sequential scan.
    start=$(now)
    "${psql[@]}" -d bench -c "SET enable_indexscan = off; CREATE TABLE ${t}_truth AS
        SELECT qid, (SELECT array_agg(id) FROM (SELECT id FROM $t ORDER BY emb <-> q.emb LIMIT 10) s) AS ids FROM ${t}_queries q"
    exact_ms=$(awk -v a="$start" -v b="$(now)" -v n="$QUERIES" 'BEGIN { printf "%.0f", (b - a) * 1000 / n }')

    start=$(now)
    "${psql[@]}" -d bench -c "CREATE INDEX ${t}_emb ON $t USING synthivf (emb)"
    build=$(awk -v a="$start" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
    size=$("${psql[@]}" -d bench -tA -c "SELECT pg_size_pretty(pg_relation_size('${t}_emb'))")
    tsize=$("${psql[@]}" -d bench -tA -c "SELECT pg_size_pretty(pg_table_size('$t'))")
    lists=$("${psql[@]}" -d bench -tA -c "SELECT lists FROM synth_index_check('${t}_emb', heap => false)")
    "${psql[@]}" -d bench -c "CHECKPOINT"

    printf '\\set q random(1, %s)\nSELECT id FROM %s ORDER BY emb <-> (SELECT emb FROM %s_queries WHERE qid = :q) LIMIT 10;\n' \
        "$QUERIES" "$t" "$t" >"$work/q.sql"
    echo
    echo "### $rows x $dims ($clusters clusters): load ${load} s, table $tsize"
    echo
    echo "CREATE INDEX ... USING synthivf: **${build} s**, index $size, $lists lists."
    echo
    echo "| search | recall@10 | queries/s (1 client) |"
    echo "|---|---:|---:|"
    eq=$(qps "$work/q.sql" "-c enable_indexscan=off" 5)
    echo "| exact (sequential scan) | 1.000 | $eq |"
    for np in $NPROBES; do
        recall=$("${psql[@]}" -d bench -tA -c "SET synthsearch.nprobe = $np; SELECT round(avg((
            SELECT count(*) FROM unnest(t.ids) x WHERE x = ANY (
                SELECT id FROM $t ORDER BY emb <-> q.emb LIMIT 10)) / 10.0), 3)
            FROM ${t}_queries q JOIN ${t}_truth t USING (qid)")
        echo "| synthivf nprobe = $np | $recall | $(qps "$work/q.sql" "-c synthsearch.nprobe=$np" "$SECONDS_PER_RUN") |"
    done
    echo
    echo "(exact answers for the recall: ${exact_ms} ms a query)"
done
