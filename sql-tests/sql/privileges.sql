-- Privileges, played as an attacker with an ordinary LOGIN role: hostile operators and functions
-- ahead of pg_catalog on the caller's search_path, in the role's default path and in the
-- database's default path, against every entry point of the extension (the model functions, the
-- synthquery input that runs the generator, the registry functions, index builds and scans,
-- training jobs and their workers). The hostile code records who ran it and tries to make the
-- attacker a superuser; it must never run as anyone but the attacker. Then the rights table of
-- the README, row by row.
\pset footer off
SET client_min_messages = warning;
SELECT current_database() AS db \gset

CREATE ROLE regress_attacker LOGIN;
CREATE ROLE regress_manager LOGIN;
GRANT synthsearch_admin TO regress_manager;
CREATE SCHEMA regress_evil AUTHORIZATION regress_attacker;
GRANT CREATE ON SCHEMA public TO regress_attacker;
GRANT SELECT ON regress_images, regress_pairs TO regress_attacker, regress_manager;

-- Waits (at most two minutes) until the job has finished; as any role.
CREATE FUNCTION public.wait_job(j bigint) RETURNS text LANGUAGE plpgsql
SET search_path = pg_catalog, public AS $$
DECLARE s text;
BEGIN
    FOR i IN 1..1200 LOOP
        SELECT state INTO s FROM public.synth_jobs WHERE job = j;
        EXIT WHEN s IN ('succeeded', 'failed', 'cancelled');
        PERFORM pg_sleep(0.1);
    END LOOP;
    RETURN s;
END $$;
CREATE FUNCTION public.wait_step(j bigint, n bigint) RETURNS text LANGUAGE plpgsql
SET search_path = pg_catalog, public AS $$
DECLARE s text; k bigint;
BEGIN
    FOR i IN 1..1200 LOOP
        SELECT state, step INTO s, k FROM public.synth_jobs WHERE job = j;
        EXIT WHEN s = 'running' AND k >= n OR s IN ('succeeded', 'failed', 'cancelled');
        PERFORM pg_sleep(0.1);
    END LOOP;
    RETURN s;
END $$;
-- Stops a job's worker and waits until it is gone (it saves a checkpoint on the way out).
CREATE FUNCTION public.stop_worker(j bigint) RETURNS boolean LANGUAGE plpgsql
SET search_path = pg_catalog, public AS $$
DECLARE p int;
BEGIN
    SELECT worker_pid INTO p FROM public.synth_jobs WHERE job = j;
    PERFORM pg_terminate_backend(p);
    FOR i IN 1..1200 LOOP
        PERFORM pg_stat_clear_snapshot();
        EXIT WHEN NOT EXISTS (SELECT FROM pg_stat_activity WHERE pid = p);
        PERFORM pg_sleep(0.1);
    END LOOP;
    RETURN NOT EXISTS (SELECT FROM pg_stat_activity WHERE pid = p);
END $$;
CREATE FUNCTION public.privileges_sqlstate(query text) RETURNS text LANGUAGE plpgsql
SET search_path = pg_catalog, public AS $$
BEGIN
    EXECUTE query;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || regexp_replace(regexp_replace(SQLERRM, 'enc-[0-9a-f]+', 'enc-...', 'g'), '[0-9]+', 'N', 'g');
END $$;

-- The attacker's trap: operators and functions that shadow pg_catalog's for every type the
-- extension's own SQL compares, each logging current_user and trying ALTER ROLE ... SUPERUSER.
SET ROLE regress_attacker;
CREATE TABLE regress_evil.ran (who name, what text);
GRANT USAGE ON SCHEMA regress_evil TO PUBLIC;
GRANT INSERT, SELECT ON regress_evil.ran TO PUBLIC;
CREATE FUNCTION regress_evil.hostile(what text) RETURNS void LANGUAGE plpgsql
SET search_path = pg_catalog AS $$
BEGIN
    INSERT INTO regress_evil.ran VALUES (current_user, what);
    IF current_user <> 'regress_attacker' THEN
        BEGIN
            EXECUTE 'ALTER ROLE regress_attacker SUPERUSER';
        EXCEPTION WHEN OTHERS THEN NULL;
        END;
    END IF;
