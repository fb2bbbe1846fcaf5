-- The demo session: the embedding type at work on a small catalog of made-up products.
\pset footer off
CREATE EXTENSION IF NOT EXISTS synthsearch;
SELECT libtorch_version, device, threads FROM synth_torch_info();

DROP TABLE IF EXISTS demo_products;
CREATE TABLE demo_products (id int PRIMARY KEY, name text, emb embedding(3));
INSERT INTO demo_products VALUES
    (1, 'black leather jacket', '[0.9, 0.1, 0.8]'),
    (2, 'black denim jacket',   '[0.9, 0.6, 0.2]'),
    (3, 'red silk dress',       '[0.1, 0.9, 0.1]'),
    (4, 'white cotton shirt',   '[0.0, 0.2, 0.1]'),
    (5, 'brown leather boots',  '[0.6, 0.1, 0.9]');

\echo 'Nearest to a black leather look, by L2 (<->), cosine (<=>) and inner product (<#>):'
SELECT id, name, round((emb <-> '[1, 0, 1]')::numeric, 3) AS l2,
       round((emb <=> '[1, 0, 1]')::numeric, 3) AS cosine,
       round((emb <#> '[1, 0, 1]')::numeric, 3) AS neg_inner
FROM demo_products ORDER BY emb <-> '[1, 0, 1]' LIMIT 3;

\echo 'The centre of the jackets, and each product''s distance to it:'
SELECT avg(emb) AS jacket_centre FROM demo_products WHERE name LIKE '%jacket';
SELECT name, round((emb <-> (SELECT avg(emb) FROM demo_products WHERE name LIKE '%jacket'))::numeric, 3) AS d
FROM demo_products ORDER BY d;
