#!/usr/bin/env bash
# Crash safety of synthivf: an immediate shutdown (no checkpoint) while writers insert, then a
# restart; recovery must leave an index that passes synth_index_check against its table and
# answers queries. An UNLOGGED table's index comes back empty (from its init fork) and works.
source "$(dirname "$0")/lib.bash"

psql -d postgres -c "DROP DATABASE IF EXISTS idx_crash" -c "CREATE DATABASE idx_crash"
psql -d idx_crash <<'SQL'
CREATE EXTENSION synthsearch;
CREATE TABLE items (id bigserial PRIMARY KEY, emb embedding(16));
INSERT INTO items (emb)
SELECT (SELECT array_agg(sin(i * 0.37 + d) * 3) FROM generate_series(1, 16) d)::embedding
FROM generate_series(1, 3000) i;
CREATE INDEX items_emb ON items USING synthivf (emb) WITH (lists = 20);
CREATE UNLOGGED TABLE scratch (id int, emb embedding(16));
INSERT INTO scratch SELECT id, emb FROM items;
CREATE INDEX scratch_emb ON scratch USING synthivf (emb) WITH (lists = 5);
-- A checkpoint now, so that recovery replays the inserts below from the WAL alone.
CHECKPOINT;
SQL

# Writers: small transactions of inserts until the server goes away; beside them, updates and
# VACUUMs, so inserts also fill slots VACUUM freed. Every record carries the page images that
# wal_consistency_checking compares after replaying it, in crash recovery too.
export PGOPTIONS="-c wal_consistency_checking=generic"
writer() {
    local w=$1 i=0
    while [ $i -lt 2000 ]; do
        "$PG_BIN/psql" -X -q "${conn[@]}" -d idx_crash -c \
            "INSERT INTO items (emb) SELECT (SELECT array_agg(cos(g * 0.11 + d * $w) * 4) FROM generate_series(1, 16) d)::embedding FROM generate_series(1, 25) g" \
            >/dev/null 2>&1 || return 0
        i=$((i + 1))
    done
}
churn() {
    local i=0
    while [ $i -lt 2000 ]; do
        "$PG_BIN/psql" -X -q "${conn[@]}" -d idx_crash -c \
            "UPDATE items SET emb = emb + '[0.01,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]' WHERE id % 40 = $((i % 40))" \
            -c "VACUUM items" >/dev/null 2>&1 || return 0
        i=$((i + 1))
    done
}
pids=()
for w in 1 2 3; do writer $w & pids+=($!); done
churn & pids+=($!)
sleep 4
before=$(psql -d idx_crash -tA -c "SELECT count(*) FROM items")
bash scripts/cluster.sh stop "$REGRESS_DIR" immediate
for p in "${pids[@]}"; do wait "$p" || true; done
bash scripts/cluster.sh start "$REGRESS_DIR" "$REGRESS_PORT"
for _ in $(seq 1 30); do "$PG_BIN/pg_isready" -q "${conn[@]}" && break; sleep 1; done

after=$(psql -d idx_crash -tA -c "SELECT count(*) FROM items")
[ "$after" -ge "$before" ] || fail "rows lost: $before before the crash, $after after"
[ "$after" -gt 3000 ] || fail "no insert reached the table before the crash ($after rows)"
# Aborted inserts leave dead rows in the heap and the index until VACUUM.
psql -d idx_crash -c "VACUUM items"
psql -d idx_crash -tA -c "SELECT live_rows, heap_rows FROM synth_index_check('items_emb', heap => true)" | {
    IFS='|' read -r live heap
    [ "$live" = "$after" ] && [ "$heap" = "$after" ] || fail "check: $live indexed, $heap in the heap, $after rows"
}
got=$(psql -d idx_crash -tA <<'SQL'
SET enable_seqscan = off;
SET synthsearch.nprobe = 20;
SELECT count(*) FROM (SELECT id FROM items ORDER BY emb <-> (SELECT emb FROM items WHERE id = 17) LIMIT 1000000) s;
SQL
)
[ "$got" = "$after" ] || fail "an index scan of every list returned $got rows of $after"
near=$(psql -d idx_crash -tA -c "SET enable_seqscan = off; SELECT id FROM items ORDER BY emb <-> (SELECT emb FROM items WHERE id = 17) LIMIT 1")
[ "$near" = "17" ] || fail "the nearest row to row 17 is $near"

# The UNLOGGED table is empty after the crash, its index reset from the init fork.
psql -d idx_crash -tA -c "SELECT count(*) FROM scratch" | grep -qx 0 || fail "unlogged table survived the crash"
psql -d idx_crash -c "INSERT INTO scratch SELECT id, emb FROM items WHERE id <= 500"
psql -d idx_crash -tA -c "SELECT live_rows FROM synth_index_check('scratch_emb')" | grep -qx 500 \
    || fail "unlogged index after the crash does not hold the 500 new rows"
near=$(psql -d idx_crash -tA -c "SET enable_seqscan = off; SELECT id FROM scratch ORDER BY emb <-> (SELECT emb FROM items WHERE id = 42) LIMIT 1")
[ "$near" = "42" ] || fail "unlogged index: nearest row to row 42 is $near"
psql -d postgres -c "DROP DATABASE idx_crash"