END $$;
DO $do$
DECLARE
    t text;
    ops text[][] := ARRAY[['=', 'eq'], ['<>', 'ne'], ['>', 'gt'], ['<', 'lt']];
    i int;
BEGIN
    FOREACH t IN ARRAY ARRAY['bigint', 'integer', 'smallint', 'text', 'name', 'oid', 'boolean', 'bytea', 'jsonb'] LOOP
        FOR i IN 1..4 LOOP
            EXECUTE format($f$CREATE FUNCTION regress_evil.%2$s_%3$s(a %1$s, b %1$s) RETURNS boolean
                LANGUAGE plpgsql SET search_path = pg_catalog AS $b$
                BEGIN PERFORM regress_evil.hostile(%4$L); RETURN a %5$s b; END $b$$f$,
                t, ops[i][2], replace(t, ' ', '_'), ops[i][1] || ' ' || t, ops[i][1]);
            EXECUTE format('CREATE OPERATOR regress_evil.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = regress_evil.%s_%s)',
                ops[i][1], t, t, ops[i][2], replace(t, ' ', '_'));
        END LOOP;
    END LOOP;
    -- mixed types the catalogs compare (attnum > 0), and arithmetic
    EXECUTE $f$CREATE FUNCTION regress_evil.gt_int24(a smallint, b integer) RETURNS boolean LANGUAGE plpgsql
        SET search_path = pg_catalog AS $b$ BEGIN PERFORM regress_evil.hostile('> int2 int4'); RETURN a > b; END $b$$f$;
    CREATE OPERATOR regress_evil.> (LEFTARG = smallint, RIGHTARG = integer, FUNCTION = regress_evil.gt_int24);
    EXECUTE $f$CREATE FUNCTION regress_evil.plus_int4(a integer, b integer) RETURNS integer LANGUAGE plpgsql
        SET search_path = pg_catalog AS $b$ BEGIN PERFORM regress_evil.hostile('+ integer'); RETURN a + b; END $b$$f$;
    CREATE OPERATOR regress_evil.+ (LEFTARG = integer, RIGHTARG = integer, FUNCTION = regress_evil.plus_int4);
END $do$;
-- and functions an unqualified call would reach
CREATE FUNCTION regress_evil.now() RETURNS timestamptz LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN PERFORM regress_evil.hostile('now()'); RETURN pg_catalog.now(); END $$;
CREATE FUNCTION regress_evil.hashtext(text) RETURNS integer LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN PERFORM regress_evil.hostile('hashtext()'); RETURN pg_catalog.hashtext($1); END $$;
CREATE FUNCTION regress_evil.quote_ident(text) RETURNS text LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN PERFORM regress_evil.hostile('quote_ident()'); RETURN pg_catalog.quote_ident($1); END $$;
CREATE FUNCTION regress_evil.pg_has_role(name, oid, text) RETURNS boolean LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN PERFORM regress_evil.hostile('pg_has_role()'); RETURN true; END $$;
CREATE FUNCTION regress_evil.pg_try_advisory_lock(integer, integer) RETURNS boolean LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN PERFORM regress_evil.hostile('pg_try_advisory_lock()'); RETURN pg_catalog.pg_try_advisory_lock($1, $2); END $$;
-- The attacker's own catalog: images it may read, an embedding column, a synthquery index.
CREATE TABLE public.attacker_items AS
    SELECT id, img, synth_encode(img) AS emb FROM regress_images ORDER BY id LIMIT 40;
RESET ROLE;

-- Who ran hostile code as someone other than the attacker (must stay empty), and whether the
-- attacker became a superuser (must stay false).
CREATE VIEW public.raised AS
    SELECT (SELECT count(*) FROM regress_evil.ran WHERE who <> 'regress_attacker') AS raised_runs,
           (SELECT rolsuper FROM pg_roles WHERE rolname = 'regress_attacker') AS attacker_superuser;
GRANT SELECT ON public.raised TO PUBLIC;

