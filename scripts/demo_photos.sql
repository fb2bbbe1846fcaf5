-- `make demo DEMO_CATALOG=photos`, part 1: the extension in its own database and real product
-- photos (Fashion-MNIST, from Debian's dataset-fashion-mnist, written in the Fashion-IQ layout by
-- `synth photos`) imported once. Run by scripts/demo.sh with -v photos=DIR.
\pset footer off
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS synthsearch;
ALTER EXTENSION synthsearch UPDATE;
SELECT NOT EXISTS (SELECT FROM pg_tables WHERE tablename = 'photo_products') AS need_catalog \gset
\if :need_catalog
\echo 'Importing product photos from' :'photos'
SELECT * FROM synth_import_fashioniq(:'photos', 'photo_products', 'photo_pairs');
\endif
SELECT count(*) AS products, count(*) FILTER (WHERE split = 'train') AS train,
       count(*) FILTER (WHERE split = 'test') AS test, (SELECT count(*) FROM photo_pairs) AS pairs
FROM photo_products;
\echo 'The tags a shop would have, read from each photo (kind from its label; tone and pattern from its pixels):'
SELECT attributes->>'kind' AS kind, attributes->>'tone' AS tone, attributes->>'pattern' AS pattern, count(*)
FROM photo_products GROUP BY 1, 2, 3 ORDER BY 4 DESC LIMIT 8;
-- The photos as a shop has them: three columns, no relative captions.
CREATE OR REPLACE VIEW photo_catalog AS
SELECT id, category, split, img, attributes->>'kind' AS kind, attributes->>'tone' AS tone,
       attributes->>'pattern' AS pattern
FROM photo_products;
