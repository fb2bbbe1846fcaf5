-- synthsearch 0.1.0 -> 0.2.0: ALTER EXTENSION synthsearch UPDATE runs this in a database that has
-- 0.1.0 (sql/synthsearch--0.1.0.sql, frozen as released); afterwards its catalog must equal a fresh
-- CREATE EXTENSION synthsearch of 0.2.0 (the script cargo pgrx generates from src/ and
-- sql/embedding.sql, index.sql, model.sql, worker.sql). tests/system/upgrade_catalog.sh (in
-- `make test`) checks exactly that, object by object, and prints the difference when it fails.
--
-- How to add to it. Every SQL change made for 0.2.0 (in sql/*.sql or in a #[pg_extern]) needs its
-- step here, at the end, in the order made:
--   - a new function, type, operator, operator class, cast, table, view: the same CREATE statement
--     as in the install script (copy it from `cargo pgrx schema` output for #[pg_extern] functions:
--     the C symbol is '<name>_wrapper'; write MODULE_PATHNAME as in sql/*.sql, PostgreSQL
--     substitutes it here too);
--   - a changed signature (a new parameter, even with a DEFAULT): DROP FUNCTION the old signature,
--     then CREATE the new one (CREATE OR REPLACE cannot change arguments), then repeat the GRANTs
--     and REVOKEs the install script makes on it;
--   - changed volatility, strictness, parallel safety, cost, SET options of one overload:
--     ALTER FUNCTION name(argtypes) IMMUTABLE|STABLE|VOLATILE ...;
--   - changed privileges (REVOKE EXECUTE ON FUNCTION ... FROM PUBLIC, GRANT ... TO role): the same
--     statements; run inside an extension script they also set pg_init_privs, as the install does;
--   - a new role (roles are cluster-wide and may exist already from another database):
--       DO $$ BEGIN
--           IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'synthsearch_admin') THEN
--               CREATE ROLE synthsearch_admin NOLOGIN;
--           END IF;
--       END $$;
--     and in the install script the same guarded form;
--   - a new column: ALTER TABLE ... ADD COLUMN at the end of the table (the check compares column
--     order, so the install script must list it last too); a new config table: also
--     SELECT pg_catalog.pg_extension_config_dump(...);
--   - a dropped object: DROP it (ALTER EXTENSION ... DROP first if it must outlive the extension).
-- Data in the extension's own tables (synth_models, synth_train_jobs) may need an UPDATE too; the
-- upgrade test (tests/system/upgrade.sh) fills a 0.1.0 database and checks every answer after the
-- update.
--
-- On-disk formats: 0.2.0 reads everything 0.1.0 wrote (embeddings, synthquery values, synthivf
-- index pages, model checkpoints); nothing here needs a REINDEX or a rewrite.

-- The steps, in the order made.

-- Privileges (the trust release). Model managers: superusers, members of the extension's owner,
-- and members of this role.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles
                   WHERE rolname OPERATOR(pg_catalog.=) 'synthsearch_admin'::pg_catalog.name) THEN
        CREATE ROLE synthsearch_admin NOLOGIN;
    END IF;
END
$$;

-- A job's note: what a successful job did not do (an activation that was refused).
ALTER TABLE synth_train_jobs ADD COLUMN note text;
CREATE OR REPLACE VIEW synth_jobs AS
SELECT j.id AS job,
       j.state,
       j.owner,
       j.model_name AS model,
       j.images,
       j.pairs,
       j.step,
       j.total_steps,
       round(100.0 * j.step / nullif(j.total_steps, 0), 1) AS progress,
       round(j.epoch::numeric, 2) AS epoch,
       j.stage,
       j.losses,
       j.recall,
       round(j.rate::numeric, 2) AS steps_per_second,
       CASE WHEN j.state IN ('queued', 'running', 'cancelling') THEN date_trunc('second', j.eta) END AS time_left,
       j.error,
       j.created_at,
       j.started_at,
       j.finished_at,
       j.model AS model_id,
       j.attempts,
       j.worker_pid,
       j.note
FROM synth_train_jobs j;

-- synth_encode(image, model) resolves a name to its newest version, which can change: STABLE.
ALTER FUNCTION synth_encode(bytea, text) STABLE;

-- synth_index_check: index-only by default, and not for PUBLIC (as amcheck).
CREATE OR REPLACE FUNCTION synth_index_check(
    index regclass, heap boolean DEFAULT false,
    OUT pages integer, OUT lists integer, OUT live_rows bigint, OUT dead_vectors bigint,
    OUT orphan_pages integer, OUT orphan_vectors bigint, OUT heap_rows bigint)
    RETURNS record AS 'MODULE_PATHNAME' LANGUAGE C STRICT;
REVOKE ALL ON FUNCTION synth_index_check(regclass, boolean) FROM PUBLIC;

-- synth_model_import(bytes, name, activate, force): activation over another encoder needs force.
DROP FUNCTION synth_model_import(bytea, text, bool);
CREATE FUNCTION "synth_model_import"(
	"bytes" bytea,
	"name" TEXT DEFAULT 'imported',
	"activate" bool DEFAULT false,
	"force" bool DEFAULT false
) RETURNS bigint
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'synth_model_import_wrapper';

-- Search quality: synth_train(images, NULL, '{"attributes": [...]}') forms its pairs from the
-- images table's attribute columns, and its job row has no pairs table.
ALTER TABLE synth_train_jobs ALTER COLUMN pairs DROP NOT NULL;

-- Training history (recall over training, as pictures).
-- Each evaluation during training (every options.eval_every steps, and at the end): its step and
-- stage, what it cost, the losses of that moment (mean since the previous evaluation), the figures
-- (Recall@K on a fixed sample of the validation pairs, wish precision on a sample of the headline
-- wishes, as in synth_jobs.recall) and a preview grid (PNG: rows of source | synthesized |
-- synthesized from the text alone | target) with each row's wish.
CREATE TABLE synth_train_evals (
    job            bigint NOT NULL REFERENCES synth_train_jobs ON DELETE CASCADE,
    step           bigint NOT NULL,
    stage          text NOT NULL,
    seconds        double precision NOT NULL,
    losses         jsonb NOT NULL DEFAULT '{}',
    recall         jsonb NOT NULL,
    preview        bytea,
    preview_wishes text[],
    evaluated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job, step)
);
-- Kept with the finished jobs they belong to.
SELECT pg_catalog.pg_extension_config_dump('synth_train_evals',
    'WHERE job OPERATOR(pg_catalog.=) ANY (SELECT id FROM @extschema@.synth_train_jobs '
    'WHERE state OPERATOR(pg_catalog.=) ANY (ARRAY[''succeeded'', ''failed'', ''cancelled'']))');

-- The evaluations of every job, as synth_jobs shows every job; the preview images and wishes are
-- the job's data, shown only to a role that may read the job's tables.
CREATE VIEW synth_job_evals AS
SELECT e.job,
       e.step,
       e.stage,
       e.evaluated_at,
       e.seconds,
       e.losses,
       e.recall,
       CASE WHEN pg_catalog.has_table_privilege(j.images, 'SELECT')
                 AND (j.pairs IS NULL OR pg_catalog.has_table_privilege(j.pairs, 'SELECT'))
            THEN e.preview END AS preview,
       CASE WHEN pg_catalog.has_table_privilege(j.images, 'SELECT')
                 AND (j.pairs IS NULL OR pg_catalog.has_table_privilege(j.pairs, 'SELECT'))
            THEN e.preview_wishes END AS preview_wishes
FROM synth_train_evals e JOIN synth_train_jobs j ON j.id = e.job;
REVOKE ALL ON synth_train_evals FROM PUBLIC;
REVOKE ALL ON synth_job_evals FROM PUBLIC;
GRANT SELECT ON synth_job_evals TO PUBLIC;

-- synth_job_curves(job): the job's evaluations drawn as an SVG document (Recall@10 and wish
-- precision@10 against steps, and the losses), from synth_job_evals. psql -Atc 'SELECT
-- synth_job_curves(1)' > job1.svg, then open it in a browser.
CREATE FUNCTION synth_job_curves(job bigint) RETURNS text
    AS 'MODULE_PATHNAME', 'synth_job_curves' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;

-- Walking between two queries.
-- Walking between two queries: the images the generator makes at evenly spaced points on the
-- line between two queries' conditions (same noise), from the first query's image to the
-- second's. Between two wishes on one reference, between two text-only wishes, or between two
-- references under one wish. synth_walk_images does the work (NULL when a reference, wish or
-- points is NULL, as a STRICT function would); synth_walk returns each point's image with its
-- position (0 to 1), synth_walk_strip one PNG of them side by side.
CREATE FUNCTION synth_walk_images(from_reference bytea, to_reference bytea, from_wish text, to_wish text, points integer, model text)
    RETURNS bytea[] AS 'MODULE_PATHNAME', 'synth_walk_images_bytea' LANGUAGE C STABLE PARALLEL SAFE;
CREATE FUNCTION synth_walk_images(from_reference embedding, to_reference embedding, from_wish text, to_wish text, points integer, model text)
    RETURNS bytea[] AS 'MODULE_PATHNAME', 'synth_walk_images_emb' LANGUAGE C STABLE PARALLEL SAFE;
CREATE FUNCTION synth_walk_images(from_wish text, to_wish text, points integer, model text)
    RETURNS bytea[] AS 'MODULE_PATHNAME', 'synth_walk_images_text' LANGUAGE C STABLE PARALLEL SAFE;
-- Images (PNG, JPEG or WebP) side by side in one PNG.
CREATE FUNCTION synth_image_strip(images bytea[]) RETURNS bytea
    AS 'MODULE_PATHNAME', 'synth_image_strip' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION synth_walk(reference bytea, from_wish text, to_wish text, points integer DEFAULT 8, model text DEFAULT NULL)
    RETURNS TABLE (point integer, "position" double precision, image bytea)
    LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT w.point::integer, (w.point - 1)::double precision / (points - 1), w.image
    FROM pg_catalog.unnest(@extschema@.synth_walk_images(reference, reference, from_wish, to_wish, points, model))
         WITH ORDINALITY AS w(image, point);
END;
CREATE FUNCTION synth_walk(reference embedding, from_wish text, to_wish text, points integer DEFAULT 8, model text DEFAULT NULL)
    RETURNS TABLE (point integer, "position" double precision, image bytea)
    LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT w.point::integer, (w.point - 1)::double precision / (points - 1), w.image
    FROM pg_catalog.unnest(@extschema@.synth_walk_images(reference, reference, from_wish, to_wish, points, model))
         WITH ORDINALITY AS w(image, point);
END;
CREATE FUNCTION synth_walk(from_wish text, to_wish text, points integer DEFAULT 8, model text DEFAULT NULL)
    RETURNS TABLE (point integer, "position" double precision, image bytea)
    LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT w.point::integer, (w.point - 1)::double precision / (points - 1), w.image
    FROM pg_catalog.unnest(@extschema@.synth_walk_images(from_wish, to_wish, points, model))
         WITH ORDINALITY AS w(image, point);
END;
CREATE FUNCTION synth_walk(from_reference bytea, to_reference bytea, wish text, points integer DEFAULT 8, model text DEFAULT NULL)
    RETURNS TABLE (point integer, "position" double precision, image bytea)
    LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT w.point::integer, (w.point - 1)::double precision / (points - 1), w.image
    FROM pg_catalog.unnest(@extschema@.synth_walk_images(from_reference, to_reference, wish, wish, points, model))
         WITH ORDINALITY AS w(image, point);
END;
CREATE FUNCTION synth_walk(from_reference embedding, to_reference embedding, wish text, points integer DEFAULT 8, model text DEFAULT NULL)
    RETURNS TABLE (point integer, "position" double precision, image bytea)
    LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT w.point::integer, (w.point - 1)::double precision / (points - 1), w.image
    FROM pg_catalog.unnest(@extschema@.synth_walk_images(from_reference, to_reference, wish, wish, points, model))
         WITH ORDINALITY AS w(image, point);
END;
CREATE FUNCTION synth_walk_strip(reference bytea, from_wish text, to_wish text, points integer DEFAULT 8, model text DEFAULT NULL)
    RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE
    RETURN @extschema@.synth_image_strip(@extschema@.synth_walk_images(reference, reference, from_wish, to_wish, points, model));
CREATE FUNCTION synth_walk_strip(reference embedding, from_wish text, to_wish text, points integer DEFAULT 8, model text DEFAULT NULL)
    RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE
    RETURN @extschema@.synth_image_strip(@extschema@.synth_walk_images(reference, reference, from_wish, to_wish, points, model));
CREATE FUNCTION synth_walk_strip(from_wish text, to_wish text, points integer DEFAULT 8, model text DEFAULT NULL)
    RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE
    RETURN @extschema@.synth_image_strip(@extschema@.synth_walk_images(from_wish, to_wish, points, model));
CREATE FUNCTION synth_walk_strip(from_reference bytea, to_reference bytea, wish text, points integer DEFAULT 8, model text DEFAULT NULL)
    RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE
    RETURN @extschema@.synth_image_strip(@extschema@.synth_walk_images(from_reference, to_reference, wish, wish, points, model));
CREATE FUNCTION synth_walk_strip(from_reference embedding, to_reference embedding, wish text, points integer DEFAULT 8, model text DEFAULT NULL)
    RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE
    RETURN @extschema@.synth_image_strip(@extschema@.synth_walk_images(from_reference, to_reference, wish, wish, points, model));

-- The model server's state (src/server/status.rs).
CREATE FUNCTION synth_server_models() RETURNS TABLE (
    server integer, database oid, model bigint, name text, version integer, bytes bigint,
    requests bigint, loaded timestamp with time zone, last_used timestamp with time zone)
    STRICT VOLATILE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'synth_server_models_wrapper';
CREATE FUNCTION synth_server_status() RETURNS TABLE (
    server integer, pid integer, started timestamp with time zone, device text, threads integer,
    connections bigint, queue bigint, requests bigint, batches bigint, mean_batch double precision,
    errors bigint, models integer, model_bytes bigint, resident_bytes bigint)
    STRICT VOLATILE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'synth_server_status_wrapper';
CREATE VIEW synth_model_server AS SELECT * FROM @extschema@.synth_server_status();
CREATE VIEW synth_model_server_models AS
    SELECT m.server, d.datname AS database, m.model, m.name, m.version, m.bytes, m.requests,
           m.loaded, m.last_used
    FROM @extschema@.synth_server_models() m
    LEFT JOIN pg_catalog.pg_database d ON d.oid OPERATOR(pg_catalog.=) m.database
    WHERE m.database OPERATOR(pg_catalog.=) (SELECT oid FROM pg_catalog.pg_database
                                             WHERE datname OPERATOR(pg_catalog.=) pg_catalog.current_database())
       OR pg_catalog.pg_has_role('pg_read_all_stats', 'MEMBER');
GRANT SELECT ON synth_model_server, synth_model_server_models TO PUBLIC;
REVOKE ALL ON FUNCTION synth_server_models() FROM PUBLIC;

-- Many images in one call (src/model/functions.rs).
CREATE FUNCTION synth_encode_batch(images bytea[]) RETURNS embedding[]
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION synth_encode_batch(images bytea[], model text) RETURNS embedding[]
    AS 'MODULE_PATHNAME' LANGUAGE C STABLE STRICT PARALLEL SAFE;

-- Scaling out with Citus. synth_distribute_models(force): on a Citus coordinator, copies to every
-- worker node each model of this registry that the node lacks (same name, encoder and generator
-- versions), then makes the coordinator's active model the active one on every node, so that
-- what runs on the shards finds it: an expression index on synth_encode(img) and the encoder
-- check of a synthivf build. Queries need no model there (the synthquery reaches the shards as a
-- constant). Run it after training or activating a model and before moving shards to a new node.
-- With force, a node's activation skips its encoder check (as synth_model_activate(id, true)).
-- One row per node and model: 'copied' (with the node's model id), 'present', 'activated'.
CREATE FUNCTION synth_distribute_models(force boolean DEFAULT false)
    RETURNS TABLE (node text, port integer, model text, action text)
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    m record;
    r record;
    cmd text;
    ext text := (SELECT pg_catalog.quote_ident(n.nspname) FROM pg_catalog.pg_extension e
                 JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) e.extnamespace
                 WHERE e.extname OPERATOR(pg_catalog.=) 'synthsearch');
    same text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'citus') THEN
        RAISE EXCEPTION 'synth_distribute_models needs the citus extension in this database'
            USING ERRCODE = '55000';
    END IF;
    FOR m IN SELECT id, name, version, encoder_version, generator_version, active
             FROM @extschema@.synth_models ORDER BY id LOOP
        same := pg_catalog.format(
            'name OPERATOR(pg_catalog.=) %L AND encoder_version OPERATOR(pg_catalog.=) %L AND generator_version OPERATOR(pg_catalog.=) %L',
            m.name, m.encoder_version, m.generator_version);
        cmd := pg_catalog.format(
            'SELECT CASE WHEN EXISTS (SELECT 1 FROM %1$s.synth_models WHERE %2$s) THEN ''present'' '
            'ELSE ''copied as model '' OPERATOR(pg_catalog.||) %1$s.synth_model_import(pg_catalog.decode(%3$L, ''base64''), %4$L)::text END',
            ext, same, pg_catalog.encode(@extschema@.synth_model_export(m.id::text), 'base64'), m.name);
        FOR r IN EXECUTE 'SELECT nodename, nodeport, success, result FROM pg_catalog.run_command_on_workers($1)' USING cmd LOOP
            IF NOT r.success THEN
                RAISE EXCEPTION 'copying model % (% version %) to %:% failed: %', m.id, m.name, m.version, r.nodename, r.nodeport, r.result
                    USING ERRCODE = '58000';
            END IF;
            node := r.nodename; port := r.nodeport; model := m.name || ' version ' || m.version; action := r.result;
            RETURN NEXT;
        END LOOP;
        IF m.active THEN
            cmd := pg_catalog.format(
                'SELECT pg_catalog.count(%1$s.synth_model_activate(id, %3$L)) FROM (SELECT id FROM %1$s.synth_models '
                'WHERE %2$s AND NOT active ORDER BY version DESC LIMIT 1) s',
                ext, same, force);
            FOR r IN EXECUTE 'SELECT nodename, nodeport, success, result FROM pg_catalog.run_command_on_workers($1)' USING cmd LOOP
                IF NOT r.success THEN
                    RAISE EXCEPTION 'activating model % (% version %) on %:% failed: %', m.id, m.name, m.version, r.nodename, r.nodeport, r.result
                        USING ERRCODE = '55000';
                END IF;
                IF r.result OPERATOR(pg_catalog.=) '1' THEN
                    node := r.nodename; port := r.nodeport; model := m.name || ' version ' || m.version; action := 'activated';
                    RETURN NEXT;
                END IF;
            END LOOP;
        END IF;
    END LOOP;
END
$fn$;

-- synth_index_stats: the lists' counts (meta page and directory only, under an AccessShareLock)
-- and whether they have gone stale (trained on fewer than 4 rows a list, the index holds more
-- than twice the rows they were trained on, or one list holds more than 10 times its share),
-- with the advice to REINDEX. For roles that may read the table (or pg_stat_scan_tables), as pgstattuple.
CREATE FUNCTION synth_index_stats(
    index regclass,
    OUT lists integer, OUT build_rows bigint, OUT live_rows bigint, OUT dead_rows bigint,
    OUT largest_list bigint, OUT empty_lists integer, OUT stale boolean, OUT advice text)
    RETURNS record AS 'MODULE_PATHNAME' LANGUAGE C STRICT;

-- Training jobs: a worker that keeps crashing is relaunched a bounded number of times
-- (src/worker/jobs.rs), and a job's error is shown only to roles that may read its data.
ALTER TABLE synth_train_jobs ADD COLUMN crashes integer NOT NULL DEFAULT 0;
ALTER TABLE synth_train_jobs ADD COLUMN crashed_at timestamptz;
CREATE OR REPLACE VIEW synth_jobs AS
SELECT j.id AS job,
       j.state,
       j.owner,
       j.model_name AS model,
       j.images,
       j.pairs,
       j.step,
       j.total_steps,
       round(100.0 * j.step / nullif(j.total_steps, 0), 1) AS progress,
       round(j.epoch::numeric, 2) AS epoch,
       j.stage,
       j.losses,
       j.recall,
       round(j.rate::numeric, 2) AS steps_per_second,
       CASE WHEN j.state IN ('queued', 'running', 'cancelling') THEN date_trunc('second', j.eta) END AS time_left,
       -- An error may quote the job's data (an image id, a split value): shown to the job's role
       -- and to roles that may read its tables, as the previews in synth_job_evals.
       CASE WHEN j.error IS NULL THEN NULL
            WHEN pg_catalog.pg_has_role(j.owner, 'MEMBER')
                 OR (pg_catalog.has_table_privilege(j.images, 'SELECT')
                     AND (j.pairs IS NULL OR pg_catalog.has_table_privilege(j.pairs, 'SELECT')))
            THEN j.error
            ELSE 'the job failed; its error is shown to its role and to roles that may read its tables'
       END AS error,
       j.created_at,
       j.started_at,
       j.finished_at,
       j.model AS model_id,
       j.attempts,
       j.worker_pid,
       j.note
FROM synth_train_jobs j;

-- The model server's models (src/server/status.rs): synth_server_models() returns only the
-- caller's database's models unless the caller has the privileges of pg_read_all_stats, so
-- everyone may run it, and synth_model_server_models works for everyone as documented.
GRANT EXECUTE ON FUNCTION synth_server_models() TO PUBLIC;
