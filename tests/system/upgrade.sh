#!/usr/bin/env bash
# A DBA's upgrade: a database made with the 0.1.0 install script (sql/synthsearch--0.1.0.sql, as
# released) and filled with everything a user makes (embedding columns, synthivf indexes with every
# operator class, a btree index, an expression index on synth_encode(img), a synthquery column,
# models made by synth_model_create and by training, a finished and a running training job), then
# the server restarted on the new library and ALTER EXTENSION synthsearch UPDATE. Every answer
# must be the same after it, the running job must resume from its checkpoint, and every object
# must keep working (inserts into the indexes, new models, cancelling the job).
source "$(dirname "$0")/lib.bash"
db=upgrade
q() { psql -d $db -tA -c "$1"; }
fail() {
    echo "upgrade: $*" >&2
    q "SELECT job, state, step, attempts, error FROM synth_jobs" >&2 || true
    exit 1
}
wait_for() {
    local i
    for ((i = 0; i < $2 * 5; i++)); do
        [ "$(q "$1" 2>/dev/null || true)" = t ] && return 0
        sleep 0.2
    done
    return 1
}

old=0.1.0
current=$(psql -d postgres -tA -c "SELECT default_version FROM pg_available_extensions WHERE name = 'synthsearch'")
[ "$current" != "$old" ] || fail "the installed default version is $old: nothing to upgrade to"
preloaded=$(psql -d postgres -tA -c "SHOW shared_preload_libraries")

psql -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
psql -d $db >/dev/null <<SQL
CREATE EXTENSION synthsearch VERSION '$old';
SELECT current_setting('data_directory') || '/synth_upgrade_catalog' AS dir \gset
SELECT * FROM synth_generate_catalog(:'dir', 80, 5, 16);
SELECT * FROM synth_import_fashioniq(:'dir', 'images', 'pairs');
-- the first model is activated: the encoder of the stored embeddings and the indexes
SELECT synth_model_create('upgraded', '{"encoder": {"image_size": 16, "embed_dim": 8, "compose_hidden": 16,
  "text": {"buckets": 256, "dim": 8}}, "generator": {"noise_dim": 4, "width": 8, "cond_dim": 16, "critic_width": 4}}', 3);
CREATE TABLE products AS
SELECT row_number() OVER (ORDER BY id)::int AS id, id AS image, category, img, synth_encode(img) AS emb,
       ARRAY[length(id), ascii(id), 0.5]::embedding(3) AS small
FROM images;
ALTER TABLE products ADD PRIMARY KEY (id);
ALTER TABLE products ADD COLUMN q synthquery;
UPDATE products SET q = synth_query(emb, CASE WHEN id % 2 = 0 THEN 'in black leather' ELSE 'red and shorter' END)
 WHERE id % 10 < 3;
CREATE INDEX products_l2 ON products USING synthivf (emb) WITH (lists = 4);
CREATE INDEX products_cos ON products USING synthivf (emb embedding_cosine_ops) WITH (lists = 4);
CREATE INDEX products_ip ON products USING synthivf (emb embedding_ip_ops) WITH (lists = 4);
CREATE INDEX products_synth ON products USING synthivf (emb embedding_synth_ops) WITH (lists = 4);
CREATE INDEX products_encode ON products USING synthivf (synth_encode(img) embedding_synth_ops) WITH (lists = 4);
CREATE INDEX products_small ON products (small);
SQL

# A finished training job (its model stored, not activated) and one left running.
tiny='"image_size": 16, "embed_dim": 8, "encoder_width": 4, "generator_width": 4, "batch": 8,
      "encoder": {"text": {"buckets": 256, "dim": 8}, "compose_hidden": 16}, "generator": {"cond_dim": 16},
      "eval_queries": 20, "checkpoint_every": 10, "progress_every": 5'