-- 1. The caller's own search_path, in a fresh connection.
\c - regress_attacker
SET client_min_messages = warning;
SET search_path = regress_evil, pg_catalog, public;
SELECT synth_encode(img) IS NOT NULL AS encoded FROM regress_images ORDER BY id LIMIT 1;
SELECT privileges_sqlstate($$SELECT synth_encode(img, 'regress_worker') FROM regress_images LIMIT 1$$);
SELECT synth_query(img, 'in black leather') IS NOT NULL AS queried FROM regress_images ORDER BY id LIMIT 1;
SELECT synth_query(emb, 'in black leather') IS NOT NULL AS queried FROM attacker_items ORDER BY id LIMIT 1;
SELECT length(synth_generate(img, 'is red')) > 0 AS generated FROM regress_images ORDER BY id LIMIT 1;
SELECT length(synth_generate('is red')) > 0 AS generated;
SELECT length(synth_walk_strip('is red', 'is blue', 3, 'regress_worker')) > 0 AS walked,
       (SELECT count(*) FROM synth_walk(img, 'is red', 'is blue', 3, 'regress_worker')) AS walk_points
FROM regress_images ORDER BY id LIMIT 1;
SELECT 'in black leather'::synthquery IS NOT NULL AS literal;
SELECT count(*) FROM (SELECT id FROM attacker_items ORDER BY synth_distance(emb, 'in black leather') LIMIT 5) t;
SELECT count(*) FROM (SELECT id FROM attacker_items ORDER BY synth_distance(img, 'in black leather') LIMIT 5) t;
CREATE INDEX attacker_items_synth ON attacker_items USING synthivf (emb embedding_synth_ops) WITH (lists = 2);
CREATE INDEX attacker_items_expr ON attacker_items USING synthivf (synth_encode(img) embedding_synth_ops) WITH (lists = 2);
SET enable_seqscan = off;
SELECT count(*) FROM (SELECT id FROM attacker_items ORDER BY emb <-> 'in black leather'::synthquery LIMIT 5) t;
SELECT count(*) FROM (SELECT id FROM attacker_items ORDER BY synth_encode(img) <-> 'in black leather'::synthquery LIMIT 5) t;
RESET enable_seqscan;
INSERT INTO attacker_items SELECT id, img, synth_encode(img) FROM regress_images ORDER BY id DESC LIMIT 2;
REINDEX INDEX attacker_items_synth;
SELECT * FROM raised;
-- The registry functions refuse an ordinary role (42501), whatever its path.
SELECT privileges_sqlstate(format('SELECT synth_model_activate(%s)', (SELECT id FROM synth_models WHERE active)));
SELECT privileges_sqlstate(format('SELECT synth_model_activate(%s, true)', (SELECT min(id) FROM synth_models)));
SELECT privileges_sqlstate(format('SELECT synth_model_drop(%s)', (SELECT min(id) FROM synth_models WHERE NOT active)));
SELECT privileges_sqlstate($$SELECT synth_model_export()$$);
SELECT privileges_sqlstate($$SELECT synth_model_import('\x0102'::bytea)$$);
SELECT privileges_sqlstate($$SELECT synth_model_create('attacker')$$);
SELECT privileges_sqlstate($$SELECT * FROM synth_index_check('attacker_items_synth')$$);
SELECT privileges_sqlstate($$UPDATE synth_models SET active = true$$);
SELECT privileges_sqlstate($$SELECT * FROM synth_model_parts$$);
SELECT privileges_sqlstate($$SELECT * FROM synth_train_checkpoints$$);
SELECT privileges_sqlstate($$SELECT * FROM synth_train_evals$$);
SELECT privileges_sqlstate($$DELETE FROM synth_train_evals$$);
SELECT privileges_sqlstate($$SELECT * FROM synth_import_fashioniq('/tmp', 'a', 'b')$$);
SELECT privileges_sqlstate($$SELECT * FROM synth_generate_catalog('/tmp/x', 10)$$);
-- Training: asking to activate is refused up front; without it the job stores its model and
-- leaves the active one alone, and its worker ran with a pinned path.
SELECT '{"image_size": 16, "embed_dim": 16, "encoder_width": 4, "generator_width": 4, "batch": 8,
         "encoder": {"text": {"buckets": 1024, "dim": 16}, "compose_hidden": 16},
         "generator": {"cond_dim": 16}, "name": "regress_attacker"}'::jsonb AS tiny \gset
