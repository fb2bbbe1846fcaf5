//! `synth_train`, `synth_cancel` and `synth_resume`: job rows, written as the extension's owner
//! after the caller's rights are checked, and the dynamic background workers that run them.

use pgrx::bgworkers::BackgroundWorkerBuilder;
use pgrx::pg_sys::errcodes::PgSqlErrorCode;
use pgrx::prelude::*;
use pgrx::{JsonB, pg_sys};

use super::MAX_JOBS;
use super::data::{self, Columns, describe};
use super::options::TrainOptions;
use crate::fmgr::{error, require_privilege, spi_bool};
use crate::model::registry::q;
use crate::pg_function_info_v1;
use crate::security::{self, as_owner};

/// First key of the session advisory lock a worker holds on its job (`pg_try_advisory_lock(key, job)`):
/// "SYNT". A job whose lock nobody holds has no worker.
pub const LOCK_KEY: i32 = 0x5359_4e54;

/// Second key of the job's advisory lock.
pub fn lock_id(job: i64) -> i32 {
    (job & 0x7fff_ffff) as i32
}

/// What a training worker is told: its job, database, role, and the transaction whose commit
/// makes the job row visible (0 when the row is already committed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkerArgs {
    pub job: i64,
    pub database: pg_sys::Oid,
    pub role: pg_sys::Oid,
    pub xid: u64,
}

impl WorkerArgs {
    pub fn to_extra(self) -> String {
        format!(
            "{} {} {} {}",
            self.job,
            self.database.to_u32(),
            self.role.to_u32(),
            self.xid
        )
    }

    pub fn parse(extra: &str) -> Option<WorkerArgs> {
        let mut it = extra.split_ascii_whitespace();
        let job = it.next()?.parse().ok()?;
        let database = pg_sys::Oid::from(it.next()?.parse::<u32>().ok()?);
        let role = pg_sys::Oid::from(it.next()?.parse::<u32>().ok()?);
        let xid = it.next()?.parse().ok()?;
        Some(WorkerArgs {
            job,
            database,
            role,
            xid,
        })
    }
}

/// Registers a dynamic background worker for the job; false when no worker slot is free.
pub fn launch(args: WorkerArgs) -> bool {
    BackgroundWorkerBuilder::new(&format!("synthsearch train job {}", args.job))
        .set_type("synthsearch train")
        .set_library("synthsearch")
        .set_function("synth_train_worker_main")
        .enable_spi_access()
        .set_extra(&args.to_extra())
        .load_dynamic()
        .is_ok()
}

/// Whether a worker holds the job's lock now (probes it, and lets go at once if it was free).
pub fn worker_alive(job: i64) -> bool {
    let free = spi_bool(
        "SELECT pg_catalog.pg_try_advisory_lock($1, $2)",
        &[LOCK_KEY.into(), lock_id(job).into()],
    );
    if free {
        security::pinned(|| {
            Spi::run_with_args(
                "SELECT pg_catalog.pg_advisory_unlock($1, $2)",
                &[LOCK_KEY.into(), lock_id(job).into()],
            )
        })
        .expect("unlock");
    }
    !free
}

pg_function_info_v1!(pg_finfo_synth_train);

/// `synth_train(images regclass, pairs regclass, options jsonb DEFAULT '{}') RETURNS bigint`
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn synth_train(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    let null = |what: &str| -> ! {
        error(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            format!("{what} must not be null"),
        )
    };
    // Safety: declared (regclass, regclass, jsonb) and not STRICT; NULLs come back as None.
    let (images, pairs, options) = unsafe {
        (
            pgrx::fcinfo::pg_getarg::<pg_sys::Oid>(fcinfo, 0),
            pgrx::fcinfo::pg_getarg::<pg_sys::Oid>(fcinfo, 1),
            pgrx::fcinfo::pg_getarg::<JsonB>(fcinfo, 2),
        )
    };
    let images = images.unwrap_or_else(|| null("images"));
    // Without a pairs table, pairs are formed from the images table's attribute columns.
    let options = options.unwrap_or_else(|| null("options"));
    // The caller's own queries too mean what they say, whatever the caller's search_path.
    pg_sys::Datum::from(security::pinned(|| start(images, pairs, &options.0)))
}

