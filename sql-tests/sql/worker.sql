-- Training in a background worker: a tiny model trained in seconds, job states, progress, the
-- registry, cancel, the job limit, privileges and bad input.
\pset footer off
SET client_min_messages = warning;

-- Waits (at most two minutes) until the job has finished and returns its state.
CREATE FUNCTION wait_job(j bigint) RETURNS text LANGUAGE plpgsql AS $$
DECLARE s text;
BEGIN
    FOR i IN 1..1200 LOOP
        SELECT state INTO s FROM synth_jobs WHERE job = j;
        EXIT WHEN s IN ('succeeded', 'failed', 'cancelled');
        PERFORM pg_sleep(0.1);
    END LOOP;
    RETURN s;
END $$;
-- Waits until the job is running with some steps done.
CREATE FUNCTION wait_running(j bigint) RETURNS text LANGUAGE plpgsql AS $$
DECLARE s text; n bigint;
BEGIN
    FOR i IN 1..1200 LOOP
        SELECT state, step INTO s, n FROM synth_jobs WHERE job = j;
        EXIT WHEN s = 'running' AND n > 0 OR s IN ('succeeded', 'failed', 'cancelled');
        PERFORM pg_sleep(0.1);
    END LOOP;
    RETURN s;
END $$;

-- A generated catalog of 120 products, written under the data directory and imported.
SELECT current_setting('data_directory') || '/synth_regress_catalog' AS catalog_dir \gset
SELECT * FROM synth_generate_catalog(:'catalog_dir', 120, 7, 32);
SELECT * FROM synth_import_fashioniq(:'catalog_dir', 'regress_images', 'regress_pairs');
SELECT split, count(*) FROM regress_pairs GROUP BY split ORDER BY split;
SELECT id, category, split, attributes ? 'colour' AS has_colour, length(img) > 100 AS has_image
FROM regress_images ORDER BY id LIMIT 2;

-- A tiny model: 16x16 images, narrow networks, 30 steps.
SELECT '{"image_size": 16, "embed_dim": 16, "encoder_width": 4, "generator_width": 4, "batch": 8,
         "encoder": {"text": {"buckets": 1024, "dim": 16}, "compose_hidden": 16},
         "generator": {"cond_dim": 16}, "name": "regress_worker"}'::jsonb AS tiny \gset
SELECT synth_train('regress_images', 'regress_pairs', :'tiny'::jsonb || '{"steps": 30, "checkpoint_every": 10, "eval_every": 10, "activate": true}') AS job \gset
SELECT state IN ('queued', 'running', 'succeeded') AS started FROM synth_jobs WHERE job = :job;
SELECT wait_job(:job);
SELECT state, step, total_steps, progress, stage, epoch > 0 AS epochs,
       losses ?& ARRAY['critic', 'triplet', 'l1'] AS gan_losses,
       (recall->>'queries')::int AS val_queries, steps_per_second > 0 AS rate,
       time_left, error, attempts, model_id IS NOT NULL AS stored
FROM synth_jobs WHERE job = :job;
-- The model is in the registry, made by the job. It asked to be activated, but its encoder is
-- not the active model's: it is stored, not active, and the job's note says why (no force).
SELECT m.name, m.version, m.active, m.image_size, m.dims, m.created_by, (m.metrics->>'steps')::int AS steps
FROM synth_models m JOIN synth_jobs j ON j.model_id = m.id WHERE j.job = :job;
SELECT regexp_replace(note, 'enc-[0-9a-f]+', 'enc-...', 'g') AS note FROM synth_jobs WHERE job = :job;
-- Finished jobs keep no checkpoint; the tables are not for users to read or write.
SELECT count(*) FROM synth_train_checkpoints;

-- Recall over training: an evaluation every eval_every steps and one at the end, each with its
-- stage, cost, the losses since the one before, the figures and a preview grid (PNG) with its
-- wishes; synth_job_curves draws them.
SELECT step, stage, seconds > 0 AS timed, losses <> '{}' AS losses,
       (recall->>'step')::int = step AS recall_step, (recall->>'queries')::int > 0 AS evaluated,
       substring(preview FROM 1 FOR 8) = '\x89504e470d0a1a0a'::bytea AS preview_png,
       cardinality(preview_wishes) AS preview_rows
