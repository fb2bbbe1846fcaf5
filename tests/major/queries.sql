-- The same queries on both sides of tests/major/dump_15_to_17.sh; their output must be equal.
\pset footer off
SET synthsearch.nprobe = 16;   -- every list: the index answers exactly, whatever lists the rebuild trained
SET enable_seqscan = off;
SELECT count(*) AS rows, count(emb) AS with_embedding, format_type(atttypid, atttypmod) AS emb_type
FROM products, pg_attribute WHERE attrelid = 'products'::regclass AND attname = 'emb' GROUP BY 3;
-- nearest neighbours of a product, through the index
SELECT string_agg(id::text, ',' ORDER BY rank) AS neighbours_of_7 FROM (
    SELECT id, row_number() OVER () AS rank
    FROM (SELECT id FROM products ORDER BY emb <-> (SELECT emb FROM products WHERE id = 7) LIMIT 10) s) t;
-- the saved searches read back as they were, and rank the catalog the same, through the index
SELECT id, q::text FROM saved_searches ORDER BY id;
SELECT s.id, (SELECT string_agg(p.id::text, ',') FROM (
           SELECT id FROM products ORDER BY emb <-> s.q LIMIT 10) p) AS page
FROM saved_searches s ORDER BY s.id;
-- the registry: the same model, weights and state
SELECT name, version, encoder_version, active,
       (SELECT md5(string_agg(bytes, ''::bytea ORDER BY part)) FROM synth_model_parts WHERE model = m.id) AS weights
FROM synth_models m ORDER BY id;
-- the restored model runs, and gives what the original gave (rounded: the floats of two builds)
SELECT id, (SELECT array_agg(round(x::numeric, 4)) FROM unnest(synth_query_embedding(synth_query(emb, 'is blue'))::real[]) x) AS fresh_query
FROM products WHERE id IN (1, 2) ORDER BY id;
SELECT string_agg(id::text, ',') AS page FROM (
    SELECT id FROM products ORDER BY synth_distance(emb, 'has a zebra pattern') LIMIT 10) s;
