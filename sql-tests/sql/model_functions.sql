-- Model functions against a model with fresh weights (training is tested elsewhere): the
-- plumbing, the synthquery type, planning and errors. Embeddings of an untrained model mean
-- nothing, so only shapes, identities and errors are asserted here.
CREATE OR REPLACE FUNCTION sqlstate_of(query text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE query;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
CREATE TABLE pngs (name text PRIMARY KEY, img bytea);
INSERT INTO pngs VALUES
  ('red', '\x89504e470d0a1a0a0000000d49484452000000080000000808020000004b6d29dc0000001149444154789c633821278715310c2d090090bf4101b29f3e220000000049454e44ae426082'),
  ('black', '\x89504e470d0a1a0a0000000d49484452000000080000000808020000004b6d29dc0000000f49444154789c6310c1011886960400dd130f01a7cf9fd20000000049454e44ae426082'),
  ('bomb', '\x89504e470d0a1a0a0000000d49484452000186a0000186a0080200000027309c9f0000000b49444154789c6360800100000a00017f80745e0000000049454e44ae426082');

-- before any model exists: 55000 and a message that says what to do
SELECT sqlstate_of($$SELECT synth_encode(img) FROM pngs WHERE name = 'red'$$);
SELECT sqlstate_of($$SELECT 'in black leather'::synthquery$$);

SELECT synth_model_create('tiny', '{"encoder": {"image_size": 16, "embed_dim": 8, "compose_hidden": 16,
  "text": {"buckets": 256, "dim": 8}}, "generator": {"noise_dim": 4, "width": 8, "cond_dim": 16, "critic_width": 4}}', 1) AS tiny \gset
SELECT name, version, dims, image_size, active, metrics FROM synth_models;

-- encode: an embedding of the model's dimension, the same for the same image
SELECT dims(synth_encode(img)) FROM pngs WHERE name = 'red';
SELECT synth_encode(a.img) = synth_encode(a.img) AS same, synth_encode(a.img) = synth_encode(b.img) AS same_as_other
FROM pngs a, pngs b WHERE a.name = 'red' AND b.name = 'black';
SELECT round(l2_norm(synth_encode(img))::numeric, 4) AS unit_norm FROM pngs WHERE name = 'red';
-- many images in one call: the embeddings of one call each (up to float rounding: one batched
-- pass), in order; NULL stays NULL
SELECT b[1] <-> synth_encode(r.img) < 1e-5 AS first, b[2] IS NULL AS null_kept, b[3] <-> synth_encode(k.img) < 1e-5 AS third,
       array_length(b, 1) AS n
FROM pngs r, pngs k, LATERAL (SELECT synth_encode_batch(ARRAY[r.img, NULL, k.img]) AS b) s
WHERE r.name = 'red' AND k.name = 'black';
SELECT synth_encode_batch('{}'::bytea[]) = '{}'::embedding[] AS empty, synth_encode_batch(NULL) IS NULL AS strict;
SELECT sqlstate_of($$SELECT synth_encode_batch(ARRAY[img, '\x0102'::bytea]) FROM pngs WHERE name = 'red'$$);
SELECT sqlstate_of($$SELECT synth_encode_batch(array_fill('\x00'::bytea, ARRAY[4097]))$$);
-- a read-only query's model calls assign no transaction id, and run in parallel workers
CREATE TABLE par AS SELECT synth_encode(img) AS emb FROM pngs, generate_series(1, 400) WHERE name IN ('red', 'black');
ANALYZE par;
BEGIN;
SET LOCAL parallel_setup_cost = 0; SET LOCAL parallel_tuple_cost = 0; SET LOCAL min_parallel_table_scan_size = 0;
SET LOCAL max_parallel_workers_per_gather = 2; SET LOCAL parallel_leader_participation = off;
EXPLAIN (COSTS OFF) SELECT count(*) FROM par WHERE dims(synth_query_embedding(synth_query(emb, 'darker'))) > 0;
SELECT count(*) FROM par WHERE dims(synth_query_embedding(synth_query(emb, 'darker'))) > 0;
SELECT pg_current_xact_id_if_assigned() IS NULL AS no_transaction_id;
COMMIT;
DROP TABLE par;

