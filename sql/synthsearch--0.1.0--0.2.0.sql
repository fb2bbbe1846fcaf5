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
