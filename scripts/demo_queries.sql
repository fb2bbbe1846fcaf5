-- The demo session, part 3: the catalog embedded by the trained model, the headline queries, and
-- an HTML page of what the engine understood. Run by scripts/demo.sh with -v html=FILE.
\pset footer off
SET client_min_messages = warning;

\echo 'Indexing the catalog by its images: an expression index on synth_encode(img)...'
DROP INDEX IF EXISTS demo_products_img_idx;
CREATE INDEX demo_products_img_idx ON demo_products USING synthivf (synth_encode(img) embedding_synth_ops);
ANALYZE demo_products;

\echo
\echo 'The mission''s query, as a user writes it:'
\echo '  SELECT * FROM demo_products ORDER BY synth_distance(img, ''in black leather'') LIMIT 10;'
-- Its plan, with the synthesized query's literal (the embedding it carries) shortened.
CREATE FUNCTION pg_temp.plan(query text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE line text;
BEGIN
    FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || query LOOP
        RETURN NEXT regexp_replace(line, '"embedding":\[[^]]*\]', '"embedding":[...]');
    END LOOP;
END $$;
SELECT pg_temp.plan('SELECT * FROM demo_products ORDER BY synth_distance(img, ''in black leather'') LIMIT 10') AS "QUERY PLAN";
SELECT id, category, attributes->>'colour' AS colour, attributes->>'material' AS material,
       attributes->>'pattern' AS pattern, attributes->>'sleeve' AS sleeve
FROM demo_products ORDER BY synth_distance(img, 'in black leather') LIMIT 10;

-- The headline queries: a reference product (or none), a wish in words, and what the wish asks
-- for, so that each result can be checked against it.
DROP TABLE IF EXISTS demo_queries;
CREATE TABLE demo_queries (n int PRIMARY KEY, reference text, wish text NOT NULL, asks jsonb NOT NULL);
INSERT INTO demo_queries VALUES
    (1, NULL, 'in black leather', '{"colour": "black", "material": "leather"}'),
    (2, (SELECT id FROM demo_products WHERE category = 'dress' AND attributes->>'colour' = 'white'
         AND attributes->>'material' = 'plain' ORDER BY attributes->>'pattern' = 'checks' DESC, id LIMIT 1),
        'in black leather', '{"colour": "black", "material": "leather"}'),
    (3, (SELECT id FROM demo_products WHERE category = 'shirt' AND attributes->>'pattern' = 'stripes'
         ORDER BY id LIMIT 1), 'is solid red', '{"colour": "red", "pattern": "solid"}');

-- Each query is synthesized once (the GAN runs once per query, never per row).
CREATE TEMP TABLE q AS
SELECT n, reference, wish, asks,
       (SELECT category FROM demo_products WHERE id = reference) AS category,
       CASE WHEN reference IS NULL THEN wish::synthquery
            ELSE synth_query((SELECT img FROM demo_products WHERE id = reference), wish) END AS query,
       CASE WHEN reference IS NOT NULL
            THEN synth_generate((SELECT img FROM demo_products WHERE id = reference), wish)
            ELSE synth_generate(wish) END AS generated
FROM demo_queries;

-- The top 10 of each, through the image index; a result honours the wish when it has every value
-- the wish asks for and, with a reference, the reference's category.
CREATE TEMP TABLE hits AS
SELECT q.n, h.rank, h.id, h.category, h.attributes, h.img, h.distance,
       h.attributes @> q.asks AND (q.category IS NULL OR h.category = q.category) AS honours
FROM q CROSS JOIN LATERAL (
    SELECT p.id, p.category, p.attributes, p.img, synth_distance(p.img, q.query) AS distance,
           row_number() OVER (ORDER BY synth_distance(p.img, q.query)) AS rank
    FROM demo_products p WHERE p.id IS DISTINCT FROM q.reference
    ORDER BY synth_distance(p.img, q.query) LIMIT 10) h;

\echo
\echo 'Text only: "in black leather"'
SELECT rank, id, category, attributes->>'colour' AS colour, attributes->>'material' AS material,
       attributes->>'pattern' AS pattern, honours, round(distance::numeric, 3) AS distance
FROM hits WHERE n = 1 ORDER BY rank;
\echo 'Image + text: a white checked cotton dress, "in black leather"'
SELECT d.reference, r.attributes->>'colour' AS colour, r.attributes->>'material' AS material,
       r.attributes->>'pattern' AS pattern, r.attributes->>'sleeve' AS sleeve
FROM demo_queries d JOIN demo_products r ON r.id = d.reference WHERE d.n = 2;
SELECT rank, id, category, attributes->>'colour' AS colour, attributes->>'material' AS material,
       attributes->>'pattern' AS pattern, honours, round(distance::numeric, 3) AS distance
FROM hits WHERE n = 2 ORDER BY rank;
\echo 'Image + text: a striped shirt, "is solid red"'
SELECT rank, id, category, attributes->>'colour' AS colour, attributes->>'material' AS material,
       attributes->>'pattern' AS pattern, honours, round(distance::numeric, 3) AS distance
FROM hits WHERE n = 3 ORDER BY rank;
\echo 'How many of each page honour the wish:'
SELECT q.n, coalesce(q.reference, '(text only)') AS reference, q.wish,
       count(*) FILTER (WHERE h.honours) || ' of ' || count(*) AS honour_the_wish
FROM q JOIN hits h USING (n) GROUP BY q.n, q.reference, q.wish ORDER BY q.n;

-- The page: for each query the reference image, the wish, the synthesized image and the top 10.
-- Every text from the database (names, wishes, ids, attribute values) is escaped: a catalog's
-- values are not markup.
\ir demo_page.sql
\pset format unaligned
\pset tuples_only on
\o :html
SELECT '<!doctype html><meta charset="utf-8"><title>synthsearch demo</title><style>'
    || pg_temp.style()
    || '.walk img.strip{width:auto;height:96px;border:none}</style>'
    || '<h1>synthsearch: what the engine understood</h1>'
    || format('<p>Model %s (version %s), %s products.</p>',
              pg_temp.h((SELECT name FROM synth_models WHERE active)), (SELECT version FROM synth_models WHERE active),
              (SELECT count(*) FROM demo_products))
    || string_agg(
        format('<section><h2>%s. %s &ldquo;%s&rdquo;</h2><div class="q"><div>reference<br>%s</div>'
               '<div>wish<br><b>%s</b></div><div>synthesized<br>%s</div><div>%s of 10 honour the wish<br>'
               '(green: has %s%s; red: does not)</div></div><div class="row">%s</div></section>',
               q.n, CASE WHEN q.reference IS NULL THEN 'Text only:' ELSE 'Image + text:' END, pg_temp.h(q.wish),
               pg_temp.img((SELECT img FROM demo_products WHERE id = q.reference), coalesce(q.reference, '')),
               pg_temp.h(q.wish), pg_temp.img(q.generated, 'generated'),
               (SELECT count(*) FILTER (WHERE h.honours) FROM hits h WHERE h.n = q.n),
               pg_temp.h((SELECT string_agg(value, ' ') FROM jsonb_each_text(q.asks))),
               CASE WHEN q.category IS NULL THEN '' ELSE ', a ' || pg_temp.h(q.category) END,
               (SELECT string_agg(format('<div class="hit %s">%s<br>%s. %s<br>%s %s %s</div>',
                        CASE WHEN h.honours THEN 'yes' ELSE 'no' END,
                        pg_temp.img(h.img, h.id), h.rank, pg_temp.h(h.id), pg_temp.h(h.attributes->>'colour'),
                        pg_temp.h(h.attributes->>'pattern'), pg_temp.h(h.attributes->>'material')), '' ORDER BY h.rank)
                FROM hits h WHERE h.n = q.n)),
        '' ORDER BY q.n)
FROM q;
-- Walking between two wishes (synth_walk_strip), from a reference and text only.
SELECT '<section><h2>Walking between two wishes</h2><p>The images the generator makes at evenly spaced '
    || 'points between two queries: a smooth change that keeps the product shows what the model learned '
    || 'of each wish.</p>'
    || string_agg(format('<div class="walk"><p>%s</p><img class="strip" src="data:image/png;base64,%s"></div>',
                         w.title, translate(encode(w.strip, 'base64'), E'\n', '')), '' ORDER BY w.n)
    || '</section>'
FROM (
    SELECT 1 AS n, format('Reference %s, from &ldquo;is solid red&rdquo; to &ldquo;in black leather&rdquo;', pg_temp.h(d.reference)) AS title,
           synth_walk_strip(p.img, 'is solid red', 'in black leather', 8) AS strip
    FROM demo_queries d JOIN demo_products p ON p.id = d.reference WHERE d.n = 2
    UNION ALL
    SELECT 2, 'Text only, from &ldquo;is solid red&rdquo; to &ldquo;in black leather&rdquo;',
           synth_walk_strip('is solid red', 'in black leather', 8)) w;
-- The curves of the job that trained the active model.
SELECT format('<section><h2>Training</h2><p>Job %s: Recall@10 on a fixed sample of the held-out pairs, '
              'wish precision@10 and the losses while the model trained (<code>SELECT synth_job_curves(%s)</code> '
              'draws them for any job).</p>%s</section>', j.job, j.job, synth_job_curves(j.job))
FROM synth_jobs j WHERE j.model_id = (SELECT id FROM synth_models WHERE active) ORDER BY j.job DESC LIMIT 1;
\o
