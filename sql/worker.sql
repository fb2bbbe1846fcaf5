-- Training as a background worker: a job table, the last checkpoint of each unfinished job, and
-- the synth_jobs view. Users start jobs with synth_train(...) and stop them with synth_cancel(job);
-- the tables are written only by those functions and by the workers (as the extension's owner).

CREATE TABLE synth_train_jobs (
    id               bigserial PRIMARY KEY,
    state            text NOT NULL DEFAULT 'queued'
                     CHECK (state IN ('queued', 'running', 'cancelling', 'cancelled', 'succeeded', 'failed')),
    -- The role that called synth_train: the worker runs as it and reads only what it may read.
    owner            regrole NOT NULL,
    images           regclass NOT NULL,
    -- NULL: pairs formed from the images table's attribute columns (options.attributes).
    pairs            regclass,
    -- The options with every default filled in, so a resumed run repeats the same recipe.
    options          jsonb NOT NULL,
    model_name       text NOT NULL,
    step             bigint NOT NULL DEFAULT 0,
    total_steps      bigint NOT NULL DEFAULT 0,
    epoch            double precision NOT NULL DEFAULT 0,
    stage            text,
    -- Mean of each loss over the steps since the previous report.
    losses           jsonb NOT NULL DEFAULT '{}',
    -- Recall@K on the validation pairs, from the last evaluation (its step included).
    recall           jsonb,
    rate             double precision,
    eta              interval,
    worker_pid       integer,
    -- pg_postmaster_start_time() of the server whose worker last ran the job.
    server_started   timestamptz,
    attempts         integer NOT NULL DEFAULT 0,
    error            text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    updated_at       timestamptz,
    finished_at      timestamptz,
    -- The model the job stored (synth_models.id).
    model            bigint,
    -- What a successful job did not do, e.g. an activation that was refused (an ordinary role's
    -- job, or another encoder without force).
    note             text,
    -- Times in a row its worker exited without recording how (a crash), with no checkpoint in
    -- between; past a bound the launcher fails the job instead of relaunching it.
    crashes          integer NOT NULL DEFAULT 0,
    -- When the last of them was counted (a role's crashes in an hour are bounded too).
    crashed_at       timestamptz
);
CREATE INDEX synth_train_jobs_unfinished ON synth_train_jobs (id)
    WHERE state IN ('queued', 'running', 'cancelling');

-- The last checkpoint of a job: model and optimizer state, so a job resumes where it stopped.
CREATE TABLE synth_train_checkpoints (
    job      bigint PRIMARY KEY REFERENCES synth_train_jobs ON DELETE CASCADE,
    step     bigint NOT NULL,
    bytes    bytea NOT NULL,
    saved_at timestamptz NOT NULL DEFAULT now()
);
-- Weights do not compress; spare the CPU.
ALTER TABLE synth_train_checkpoints ALTER COLUMN bytes SET STORAGE EXTERNAL;

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

-- pg_dump keeps the history of finished jobs (models name their job); unfinished jobs and their
-- checkpoints belong to the server that runs them and are not carried to another database.
SELECT pg_catalog.pg_extension_config_dump('synth_train_jobs',
    'WHERE state IN (''succeeded'', ''failed'', ''cancelled'')');
SELECT pg_catalog.pg_extension_config_dump('synth_train_jobs_id_seq', '');

CREATE VIEW synth_jobs AS
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

-- Everyone may watch the jobs; only the functions below change them.
REVOKE ALL ON synth_train_jobs, synth_train_checkpoints FROM PUBLIC;
REVOKE ALL ON synth_jobs FROM PUBLIC;
GRANT SELECT ON synth_jobs TO PUBLIC;

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

-- synth_train(images, pairs, options): starts a training job in a background worker and returns
-- its id at once; the worker starts training when the calling transaction commits.
--   images: a table with an id column (any type, compared as text) and an image column (bytea:
--           PNG, JPEG or WebP); optional category and split (train/val/test) columns.
--   pairs:  a table with source and target (image ids) and caption (text, or text[] of which the
--           first two are used); an optional split column, else a seeded tenth is held out.
--           NULL: pairs are formed from the attribute columns that options.attributes names
--           (products of one category that differ in one or two of them, captions from templates).
--   options: see README (name, activate, base_model, column names, image_size, steps, batch, ...).
CREATE FUNCTION synth_train(images regclass, pairs regclass, options jsonb DEFAULT '{}')
    RETURNS bigint
    AS 'MODULE_PATHNAME', 'synth_train' LANGUAGE C VOLATILE PARALLEL UNSAFE;