-- synthquery: text only (bare literal), image + text, embedding + text
SELECT synth_query_text('in black leather'::synthquery), synth_query_model('in black leather'::synthquery) = :tiny AS from_tiny,
       dims(synth_query_embedding('in black leather'::synthquery));
SELECT synth_query_text(synth_query(img, 'is red and has short sleeves')) FROM pngs WHERE name = 'black';
SELECT dims(synth_query_embedding(synth_query(synth_encode(img), 'darker'))) FROM pngs WHERE name = 'red';
-- the text form reads back without the GAN, to the same value
SELECT (q::text)::synthquery::text = q::text AS round_trips, q::text LIKE 'synthquery:{"model":%' AS self_contained
FROM (SELECT synth_query(img, 'in black leather') AS q FROM pngs WHERE name = 'red') s;
-- the reference changes the query
SELECT synth_query_embedding(synth_query(a.img, 'darker')) <> synth_query_embedding(synth_query(b.img, 'darker')) AS differs
FROM pngs a, pngs b WHERE a.name = 'red' AND b.name = 'black';

-- synth_generate: a PNG of the model's size
SELECT substring(synth_generate(img, 'in black leather') FROM 1 FOR 8) = '\x89504e470d0a1a0a'::bytea AS is_png FROM pngs WHERE name = 'red';
SELECT substring(synth_generate('in black leather') FROM 1 FOR 8) = '\x89504e470d0a1a0a'::bytea AS text_only_is_png;
SELECT sqlstate_of($$SELECT synth_generate('')$$);

-- distance, and synth_distance inlined into the operator
CREATE TABLE products AS SELECT name, img, synth_encode(img) AS emb FROM pngs WHERE name <> 'bomb';
SELECT name, synth_distance(emb, 'in black leather') = emb <-> 'in black leather'::synthquery AS same FROM products ORDER BY name;
SET plan_cache_mode = force_generic_plan;
PREPARE by_emb(synthquery) AS SELECT name FROM products ORDER BY synth_distance(emb, $1) LIMIT 1;
PREPARE by_img(synthquery) AS SELECT name FROM products ORDER BY synth_distance(img, $1) LIMIT 1;
EXPLAIN (COSTS OFF, VERBOSE) EXECUTE by_emb('in black leather');
EXPLAIN (COSTS OFF, VERBOSE) EXECUTE by_img('in black leather');
DEALLOCATE by_emb;
DEALLOCATE by_img;
RESET plan_cache_mode;
SELECT count(*) FROM (SELECT name FROM products ORDER BY synth_distance(img, synth_query((SELECT img FROM pngs WHERE name = 'red'), 'darker')) LIMIT 2) s;

-- the index serves both forms (column and expression), answers as the exact order does, and
-- remembers the encoder its embeddings came from
CREATE TEMP TABLE exact AS SELECT array_agg(name ORDER BY emb <-> 'darker'::synthquery) AS names FROM products;
CREATE INDEX products_emb_synth ON products USING synthivf (emb embedding_synth_ops);
CREATE INDEX products_img_synth ON products USING synthivf (synth_encode(img) embedding_synth_ops);
SET enable_seqscan = off;
SET plan_cache_mode = force_generic_plan;
PREPARE by_emb(synthquery) AS SELECT name FROM products ORDER BY synth_distance(emb, $1) LIMIT 1;
PREPARE by_img(synthquery) AS SELECT name FROM products ORDER BY synth_distance(img, $1) LIMIT 1;
EXPLAIN (COSTS OFF) EXECUTE by_emb('darker');
EXPLAIN (COSTS OFF) EXECUTE by_img('darker');
DEALLOCATE by_emb;
DEALLOCATE by_img;
RESET plan_cache_mode;
SELECT array_agg(name) = (SELECT names FROM exact) AS column_index_exact
FROM (SELECT name FROM products ORDER BY synth_distance(emb, 'darker') LIMIT 2) s;
SELECT array_agg(name) = (SELECT names FROM exact) AS expression_index_exact
FROM (SELECT name FROM products ORDER BY synth_distance(img, 'darker') LIMIT 2) s;

