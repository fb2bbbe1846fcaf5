-- Bad options, settings and values are ERRORs with a SQLSTATE; this helper shows both.
CREATE FUNCTION index_sqlstate_of(query text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE query;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
CREATE TABLE e (id int, emb embedding(3), v embedding);
INSERT INTO e VALUES (1, '[1,2,3]', '[1,2]'), (2, '[3,2,1]', '[1,2,3]');

-- reloptions out of range or unknown: 22023
SELECT index_sqlstate_of($$CREATE INDEX ON e USING synthivf (emb) WITH (lists = -1)$$);
SELECT index_sqlstate_of($$CREATE INDEX ON e USING synthivf (emb) WITH (lists = 32769)$$);
SELECT index_sqlstate_of($$CREATE INDEX ON e USING synthivf (emb) WITH (lists = 'many')$$);
SELECT index_sqlstate_of($$CREATE INDEX ON e USING synthivf (emb) WITH (sample_per_list = 1)$$);
SELECT index_sqlstate_of($$CREATE INDEX ON e USING synthivf (emb) WITH (kmeans_iterations = 0)$$);
SELECT index_sqlstate_of($$CREATE INDEX ON e USING synthivf (emb) WITH (kmeans_iterations = 101)$$);
SELECT index_sqlstate_of($$CREATE INDEX ON e USING synthivf (emb) WITH (nprobe = 3)$$);
-- in range: fine
SELECT index_sqlstate_of($$CREATE INDEX e_ok ON e USING synthivf (emb) WITH (lists = 2, sample_per_list = 4, kmeans_iterations = 1)$$);
SELECT reloptions FROM pg_class WHERE relname = 'e_ok';
SELECT index_sqlstate_of($$ALTER INDEX e_ok SET (lists = 0)$$);
SELECT index_sqlstate_of($$ALTER INDEX e_ok SET (lists = 40000)$$);

-- settings out of range: 22023
SELECT index_sqlstate_of($$SET synthsearch.nprobe = 0$$);
SELECT index_sqlstate_of($$SET synthsearch.nprobe = 32769$$);
SELECT index_sqlstate_of($$SET synthsearch.nprobe = 'x'$$);
SELECT index_sqlstate_of($$SET synthsearch.max_probes = -1$$);
SELECT index_sqlstate_of($$SET synthsearch.iterative_scan = sideways$$);
SELECT index_sqlstate_of($$SET synthsearch.max_scan_tuples = -1$$);
SELECT index_sqlstate_of($$SET synthsearch.no_such_knob = 1$$);
SHOW synthsearch.nprobe;
SHOW synthsearch.max_probes;

-- rows of different dimensions in an unconstrained column: 22000
SELECT index_sqlstate_of($$CREATE INDEX ON e USING synthivf (v)$$);
-- a query of the wrong dimensions: 22000
SET enable_seqscan = off;
SELECT index_sqlstate_of($$SELECT id FROM e ORDER BY emb <-> '[1,2]' LIMIT 1$$);
-- an insert of the wrong dimensions into an index on an expression: 22000
CREATE TABLE e2 (v embedding);
INSERT INTO e2 VALUES ('[1,2,3]'), ('[3,2,1]');
CREATE INDEX e2_expr ON e2 USING synthivf (l2_normalize(v)) WITH (lists = 1);
SELECT index_sqlstate_of($$INSERT INTO e2 VALUES ('[1,2]')$$);
SELECT index_sqlstate_of($$INSERT INTO e2 VALUES ('[0,0,1]')$$);
RESET enable_seqscan;
-- too many dimensions for the index: 54000
CREATE TABLE wide (emb embedding(2001));
SELECT index_sqlstate_of($$CREATE INDEX ON wide USING synthivf (emb)$$);
-- two columns: 0A000
SELECT index_sqlstate_of($$CREATE INDEX ON e USING synthivf (emb, v)$$);
-- too little maintenance_work_mem for the lists asked: 54000
CREATE TABLE big_lists (emb embedding(1000));
SET maintenance_work_mem = '1MB';
SELECT index_sqlstate_of($$CREATE INDEX ON big_lists USING synthivf (emb) WITH (lists = 5000)$$);
RESET maintenance_work_mem;
-- k-means on a GPU that is not there: synthsearch.device = cuda is 0A000 (on a machine with a GPU
-- the build runs there instead; either way true)
INSERT INTO big_lists SELECT array_fill(1::real, ARRAY[1000])::embedding FROM generate_series(1, 3);
SELECT cuda_devices > 0 AS has_gpu FROM synth_torch_info() \gset
SET synthsearch.device = cuda;
SELECT :'has_gpu'::boolean
    OR index_sqlstate_of($$CREATE INDEX ON big_lists USING synthivf (emb) WITH (lists = 1)$$) LIKE '0A000:%' AS gpu_or_refused;
RESET synthsearch.device;

-- the check function on something else: 42809
SELECT index_sqlstate_of($$SELECT * FROM synth_index_check('e')$$);
CREATE INDEX e_btree ON e (id);
SELECT index_sqlstate_of($$SELECT * FROM synth_index_check('e_btree')$$);
SELECT index_sqlstate_of($$SELECT * FROM synth_index_check(NULL)$$);
DROP TABLE e, e2, wide, big_lists;
