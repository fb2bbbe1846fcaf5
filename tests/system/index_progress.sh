#!/usr/bin/env bash
# A synthivf build reports its phases and tuple counts in pg_stat_progress_create_index, and a
# build can be cancelled (no index left behind, the session usable).
source "$(dirname "$0")/lib.bash"

psql -d postgres -c "DROP DATABASE IF EXISTS idx_progress" -c "CREATE DATABASE idx_progress"
psql -d idx_progress <<'SQL'
CREATE EXTENSION synthsearch;
CREATE TABLE items (id int, emb embedding(64));
INSERT INTO items SELECT i, (SELECT array_agg(sin(i * 0.013 * d)) FROM generate_series(1, 64) d)::embedding
FROM generate_series(1, 150000) i;
ANALYZE items;
SQL

# Watch a build from its own database (pg_am, which names the phases, is per database).
psql -d idx_progress -c "SET max_parallel_maintenance_workers = 0; CREATE INDEX items_emb ON items USING synthivf (emb) WITH (lists = 400, kmeans_iterations = 30)" &
build=$!
while kill -0 "$build" 2>/dev/null; do
    psql -d idx_progress -tA -F '|' -c "SELECT phase, tuples_total, tuples_done FROM pg_stat_progress_create_index" >>"$work/progress" || true
    sleep 0.2
done
wait "$build" || fail "the build failed"
# The phases are named (deterministic), and the long one is seen while it runs (the short
# sampling pass can finish between two looks, so it is not required to be seen).
names=$(psql -d idx_progress -tA -c "SELECT string_agg(pg_indexam_progress_phasename(oid, n), ',' ORDER BY n)
    FROM pg_am, generate_series(2, 4) n WHERE amname = 'synthivf'")
[ "$names" = "sampling rows,training lists,loading rows" ] || fail "phase names are \"$names\""
grep -q "^building index: loading rows|" "$work/progress" || { cat "$work/progress" >&2; fail "phase \"loading rows\" never reported"; }
awk -F'|' '$1 == "building index: loading rows" && $3 > 0 && $2 == 150000 { ok = 1 } END { exit !ok }' "$work/progress" \
    || { cat "$work/progress" >&2; fail "loading never reported tuples done out of 150000"; }

# Cancel a build: statement_timeout cancels it like pg_cancel_backend does.
out=$(psql -d idx_progress -c "SET statement_timeout = '1s'; CREATE INDEX items_emb2 ON items USING synthivf (emb) WITH (lists = 2000, kmeans_iterations = 100)" 2>&1 || true)
echo "$out" | grep -q "canceling statement due to statement timeout" || fail "build not cancelled: $out"
psql -d idx_progress -tA -c "SELECT count(*) FROM pg_class WHERE relname = 'items_emb2'" | grep -qx 0 || fail "cancelled index left behind"
psql -d idx_progress -tA -c "SET enable_seqscan = off; SELECT count(*) FROM (SELECT id FROM items ORDER BY emb <-> (SELECT emb FROM items WHERE id = 5) LIMIT 10) s" \
    | grep -qx 10 || fail "queries after the cancelled build"
psql -d postgres -c "DROP DATABASE idx_progress"
