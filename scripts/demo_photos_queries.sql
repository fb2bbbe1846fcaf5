-- `make demo DEMO_CATALOG=photos`, part 3: the photos indexed by the trained model, three
-- headline queries on products of the test split (no image the model trained on is a reference or
-- on a page), and an HTML page of real products beside the synthesized images. Run by
-- scripts/demo.sh with -v html=FILE.
\pset footer off
SET client_min_messages = warning;
\echo 'Indexing the held-out photos by their images: an expression index on synth_encode(img)...'
CREATE OR REPLACE VIEW photo_test AS SELECT * FROM photo_products WHERE split = 'test';
DROP INDEX IF EXISTS photo_products_img_idx;
CREATE INDEX photo_products_img_idx ON photo_products USING synthivf (synth_encode(img) embedding_synth_ops)
    WHERE split = 'test';
ANALYZE photo_products;

DROP TABLE IF EXISTS photo_queries;
CREATE TABLE photo_queries (n int PRIMARY KEY, reference text, wish text NOT NULL, asks jsonb NOT NULL);
INSERT INTO photo_queries VALUES
    (1, NULL, 'a dark pullover', '{"kind": "pullover", "tone": "dark"}'),
    (2, (SELECT id FROM photo_test WHERE attributes->>'kind' = 't-shirt' AND attributes->>'tone' = 'light'
         ORDER BY id LIMIT 1), 'in black', '{"tone": "dark"}'),
    (3, (SELECT id FROM photo_test WHERE attributes->>'kind' = 'sneakers' ORDER BY id LIMIT 1),
        'ankle boots instead', '{"kind": "ankle boots"}');

CREATE TEMP TABLE q AS
SELECT n, reference, wish, asks,
       (SELECT category FROM photo_products WHERE id = reference) AS category,
       CASE WHEN reference IS NULL THEN wish::synthquery
            ELSE synth_query((SELECT img FROM photo_products WHERE id = reference), wish) END AS query,
       CASE WHEN reference IS NOT NULL
            THEN synth_generate((SELECT img FROM photo_products WHERE id = reference), wish)
            ELSE synth_generate(wish) END AS generated
FROM photo_queries;

-- The top 10 of the test split's photos, through the partial index.
CREATE TEMP TABLE hits AS
SELECT q.n, h.rank, h.id, h.category, h.attributes, h.img, h.distance,
       h.attributes @> q.asks AND (q.category IS NULL OR h.category = q.category) AS honours
FROM q CROSS JOIN LATERAL (
    SELECT p.id, p.category, p.attributes, p.img, synth_distance(p.img, q.query) AS distance,
           row_number() OVER (ORDER BY synth_distance(p.img, q.query)) AS rank
    FROM photo_products p WHERE p.split = 'test' AND p.id IS DISTINCT FROM q.reference
    ORDER BY synth_distance(p.img, q.query) LIMIT 10) h;
\echo
SELECT q.n, coalesce(q.reference, '(text only)') AS reference,
       (SELECT attributes FROM photo_products WHERE id = q.reference) AS reference_tags, q.wish,
       count(*) FILTER (WHERE h.honours) || ' of ' || count(*) AS honour_the_wish
FROM q JOIN hits h USING (n) GROUP BY q.n, q.reference, q.wish ORDER BY q.n;

-- The page: every text from the database is escaped.
\ir demo_page.sql
\pset format unaligned
\pset tuples_only on
\o :html
SELECT '<!doctype html><meta charset="utf-8"><title>synthsearch demo: product photos</title><style>'
    || pg_temp.style()
    || '</style>'
    || '<h1>synthsearch on product photos: what the engine understood</h1>'
    || format('<p>Model %s (version %s); %s photos of the test split, none of which the model trained on.</p>',
              pg_temp.h((SELECT name FROM synth_models WHERE active)), (SELECT version FROM synth_models WHERE active),
              (SELECT count(*) FROM photo_test))
    || string_agg(
        format('<section><h2>%s. %s &ldquo;%s&rdquo;</h2><div class="q"><div>reference<br>%s</div>'
               '<div>wish<br><b>%s</b></div><div>synthesized<br>%s</div><div>%s of 10 honour the wish<br>'
               '(green: %s%s; red: not)</div></div><div class="row">%s</div></section>',
               q.n, CASE WHEN q.reference IS NULL THEN 'Text only:' ELSE 'Image + text:' END, pg_temp.h(q.wish),
               pg_temp.img((SELECT img FROM photo_products WHERE id = q.reference), coalesce(q.reference, '')),
               pg_temp.h(q.wish), pg_temp.img(q.generated, 'generated'),
               (SELECT count(*) FILTER (WHERE h.honours) FROM hits h WHERE h.n = q.n),
               pg_temp.h((SELECT string_agg(value, ' ') FROM jsonb_each_text(q.asks))),
               CASE WHEN q.category IS NULL THEN '' ELSE ', a ' || pg_temp.h(q.category) END,
               (SELECT string_agg(format('<div class="hit %s">%s<br>%s. %s<br>%s %s %s</div>',
                        CASE WHEN h.honours THEN 'yes' ELSE 'no' END,
                        pg_temp.img(h.img, h.id), h.rank, pg_temp.h(h.id), pg_temp.h(h.attributes->>'kind'),
                        pg_temp.h(h.attributes->>'tone'), pg_temp.h(h.attributes->>'pattern')), '' ORDER BY h.rank)
                FROM hits h WHERE h.n = q.n)),
        '' ORDER BY q.n)
FROM q;
\o