fn start(images: pg_sys::Oid, pairs: Option<pg_sys::Oid>, given: &serde_json::Value) -> i64 {
    // Safety: the current user id of this backend.
    let role = unsafe { pg_sys::GetUserId() };
    let (can_login, role_name) = Spi::get_two_with_args::<bool, String>(
        "SELECT rolcanlogin, rolname::pg_catalog.text FROM pg_catalog.pg_roles WHERE oid OPERATOR(pg_catalog.=) $1",
        &[role.into()],
    )
    .expect("pg_roles");
    require_privilege(can_login == Some(true), || {
        format!(
            "role \"{}\" cannot log in, so no background worker can run as it: train as a role with LOGIN",
            role_name.unwrap_or_default()
        )
    });
    require_few_crashes(role);
    let threads = crate::gucs::THREADS.get();
    let device = match crate::gucs::DEVICE.get() {
        crate::gucs::Device::Auto => "auto",
        crate::gucs::Device::Cpu => "cpu",
        crate::gucs::Device::Cuda => "cuda",
    };
    let opts = TrainOptions::resolve(given, threads, device).unwrap_or_else(|e| {
        error(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("invalid training options: {e}"),
        )
    });

    // Replacing the active model is for model managers; an ordinary role's job stores its model.
    if opts.activate {
        security::require_model_manager("activate the model a training job stores");
    }
    // A name another role owns is refused now, not hours later when the job stores its model
    // (where it is checked again, under the name's lock).
    crate::model::registry::check_model_name(&opts.name);
    crate::model::registry::require_name_owner(&opts.name, security::is_model_manager());

    if pairs.is_none() && opts.attributes.is_empty() {
        error(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            "pairs must not be null unless option \"attributes\" names the images table's attribute \
             columns to form pairs from, e.g. '{\"attributes\": [\"colour\", \"material\", \"pattern\"]}'",
        );
    }
    // The caller must be able to read what the worker will read as them.
    let image_cols = describe(images, "images", &data::image_columns(&opts));
    let pair_cols = pairs.map(|p| describe(p, "pairs", &data::pair_columns(&opts)));
    check_types(&image_cols, &opts);
    for what in std::iter::once(&image_cols).chain(pair_cols.as_ref()) {
        // `SELECT 1`, not `SELECT FROM`: Citus cannot plan a distributed table's empty target list.
        let empty =
            Spi::get_one::<bool>(&format!("SELECT NOT EXISTS (SELECT 1 FROM {})", what.name))
                .expect("emptiness")
                .unwrap_or(true);
        if empty {
            error(
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                format!(
                    "table {} has no rows: there is nothing to train on",
                    what.name
                ),
            );
        }
    }
    if let Some(base) = opts.base_model {
        let found = Spi::get_one_with_args::<bool>(
            &q("SELECT EXISTS (SELECT FROM @extschema@.synth_models WHERE id OPERATOR(pg_catalog.=) $1)"),
            &[base.into()],
        )
        .expect("synth_models")
        .unwrap_or(false);
        if !found {
            error(
                PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
                format!("base model {base} does not exist"),
            );
        }
    }

    let options = serde_json::to_value(&opts).expect("options serialize");
    let id = as_owner(|| {
        // One synth_train at a time per database counts the jobs, so two cannot both take the last place.
        Spi::run_with_args(
            "SELECT pg_catalog.pg_advisory_xact_lock($1, 0)",
            &[LOCK_KEY.into()],
        )
        .expect("lock");
        let max = MAX_JOBS.get();
        if max == 0 {
            error(
                PgSqlErrorCode::ERRCODE_CONFIGURATION_LIMIT_EXCEEDED,
                "training is turned off: synthsearch.max_jobs is 0",
            );
        }
        let unfinished = Spi::get_one::<i64>(&q(
            "SELECT pg_catalog.count(*) FROM @extschema@.synth_train_jobs WHERE state OPERATOR(pg_catalog.=) ANY ('{queued,running,cancelling}')",
        ))
        .expect("count")
        .unwrap_or(0);
        if unfinished >= max as i64 {
            error(
                PgSqlErrorCode::ERRCODE_CONFIGURATION_LIMIT_EXCEEDED,
                format!(
                    "the limit of {max} training jobs (synthsearch.max_jobs) is reached: \
                     wait for one to finish or cancel one with synth_cancel(job)"
                ),
            );
        }
        Spi::get_one_with_args::<i64>(
            &q("INSERT INTO @extschema@.synth_train_jobs (owner, images, pairs, options, model_name, total_steps) \
                VALUES ($1::pg_catalog.oid::pg_catalog.regrole, $2::pg_catalog.oid::pg_catalog.regclass, \
                        $3::pg_catalog.oid::pg_catalog.regclass, $4, $5, $6) RETURNING id"),
            &[
                role.into(),
                images.into(),
                pairs.into(),
                JsonB(options).into(),
                opts.name.as_str().into(),
                ((opts.train.encoder_steps + opts.train.gan_steps) as i64).into(),
            ],
        )
        .expect("insert job")
        .expect("INSERT ... RETURNING returns a row")
    });
    // The worker waits for this transaction: it trains if it commits and leaves if it aborts.
    let xid = current_xid();
    // Safety: this backend's database.
    let database = unsafe { pg_sys::MyDatabaseId };
    if !launch(WorkerArgs {
        job: id,
        database,
        role,
        xid,
    }) {
        error(
            PgSqlErrorCode::ERRCODE_CONFIGURATION_LIMIT_EXCEEDED,
            "no background worker slot is free for the training job: raise max_worker_processes",
        );
    }
    id
}

