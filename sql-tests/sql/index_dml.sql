-- synthivf under inserts, deletes and VACUUM; filtered queries; parameters; UNLOGGED tables.
SELECT setseed(0.5);
CREATE TABLE shop (id int PRIMARY KEY, category text, emb embedding(4));
INSERT INTO shop
SELECT i, (ARRAY['dress', 'shoe', 'bag', 'coat', 'hat', 'belt', 'sock', 'scarf', 'ring', 'tie'])[1 + i % 10],
       ARRAY[random(), random(), random(), random()]::embedding
FROM generate_series(1, 2000) i;
CREATE INDEX shop_emb ON shop USING synthivf (emb) WITH (lists = 40);
SET synthsearch.nprobe = 1;
SET enable_seqscan = off;
SET enable_bitmapscan = off;
CREATE FUNCTION explain_lines(q text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE l text;
BEGIN
    FOR l IN EXECUTE q LOOP RETURN NEXT l; END LOOP;
END $$;
CREATE FUNCTION explain_json(q text) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE j json;
BEGIN
    EXECUTE q INTO j;
    RETURN j::jsonb;
END $$;

-- A filter that keeps one row in ten still gets its full LIMIT, in the index's order.
EXPLAIN (COSTS OFF) SELECT id FROM shop WHERE category = 'hat' ORDER BY emb <-> '[0.5,0.5,0.5,0.5]' LIMIT 10;
SELECT count(*) FROM (SELECT id FROM shop WHERE category = 'hat' ORDER BY emb <-> '[0.5,0.5,0.5,0.5]' LIMIT 10) s;
SELECT count(*) FROM (SELECT id FROM shop WHERE category = 'hat' ORDER BY emb <-> '[0.5,0.5,0.5,0.5]' LIMIT 150) s;
SELECT count(*) FROM (SELECT id FROM shop WHERE category = 'hat' ORDER BY emb <-> '[0.5,0.5,0.5,0.5]' LIMIT 1000) s;
-- A filter that keeps nothing: no rows, and no error.
SELECT count(*) FROM (SELECT id FROM shop WHERE category = 'none' ORDER BY emb <-> '[0.5,0.5,0.5,0.5]' LIMIT 10) s;
-- max_probes bounds the search.
SET synthsearch.max_probes = 2;
SELECT count(*) <= 2000 * 2 / 40 * 3 AS bounded FROM (SELECT id FROM shop WHERE category = 'hat' ORDER BY emb <-> '[0.5,0.5,0.5,0.5]' LIMIT 1000) s;
RESET synthsearch.max_probes;

-- pgvector 0.8's iterative modes. relaxed_order (the default) returns every 'hat' (200), and
-- rows of later rounds may be nearer than rows already returned; strict_order returns rows in
-- distance order, dropping those; off stops after the first list; max_scan_tuples ends the rounds.
SHOW synthsearch.iterative_scan;
CREATE FUNCTION hats(lim int) RETURNS TABLE (n bigint, in_order boolean) LANGUAGE sql AS $$
    SELECT count(*), coalesce(bool_and(d >= prev), true) FROM (
        SELECT d, lag(d) OVER (ORDER BY ord) AS prev FROM (
            SELECT emb <-> '[0.5,0.5,0.5,0.5]' AS d, row_number() OVER () AS ord FROM (
                SELECT emb FROM shop WHERE category = 'hat' ORDER BY emb <-> '[0.5,0.5,0.5,0.5]' LIMIT lim) s) t) u $$;
SELECT * FROM hats(1000);
SET synthsearch.iterative_scan = strict_order;
SELECT n < 200 AS dropped_some, in_order FROM hats(1000);
SET synthsearch.iterative_scan = off;
SELECT n < 20 AS first_list_only, in_order FROM hats(1000);
SET synthsearch.iterative_scan = relaxed_order;
SET synthsearch.max_scan_tuples = 100;
SELECT n BETWEEN 1 AND 30 AS capped FROM hats(1000);
RESET synthsearch.max_scan_tuples;
-- EXPLAIN (ANALYZE) says what the scans did (every list probed: the counts are fixed, but for
-- the rows reranked, which depend on the codes' bounds).
SET synthsearch.nprobe = 40;
SELECT line FROM (SELECT regexp_replace(l, '[0-9]+ rows reranked', 'N rows reranked') AS line FROM explain_lines(
    $$EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT id FROM shop ORDER BY emb <-> '[0.5,0.5,0.5,0.5]' LIMIT 5$$) l) s
WHERE line LIKE 'synthivf%';
SELECT (e -> 1) - 'Synthivf Rows Reranked' AS synthivf, (e -> 1 ->> 'Synthivf Rows Reranked')::int >= 5 AS reranked FROM explain_json(
    $$EXPLAIN (ANALYZE, FORMAT JSON, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT id FROM shop ORDER BY emb <-> '[0.5,0.5,0.5,0.5]' LIMIT 5$$) e;
-- Without ANALYZE nothing ran: no line.
SELECT count(*) FROM explain_lines($$EXPLAIN (COSTS OFF) SELECT id FROM shop ORDER BY emb <-> '[0.5,0.5,0.5,0.5]' LIMIT 5$$) l WHERE l LIKE 'synthivf%';
SET synthsearch.nprobe = 1;

-- The query vector from a parameter, a subquery (InitPlan) and a join's outer row.
SET synthsearch.nprobe = 40;
PREPARE near(embedding) AS SELECT id FROM shop ORDER BY emb <-> $1 LIMIT 3;
EXPLAIN (COSTS OFF) EXECUTE near('[0,0,0,0]');
EXECUTE near('[0,0,0,0]');
CREATE TEMP TABLE got AS SELECT 1 AS k, array_agg(id) AS ids FROM (SELECT id FROM shop ORDER BY emb <-> '[0,0,0,0]' LIMIT 3) s;
SELECT ids = (SELECT array_agg(id) FROM (SELECT id FROM shop ORDER BY (emb <-> '[0,0,0,0]') + 0, id LIMIT 3) e) FROM got;
EXPLAIN (COSTS OFF) SELECT id FROM shop ORDER BY emb <-> (SELECT emb FROM shop WHERE id = 42) LIMIT 3;
SELECT id FROM shop ORDER BY emb <-> (SELECT emb FROM shop WHERE id = 42) LIMIT 1;
SELECT q.id, (SELECT s.id FROM shop s ORDER BY s.emb <-> q.emb LIMIT 1) AS nearest
FROM shop q WHERE q.id IN (5, 6, 7) ORDER BY q.id;
DEALLOCATE near;

-- Inserts after the build are found; wrong dimensions are refused.
INSERT INTO shop VALUES (5001, 'dress', '[9,9,9,9]'), (5002, 'dress', '[9,9,9,9.5]'), (5003, 'dress', NULL);
SELECT id FROM shop ORDER BY emb <-> '[9,9,9,9]' LIMIT 2;
INSERT INTO shop VALUES (5004, 'dress', '[1,2,3]');
SELECT lists, live_rows, heap_rows FROM synth_index_check('shop_emb', heap => true);

-- Deletes and VACUUM: deleted rows leave the index, the rest stay findable.
DELETE FROM shop WHERE id % 3 = 0 OR id = 5001;
VACUUM shop;
SELECT live_rows, dead_vectors, heap_rows FROM synth_index_check('shop_emb', heap => true);
SELECT id FROM shop ORDER BY emb <-> '[9,9,9,9]' LIMIT 1;
SELECT count(*) FROM (SELECT id FROM shop ORDER BY emb <-> '[0.2,0.2,0.2,0.2]' LIMIT 5000) s;
SELECT count(*) FROM shop WHERE emb IS NOT NULL;
-- Updates move a row: the new version is indexed, the old one goes with VACUUM.
UPDATE shop SET emb = '[-5,-5,-5,-5]' WHERE id = 1;
SELECT id FROM shop ORDER BY emb <-> '[-5,-5,-5,-5]' LIMIT 1;
VACUUM shop;
SELECT live_rows, heap_rows FROM synth_index_check('shop_emb', heap => true);
-- REINDEX rebuilds it.
REINDEX INDEX shop_emb;
SELECT lists, live_rows, dead_vectors, heap_rows FROM synth_index_check('shop_emb', heap => true);
-- TRUNCATE leaves an empty, working index.
CREATE TABLE scratch AS SELECT * FROM shop;
CREATE INDEX scratch_emb ON scratch USING synthivf (emb);
TRUNCATE scratch;
SELECT live_rows, heap_rows FROM synth_index_check('scratch_emb', heap => true);
INSERT INTO scratch SELECT * FROM shop WHERE id < 100;
SELECT live_rows, heap_rows FROM synth_index_check('scratch_emb', heap => true);
SELECT count(*) FROM (SELECT id FROM scratch ORDER BY emb <-> '[0,0,0,0]' LIMIT 1000) s;

-- UNLOGGED tables: the index has an init fork.
CREATE UNLOGGED TABLE temp_items (id int, emb embedding(2));
INSERT INTO temp_items SELECT i, ARRAY[i, -i]::embedding FROM generate_series(1, 300) i;
CREATE INDEX temp_items_emb ON temp_items USING synthivf (emb) WITH (lists = 3);
SELECT relpersistence FROM pg_class WHERE relname = 'temp_items_emb';
SELECT pg_relation_size('temp_items_emb', 'init') > 0 AS has_init_fork;
SELECT id FROM temp_items ORDER BY emb <-> '[10,-10]' LIMIT 3;
SELECT lists, live_rows, heap_rows FROM synth_index_check('temp_items_emb', heap => true);
RESET ALL;

-- Each backend caches an index's centroids: a REINDEX over moved data (new centroids, the same
-- number of lists) and a TRUNCATE in the same transaction as new rows are seen at once.
CREATE TABLE moved (id int, emb embedding(2));
INSERT INTO moved SELECT i, CASE WHEN i % 2 = 0 THEN '[100,0]' ELSE '[-100,0]' END::embedding
FROM generate_series(1, 200) i;
CREATE INDEX moved_emb ON moved USING synthivf (emb) WITH (lists = 2);
SET synthsearch.nprobe = 1;
SET synthsearch.max_probes = 1;
SET enable_seqscan = off;
SELECT count(*) FILTER (WHERE emb = '[100,0]') AS near FROM (SELECT emb FROM moved ORDER BY emb <-> '[90,0]' LIMIT 10) s;
UPDATE moved SET emb = CASE WHEN id % 2 = 0 THEN '[0,100]' ELSE '[0,-100]' END::embedding;
REINDEX INDEX moved_emb;
SELECT count(*) FILTER (WHERE emb = '[0,100]') AS near FROM (SELECT emb FROM moved ORDER BY emb <-> '[0,90]' LIMIT 10) s;
BEGIN;
TRUNCATE moved;
INSERT INTO moved SELECT i, CASE WHEN i % 2 = 0 THEN '[7,7]' ELSE '[-7,-7]' END::embedding FROM generate_series(1, 50) i;
SELECT count(*) FILTER (WHERE emb = '[7,7]') AS near FROM (SELECT emb FROM moved ORDER BY emb <-> '[6,6]' LIMIT 10) s;
COMMIT;
DROP TABLE moved;
RESET ALL;

-- synth_index_stats: the lists' counts and whether they have gone stale, as an ordinary role.
CREATE TABLE drift (id int, emb embedding(2));
INSERT INTO drift SELECT i, ARRAY[cos(i), sin(i)]::embedding FROM generate_series(1, 400) i;
CREATE INDEX drift_emb ON drift USING synthivf (emb) WITH (lists = 4);
CREATE ROLE stats_reader;
GRANT SELECT ON drift TO stats_reader;
SET ROLE stats_reader;
SELECT lists, build_rows, live_rows, dead_rows, empty_lists, stale, advice FROM synth_index_stats('drift_emb');
RESET ROLE;
-- Almost four times the rows, far from the trained centroids (one list takes them all): stale.
INSERT INTO drift SELECT i, ARRAY[50 + cos(i), 50 + sin(i)]::embedding FROM generate_series(401, 1600) i;
DELETE FROM drift WHERE id <= 100;
VACUUM drift;
SELECT lists, build_rows, live_rows, dead_rows, largest_list >= 1200 AS one_list_took_them, stale, advice FROM synth_index_stats('drift_emb');
REINDEX INDEX drift_emb;
SELECT lists, build_rows, live_rows, dead_rows, stale, advice FROM synth_index_stats('drift_emb');
-- Built on an empty table: one list trained on nothing, then filled.
TRUNCATE drift;
REINDEX INDEX drift_emb;
INSERT INTO drift SELECT i, ARRAY[cos(i), sin(i)]::embedding FROM generate_series(1, 100) i;
SELECT lists, build_rows, live_rows, stale, advice FROM synth_index_stats('drift_emb');
-- Not a synthivf index, not an index.
CREATE INDEX drift_id ON drift (id);
SELECT sqlstate_of($$SELECT synth_index_stats('drift_id')$$);
SELECT sqlstate_of($$SELECT synth_index_stats('drift')$$);
DROP TABLE drift;
DROP ROLE stats_reader;
