#!/usr/bin/env bash
# The model functions through SQL on this machine's CPU: synth_query latency (p50, p99),
# synth_encode throughput, and ORDER BY synth_distance(...) LIMIT 10 end to end over 10k and 100k
# products (the GAN runs once per query, at parse time, plus the scan). Prints markdown tables.
#   bash scripts/bench-model.sh            (after `make install`; BENCHMARKS.md records the output)
source "$(dirname "$0")/bench-lib.bash"
BENCH_DIR=$PWD/.synth/bench
BENCH_PORT=${BENCH_PORT:-25349}
IMAGES=${IMAGES:-1000}
QUERIES=${QUERIES:-200}

bench_cluster "$BENCH_DIR" "$BENCH_PORT" "shared_buffers = '512MB'" "max_parallel_workers_per_gather = 0"
"${psql[@]}" -d postgres -c "DROP DATABASE IF EXISTS bench_model" -c "CREATE DATABASE bench_model"
"${psql[@]}" -d bench_model -c "CREATE EXTENSION synthsearch" -c "SELECT synth_model_create('bench', '{}', 1)"
bench_catalog bench_model "$IMAGES" 7 bench_images bench_pairs
"${psql[@]}" -d bench_model <<SQL
CREATE TABLE imgs AS SELECT row_number() OVER (ORDER BY id) AS n, img FROM bench_images;
SELECT setseed(0.5);
CREATE TABLE products_10k AS
  SELECT i AS id, l2_normalize(array_agg(random() - 0.5)::embedding) AS emb
  FROM generate_series(1, 10000) i, generate_series(1, (SELECT dims FROM synth_models WHERE active)) d GROUP BY i;
CREATE TABLE products_100k AS
  SELECT i AS id, l2_normalize(array_agg(random() - 0.5)::embedding) AS emb
  FROM generate_series(1, 100000) i, generate_series(1, (SELECT dims FROM synth_models WHERE active)) d GROUP BY i;
VACUUM ANALYZE;
SQL
cfg=$("${psql[@]}" -d bench_model -tA -c "SELECT format('image %s px, %s dims', image_size, dims) FROM synth_models WHERE active")
chmod 755 "$work"
cd "$work"
# Each query gets its own wish text, so no cache answers it: the generator runs every time.
# pgbench substitutes :n inside the literal too, so the planner sees a constant, as in an application.
cat >text.sql <<'Q'
\set n random(1, 1000000000)
SELECT synth_query_model('in black leather :n'::synthquery);
Q
cat >image.sql <<Q
\set n random(1, $IMAGES)
\set w random(1, 1000000000)
SELECT synth_query_model(synth_query(img, 'darker and sleeveless ' || :w)) FROM imgs WHERE n = :n;
Q
cat >encode1.sql <<Q
\set n random(1, $IMAGES)
SELECT dims(synth_encode(img)) FROM imgs WHERE n = :n;
Q
percentiles() {  # pgbench -l log -> "p50 p99" in ms
    # The first transaction of a connection loads the model; it is reported apart.
    awk '$2 > 1 {print $3 / 1000}' pgbench_log.* | sort -n | awk '{v[NR] = $1} END {printf "%.2f %.2f\n", v[int(NR * 0.5 + 0.5)], v[int(NR * 0.99 + 0.5)]}'
}
run() {  # script, transactions -> p50 p99
    rm -f pgbench_log.*
    "$PG_BIN/pgbench" -n -h localhost -p "$BENCH_PORT" -U postgres -f "$1" -t "$2" -l bench_model >pgbench.out || { cat pgbench.out >&2; exit 1; }
    percentiles
}
read -r t50 t99 < <(run text.sql "$QUERIES")
read -r i50 i99 < <(run image.sql "$QUERIES")
read -r e50 e99 < <(run encode1.sql "$QUERIES")
ms() { /usr/bin/time -f %e "${psql[@]}" -d bench_model -c "$1" 2>&1 >/dev/null | tail -1; }
# Warm: the first model call in a backend loads the model; time that apart.
load_s=$(ms "SELECT synth_query_model('warm up'::synthquery)")
set_s=$(/usr/bin/time -f %e "${psql[@]}" -d bench_model -c "SELECT synth_query_model('warm up'::synthquery)" -c "SELECT count(synth_encode(img)) FROM imgs" 2>&1 >/dev/null | tail -1)
set_s=$(awk -v a="$set_s" -v b="$load_s" 'BEGIN {print a - b}')
cat >e2e10k.sql <<'Q'
\set n random(1, 1000000000)
SELECT id FROM products_10k ORDER BY synth_distance(emb, 'in black leather :n') LIMIT 10;
Q
sed 's/products_10k/products_100k/' e2e10k.sql >e2e100k.sql
cat >scan100k.sql <<'Q'
SELECT id FROM products_100k ORDER BY emb <-> (SELECT emb FROM products_100k WHERE id = 1) LIMIT 10;
Q
read -r s10 s10p < <(run e2e10k.sql 50)
read -r s100 s100p < <(run e2e100k.sql 20)
read -r n100 n100p < <(run scan100k.sql 20)
"${psql[@]}" -d bench_model -c "CREATE INDEX ON products_100k USING synthivf (emb embedding_synth_ops)"
read -r x100 x100p < <(run e2e100k.sql 100)
cd "$ROOT"

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
echo "machine: $cpu, $(nproc) cores, CPU only, synthsearch.threads = 1; model: $cfg (untrained weights: timing only)"
echo
echo "| work | p50 ms | p99 ms |"
echo "|---|---:|---:|"
echo "| synth_query, text only (generator + image encoder) | $t50 | $t99 |"
echo "| synth_query, image + text (decode, encode reference, generator, encoder) | $i50 | $i99 |"
echo "| synth_encode, one image per statement | $e50 | $e99 |"
echo "| first model call in a new backend (connect, load weights, libtorch start), whole psql run | $(awk -v s="$load_s" 'BEGIN {printf "%.0f", s * 1000}') | |"
echo
awk -v n="$IMAGES" -v s="$set_s" -v p="$e50" 'BEGIN {
    printf "| synth_encode throughput | images/s |\n|---|---:|\n"
    printf "| one statement over %d images | %.0f |\n", n, n / s
    printf "| one statement per image (p50 latency) | %.0f |\n", 1000 / p }'
echo
echo "| ORDER BY ... LIMIT 10 | p50 ms | p99 ms |"
echo "|---|---:|---:|"
echo "| synth_distance(emb, 'wish'), 10k products (GAN + scan) | $s10 | $s10p |"
echo "| synth_distance(emb, 'wish'), 100k products (GAN + scan) | $s100 | $s100p |"
echo "| emb <-> embedding, 100k products (scan alone, no GAN) | $n100 | $n100p |"
echo "| synth_distance(emb, 'wish'), 100k products, synthivf index (GAN + index scan) | $x100 | $x100p |"
