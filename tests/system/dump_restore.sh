#!/usr/bin/env bash
# pg_dump and pg_restore round-trip a table with an embedding column (custom and plain formats).
source "$(dirname "$0")/lib.bash"

for db in dump_src dump_custom dump_plain; do
    psql -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
done
psql -d dump_src <<'SQL'
CREATE EXTENSION synthsearch;
CREATE TABLE products (id int PRIMARY KEY, emb embedding(4), tags embedding);
INSERT INTO products
SELECT i, ARRAY[i, i * 0.5, -i, 1e-7 * i]::embedding(4), CASE WHEN i % 3 = 0 THEN NULL ELSE '[0.1,0.2]'::embedding END
FROM generate_series(1, 500) i;
CREATE INDEX ON products (emb);
-- the model registry travels with the data
SELECT synth_model_create('dumped', '{"encoder": {"image_size": 16, "embed_dim": 8, "compose_hidden": 16,
  "text": {"buckets": 256, "dim": 8}}, "generator": {"noise_dim": 4, "width": 8, "cond_dim": 16, "critic_width": 4}}', 3);
-- a finished job's evaluations travel with it; an unfinished job and its evaluations stay
INSERT INTO synth_train_jobs (id, state, owner, images, options, model_name)
VALUES (1, 'succeeded', 'postgres', 'products', '{}', 'dumped'), (2, 'running', 'postgres', 'products', '{}', 'dumped');
INSERT INTO synth_train_evals (job, step, stage, seconds, losses, recall, preview, preview_wishes)
VALUES (1, 100, 'encoder', 0.5, '{"l1": 1.5}', '{"step": 100, "recall": {"gan": {"10": 0.5}}}', '\x89504e47', '{is red}'),
       (1, 200, 'gan', 0.5, '{"l1": 1.0}', '{"step": 200, "recall": {"gan": {"10": 0.75}}}', NULL, NULL),
       (2, 100, 'encoder', 0.5, '{}', '{}', NULL, NULL);
SQL
"$PG_BIN/pg_dump" "${conn[@]}" -Fc -f "$work/db.dump" dump_src
"$PG_BIN/pg_restore" "${conn[@]}" -d dump_custom "$work/db.dump"
"$PG_BIN/pg_dump" "${conn[@]}" -f "$work/db.sql" dump_src
psql -d dump_plain -f "$work/db.sql" >/dev/null

q="SELECT md5(string_agg(id || ':' || emb::text || ':' || coalesce(tags::text, '-'), ',' ORDER BY id)) FROM products"
src=$(psql -d dump_src -tA -c "$q")
for db in dump_custom dump_plain; do
    got=$(psql -d "$db" -tA -c "$q")
    if [ "$got" != "$src" ]; then
        echo "$db differs from the source after restore" >&2
        exit 1
    fi
    # the registry survived: same model, same weights, still active, and it still runs
    m="SELECT name || ':' || version || ':' || encoder_version || ':' || active || ':' || \
       (SELECT md5(string_agg(bytes, ''::bytea ORDER BY part)) FROM synth_model_parts WHERE model = m.id) FROM synth_models m"
    [ "$(psql -d "$db" -tA -c "$m")" = "$(psql -d dump_src -tA -c "$m")" ] || { echo "$db: model registry differs" >&2; exit 1; }
    psql -d "$db" -tA -c "SELECT dims(synth_query_embedding('in black leather'::synthquery))" | grep -qx 8 \
        || { echo "$db: the restored model does not run" >&2; exit 1; }
    # the finished job's evaluations survived, the unfinished job's did not
    e="SELECT string_agg(job || ':' || step || ':' || stage || ':' || losses::text || ':' || recall::text || ':' || \
       coalesce(encode(preview, 'hex'), '-') || ':' || coalesce(preview_wishes::text, '-'), ',' ORDER BY job, step) FROM synth_train_evals"
    want=$(psql -d dump_src -tA -c "$e WHERE job = 1")
    [ -n "$want" ] && [ "$(psql -d "$db" -tA -c "$e")" = "$want" ] \
        || { echo "$db: evaluations differ: $(psql -d "$db" -tA -c "$e")" >&2; exit 1; }
    # the typmod survived
    t=$(psql -d "$db" -tA -c "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'products'::regclass AND attname = 'emb'")
    [ "$t" = "embedding(4)" ] || { echo "$db: column type is $t" >&2; exit 1; }
done
for db in dump_src dump_custom dump_plain; do
    psql -d postgres -c "DROP DATABASE $db"
done