fn check_types(images: &Columns, opts: &TrainOptions) {
    let ty = images.type_of(&opts.image_column).unwrap_or_default();
    if ty != "bytea" {
        error(
            PgSqlErrorCode::ERRCODE_DATATYPE_MISMATCH,
            format!(
                "column \"{}\" of table {} is {ty}, not bytea: it must hold image files (PNG, JPEG or WebP)",
                opts.image_column, images.name
            ),
        );
    }
}

/// `synth_cancel(job bigint) RETURNS boolean`: asks the job's worker to stop between two steps
/// (the job ends cancelled), or drops the checkpoint a failed job kept for `synth_resume()`.
/// False when the job has finished and kept nothing.
#[pg_extern(volatile, parallel_unsafe)]
fn synth_cancel(job: Option<i64>) -> bool {
    let job = job.unwrap_or_else(|| {
        error(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            "job must not be null",
        )
    });
    let row = as_owner(|| {
        Spi::get_three_with_args::<String, pg_sys::Oid, String>(
            &q(
                "SELECT state, owner::pg_catalog.oid, owner::pg_catalog.text \
                FROM @extschema@.synth_train_jobs WHERE id OPERATOR(pg_catalog.=) $1",
            ),
            &[job.into()],
        )
    });
    let (state, owner, owner_name) = match row {
        Ok((Some(s), Some(o), Some(n))) => (s, o, n),
        _ => error(
            PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
            format!("training job {job} does not exist"),
        ),
    };
    // Asked as the caller: a superuser, or a member of the job's role.
    let allowed = spi_bool(
        "SELECT pg_catalog.pg_has_role(current_user, $1, 'MEMBER')",
        &[owner.into()],
    );
    require_privilege(allowed, || {
        format!("permission denied to cancel training job {job}: it belongs to role {owner_name}")
    });
    as_owner(|| {
        if state == "failed" {
            // A failed job's checkpoint waits for synth_resume(); cancelling gives it up.
            return spi_bool(
                &q(
                    "WITH d AS (DELETE FROM @extschema@.synth_train_checkpoints \
                    WHERE job OPERATOR(pg_catalog.=) $1 RETURNING 1) SELECT EXISTS (SELECT FROM d)",
                ),
                &[job.into()],
            );
        }
        if !UNFINISHED.contains(&state.as_str()) {
            return false;
        }
        if worker_alive(job) {
            Spi::run_with_args(
                &q("UPDATE @extschema@.synth_train_jobs SET state = 'cancelling', updated_at = pg_catalog.now() \
                    WHERE id OPERATOR(pg_catalog.=) $1 AND state OPERATOR(pg_catalog.=) ANY ('{queued,running}')"),
                &[job.into()],
            )
            .expect("cancel");
        } else {
            // No worker runs it (it waits for a resume): it ends here.
            Spi::run_with_args(
                &q("UPDATE @extschema@.synth_train_jobs SET state = 'cancelled', eta = NULL, \
                    finished_at = pg_catalog.now(), updated_at = pg_catalog.now() WHERE id OPERATOR(pg_catalog.=) $1"),
                &[job.into()],
            )
            .expect("cancel");
            Spi::run_with_args(
                &q("DELETE FROM @extschema@.synth_train_checkpoints WHERE job OPERATOR(pg_catalog.=) $1"),
                &[job.into()],
            )
            .expect("cancel");
        }
        true
    })
}

/// The states of a job that is not finished.
pub const UNFINISHED: [&str; 3] = ["queued", "running", "cancelling"];