SELECT privileges_sqlstate(format('SELECT synth_train(%L, %L, %L)', 'regress_images', 'regress_pairs', :'tiny'::jsonb || '{"steps": 4, "activate": true}'));
SELECT privileges_sqlstate(format('SELECT synth_train(%L, %L, %L)', 'regress_images', 'regress_pairs', :'tiny'::jsonb || '{"steps": 4, "force": true}'));
SELECT (SELECT id FROM synth_models WHERE active) AS active_before \gset
SELECT synth_train('regress_images', 'regress_pairs', :'tiny'::jsonb || '{"steps": 6}') AS job \gset
SELECT wait_job(:job);
SELECT j.state, j.owner, m.name, m.active, m.created_by,
       regexp_replace(j.note, '[0-9]+', 'N', 'g') AS note
FROM synth_jobs j JOIN synth_models m ON m.id = j.model_id WHERE j.job = :job;
SELECT (SELECT id FROM synth_models WHERE active) = :active_before AS active_unchanged;
-- its worker kept the final evaluation; its curves are drawn under the hostile path
SELECT count(*) AS evals, bool_and(preview IS NOT NULL) AS pictures FROM synth_job_evals WHERE job = :job;
SELECT synth_job_curves(:job) LIKE '<svg%1 evaluation, steps 6..6%' AS curves;
SELECT synth_resume();
SELECT * FROM raised;

-- 2. The role's default search_path (ALTER ROLE ... SET), which the training worker's
-- connection applies too.
RESET ROLE;
\c - postgres
ALTER ROLE regress_attacker SET search_path = regress_evil, pg_catalog, public;
\c - regress_attacker
SET client_min_messages = warning;
SHOW search_path;
SELECT synth_encode(img) IS NOT NULL AS encoded FROM regress_images ORDER BY id LIMIT 1;
SELECT 'is red'::synthquery IS NOT NULL AS literal;
SELECT synth_train('regress_images', 'regress_pairs', :'tiny'::jsonb || '{"steps": 6}') AS job \gset
SELECT wait_job(:job);
SELECT count(*) FROM synth_jobs WHERE job = :job AND model_id IS NOT NULL;
SELECT * FROM raised;

