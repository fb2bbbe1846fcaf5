#!/usr/bin/env bash
# `make bench`: the benchmarks of the embedding type (kernels, and ORDER BY ... LIMIT through SQL),
# the index, the model functions through SQL, a training job's WAL, the model server beside the
# in-backend mode and the GAN against PyTorch eager.
# Prints markdown tables; BENCHMARKS.md records them with this command.
source "$(dirname "$0")/bench-lib.bash"
BENCH_DIR=$PWD/.synth/bench
BENCH_PORT=${BENCH_PORT:-25349}
ROWS=${ROWS:-100000}
DIMS=${DIMS:-128}

echo "## distance kernels"
cargo run -q --release -p synthsearch-vector --bin kernel-bench

echo
echo "## ORDER BY emb <-> \$1 LIMIT 10, sequential scan, $ROWS x $DIMS rows"
bench_cluster "$BENCH_DIR" "$BENCH_PORT" "shared_buffers = '512MB'" "max_parallel_workers_per_gather = 0"
"${psql[@]}" -d postgres -tA -c "SELECT 1 FROM pg_database WHERE datname = 'bench'" | grep -q 1 \
    || "${psql[@]}" -d postgres -c "CREATE DATABASE bench"
"${psql[@]}" -d bench <<SQL
DROP EXTENSION IF EXISTS synthsearch CASCADE;
CREATE EXTENSION synthsearch;
DROP TABLE IF EXISTS vecs;
SELECT setseed(0.42);
CREATE TABLE vecs AS
SELECT i AS id, a::embedding AS emb, a AS arr
FROM (SELECT i, array_agg(random()::real) AS a
      FROM generate_series(1, $ROWS) i, generate_series(1, $DIMS) d GROUP BY i) s;
VACUUM ANALYZE vecs;
SQL
q=$("${psql[@]}" -d bench -tA -c "SELECT emb FROM vecs WHERE id = 1")
qa=$("${psql[@]}" -d bench -tA -c "SELECT arr FROM vecs WHERE id = 1")
echo "SELECT id FROM vecs ORDER BY emb <-> '$q' LIMIT 10;" >"$work/ext.sql"
echo "SELECT id FROM vecs ORDER BY (SELECT sum((x - y) * (x - y)) FROM unnest(arr, '$qa'::real[]) u(x, y)) LIMIT 10;" >"$work/plain.sql"
latency() {
    "$PG_BIN/pgbench" -n -h localhost -p "$BENCH_PORT" -U postgres -f "$1" -t "$2" bench 2>/dev/null \
        | awk '/latency average/ {print $4}'
}
ext=$(latency "$work/ext.sql" 30)
plain=$(latency "$work/plain.sql" 3)
echo
echo "| query | ms per query |"
echo "|---|---:|"
echo "| embedding: ORDER BY emb <-> \$1 LIMIT 10 | $ext |"
echo "| plain SQL over real[]: ORDER BY sum((x-y)^2) LIMIT 10 | $plain |"

# The synthivf index access method (1M x 128 and 100k x 512 well separated, then 1M x 128 and
# 100k x 768 overlapping beside pgvector; INDEX_BENCH=0 skips it).
if [ "${INDEX_BENCH:-1}" = 1 ]; then
    echo
    bash scripts/bench-index.sh
    echo
    echo "## The synthivf index on overlapping clusters, beside pgvector where it is installed"
    bash scripts/bench-index-hard.sh
fi

# The model functions through SQL (MODEL_BENCH=0 skips it).
if [ "${MODEL_BENCH:-1}" = 1 ]; then
    echo
    bash scripts/bench-model.sh
fi

# A training job's WAL and checkpoints, checkpoint_seconds beside a checkpoint every 100 steps
# (two jobs of TRAIN_SECONDS, 6 minutes each by default; TRAIN_WAL_BENCH=0 skips it).
if [ "${TRAIN_WAL_BENCH:-1}" = 1 ]; then
    echo
    echo "## What a training job writes to the WAL"
    bash scripts/bench-train-wal.sh
fi

# The model server beside the in-backend mode (SERVER_BENCH=0 skips it).
if [ "${SERVER_BENCH:-1}" = 1 ]; then
    echo
    echo "## The model server beside the in-backend mode"
    bash scripts/bench-server.sh
fi

# synthsearch on Citus beside one node, where Citus is installed (CITUS_BENCH=0 skips it).
if [ "${CITUS_BENCH:-1}" = 1 ]; then
    echo
    echo "## Scaling out with Citus: a distributed table beside one node"
    bash scripts/bench-citus.sh
fi

# The GAN's training steps and generation, tch beside PyTorch eager (GAN_BENCH=0 skips it).
if [ "${GAN_BENCH:-1}" = 1 ]; then
    echo
    echo "## GAN training steps and generation: tch beside PyTorch eager"
    bash scripts/bench-gan.sh
fi