/// `synth_resume() RETURNS integer`: starts a worker for every unfinished job that has none (after
/// a crash or restart), from its last checkpoint, and for every failed job that kept a checkpoint
/// (a transient error: the job continues where it stopped); the caller's own jobs, or all for a
/// superuser. The launcher does the first part in every database when the server starts with the
/// library preloaded.
#[pg_extern(volatile, parallel_unsafe)]
fn synth_resume() -> i32 {
    // Safety: reads the current user's role flags.
    let superuser = unsafe { pg_sys::superuser() };
    security::pinned(|| resume_orphans(superuser, true))
}

/// Relaunches unfinished jobs without a worker, and with `failed` the failed jobs that kept a
/// checkpoint; `all` ignores who owns them.
/// Crash relaunches in a row (no checkpoint in between) after which a job fails instead.
pub const MAX_CRASH_RELAUNCHES: i32 = 3;
/// Crashes of one role's jobs in an hour after which none of them is relaunched or resumed and
/// the role starts no job (each crash restarts every session of the cluster; a new job or a
/// resume must not bring fresh ones). Superusers are not held to it.
pub const ROLE_CRASH_LIMIT: i64 = 8;

/// Crashes of `role`'s jobs' workers in the last hour.
fn recent_crashes(role: pg_sys::Oid) -> i64 {
    as_owner(|| {
        Spi::get_one_with_args::<i64>(
            &q("SELECT coalesce(pg_catalog.sum(crashes), 0)::pg_catalog.int8 FROM @extschema@.synth_train_jobs \
                WHERE owner OPERATOR(pg_catalog.=) $1::pg_catalog.regrole \
                  AND crashed_at OPERATOR(pg_catalog.>) (pg_catalog.now() OPERATOR(pg_catalog.-) '1 hour'::pg_catalog.interval)"),
            &[role.into()],
        )
        .expect("crash count")
        .unwrap_or(0)
    })
}

/// 53400 when `role`'s jobs crashed more than [`ROLE_CRASH_LIMIT`] times in the last hour.
fn require_few_crashes(role: pg_sys::Oid) {
    // Safety: reads the current user's role flags.
    if unsafe { pg_sys::superuser() } {
        return;
    }
    let n = recent_crashes(role);
    if n >= ROLE_CRASH_LIMIT {
        crate::fmgr::error_with(
            PgSqlErrorCode::ERRCODE_CONFIGURATION_LIMIT_EXCEEDED,
            format!(
                "the training jobs of this role crashed their workers {n} times in the last hour"
            ),
            Some(
                "Each crash restarts every session of the cluster; the server log says why.".into(),
            ),
            Some("Wait an hour, or ask a superuser to start or resume the job.".into()),
        );
    }
}