done_job=$(q "SELECT synth_train('images', 'pairs', '{$tiny, \"steps\": 30, \"name\": \"trained\"}')")
wait_for "SELECT state = 'succeeded' FROM synth_jobs WHERE job = $done_job" 300 || fail "job $done_job did not succeed"
run_job=$(q "SELECT synth_train('images', 'pairs', '{$tiny, \"steps\": 100000, \"name\": \"unfinished\"}')")
wait_for "SELECT step >= 20 FROM synth_jobs WHERE job = $run_job" 120 || fail "job $run_job did not start training"

# Everything a user can ask, in one file; the same file before and after the update.
cat >"$work/answers.sql" <<'SQL'
SET enable_seqscan = off;
SET synthsearch.nprobe = 4;
\echo l2 index
SELECT id FROM products ORDER BY emb <-> (SELECT emb FROM products WHERE id = 7) LIMIT 10;
EXPLAIN (COSTS OFF) SELECT id FROM products ORDER BY emb <-> (SELECT emb FROM products WHERE id = 7) LIMIT 10;
\echo cosine index
SELECT id FROM products ORDER BY emb <=> (SELECT emb FROM products WHERE id = 8) LIMIT 10;
\echo inner product index
SELECT id FROM products ORDER BY emb <#> (SELECT emb FROM products WHERE id = 9) LIMIT 10;
\echo synthquery index, stored query
SELECT id FROM products ORDER BY emb <-> (SELECT q FROM products WHERE id = 2) LIMIT 10;
\echo expression index, synth_distance
SELECT id FROM products ORDER BY synth_distance(img, (SELECT q FROM products WHERE id = 1)) LIMIT 10;
EXPLAIN (COSTS OFF) SELECT id FROM products ORDER BY synth_distance(img, (SELECT q FROM products WHERE id = 1)) LIMIT 10;
\echo btree
SELECT id, small FROM products WHERE small > '[1,50,0.5]' ORDER BY small, id LIMIT 5;
RESET enable_seqscan;
\echo values
SELECT md5(string_agg(id || ':' || emb::text || ':' || small::text || ':' || coalesce(q::text, '-'), ',' ORDER BY id)) FROM products;
-- the stored embeddings are still what the active encoder gives (to 1e-5: libtorch's CPU kernels
-- are not bitwise reproducible when a busy machine changes how a convolution is threaded)
SELECT count(*) FILTER (WHERE (synth_encode(img) <-> emb) < 1e-5), count(*) FROM products;
SELECT round((emb <-> q)::numeric, 5), round(synth_distance(img, q)::numeric, 5), synth_query_text(q),
       synth_query_model(q), dims(synth_query_embedding(q))
  FROM products WHERE q IS NOT NULL ORDER BY id LIMIT 5;
SELECT synth_query(emb, 'in black leather')::text = q::text FROM products WHERE id = 2;
SELECT md5(synth_generate(emb, 'in black leather')), md5(synth_generate('in black leather')) FROM products WHERE id = 2;
SELECT dims(avg(emb)), round(l2_norm(avg(emb))::numeric, 5), avg(small)::text FROM products;
SELECT l2_normalize(small)::text, small::real[], ARRAY[1,2,3]::embedding::text FROM products WHERE id = 3;
\echo models and jobs
SELECT id, name, version, encoder_version, generator_version, image_size, dims, active, size_bytes,
       (SELECT md5(string_agg(bytes, ''::bytea ORDER BY part)) FROM synth_model_parts WHERE model = m.id)
  FROM synth_models m ORDER BY id;
SELECT md5(synth_model_export('upgraded')), md5(synth_model_export('trained'));
SELECT job, state, model, total_steps, step, recall IS NOT NULL, error, model_id FROM synth_jobs
 WHERE state IN ('succeeded', 'failed', 'cancelled') ORDER BY job;
SELECT job, model, total_steps FROM synth_jobs WHERE state NOT IN ('succeeded', 'failed', 'cancelled') ORDER BY job;
\echo index checks
SELECT i, c.* FROM unnest(ARRAY['products_l2', 'products_cos', 'products_ip', 'products_synth', 'products_encode']) i,
       synth_index_check(i::regclass, true) c;
SQL
psql -d $db -f "$work/answers.sql" >"$work/before.txt" 2>&1 || { cat "$work/before.txt" >&2; fail "the answers before the update failed"; }

