#!/usr/bin/env bash
# Concurrent writers (inserts, updates, deletes), readers (filtered index scans) and VACUUM on one
# synthivf index for a bounded time: no statement may fail, and the index must then pass
# synth_index_check against its table.
source "$(dirname "$0")/lib.bash"
SECONDS_TO_RUN=${SECONDS_TO_RUN:-15}

psql -d postgres -c "DROP DATABASE IF EXISTS idx_conc" -c "CREATE DATABASE idx_conc"
psql -d idx_conc <<'SQL'
CREATE EXTENSION synthsearch;
CREATE TABLE items (id serial PRIMARY KEY, category int, emb embedding(8));
INSERT INTO items (category, emb)
SELECT i % 10, (SELECT array_agg(sin(i * 0.21 + d * 0.9) * 2) FROM generate_series(1, 8) d)::embedding
FROM generate_series(1, 3000) i;
CREATE INDEX items_emb ON items USING synthivf (emb) WITH (lists = 12);
SQL

deadline=$((SECONDS + SECONDS_TO_RUN))
loop() {
    local name=$1 sql=$2 n=0
    while [ $SECONDS -lt $deadline ]; do
        if ! psql -d idx_conc -c "$sql" >/dev/null 2>>"$work/$name.err"; then
            echo "$name failed" >>"$work/failures"
            return
        fi
        n=$((n + 1))
    done
    echo "$n" >"$work/$name.count"
}
pids=()
for w in 1 2 3; do
    loop "writer$w" "INSERT INTO items (category, emb) SELECT g % 10, (SELECT array_agg(cos(g * 0.3 + d * $w)) FROM generate_series(1, 8) d)::embedding FROM generate_series(1, 20) g; UPDATE items SET emb = emb + '[0.01,0,0,0,0,0,0,0]' WHERE id IN (SELECT id FROM items WHERE category = $w ORDER BY random() LIMIT 3); DELETE FROM items WHERE id IN (SELECT id FROM items WHERE category = $w ORDER BY random() LIMIT 5)" &
    pids+=($!)
done
for r in 1 2; do
    loop "reader$r" "SET enable_seqscan = off; SET synthsearch.nprobe = 2; SELECT count(*) FROM (SELECT id FROM items WHERE category = $r ORDER BY emb <-> '[1,0,1,0,1,0,1,0]' LIMIT 20) s; SELECT count(*) FROM (SELECT id FROM items ORDER BY emb <-> (SELECT emb FROM items ORDER BY id DESC LIMIT 1) LIMIT 5) s" &
    pids+=($!)
done
loop vacuum "VACUUM items" &
pids+=($!)
for p in "${pids[@]}"; do wait "$p"; done

if [ -s "$work/failures" ]; then
    cat "$work/failures" "$work"/*.err >&2
    fail "statements failed under concurrency"
fi
for f in "$work"/*.count; do
    [ "$(cat "$f")" -gt 0 ] || fail "$(basename "$f" .count) made no progress"
done
psql -d idx_conc -c "VACUUM items"
rows=$(psql -d idx_conc -tA -c "SELECT count(*) FROM items")
psql -d idx_conc -tA -c "SELECT live_rows, heap_rows FROM synth_index_check('items_emb', heap => true)" | {
    IFS='|' read -r live heap
    [ "$live" = "$rows" ] && [ "$heap" = "$rows" ] || fail "check: $live indexed, $heap in the heap, $rows rows"
}
# Every row is reachable through the index.
got=$(psql -d idx_conc -tA -c "SET enable_seqscan = off; SELECT count(*) FROM (SELECT id FROM items ORDER BY emb <-> '[0,0,0,0,0,0,0,0]' LIMIT 1000000) s")
[ "$got" = "$rows" ] || fail "index scan returned $got of $rows rows"
psql -d postgres -c "DROP DATABASE idx_conc"
