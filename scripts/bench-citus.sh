#!/usr/bin/env bash
# synthsearch on Citus beside one node: queries a second and p50 at 1 and 8 clients (pgbench) of
# ORDER BY synth_distance(emb, 'wish') LIMIT 10 and of an embedding query, on the distributed table
# (4 shards on two workers) and on the one-node copy of the same rows, and the build time of both
# indexes. On one machine the three nodes share its cores: this shows Citus's overhead, not a
# speed-up. Needs Citus installed (scripts/citus.sh builds it from its source tarball).
#   bash scripts/bench-citus.sh          (ROWS=100000 SECONDS_PER_RUN=10 by default)
source "$(dirname "$0")/bench-lib.bash"
ROWS=${ROWS:-100000}
SECS=${SECONDS_PER_RUN:-10}
if [ ! -f "$("$PG_BIN/pg_config" --sharedir)/extension/citus.control" ]; then
    echo "bench-citus: skipped: Citus is not installed (bash scripts/citus.sh path/to/citus-13.2.2.tar.gz)"
    exit 0
fi
source scripts/citus-cluster.bash
dir=$ROOT/.synth/bench-citus
trap 'citus_down "$dir"; rm -rf "$work"' EXIT
citus_up "$dir" "${BENCH_PORT:-25381}"
citus_load "$ROWS"
on 0 "SELECT count(*) FROM synth_distribute_models()" >/dev/null
ms() { local s; s=$(date +%s%N); on 0 "$1" >/dev/null; echo $(( ($(date +%s%N) - s) / 1000000 )); }
build_d=$(ms "CREATE INDEX products_emb_idx ON products USING synthivf (emb embedding_synth_ops)")
build_l=$(ms "CREATE INDEX ON local_products USING synthivf (emb embedding_synth_ops)")
cd "$work"
# Each query its own wish (no cache answers it) / its own product's embedding.
cat >text.sql <<'Q'
\set n random(1, 1000000000)
SELECT id FROM TABLE ORDER BY synth_distance(emb, 'in black leather :n') LIMIT 10;
Q
cat >emb.sql <<Q
\set n random(1, $ROWS)
\set w random(1, 1000000000)
WITH q AS MATERIALIZED (SELECT synth_query(emb, 'is red :w') AS q FROM local_products WHERE id = :n)
SELECT id FROM TABLE ORDER BY emb <-> (SELECT q FROM q) LIMIT 10;
Q
run() {  # script table clients -> "q/s p50"
    sed "s/TABLE/$2/" "$1" >q.sql
    rm -f pgbench_log.*
    "$PG_BIN/pgbench" -n -h localhost -p "${citus_ports[0]}" -U postgres -c "$3" -j "$(($3 < 2 ? 1 : 2))" \
        -T "$SECS" -l -f q.sql shop >pgbench.out 2>&1 || { cat pgbench.out >&2; exit 1; }
    local p50
    p50=$(awk '$2 > 1 {print $3 / 1000}' pgbench_log.* | sort -n | awk '{v[NR] = $1} END {printf "%.1f", v[int(NR * 0.5 + 0.5)]}')
    echo "$(awk '/^tps/ {printf "%.0f", $3; exit}' pgbench.out) $p50"
}
cpu=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
echo
echo "Citus $(on 0 "SELECT extversion FROM pg_extension WHERE extname = 'citus'"): a coordinator and two workers on one machine ($(nproc) cores, $cpu),"
echo "$ROWS products of 16 dimensions (200 overlapping clusters), 4 shards; synthivf at its defaults; ${SECS} s per run."
echo
echo "| work | distributed: q/s, p50 ms | one node: q/s, p50 ms |"
echo "|---|---:|---:|"
for s in text emb; do
    for c in 1 8; do
        read -r dq dp < <(run $s.sql products $c)
        read -r lq lp < <(run $s.sql local_products $c)
        what=$([ $s = text ] && echo "synth_distance(emb, 'wish') LIMIT 10 (GAN + scan)" || echo "a product's stored embedding + wish (CTE), LIMIT 10")
        echo "| $what, $c client(s) | $dq, $dp | $lq, $lp |"
    done
done
echo "| index build, ms | $build_d | $build_l |"
cd "$ROOT"