-- 3. The database's default search_path: the workers of a superuser's job and the launcher's
-- resume workers connect with it.
\c - postgres
ALTER ROLE regress_attacker RESET search_path;
SELECT format('ALTER DATABASE %I SET search_path = regress_evil, pg_catalog, public', :'db') \gexec
\c - postgres
SET client_min_messages = warning;
-- (this session's own statements must not call the trap as a superuser)
SET search_path = pg_catalog, public;
SELECT synth_train('regress_images', 'regress_pairs', :'tiny'::jsonb || '{"steps": 6, "name": "regress_superuser"}') AS job \gset
SELECT wait_job(:job);
\c - regress_attacker
SET client_min_messages = warning;
SHOW search_path;
SELECT synth_encode(img) IS NOT NULL AS encoded FROM regress_images ORDER BY id LIMIT 1;
SELECT synth_query(img, 'in black leather') IS NOT NULL AS queried FROM regress_images ORDER BY id LIMIT 1;
SELECT * FROM raised;
\c - postgres
SET client_min_messages = warning;
SELECT format('ALTER DATABASE %I RESET search_path', :'db') \gexec
\c - postgres
SET client_min_messages = warning;
-- The trap did fire, as the attacker, in the attacker's own statements: the test sees it.
SELECT count(*) > 0 AS trap_fired, bool_and(who = 'regress_attacker') AS only_as_attacker FROM regress_evil.ran;
SELECT * FROM raised;

-- 4. The rights table, row by row.
-- A model manager (a member of synthsearch_admin) activates, exports, imports, drops.
SET ROLE regress_manager;
SELECT id AS attacker_model FROM synth_models WHERE name = 'regress_attacker' ORDER BY version LIMIT 1 \gset
SELECT privileges_sqlstate(format('SELECT synth_model_activate(%s)', :attacker_model));
SELECT synth_model_activate(:active_before);
SELECT length(synth_model_export(:'attacker_model')) > 0 AS exported;
SELECT synth_model_import(synth_model_export(:'attacker_model'), 'regress_managed') AS imported \gset
SELECT name, version, active FROM synth_models WHERE id = :imported;
-- importing over another encoder with activate is refused without force (55000)
SELECT privileges_sqlstate(format('SELECT synth_model_import(synth_model_export(%L), %L, true)', :attacker_model, 'regress_managed'));
SELECT synth_model_drop(:imported);
-- a manager's job may activate its model, but not over another encoder without force
SELECT synth_train('regress_images', 'regress_pairs', :'tiny'::jsonb || '{"steps": 4, "name": "regress_managed", "activate": true}') AS job \gset
SELECT wait_job(:job);
SELECT j.state, m.active, regexp_replace(regexp_replace(j.note, 'enc-[0-9a-f]+', 'enc-...', 'g'), '[0-9]+', 'N', 'g') AS note
FROM synth_jobs j JOIN synth_models m ON m.id = j.model_id WHERE j.job = :job;
SELECT (SELECT id FROM synth_models WHERE active) = :active_before AS active_unchanged;
-- index checks are the DBA's to grant
SELECT privileges_sqlstate($$SELECT * FROM synth_index_check('attacker_items_synth')$$);
RESET ROLE;
GRANT EXECUTE ON FUNCTION synth_index_check(regclass, boolean) TO regress_manager;
SET ROLE regress_manager;
SELECT lists, live_rows FROM synth_index_check('attacker_items_synth');
-- with heap => true the table is read, which needs SELECT on it
SELECT privileges_sqlstate($$SELECT * FROM synth_index_check('attacker_items_synth', heap => true)$$);
RESET ROLE;
GRANT SELECT ON attacker_items TO regress_manager;
SET ROLE regress_manager;
SELECT live_rows, heap_rows FROM synth_index_check('attacker_items_synth', heap => true);
RESET ROLE;
-- jobs are cancelled by members of their role (or a superuser), not by other roles
SET ROLE regress_manager;
SELECT privileges_sqlstate(format('SELECT synth_cancel(%s)', (SELECT max(job) FROM synth_jobs WHERE owner = 'regress_attacker'::regrole)));
RESET ROLE;

-- 5. Nothing trained is lost. Two jobs under one name both store their models.
SET synthsearch.max_jobs = 4;
SET ROLE regress_attacker;
SELECT synth_train('regress_images', 'regress_pairs', :'tiny'::jsonb || '{"steps": 4, "name": "regress_twins"}') AS twin1 \gset
SELECT synth_train('regress_images', 'regress_pairs', :'tiny'::jsonb || '{"steps": 4, "name": "regress_twins"}') AS twin2 \gset
SELECT wait_job(:twin1), wait_job(:twin2);
SELECT array_agg(version ORDER BY version) AS versions FROM synth_models WHERE name = 'regress_twins';
-- A job that fails after a checkpoint keeps it, and synth_resume() continues from it: the
-- worker is stopped mid-run, the role loses the right to read its images (the resumed worker
-- fails), gets it back, and the job ends from where it was.
SELECT synth_train('regress_images', 'regress_pairs', :'tiny'::jsonb || '{"steps": 600, "checkpoint_every": 5}') AS job \gset
SELECT wait_step(:job, 10);
RESET ROLE;
SELECT stop_worker(:job);
REVOKE SELECT ON regress_images FROM regress_attacker;
SET ROLE regress_attacker;
SELECT synth_resume();
SELECT wait_job(:job);
RESET ROLE;
SELECT state, error, step > 0 AS trained FROM synth_jobs WHERE job = :job;
SELECT step > 0 AS kept_checkpoint FROM synth_train_checkpoints WHERE job = :job;
GRANT SELECT ON regress_images TO regress_attacker;
SET ROLE regress_attacker;
SELECT synth_resume();
SELECT wait_job(:job);
SELECT state, error, attempts, model_id IS NOT NULL AS stored FROM synth_jobs WHERE job = :job;
RESET ROLE;
SELECT count(*) AS checkpoints_left FROM synth_train_checkpoints WHERE job = :job;
-- synth_cancel gives up a failed job's checkpoint; a failed job without one has nothing to drop
SET ROLE regress_attacker;
SELECT synth_train('regress_images', 'regress_pairs', :'tiny'::jsonb || '{"steps": 600, "checkpoint_every": 5}') AS job \gset
SELECT wait_step(:job, 10);
RESET ROLE;
SELECT stop_worker(:job);
REVOKE SELECT ON regress_images FROM regress_attacker;
SET ROLE regress_attacker;
SELECT synth_resume();
SELECT wait_job(:job);
SELECT synth_cancel(:job) AS dropped_checkpoint, synth_cancel(:job) AS again;
SELECT synth_resume() AS nothing_to_resume;
RESET ROLE;
SELECT * FROM raised;
RESET synthsearch.max_jobs;

-- 6. The native paths.
GRANT SELECT ON regress_images TO regress_attacker;
-- An index check runs the index's expressions and predicate as the table's owner: the attacker's
-- IMMUTABLE wrappers call the trap, which tries ALTER ROLE ... SUPERUSER whenever it runs as
-- anyone else (CVE-2022-1552's shape in amcheck).
SET ROLE regress_attacker;
CREATE FUNCTION regress_evil.shift(e embedding) RETURNS embedding LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog AS $$ BEGIN PERFORM regress_evil.hostile('index expression'); RETURN e; END $$;
CREATE FUNCTION regress_evil.keep(id text) RETURNS boolean LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog AS $$ BEGIN PERFORM regress_evil.hostile('index predicate'); RETURN true; END $$;
CREATE INDEX attacker_items_trap ON attacker_items USING synthivf (regress_evil.shift(emb) embedding_synth_ops) WITH (lists = 2);
CREATE INDEX attacker_items_partial ON attacker_items USING synthivf (emb embedding_synth_ops) WITH (lists = 2)
    WHERE regress_evil.keep(id);
RESET ROLE;
SELECT count(*) AS runs_before FROM regress_evil.ran \gset
SELECT live_rows, heap_rows FROM synth_index_check('attacker_items_trap', heap => true);
SELECT live_rows, heap_rows FROM synth_index_check('attacker_items_partial', heap => true);
SELECT count(*) > :runs_before AS trap_ran_in_check, bool_and(who = 'regress_attacker') AS only_as_owner FROM regress_evil.ran;
SELECT * FROM raised;
-- a security-restricted operation: the expression cannot leave state behind for the caller
SET ROLE regress_attacker;
CREATE FUNCTION regress_evil.leave() RETURNS void LANGUAGE plpgsql
SET search_path = pg_catalog AS $$ BEGIN CREATE TEMP TABLE IF NOT EXISTS regress_left_behind (x int); END $$;
CREATE OR REPLACE FUNCTION regress_evil.keep(id text) RETURNS boolean LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog AS $$ BEGIN PERFORM regress_evil.leave(); RETURN true; END $$;
RESET ROLE;
SELECT privileges_sqlstate($$SELECT * FROM synth_index_check('attacker_items_partial', heap => true)$$);
-- synth_index_stats takes a lock on the table: only for roles that may read it.
CREATE TABLE regress_private (id int, emb embedding);
INSERT INTO regress_private SELECT row_number() OVER (), synth_encode(img) FROM regress_images LIMIT 8;
CREATE INDEX regress_private_idx ON regress_private USING synthivf (emb embedding_synth_ops) WITH (lists = 2);
SET ROLE regress_attacker;
SELECT privileges_sqlstate($$SELECT * FROM synth_index_stats('regress_private_idx')$$);
SELECT lists FROM synth_index_stats('attacker_items_synth');
RESET ROLE;
GRANT pg_stat_scan_tables TO regress_attacker;
SET ROLE regress_attacker;
SELECT lists FROM synth_index_stats('regress_private_idx');
RESET ROLE;
REVOKE pg_stat_scan_tables FROM regress_attacker;
DROP TABLE regress_private;
-- Model names belong to the role that stored their first version: another role's job under that
-- name is refused up front (the manager's, a superuser's), a name of its own is not.
SET ROLE regress_attacker;
SELECT privileges_sqlstate(format('SELECT synth_train(%L, %L, %L)', 'regress_images', 'regress_pairs', :'tiny'::jsonb || '{"steps": 4, "name": "regress_superuser"}'));
SELECT privileges_sqlstate(format('SELECT synth_train(%L, %L, %L)', 'regress_images', 'regress_pairs', :'tiny'::jsonb || '{"steps": 4, "name": "regress_managed"}'));
SELECT array_agg(DISTINCT created_by) AS owners FROM synth_models WHERE name IN ('regress_superuser', 'regress_managed');
-- names that synth_encode(img, name) would read as another name, an id or a version are refused
SELECT privileges_sqlstate(format('SELECT synth_train(%L, %L, %L)', 'regress_images', 'regress_pairs', :'tiny'::jsonb || jsonb_build_object('steps', 4, 'name', n)))
FROM unnest(ARRAY['regress_superuser ', '2024', 'regress_superuser:2']) n;
RESET ROLE;
-- a manager may add a version to any name (here the attacker's), and the attacker still to its own
SET ROLE regress_manager;
SELECT synth_model_import(synth_model_export('regress_attacker'), 'regress_attacker') > 0 AS manager_added;
RESET ROLE;
SELECT array_agg(created_by ORDER BY version) AS regress_attacker_versions FROM synth_models WHERE name = 'regress_attacker';
-- A job's data is bounded before it is read: a million-row view at image_size 256 would need
-- 786 GB of decoded pixels; the job fails with an error that names the limit, nothing restarts.
SELECT pg_postmaster_start_time() AS started \gset
SET ROLE regress_attacker;
CREATE VIEW public.attacker_million AS
    SELECT 'm' || g AS id, (SELECT img FROM regress_images ORDER BY id LIMIT 1) AS img
    FROM generate_series(1, 1000000) g;
SELECT synth_train('attacker_million', 'regress_pairs', :'tiny'::jsonb || '{"steps": 4, "image_size": 256}') AS job \gset
SELECT wait_job(:job);
SELECT regexp_replace(error, '[0-9]+', 'N', 'g') AS error FROM synth_jobs WHERE job = :job;
-- A failed job's error may quote its data (here an image id): other roles that cannot read the
-- tables see that it failed, not the values.
CREATE TABLE public.attacker_dups AS SELECT id, img FROM regress_images ORDER BY id LIMIT 3;
INSERT INTO attacker_dups SELECT id, img FROM regress_images ORDER BY id LIMIT 1;
SELECT synth_train('attacker_dups', 'regress_pairs', :'tiny'::jsonb || '{"steps": 4}') AS dup_job \gset
SELECT wait_job(:dup_job);
SELECT error LIKE 'image id %appears twice%' AS own_error_shown FROM synth_jobs WHERE job = :dup_job;
RESET ROLE;
SET ROLE regress_manager;
SELECT error FROM synth_jobs WHERE job = :dup_job;
RESET ROLE;
SELECT pg_postmaster_start_time() = :'started' AS no_restart;
SELECT * FROM raised;

-- Clean up: the attacker's objects and roles.
SET client_min_messages = warning;
DROP TABLE attacker_items, attacker_dups;
DROP VIEW raised, attacker_million;
DROP SCHEMA regress_evil CASCADE;
DROP FUNCTION wait_job(bigint), wait_step(bigint, bigint), stop_worker(bigint), privileges_sqlstate(text);
REVOKE ALL ON regress_images, regress_pairs FROM regress_attacker, regress_manager;
REVOKE CREATE ON SCHEMA public FROM regress_attacker;
REVOKE EXECUTE ON FUNCTION synth_index_check(regclass, boolean) FROM regress_manager;
REASSIGN OWNED BY regress_attacker, regress_manager TO postgres;
DROP ROLE regress_attacker, regress_manager;
