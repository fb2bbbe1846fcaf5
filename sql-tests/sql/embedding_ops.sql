SELECT '[0,0]'::embedding <-> '[3,4]' AS l2,
       '[1,0]'::embedding <=> '[0,1]' AS cosine,
       '[1,2]'::embedding <#> '[3,4]' AS neg_ip;
SELECT l2_distance('[1,1]', '[2,2]'), cosine_distance('[1,2]', '[2,4]'), inner_product('[1,2]', '[3,4]');
SELECT cosine_distance('[0,0]', '[1,1]') AS zero_vector_is_nan;
SELECT l2_norm('[3,4]'), dims('[1,2,3]'), l2_normalize('[3,4]'), l2_normalize('[0,0]');
SELECT '[1,2]'::embedding + '[3,4]', '[1,2]'::embedding - '[3,4]';

-- avg, also over many rows and in parallel
SELECT avg(e) FROM (VALUES ('[1,2]'::embedding), ('[3,6]'), (NULL)) v(e);
SELECT avg(e) FROM (SELECT '[1]'::embedding WHERE false) v(e);
CREATE TABLE many AS SELECT i, ARRAY[i % 10, i % 7, 1]::embedding AS e FROM generate_series(1, 20000) i;
SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;
EXPLAIN (COSTS OFF) SELECT avg(e) FROM many;
SELECT avg(e) FROM many;
RESET parallel_setup_cost; RESET parallel_tuple_cost; RESET min_parallel_table_scan_size;

-- equality and ordering: DISTINCT, GROUP BY, UNIQUE
SELECT '[1,2]'::embedding = '[1,2]', '[1,2]'::embedding = '[1,2,0]', '[-0]'::embedding = '[0]';
SELECT '[1,2]'::embedding < '[1,3]', '[1,2]'::embedding < '[1,2,0]', '[2]'::embedding > '[1,9]';
SELECT DISTINCT e FROM (VALUES ('[1,2]'::embedding), ('[1,2]'), ('[0,1]')) v(e) ORDER BY e;
SELECT e, count(*) FROM many GROUP BY e ORDER BY count(*) DESC, e LIMIT 3;
CREATE TABLE uniq (e embedding UNIQUE);
INSERT INTO uniq VALUES ('[1,2]');
INSERT INTO uniq VALUES ('[1,2]');

-- nearest neighbours by sequential scan
SELECT i, e <-> '[3,3,1]' AS d FROM many ORDER BY e <-> '[3,3,1]', i LIMIT 3;
SELECT i FROM many ORDER BY e <=> '[1,0,0]', i LIMIT 3;
SELECT i FROM many ORDER BY e <#> '[1,1,1]', i LIMIT 3;