pub fn resume_orphans(all: bool, failed: bool) -> i32 {
    let jobs: Vec<(i64, pg_sys::Oid, bool, bool, bool)> = as_owner(|| {
        Spi::connect(|client| {
            client
                .select(
                    &q("SELECT j.id, j.owner::pg_catalog.oid, \
                               EXISTS (SELECT FROM pg_catalog.pg_roles r WHERE r.oid OPERATOR(pg_catalog.=) j.owner), \
                               j.state OPERATOR(pg_catalog.=) 'failed', \
                               j.worker_pid IS NOT NULL AND j.state OPERATOR(pg_catalog.<>) 'failed' \
                        FROM @extschema@.synth_train_jobs j \
                        WHERE j.state OPERATOR(pg_catalog.=) ANY ('{queued,running,cancelling}') \
                           OR ($1 AND j.state OPERATOR(pg_catalog.=) 'failed' AND EXISTS \
                               (SELECT FROM @extschema@.synth_train_checkpoints c WHERE c.job OPERATOR(pg_catalog.=) j.id)) \
                        ORDER BY j.id"),
                    None,
                    &[failed.into()],
                )
                .expect("jobs")
                .map(|r| {
                    (
                        r.get::<i64>(1).ok().flatten().unwrap_or(0),
                        r.get::<pg_sys::Oid>(2).ok().flatten().unwrap_or(pg_sys::Oid::INVALID),
                        r.get::<bool>(3).ok().flatten().unwrap_or(false),
                        r.get::<bool>(4).ok().flatten().unwrap_or(false),
                        r.get::<bool>(5).ok().flatten().unwrap_or(false),
                    )
                })
                .collect()
        })
    });
    // Safety: this backend's user and database.
    let (me, database) = unsafe { (pg_sys::GetUserId(), pg_sys::MyDatabaseId) };
    let mut launched = 0;
    for (job, owner, owner_exists, was_failed, died) in jobs {
        if !all && owner != me {
            continue;
        }
        if as_owner(|| worker_alive(job)) {
            continue;
        }
        if !owner_exists {
            as_owner(|| {
                Spi::run_with_args(
                    &q("UPDATE @extschema@.synth_train_jobs SET state = 'failed', error = 'the role that started the job no longer exists', \
                        eta = NULL, finished_at = pg_catalog.now(), updated_at = pg_catalog.now() WHERE id OPERATOR(pg_catalog.=) $1"),
                    &[job.into()],
                )
                .expect("fail job")
            });
            continue;
        }
        // Its worker is gone without recording how (an orderly stop clears worker_pid): a crash.
        // A job whose worker keeps crashing before its next checkpoint is not relaunched for ever
        // (each crash restarts every session of the cluster): after MAX_CRASH_RELAUNCHES it fails.
        if died && !was_failed {
            let failed_now = as_owner(|| {
                Spi::get_one_with_args::<bool>(
                    &q("WITH u AS (UPDATE @extschema@.synth_train_jobs SET crashes = crashes OPERATOR(pg_catalog.+) 1, \
                           crashed_at = pg_catalog.now(), worker_pid = NULL, updated_at = pg_catalog.now() \
                         WHERE id OPERATOR(pg_catalog.=) $1 RETURNING crashes, owner) \
                        SELECT u.crashes OPERATOR(pg_catalog.>) $2 \
                            OR (SELECT coalesce(pg_catalog.sum(j.crashes), 0) FROM @extschema@.synth_train_jobs j \
                                WHERE j.owner OPERATOR(pg_catalog.=) u.owner AND j.id OPERATOR(pg_catalog.<>) $1 \
                                  AND j.crashed_at OPERATOR(pg_catalog.>) (pg_catalog.now() OPERATOR(pg_catalog.-) '1 hour'::pg_catalog.interval)) \
                               OPERATOR(pg_catalog.+) u.crashes OPERATOR(pg_catalog.>) $3 \
                        FROM u"),
                    &[job.into(), MAX_CRASH_RELAUNCHES.into(), ROLE_CRASH_LIMIT.into()],
                )
                .expect("crash count")
                .unwrap_or(false)
            });
            if failed_now {
                let message = format!(
                    "the training worker exited without recording an error {} times in a row, or the \
                     role's jobs more than {ROLE_CRASH_LIMIT} times in an hour (a crash, or the server's \
                     crash restart; the server log says why): not relaunched again; synth_resume() tries \
                     again from the last checkpoint",
                    MAX_CRASH_RELAUNCHES + 1
                );
                as_owner(|| {
                    Spi::run_with_args(
                        &q("UPDATE @extschema@.synth_train_jobs SET state = 'failed', error = $2, eta = NULL, \
                            finished_at = pg_catalog.now() WHERE id OPERATOR(pg_catalog.=) $1"),
                        &[job.into(), message.as_str().into()],
                    )
                    .expect("fail job")
                });
                pgrx::warning!("synthsearch: training job {job}: {message}");
                continue;
            }
        }
        // A failed job is queued again in this transaction; its worker waits for the commit.
        // Safety: reads the current user's role flags.
        if was_failed
            && !unsafe { pg_sys::superuser() }
            && recent_crashes(owner) >= ROLE_CRASH_LIMIT
        {
            pgrx::warning!(
                "synthsearch: training job {job} is not resumed: its role's jobs crashed their workers \
                 {ROLE_CRASH_LIMIT} times or more in the last hour"
            );
            continue;
        }
        let xid = if was_failed {
            as_owner(|| {
                Spi::run_with_args(
                    &q("UPDATE @extschema@.synth_train_jobs SET state = 'queued', finished_at = NULL, \
                        updated_at = pg_catalog.now() WHERE id OPERATOR(pg_catalog.=) $1"),
                    &[job.into()],
                )
                .expect("requeue job")
            });
            current_xid()
        } else {
            0
        };
        if launch(WorkerArgs {
            job,
            database,
            role: owner,
            xid,
        }) {
            launched += 1;
        } else {
            pgrx::warning!(
                "synthsearch: no background worker slot is free to resume training job {job}"
            );
        }
    }
    launched
}

/// The id of the current transaction (it assigns one).
fn current_xid() -> u64 {
    security::pinned(|| {
        Spi::get_one::<String>("SELECT pg_catalog.pg_current_xact_id()::pg_catalog.text")
    })
    .expect("xid")
    .and_then(|s| s.parse::<u64>().ok())
    .expect("pg_current_xact_id returns a number")
}