FROM synth_job_evals WHERE job = :job ORDER BY step;
SELECT :job AS first_job \gset
-- (this tiny catalog's galleries are smaller than 10: no Recall@10 to draw, but the losses)
SELECT synth_job_curves(:job) LIKE '<svg%</svg>' || chr(10) AS svg,
       synth_job_curves(:job) ~ '<polyline[^>]*points="[0-9.,]+ [0-9.,]+ [0-9.,]+"' AS three_point_lines,
       synth_job_curves(:job) LIKE '%>l1 %' AS l1_curve,
       synth_job_curves(:job) LIKE '%3 evaluations, steps 10..30%' AS all_points;
\set VERBOSITY sqlstate
SELECT synth_job_curves(999999);
\set VERBOSITY default
SELECT synth_job_curves(NULL) IS NULL AS strict;

-- Walking between two wishes with the trained generator (named: it is not the active model).
-- The ends are the two plain generations; the points are evenly spaced and in order.
SELECT img AS ref, (SELECT img FROM regress_images ORDER BY id DESC LIMIT 1) AS ref2
FROM regress_images ORDER BY id LIMIT 1 \gset
SELECT point, position, substring(image FROM 1 FOR 8) = '\x89504e470d0a1a0a'::bytea AS png
FROM synth_walk(:'ref'::bytea, 'is red', 'is blue', 4, 'regress_worker');
SELECT (SELECT image FROM synth_walk(:'ref'::bytea, 'is red', 'is blue', 4, 'regress_worker') WHERE point = 1)
         = synth_generate(:'ref'::bytea, 'is red', 'regress_worker') AS first_is_from_wish,
       (SELECT image FROM synth_walk(:'ref'::bytea, 'is red', 'is blue', 4, 'regress_worker') WHERE point = 4)
         = synth_generate(:'ref'::bytea, 'is blue', 'regress_worker') AS last_is_to_wish,
       (SELECT count(DISTINCT image) FROM synth_walk(:'ref'::bytea, 'is red', 'is blue', 4, 'regress_worker')) > 1 AS changes;
-- text only, from a stored embedding, and between two references under one wish
SELECT (SELECT image FROM synth_walk('is red', 'is blue', 3, 'regress_worker') WHERE point = 3)
         = synth_generate('is blue', 'regress_worker') AS text_only_end,
       (SELECT count(*) FROM synth_walk(synth_encode(:'ref'::bytea, 'regress_worker'), 'is red', 'is blue', 5, 'regress_worker')) AS from_embedding,
       (SELECT image FROM synth_walk(:'ref'::bytea, :'ref2'::bytea, 'is red', 3, 'regress_worker') WHERE point = 3)
         = synth_generate(:'ref2'::bytea, 'is red', 'regress_worker') AS between_references;
-- the strip: the points side by side, 2 pixels apart (its width from the PNG header)
SELECT (get_byte(s, 16) << 24) + (get_byte(s, 17) << 16) + (get_byte(s, 18) << 8) + get_byte(s, 19) AS strip_width,
       (get_byte(s, 20) << 24) + (get_byte(s, 21) << 16) + (get_byte(s, 22) << 8) + get_byte(s, 23) AS strip_height
FROM (SELECT synth_walk_strip(:'ref'::bytea, 'is red', 'is blue', 4, 'regress_worker') AS s) x;
-- NULL input: no rows, as a STRICT function; bad input: an ERROR
SELECT count(*) AS null_rows FROM synth_walk(NULL::bytea, 'is red', 'is blue');
SELECT synth_walk_strip('is red', NULL) IS NULL AS null_strip;
\set VERBOSITY sqlstate
SELECT count(*) FROM synth_walk(:'ref'::bytea, 'is red', 'is blue', 1, 'regress_worker');
SELECT count(*) FROM synth_walk(:'ref'::bytea, 'is red', 'is blue', 65, 'regress_worker');
SELECT count(*) FROM synth_walk(:'ref'::bytea, '', 'is blue', 4, 'regress_worker');
SELECT count(*) FROM synth_walk('\xdeadbeef'::bytea, 'is red', 'is blue', 4, 'regress_worker');
SELECT count(*) FROM synth_walk(:'ref'::bytea, 'is red', 'is blue', 4, 'no_such_model');
SELECT synth_image_strip(ARRAY[]::bytea[]);
SELECT synth_image_strip(ARRAY[NULL]::bytea[]);
-- a model whose GAN never trained has nothing to walk
SELECT synth_model_create('regress_nogan', '{"encoder": {"image_size": 16, "embed_dim": 8, "compose_hidden": 16,
  "text": {"buckets": 256, "dim": 8}}, "generator": {"noise_dim": 4, "width": 8, "cond_dim": 16, "critic_width": 4}}', 1) AS nogan \gset
SELECT count(*) FROM synth_walk('is red', 'is blue', 4, 'regress_nogan');
SELECT synth_model_drop(:nogan);
\set VERBOSITY default

