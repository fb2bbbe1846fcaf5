-- The synthivf index: build, plans, exact answers with every list probed, operator classes.
SELECT setseed(0.25);
CREATE TABLE ivf_items (id int PRIMARY KEY, category text, emb embedding(8));
INSERT INTO ivf_items
SELECT i, (ARRAY['dress', 'shoe', 'bag', 'coat'])[1 + i % 4],
       (SELECT array_agg(round((random() * 20 - 10)::numeric, 3)) FROM generate_series(1, 8) WHERE i > 0)::embedding
FROM generate_series(1, 3000) i;
INSERT INTO ivf_items VALUES (0, 'dress', NULL);
CREATE INDEX ivf_items_l2 ON ivf_items USING synthivf (emb) WITH (lists = 30);
ANALYZE ivf_items;
SELECT amname FROM pg_am JOIN pg_class ON relam = pg_am.oid WHERE relname = 'ivf_items_l2';
SELECT lists, live_rows, heap_rows, orphan_pages, orphan_vectors FROM synth_index_check('ivf_items_l2', heap => true);

-- The planner picks the index for ORDER BY ... LIMIT when it reads a small share of the lists.
SET synthsearch.nprobe = 3;
EXPLAIN (COSTS OFF) SELECT id FROM ivf_items ORDER BY emb <-> '[1,2,3,4,5,6,7,8]' LIMIT 10;
-- ... and not for what it cannot serve: descending order, another metric, no ORDER BY.
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM ivf_items ORDER BY emb <-> '[1,2,3,4,5,6,7,8]' DESC LIMIT 10;
EXPLAIN (COSTS OFF) SELECT id FROM ivf_items ORDER BY emb <=> '[1,2,3,4,5,6,7,8]' LIMIT 10;
EXPLAIN (COSTS OFF) SELECT count(*) FROM ivf_items WHERE emb <-> '[1,2,3,4,5,6,7,8]' < 5;

-- With every list probed, the index answers exactly as a sequential scan does (the exact
-- answers order by distance + 0, which no index serves).
CREATE FUNCTION exact_ids(q embedding, k int) RETURNS int[] LANGUAGE sql AS $$
    SELECT array_agg(id) FROM (SELECT id FROM ivf_items WHERE emb IS NOT NULL ORDER BY (emb <-> q) + 0, id LIMIT k) s $$;
SET synthsearch.nprobe = 30;
SELECT (SELECT array_agg(id) FROM (SELECT id FROM ivf_items ORDER BY emb <-> q.emb LIMIT 10) s) = exact_ids(q.emb, 10) AS same
FROM ivf_items q WHERE q.id IN (1, 7, 100, 2500);
-- The distances the index orders by are the operator's.
SELECT bool_and(d >= prev) AS ordered, count(*)
FROM (SELECT d, lag(d, 1, 0::float8) OVER () AS prev
      FROM (SELECT emb <-> '[0,0,0,0,0,0,0,0]' AS d FROM ivf_items ORDER BY emb <-> '[0,0,0,0,0,0,0,0]' LIMIT 200) s) t;
-- A LIMIT larger than the table returns every non-NULL row once.
SELECT count(*), count(DISTINCT id) FROM (SELECT id FROM ivf_items ORDER BY emb <-> '[1,1,1,1,1,1,1,1]' LIMIT 5000) s;
-- NULL query (a parameter, so that the planner cannot fold it): the index returns no rows.
SET plan_cache_mode = force_generic_plan;
PREPARE null_query(embedding) AS SELECT id FROM ivf_items ORDER BY emb <-> $1 LIMIT 5;
EXPLAIN (COSTS OFF) EXECUTE null_query(NULL);
EXECUTE null_query(NULL);
DEALLOCATE null_query;
RESET plan_cache_mode;
RESET enable_seqscan;

-- Cosine and inner product operator classes.
CREATE INDEX ivf_items_cos ON ivf_items USING synthivf (emb embedding_cosine_ops) WITH (lists = 10);
CREATE INDEX ivf_items_ip ON ivf_items USING synthivf (emb embedding_ip_ops) WITH (lists = 10);
SET synthsearch.nprobe = 10;
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM ivf_items ORDER BY emb <=> '[1,2,3,4,5,6,7,8]' LIMIT 3;
SELECT array_agg(id) = (SELECT array_agg(id) FROM (SELECT id FROM ivf_items WHERE emb IS NOT NULL ORDER BY (emb <=> '[1,2,3,4,5,6,7,8]') + 0, id LIMIT 10) e) AS same
FROM (SELECT id FROM ivf_items ORDER BY emb <=> '[1,2,3,4,5,6,7,8]' LIMIT 10) s;
EXPLAIN (COSTS OFF) SELECT id FROM ivf_items ORDER BY emb <#> '[1,2,3,4,5,6,7,8]' LIMIT 3;
SELECT array_agg(id) = (SELECT array_agg(id) FROM (SELECT id FROM ivf_items WHERE emb IS NOT NULL ORDER BY (emb <#> '[1,2,3,4,5,6,7,8]') + 0, id LIMIT 10) e) AS same
FROM (SELECT id FROM ivf_items ORDER BY emb <#> '[1,2,3,4,5,6,7,8]' LIMIT 10) s;
RESET enable_seqscan;
DROP INDEX ivf_items_cos, ivf_items_ip;

-- An index on an expression.
CREATE TABLE ivf_docs (id int, arr real[]);
INSERT INTO ivf_docs SELECT i, ARRAY[i % 10, i % 7, i % 3]::real[] FROM generate_series(1, 500) i;
CREATE INDEX ivf_docs_expr ON ivf_docs USING synthivf ((arr::embedding(3))) WITH (lists = 5);
SET enable_seqscan = off;
SET synthsearch.nprobe = 5;
EXPLAIN (COSTS OFF) SELECT id FROM ivf_docs ORDER BY arr::embedding(3) <-> '[1,1,1]' LIMIT 3;
SELECT id, arr::embedding(3) <-> '[1,1,1]' AS d FROM ivf_docs ORDER BY arr::embedding(3) <-> '[1,1,1]', id LIMIT 3;
SELECT lists, live_rows, heap_rows FROM synth_index_check('ivf_docs_expr', heap => true);
RESET enable_seqscan;

-- A column without a typmod on an empty table: the first insert fixes the dimensions.
CREATE TABLE ivf_loose (id int, emb embedding);
CREATE INDEX ivf_loose_idx ON ivf_loose USING synthivf (emb);
SELECT pages, live_rows FROM synth_index_check('ivf_loose_idx');
INSERT INTO ivf_loose VALUES (1, '[1,2]'), (2, '[2,3]'), (3, NULL);
SELECT lists, live_rows, heap_rows FROM synth_index_check('ivf_loose_idx', heap => true);
SET enable_seqscan = off;
SELECT id FROM ivf_loose ORDER BY emb <-> '[2,2]' LIMIT 5;
RESET enable_seqscan;
RESET synthsearch.nprobe;