-- bad input
SELECT sqlstate_of($$SELECT synth_encode('\x00010203'::bytea)$$);
SELECT sqlstate_of($$SELECT synth_encode(''::bytea)$$);
SELECT sqlstate_of($$SELECT synth_encode(substring(img FROM 1 FOR 40)) FROM pngs WHERE name = 'red'$$);
SELECT sqlstate_of($$SELECT synth_encode(img) FROM pngs WHERE name = 'bomb'$$);
SELECT sqlstate_of($$SELECT ''::synthquery$$);
SELECT sqlstate_of($$SELECT '   '::synthquery$$);
SELECT sqlstate_of(format('SELECT %L::synthquery', repeat('long ', 300)));
SELECT sqlstate_of($$SELECT synth_query(img, 'darker', 'no_such_model') FROM pngs WHERE name = 'red'$$);
SELECT sqlstate_of($$SELECT synth_encode(img, 'tiny:7') FROM pngs WHERE name = 'red'$$);
SELECT sqlstate_of($$SELECT synth_query('[1,2,3]'::embedding, 'darker')$$);
SELECT sqlstate_of($$SELECT '[1,2,3]'::embedding <-> 'darker'::synthquery$$);
SELECT sqlstate_of($$SELECT 'synthquery:{"model":1}'::synthquery$$);
SELECT sqlstate_of($$SELECT 'synthquery:{"model":1,"encoder":"e","generator":"g","text":"t","reference":false,"embedding":[]}'::synthquery$$);
SELECT synth_encode(NULL), synth_query(NULL::bytea, 'x'), synth_query(img, NULL) FROM pngs WHERE name = 'red';

-- registry: export and import, versions, activation rules, drop
SELECT synth_model_import(synth_model_export('tiny'), 'tiny') AS tiny2 \gset
SELECT name, version, active FROM synth_models ORDER BY id;
SELECT encoder_version = (SELECT encoder_version FROM synth_models WHERE id = :tiny) AS same_encoder FROM synth_models WHERE id = :tiny2;
SELECT synth_model_activate(:tiny2);
SELECT synth_model_create('other', '{"encoder": {"image_size": 16, "embed_dim": 8, "compose_hidden": 16,
  "text": {"buckets": 256, "dim": 8}}, "generator": {"noise_dim": 4, "width": 8, "cond_dim": 16, "critic_width": 4}}', 2) AS other \gset
SELECT regexp_replace(sqlstate_of(format('SELECT synth_model_activate(%s)', :other)), 'enc-[0-9a-f]+', 'enc-...', 'g');
SELECT sqlstate_of(format('SELECT synth_model_drop(%s)', :tiny2));
-- forced onto another encoder, the indexes refuse its queries until rebuilt
SELECT synth_model_activate(:other, true);
SELECT regexp_replace(sqlstate_of($$SELECT name FROM products ORDER BY synth_distance(emb, 'darker') LIMIT 1$$), '[0-9]{8,}', 'N', 'g');
SELECT synth_model_activate(:tiny2, true);
SELECT count(*) FROM (SELECT name FROM products ORDER BY synth_distance(emb, 'darker') LIMIT 1) s;
RESET enable_seqscan;
SELECT synth_model_drop(:tiny);
SELECT sqlstate_of($$SELECT synth_model_import('\x0102'::bytea)$$);
SELECT sqlstate_of($$SELECT synth_model_create('bad', '{"encoder": {"image_size": 17}}')$$);
SELECT sqlstate_of($$SELECT synth_model_create('bad', '{"colour": 1}')$$);

-- a plain role reads the registry and runs queries, but cannot change it
CREATE ROLE synth_shopper;
GRANT SELECT ON products TO synth_shopper;
SET ROLE synth_shopper;
SELECT count(*) > 0 AS reads FROM synth_models;
SELECT count(*) FROM (SELECT name FROM products ORDER BY synth_distance(emb, 'in black leather') LIMIT 1) s;
SELECT sqlstate_of(format('SELECT synth_model_activate(%s, true)', :other));
SELECT sqlstate_of($$SELECT synth_model_export()$$);
SELECT sqlstate_of($$DELETE FROM synth_models$$);
RESET ROLE;
DROP TABLE products;
DROP ROLE synth_shopper;