-- Training from what a shop has: attribute columns and no pairs table. Pairs are formed from
-- products of one category that differ in one or two of the columns, captions from templates; the
-- wish loss trains, and the evaluation measures how much of each page honours the wish.
CREATE VIEW regress_catalog AS
SELECT id, category, img, attributes->>'colour' AS colour, attributes->>'material' AS material,
       attributes->>'pattern' AS pattern, attributes->>'sleeve' AS sleeve
FROM regress_images;
SELECT synth_train('regress_catalog', NULL, :'tiny'::jsonb ||
    '{"steps": 12, "name": "regress_attributes", "attributes": ["colour", "material", "pattern", "sleeve"],
      "judge_steps": 40}') AS job \gset
SELECT wait_job(:job);
-- The figures are held out: without a split column a seeded tenth of the products is validation
-- and another tenth test, pairs are formed within each, and every gallery holds one split's
-- products only. Wish precision comes with its ceiling, and the synthesized images are read by a
-- judge trained on held-out real images, its own accuracy beside its reading.
SELECT j.state, j.error, j.pairs IS NULL AS no_pairs_table, (m.metrics->>'train_pairs')::int > 20 AS formed_pairs,
       j.losses ? 'wish' AS wish_loss, j.losses ? 'colour' AS colour_loss,
       j.recall->'wishes'->'precision_at_10' ?& ARRAY['gan', 'composition', 'gan_text_only', 'text_only', 'image_only'] AS wish_precision,
       j.recall->'wishes'->>'split' = 'val' AND j.recall->'test'->'wishes'->>'split' = 'test' AS both_splits,
       (j.recall->'wishes'->>'gallery')::int + (j.recall->'test'->'wishes'->>'gallery')::int
           < (m.metrics->>'images')::int / 3 AS held_out_galleries,
       (j.recall->'wishes'->'ceiling_at_10'->>'with_image')::float BETWEEN 0.01 AND 1 AS ceiling,
       (j.recall->'wishes'->'fidelity'->>'with_image')::float BETWEEN 0 AND 1 AS judged,
       (j.recall->'wishes'->'fidelity'->'by_attribute'->'colour'->>'judge_accuracy')::float BETWEEN 0 AND 1 AS judge_accuracy
FROM synth_jobs j JOIN synth_models m ON m.id = j.model_id WHERE j.job = :job;
SELECT synth_train('regress_catalog', NULL);
SELECT synth_train('regress_catalog', NULL, '{"attributes": ["colour", "fit"]}');
SELECT synth_train('regress_catalog', NULL, '{"attributes": [""]}');

-- Bad input: each an ERROR up front.
SELECT synth_train(NULL, 'regress_pairs');
SELECT synth_train('regress_images', NULL);
SELECT synth_train('regress_images', 'regress_pairs', NULL);
SELECT synth_train('no_such_table', 'regress_pairs');
SELECT synth_train('regress_images', 'regress_pairs', '{"stpes": 10}');
SELECT synth_train('regress_images', 'regress_pairs', '[1]');
SELECT synth_train('regress_images', 'regress_pairs', '{"image_size": 20}');
SELECT synth_train('regress_images', 'regress_pairs', '{"steps": 0}');
SELECT synth_train('regress_images', 'regress_pairs', '{"device": "tpu"}');
SELECT synth_train('regress_images', 'regress_pairs', '{"image_column": "picture"}');
SELECT synth_train('regress_images', 'regress_pairs', '{"image_column": "category"}');
SELECT synth_train('regress_images', 'regress_pairs', '{"base_model": 999999, "steps": 5}');
CREATE TABLE regress_no_pairs (LIKE regress_pairs);
SELECT synth_train('regress_images', 'regress_no_pairs');
SELECT synth_cancel(NULL);
SELECT synth_cancel(999999);
SELECT synth_import_fashioniq(NULL, 'a', 'b');
\set VERBOSITY sqlstate
SELECT synth_import_fashioniq(:'catalog_dir' || '/nowhere', 'a', 'b');
\set VERBOSITY default
SELECT synth_import_fashioniq(:'catalog_dir', 'regress_images', 'b');
SELECT synth_generate_catalog(:'catalog_dir', 5);

-- A corrupt image fails the job with a message that names it.
CREATE TABLE regress_bad_images AS SELECT * FROM regress_images;
UPDATE regress_bad_images SET img = '\xdeadbeef' WHERE id = (SELECT min(id) FROM regress_bad_images);
SELECT synth_train('regress_bad_images', 'regress_pairs', :'tiny'::jsonb || '{"steps": 5}') AS job \gset
SELECT wait_job(:job);
SELECT state, error, model_id FROM synth_jobs WHERE job = :job;

-- A job whose transaction rolls back never runs.
BEGIN;
SELECT synth_train('regress_images', 'regress_pairs', :'tiny'::jsonb || '{"steps": 5}') > 0 AS started;
ROLLBACK;
SELECT pg_sleep(1);
SELECT count(*) AS jobs FROM synth_jobs;

