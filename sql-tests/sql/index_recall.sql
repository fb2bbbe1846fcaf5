-- Recall of synthivf on clustered data (a Gaussian mixture, Box-Muller from a seeded random()),
-- against exact search.
SELECT setseed(0.125);
CREATE TABLE centers AS
SELECT c, array_agg(random() * 4 - 2) AS mu FROM generate_series(1, 40) c, generate_series(1, 16) d GROUP BY c;
CREATE TABLE points (id int PRIMARY KEY, emb embedding(16));
INSERT INTO points
SELECT i, (SELECT array_agg(m + 0.3 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()))
           FROM unnest((SELECT mu FROM centers WHERE c = 1 + i % 40)) m WHERE i > 0)::embedding
FROM generate_series(1, 10000) i;
CREATE INDEX points_emb ON points USING synthivf (emb);
SELECT lists, live_rows, heap_rows FROM synth_index_check('points_emb', heap => true);
CREATE TABLE queries AS SELECT id, emb FROM points WHERE id % 500 = 7;

CREATE FUNCTION recall(k int) RETURNS numeric LANGUAGE sql AS $$
    SELECT round(avg(hits) / k, 2) FROM (
        SELECT q.id, (SELECT count(*) FROM
            (SELECT id FROM points ORDER BY emb <-> q.emb LIMIT k) a
            JOIN (SELECT id FROM points ORDER BY (emb <-> q.emb) + 0 LIMIT k) b USING (id)) AS hits
        FROM queries q) s $$;
SET enable_seqscan = off;
SET synthsearch.nprobe = 1;
SELECT recall(10) >= 0.5 AS nprobe_1;
SET synthsearch.nprobe = 10;
SELECT recall(10) >= 0.95 AS nprobe_10;
SET synthsearch.nprobe = 100;
SELECT recall(10) AS nprobe_100;
RESET ALL;
