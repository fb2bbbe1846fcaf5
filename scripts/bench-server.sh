#!/usr/bin/env bash
# The model server beside the in-backend mode, same model (the default architecture, 64 px) and
# data, on this machine: the first model call of a fresh connection against a warm one, synth_query
# (image + wish) p50 / p99 and queries a second at 1, 8 and 32 clients (pgbench), synth_encode
# images a second in one statement, and the private memory of 32 idle connections that have each
# run one query. Prints a markdown table; BENCHMARKS.md records it.
#   bash scripts/bench-server.sh     (after `make install`; SECONDS_PER_RUN=15 by default)
source "$(dirname "$0")/bench-lib.bash"
BENCH_DIR=$PWD/.synth/bench-server
BENCH_PORT=${BENCH_PORT:-25359}
IMAGES=${IMAGES:-1000}
SECS=${SECONDS_PER_RUN:-15}

bench_cluster "$BENCH_DIR" "$BENCH_PORT" "shared_preload_libraries = 'synthsearch'" \
    "shared_buffers = '256MB'" "max_parallel_workers_per_gather = 0" "max_connections = 120"
"${psql[@]}" -d postgres -c "DROP DATABASE IF EXISTS bench_server" -c "CREATE DATABASE bench_server"
"${psql[@]}" -d bench_server -c "CREATE EXTENSION synthsearch" -c "SELECT synth_model_create('bench', '{}', 1)"
bench_catalog bench_server "$IMAGES" 7 bench_images bench_pairs
"${psql[@]}" -d bench_server <<SQL
CREATE TABLE imgs AS SELECT row_number() OVER (ORDER BY id) AS n, img FROM bench_images;
VACUUM ANALYZE imgs;
SQL
cfg=$("${psql[@]}" -d bench_server -tA -c "SELECT format('%s px, %s dims', image_size, dims) FROM synth_models WHERE active")
chmod 755 "$work"
cd "$work"
# Every query has its own wish text, so no cache answers it: the generator runs every time.
cat >image.sql <<Q
\set n random(1, $IMAGES)
\set w random(1, 1000000000)
SELECT synth_query_model(synth_query(img, 'in black leather ' || :w)) FROM imgs WHERE n = :n;
Q