# The new library is installed (scripts/test.sh did); restart the server on it, then update.
as_pg "$PG_BIN/pg_ctl" -D "$REGRESS_DIR/data" -m fast -w stop >/dev/null
as_pg "$PG_BIN/pg_ctl" -D "$REGRESS_DIR/data" -l "$REGRESS_DIR/server.log" -w start >/dev/null
psql -d $db -c "ALTER EXTENSION synthsearch UPDATE"
[ "$(q "SELECT extversion FROM pg_extension WHERE extname = 'synthsearch'")" = "$current" ] || fail "not at version $current after the update"

if [ "$preloaded" = synthsearch ]; then
    # the launcher resumed the running job from its checkpoint, under the new version
    wait_for "SELECT attempts >= 2 AND state = 'running' AND step > 0 FROM synth_jobs WHERE job = $run_job" 120 \
        || fail "job $run_job was not resumed after the restart"
else
    q "SELECT synth_resume()" >/dev/null
fi

psql -d $db -f "$work/answers.sql" >"$work/after.txt" 2>&1 || { cat "$work/after.txt" >&2; fail "the answers after the update failed"; }
diff -u --label "$old" --label "$current" "$work/before.txt" "$work/after.txt" || fail "answers differ after ALTER EXTENSION UPDATE"
grep -q "Index Scan using products_l2" "$work/after.txt" || fail "the l2 query did not use its index"
grep -q "Index Scan using products_encode" "$work/after.txt" || fail "synth_distance did not use the expression index"

# Everything keeps working: writes into every index, a new model, import, cancelling the job.
psql -d $db <<'SQL' >/dev/null
INSERT INTO products (id, image, category, img, emb, small)
SELECT id + 1000, image, category, img, synth_encode(img), small FROM products WHERE id <= 10;
UPDATE products SET q = synth_query(emb, 'in black leather') WHERE id > 1000;
VACUUM products;
SELECT synth_model_import(synth_model_export('upgraded'), 'imported');
SELECT synth_model_create('created-after', '{"encoder": {"image_size": 16, "embed_dim": 8, "compose_hidden": 16,
  "text": {"buckets": 256, "dim": 8}}, "generator": {"noise_dim": 4, "width": 8, "cond_dim": 16, "critic_width": 4}}', 4);
SQL
# VACUUM removes only what no running transaction can still see, and the running job's worker
# writes its progress several times a second: one of those writes may span the UPDATE's commit.
# So VACUUM again until the dead rows are gone (a row that stays in an index is still a failure).
for _ in $(seq 20); do
    [ "$(q "SELECT bool_and(c.live_rows = c.heap_rows AND c.heap_rows = 90)
            FROM unnest(ARRAY['products_l2', 'products_cos', 'products_ip', 'products_synth', 'products_encode']) i,
                 synth_index_check(i::regclass, true) c")" = t ] && break
    sleep 0.5
    q "VACUUM products" >/dev/null
done
for i in products_l2 products_cos products_ip products_synth products_encode; do
    [ "$(q "SELECT live_rows = heap_rows AND heap_rows = 90 FROM synth_index_check('$i', true)")" = t ] || fail "index $i after inserts: $(q "SELECT * FROM synth_index_check('$i')")"
done
[ "$(q "SET enable_seqscan = off; SELECT id FROM products ORDER BY emb <-> (SELECT emb FROM products WHERE id = 1003) LIMIT 1")" = 3 ] \
    || [ "$(q "SET enable_seqscan = off; SELECT id FROM products ORDER BY emb <-> (SELECT emb FROM products WHERE id = 1003) LIMIT 1")" = 1003 ] \
    || fail "a row inserted after the update is not found through the index"
q "SELECT synth_cancel($run_job)" >/dev/null
wait_for "SELECT state = 'cancelled' FROM synth_jobs WHERE job = $run_job" 60 || fail "job $run_job was not cancelled"
psql -d postgres -c "DROP DATABASE $db WITH (FORCE)"
echo "upgrade: $old -> $current: $(grep -c . "$work/after.txt") lines of answers identical"
