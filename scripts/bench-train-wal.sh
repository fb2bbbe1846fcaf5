#!/usr/bin/env bash
# What a training job writes to the WAL: the demo's recipe (scripts/demo.sh) trained for
# TRAIN_SECONDS on a generated catalog, once with the default checkpoint_seconds (300) and once with
# checkpoint_seconds 0 (a checkpoint every checkpoint_every = 100 steps, as before the option).
# WAL is pg_wal_lsn_diff over the job, from its submission to its end; checkpoints are the inserts
# and updates of synth_train_checkpoints (the worker's statistics, flushed when it exits).
# Prints a markdown table; BENCHMARKS.md records it.
#   bash scripts/bench-train-wal.sh        (after `make install`)
source "$(dirname "$0")/bench-lib.bash"
BENCH_DIR=$PWD/.synth/bench-wal
BENCH_PORT=${BENCH_PORT:-25353}
PRODUCTS=${PRODUCTS:-2000}
TRAIN_SECONDS=${TRAIN_SECONDS:-360}
THREADS=${THREADS:-2}

bench_cluster "$BENCH_DIR" "$BENCH_PORT" "shared_preload_libraries = 'synthsearch'" "max_wal_size = '4GB'"
"${psql[@]}" -d postgres -c "DROP DATABASE IF EXISTS bench_wal" -c "CREATE DATABASE bench_wal"
"${psql[@]}" -d bench_wal -c "CREATE EXTENSION synthsearch"
bench_catalog bench_wal "$PRODUCTS" 42 products pairs
"${psql[@]}" -d bench_wal <<SQL
CREATE VIEW catalog AS
SELECT id, category, split, img,
       attributes->>'colour' AS colour, attributes->>'material' AS material,
       attributes->>'pattern' AS pattern, attributes->>'sleeve' AS sleeve,
       attributes->>'neckline' AS neckline, attributes->>'hem' AS hem
FROM products;
SQL
q() { "${psql[@]}" -d bench_wal -tA -c "$1"; }

run() {
    local seconds=$1 job lsn t0 before_ckpt
    local stats="SELECT coalesce(sum(n_tup_ins + n_tup_upd), 0) FROM pg_stat_user_tables WHERE relname = 'synth_train_checkpoints'"
    before_ckpt=$(q "$stats")
    lsn=$(q "SELECT pg_current_wal_lsn()")
    t0=$SECONDS
    job=$(q "SELECT synth_train('catalog', NULL, '{\"name\": \"wal_$seconds\", \"threads\": $THREADS, \"image_size\": 32,
        \"attributes\": [\"colour\", \"material\", \"pattern\", \"sleeve\", \"neckline\", \"hem\"],
        \"encoder_steps\": 6000, \"gan_steps\": 3000, \"eval_queries\": 300, \"eval_every\": 0,
        \"checkpoint_seconds\": $seconds, \"max_seconds\": $TRAIN_SECONDS}')")
    until [ "$(q "SELECT state IN ('succeeded', 'failed', 'cancelled') FROM synth_jobs WHERE job = $job")" = t ]; do
        sleep 2
    done
    local took=$((SECONDS - t0))
    [ "$(q "SELECT state FROM synth_jobs WHERE job = $job")" = succeeded ] \
        || { echo "job $job: $(q "SELECT state || ': ' || coalesce(error, '') FROM synth_jobs WHERE job = $job")" >&2; exit 1; }
    # the worker's table statistics reach the shared counters when it exits
    until [ "$(q "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'synthsearch train'")" = 0 ]; do sleep 1; done
    sleep 1
    local wal steps ckpt
    wal=$(q "SELECT round(pg_wal_lsn_diff(pg_current_wal_lsn(), '$lsn') / 1048576.0)")
    steps=$(q "SELECT step FROM synth_jobs WHERE job = $job")
    ckpt=$(( $(q "$stats") - before_ckpt ))
    printf '| %s | %s | %s | %s | %s |\n' "$([ "$seconds" = 0 ] && echo "0 (every 100 steps)" || echo "$seconds")" \
        "$steps" "$took" "$ckpt" "$wal"
}

echo "training ${TRAIN_SECONDS} s (max_seconds), the demo's recipe on $PRODUCTS generated products, $THREADS threads;"
echo "$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), PostgreSQL $PG_MAJOR"
echo
echo "| checkpoint_seconds | steps | seconds, submit to end | checkpoints written | WAL MB |"
echo "|---|---:|---:|---:|---:|"
run 300
run 0