# pgbench -l logs -> "p50 p99 q/s": each connection's first transaction (in the backend mode it
# loads the model) is left out; q/s counts what completed after every connection had finished its
# first one.
steady() {
    awk '$2 == 1 { t = $5 + $6 / 1e6; if (t > t0) t0 = t; next }
         { lat[++n] = $3 / 1000; end[n] = $5 + $6 / 1e6; if (end[n] > t1) t1 = end[n] }
         END { for (i = 1; i <= n; i++) if (end[i] > t0) k++
               printf "%d %.6f %.6f\n", k, t0, t1
               for (i = 1; i <= n; i++) print lat[i] > "lat.txt" }' pgbench_log.* >span.txt
    read -r k t0 t1 <span.txt
    sort -n lat.txt | awk -v k="$k" -v s="$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')" \
        '{v[NR] = $1} END {printf "%.1f %.1f %.0f\n", v[int(NR * 0.5 + 0.5)], v[int(NR * 0.99 + 0.5)], (s > 0 ? k / s : 0)}'
}
pgb() {  # mode clients -> p50 p99 q/s, and pgbench's own tps (with each connection's first call)
    rm -f pgbench_log.*
    PGOPTIONS="-c synthsearch.mode=$1" "$PG_BIN/pgbench" -n -h localhost -p "$BENCH_PORT" -U postgres \
        -c "$2" -j "$(($2 < 2 ? 1 : 2))" -T "$SECS" -l -f image.sql bench_server >pgbench.out 2>&1 \
        || { cat pgbench.out >&2; exit 1; }
    echo "$(steady) $(awk '/^tps/ {printf "%.0f", $3; exit}' pgbench.out)"
}
# The first model call of a fresh connection and the median of the 5 calls after it, in ms
# (median over 9 connections).
first_call() {
    local i j
    for ((i = 0; i < 9; i++)); do
        { echo '\timing on'; for ((j = 0; j < 6; j++)); do echo "SELECT synth_query_model('call $i $j $RANDOM'::synthquery);"; done; } \
            | PGOPTIONS="-c synthsearch.mode=$1" "${psql[@]}" -d bench_server \
            | awk '/^Time:/ {t[++n] = $2} END {printf "%s ", t[1]; for (k = 2; k <= n; k++) printf "%s\n", t[k] >> "warm.txt"; print ""}' >>first.txt
    done
    echo "$(sort -n first.txt | awk '{v[NR] = $1} END {printf "%.1f", v[int((NR + 1) / 2)]}') $(sort -n warm.txt | awk '{v[NR] = $1} END {printf "%.1f", v[int((NR + 1) / 2)]}')"
    rm -f first.txt warm.txt
}
encode_rate() {  # mode statement -> images/s
    local s
    s=$(PGOPTIONS="-c synthsearch.mode=$1" "${psql[@]}" -d bench_server -c '\timing on' \
        -c "SELECT synth_query_model('warm'::synthquery)" -c "$2" \
        | awk '/^Time:/ {t = $2} END {print t}')
    awk -v ms="$s" -v n="$IMAGES" 'BEGIN {printf "%.0f", n / (ms / 1000)}'
}
# Private memory (kB, Private_Clean + Private_Dirty) of 32 idle connections that ran $2, mean.
private_kb() {
    local i pids total=0 n=0 p kb
    for ((i = 0; i < 32; i++)); do
        PGOPTIONS="-c synthsearch.mode=$1" PGAPPNAME=membench "${psql[@]}" -d bench_server \
            -c "$2" -c "SELECT pg_sleep(30)" >/dev/null 2>&1 &
    done
    for ((i = 0; i < 150; i++)); do
        n=$("${psql[@]}" -d postgres -tA -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'membench' AND query LIKE '%pg_sleep%'")
        [ "$n" = 32 ] && break
        sleep 0.2
    done
    pids=$("${psql[@]}" -d postgres -tA -c "SELECT pid FROM pg_stat_activity WHERE application_name = 'membench'")
    n=0
    for p in $pids; do
        kb=$(awk '/^Private_(Clean|Dirty):/ {s += $2} END {print s + 0}' "/proc/$p/smaps_rollup")
        total=$((total + kb)) n=$((n + 1))
    done
    "${psql[@]}" -d postgres -tA -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'membench'" >/dev/null
    wait
    echo $((total / (n > 0 ? n : 1)))
}

idle=$(private_kb backend "SELECT 1")
declare -A r
# The server holds the model before the first-call runs: the first connection that ever needs a
# model sends it the weights once; a fresh connection later finds it loaded.
"${psql[@]}" -d bench_server -c "SELECT synth_query_model('load'::synthquery)" >/dev/null
# First calls while nothing else runs, then the loads (2 s apart: exiting connections settle).
for mode in backend server; do r[$mode.first]=$(first_call $mode); done
for mode in backend server; do
    for c in 1 8 32; do sleep 2; r[$mode.$c]=$(pgb $mode $c); done
    r[$mode.encode]=$(encode_rate $mode "SELECT count(synth_encode(img)) FROM imgs")
    r[$mode.batch]=$(encode_rate $mode "SELECT count(*) FROM unnest(synth_encode_batch(ARRAY(SELECT img FROM imgs)))")
    sleep 2
    r[$mode.mem]=$(private_kb $mode "SELECT synth_query_model('memory'::synthquery)")
done
server_rss=$("${psql[@]}" -d bench_server -tA -c "SELECT round(resident_bytes / 1048576.0) FROM synth_model_server WHERE server = 0")
batch=$("${psql[@]}" -d bench_server -tA -c "SELECT round(mean_batch::numeric, 1) FROM synth_model_server WHERE server = 0")

cpu=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
echo
echo "Model server beside the in-backend mode: model $cfg (fresh weights: the cost of a forward pass does"
echo "not depend on training), $IMAGES catalog images, ${SECS} s per pgbench run; $(nproc) cores ($cpu), CPU only,"
echo "PostgreSQL $PG_MAJOR. Backends use synthsearch.threads = 1 (the default); the server one libtorch thread per core."
echo
echo "| measure | in-backend | server |"
echo "|---|---:|---:|"
read -r bf bw <<<"${r[backend.first]}"
read -r sf sw <<<"${r[server.first]}"
echo "| first model call in a fresh connection, ms (median of 9) | $bf | $sf |"
echo "| the 5 calls after it, ms (median) | $bw | $sw |"
echo "| first / after | $(awk -v a="$bf" -v b="$bw" 'BEGIN {printf "%.0fx", a / b}') | $(awk -v a="$sf" -v b="$sw" 'BEGIN {printf "%.1fx", a / b}') |"
for c in 1 8 32; do
    read -r b50 b99 bq bt <<<"${r[backend.$c]}"
    read -r s50 s99 sq st <<<"${r[server.$c]}"
    echo "| synth_query, $c client(s): p50 / p99 ms | $b50 / $b99 | $s50 / $s99 |"
    echo "| synth_query, $c client(s): q/s once warm (pgbench tps with each connection's first call) | $bq ($bt) | $sq ($st) |"
done
echo "| synth_encode(img), one statement over $IMAGES images (a call a row): images/s | ${r[backend.encode]} | ${r[server.encode]} |"
echo "| synth_encode_batch(ARRAY(SELECT img ...)), the same images in one call: images/s | ${r[backend.batch]} | ${r[server.batch]} |"
echo "| private memory of an idle connection that ran one query, MB above one that never did ($((idle / 1024)) MB) | $(((r[backend.mem] - idle) / 1024)) | $(((r[server.mem] - idle) / 1024)) |"
echo "| model server resident memory, MB; mean batch over the run | - | $server_rss; $batch |"
cd "$ROOT"