-- The job limit, and cancel: a long job takes the only place, a second is refused.
SET synthsearch.max_jobs = 0;
SELECT synth_train('regress_images', 'regress_pairs');
SET synthsearch.max_jobs = 1;
SELECT synth_train('regress_images', 'regress_pairs', :'tiny'::jsonb || '{"steps": 1000000}') AS long_job \gset
SELECT synth_train('regress_images', 'regress_pairs', :'tiny'::jsonb || '{"steps": 5}');
SELECT wait_running(:long_job);
SELECT synth_cancel(:long_job);
SELECT wait_job(:long_job);
SELECT state, step > 0 AS trained, step < total_steps AS stopped_early, time_left, model_id FROM synth_jobs WHERE job = :long_job;
SELECT synth_cancel(:long_job) AS cancelled_again;
RESET synthsearch.max_jobs;
SHOW synthsearch.max_jobs;
SET synthsearch.max_jobs = 65;

-- Privileges: the worker runs as the caller and reads only what the caller may read.
CREATE ROLE regress_synth_trainer LOGIN;
CREATE ROLE regress_synth_nologin;
SET ROLE regress_synth_nologin;
SELECT synth_train('regress_images', 'regress_pairs');
SET ROLE regress_synth_trainer;
SELECT synth_train('regress_images', 'regress_pairs');
SELECT synth_import_fashioniq(:'catalog_dir', 'mine_images', 'mine_pairs');
SELECT synth_generate_catalog(:'catalog_dir' || '/mine', 100);
SELECT synth_cancel(:long_job);
SELECT count(*) FROM synth_train_jobs;
SELECT count(*) > 0 AS can_watch FROM synth_jobs;
-- Everyone may watch the figures of a job's evaluations; its pictures and wishes are its tables'
-- data, shown only to a role that may read them.
SELECT count(*) AS evals, bool_and(recall IS NOT NULL) AS figures, bool_and(preview IS NULL AND preview_wishes IS NULL) AS no_pictures
FROM synth_job_evals WHERE job = :first_job;
SELECT count(*) FROM synth_train_evals;
SELECT synth_job_curves(:first_job) LIKE '<svg%' AS curves_for_all;
RESET ROLE;
GRANT SELECT ON regress_images, regress_pairs TO regress_synth_trainer;
SET ROLE regress_synth_trainer;
SELECT count(*) AS evals, bool_and(preview IS NOT NULL) AS pictures FROM synth_job_evals WHERE job = :first_job;
RESET ROLE;
SET ROLE regress_synth_trainer;
SELECT synth_train('regress_images', 'regress_pairs', :'tiny'::jsonb || '{"steps": 6, "name": "regress_mine"}') AS job \gset
RESET ROLE;
SELECT wait_job(:job);
SELECT j.owner, m.name, m.created_by, m.active
FROM synth_jobs j JOIN synth_models m ON m.id = j.model_id WHERE j.job = :job;

-- Retraining only the GAN keeps the encoder's version.
SELECT synth_train('regress_images', 'regress_pairs',
    :'tiny'::jsonb || jsonb_build_object('base_model', (SELECT id FROM synth_models WHERE name = 'regress_worker'), 'steps', 4)) AS job \gset
SELECT wait_job(:job);
SELECT (SELECT encoder_version FROM synth_models WHERE id = j.model_id)
     = (SELECT encoder_version FROM synth_models WHERE name = 'regress_worker' AND version = 1) AS same_encoder,
       total_steps
FROM synth_jobs j WHERE job = :job;

-- A time limit: stage 1 ends once it has used its share of max_seconds (here half, its share of
-- the planned steps), and the GAN stage still trains until the limit.
SELECT synth_train('regress_images', 'regress_pairs', :'tiny'::jsonb ||
    '{"name": "regress_timed", "encoder_steps": 1000000, "gan_steps": 1000000, "max_seconds": 4, "eval_every": 0, "checkpoint_every": 100000}') AS job \gset
SELECT wait_job(:job);
SELECT state, step = total_steps AS ended, step < 2000000 AS cut, losses ? 'critic' AS gan_trained
FROM synth_jobs WHERE job = :job;
SELECT synth_model_drop(model_id) FROM synth_jobs WHERE job = :job;

DROP TABLE regress_no_pairs, regress_bad_images;
DROP VIEW regress_catalog;
DROP FUNCTION wait_job(bigint), wait_running(bigint);
REVOKE ALL ON regress_images, regress_pairs FROM regress_synth_trainer;
DROP ROLE regress_synth_trainer, regress_synth_nologin;
