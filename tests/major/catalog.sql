-- The catalog that moves from PostgreSQL 15 to 17 (tests/major/dump_15_to_17.sh): an embedding
-- column with a synthivf index, stored synthquery values, and a model in the registry.
CREATE EXTENSION synthsearch;
SELECT synth_model_create('moved', '{"encoder": {"image_size": 16, "embed_dim": 8, "compose_hidden": 16,
  "text": {"buckets": 256, "dim": 8}}, "generator": {"noise_dim": 4, "width": 8, "cond_dim": 16, "critic_width": 4}}', 5) IS NOT NULL AS created;
CREATE TABLE products (id int PRIMARY KEY, name text NOT NULL, emb embedding(8));
-- Points on overlapping spirals, so that neighbours are not one list's members only.
INSERT INTO products
SELECT i, 'product ' || i,
       ARRAY[sin(i * 0.37), cos(i * 0.37), sin(i * 0.11) * 0.5, cos(i * 0.07), (i % 7) / 7.0,
             sin(i * 1.3) * 0.2, (i % 13) / 13.0 - 0.5, cos(i * 0.53) * 0.3]::embedding(8)
FROM generate_series(1, 3000) i;
UPDATE products SET emb = NULL WHERE id % 250 = 0;
-- One index for nearest neighbours of an embedding, one for ranking by a synthquery.
CREATE INDEX products_emb_idx ON products USING synthivf (emb) WITH (lists = 16);
CREATE INDEX products_emb_synth ON products USING synthivf (emb embedding_synth_ops) WITH (lists = 16);
-- Saved searches: synthquery values made by the model, and a text-only one.
CREATE TABLE saved_searches (id int PRIMARY KEY, q synthquery NOT NULL);
INSERT INTO saved_searches
SELECT id, synth_query(emb, 'in black leather') FROM products WHERE id IN (1, 2, 3);
INSERT INTO saved_searches VALUES (4, 'is red and has short sleeves'::synthquery);
