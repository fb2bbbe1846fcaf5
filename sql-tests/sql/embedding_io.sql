CREATE EXTENSION synthsearch;

-- text form, whitespace tolerated
SELECT '[1,2.5,-3]'::embedding;
SELECT '  [ 1 ,2.5 ,	-3 ]  '::embedding;
SELECT '[1e-3, 1E3, +4, .5, 3.4028235e38]'::embedding;
SELECT '[0.1]'::embedding, '[-0]'::embedding;

-- typmod
CREATE TABLE items (id int PRIMARY KEY, emb embedding(3));
INSERT INTO items VALUES (1, '[1,2,3]'), (2, '[4,5,6]'), (3, NULL);
SELECT * FROM items ORDER BY id;
SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'items'::regclass AND attname = 'emb';
SELECT '[1,2]'::embedding(2);

-- casts to and from arrays
SELECT '{1,2,3}'::real[]::embedding;
SELECT '{1,2,3}'::int[]::embedding;
SELECT '{1.5,2.25}'::double precision[]::embedding;
SELECT '{1.5,2.25}'::numeric[]::embedding;
SELECT '[1,2,3]'::embedding::real[];
SELECT ARRAY[1,2,3]::embedding(3);
INSERT INTO items VALUES (4, ARRAY[7,8,9]);
SELECT emb FROM items WHERE id = 4;

-- storage: 8 bytes of header and 4 a dimension
SELECT pg_column_size('[1,2,3]'::embedding), pg_column_size(array_fill(1, ARRAY[512])::embedding);
SELECT dims(array_fill(1.5, ARRAY[16000])::embedding);

-- binary send/recv through COPY
CREATE TABLE items_copy (LIKE items);
COPY items TO '/tmp/synthsearch_regress_items.bin' (FORMAT binary);
COPY items_copy FROM '/tmp/synthsearch_regress_items.bin' (FORMAT binary);
SELECT a.id, a.emb = b.emb AS same, b.emb FROM items a JOIN items_copy b USING (id) ORDER BY id;

-- NULLs: strict functions return NULL
SELECT NULL::embedding <-> '[1]', l2_norm(NULL), dims(NULL);

-- prepared statements bind embeddings
PREPARE near(embedding) AS SELECT id FROM items ORDER BY emb <-> $1 LIMIT 1;
EXECUTE near('[4,5,7]');
DEALLOCATE near;
