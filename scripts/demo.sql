-- The demo session, part 1: the extension, a generated catalog of products with known attributes,
-- imported from the Fashion-IQ layout it is written in. Run by scripts/demo.sh.
\pset footer off
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS synthsearch;
-- a demo database made by an earlier release is brought to the installed one
ALTER EXTENSION synthsearch UPDATE;
SELECT libtorch_version, device, threads FROM synth_torch_info();

-- The catalog is written by the server, next to its data directory, and imported once.
SELECT NOT EXISTS (SELECT FROM pg_tables WHERE tablename = 'demo_products') AS need_catalog \gset
\if :need_catalog
\echo 'Generating a catalog of' :products 'products and importing it...'
SELECT current_setting('data_directory') || '/../catalog' AS catalog_dir \gset
SELECT * FROM synth_generate_catalog(:'catalog_dir', :products, 42, 64);
SELECT * FROM synth_import_fashioniq(:'catalog_dir', 'demo_products', 'demo_pairs');
\endif
SELECT count(*) AS products, count(*) FILTER (WHERE split = 'train') AS train,
       (SELECT count(*) FROM demo_pairs) AS pairs
FROM demo_products;
\echo 'A few products and their attributes:'
SELECT id, attributes->>'colour' AS colour, attributes->>'pattern' AS pattern, attributes->>'material' AS material,
       attributes->>'sleeve' AS sleeve, attributes->>'neckline' AS neckline, attributes->>'hem' AS hem
FROM demo_products ORDER BY id LIMIT 3;
-- The catalog as a shop has it: attribute columns, no hand-written relative captions. Training forms
-- its pairs from these columns (synth_train(images, NULL, '{"attributes": [...]}')).
CREATE OR REPLACE VIEW demo_catalog AS
SELECT id, category, split, img,
       attributes->>'colour' AS colour, attributes->>'material' AS material,
       attributes->>'pattern' AS pattern, attributes->>'sleeve' AS sleeve,
       attributes->>'neckline' AS neckline, attributes->>'hem' AS hem
FROM demo_products;
