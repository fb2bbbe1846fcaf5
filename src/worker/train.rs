//! The training worker: one dynamic background worker per job, running as the role that called
//! `synth_train`. It reads its data in one short transaction, trains outside any transaction and
//! writes progress, checkpoints and finally the model in short ones.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pgrx::bgworkers::{BackgroundWorker, SignalWakeFlags};
use pgrx::prelude::*;
use pgrx::{JsonB, pg_sys};
use synthsearch_data::Split;
use synthsearch_model::{
    EvalSample, JudgeConfig, LossMeans, Model, ModelInit, Stage, Trainer, evaluate_point,
    final_evaluation, preview,
};

use super::data;
use super::jobs::{LOCK_KEY, WorkerArgs, lock_id};
use super::options::TrainOptions;
use super::xact::{nap, panic_message, stop_requested, transaction};
use crate::fmgr::spi_bool;
use crate::model::registry::{model_bytes, q, store_model};
use crate::security::{self, as_owner};

/// How long a worker waits for the transaction that created its job to commit.
const COMMIT_WAIT: Duration = Duration::from_secs(600);
/// Progress is written at least this often.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(2);

#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn synth_train_worker_main(_arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    let Some(args) = WorkerArgs::parse(BackgroundWorker::get_extra()) else {
        pgrx::log!("synthsearch: training worker started without a job");
        return;
    };
    BackgroundWorker::connect_worker_to_spi_by_oid(Some(args.database), Some(args.role));
    // The database's and the role's search_path defaults do not reach the worker's SQL.
    security::pin_session();
    // Before libtorch starts a thread: signals reach this thread alone, inside transactions,
    // naps and flag checks (pgrx's handlers abort the process on any other thread).
    crate::signals::hold();
    run(args);
}

/// How a job's run ended in this worker.
enum Outcome {
    Succeeded,
    Cancelled,
    /// The server is shutting down: the checkpoint is saved, the job resumes after the restart.
    Stopped,
}

/// The job row as the worker needs it.
struct Job {
    state: String,
    images: pg_sys::Oid,
    /// None: pairs are formed from the images table's attribute columns.
    pairs: Option<pg_sys::Oid>,
    options: TrainOptions,
}

fn run(args: WorkerArgs) {
    let job = args.job;
    // The job's lock says a worker runs it; another worker that has it already wins.
    let locked = transaction(|| {
        spi_bool(
            "SELECT pg_catalog.pg_try_advisory_lock($1, $2)",
            &[LOCK_KEY.into(), lock_id(job).into()],
        )
    });
    if locked != Ok(true) {
        return;
    }
    let Some(row) = wait_for_row(args) else {
        return;
    };
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| execute(job, row)))
        .unwrap_or_else(|payload| Err(panic_message(payload.as_ref())));
    match outcome {
        Ok(Outcome::Succeeded) => pgrx::log!("synthsearch: training job {job} succeeded"),
        Ok(Outcome::Cancelled) => pgrx::log!("synthsearch: training job {job} cancelled"),
        Ok(Outcome::Stopped) => {
            // An orderly exit: no worker_pid is left behind, so the relaunch after the restart
            // is not counted as a crash.
            let r = transaction(|| {
                as_owner(|| {
                    Spi::run_with_args(
                        &q("UPDATE @extschema@.synth_train_jobs SET worker_pid = NULL, crashes = 0 \
                            WHERE id OPERATOR(pg_catalog.=) $1"),
                        &[job.into()],
                    )
                    .expect("stopped")
                })
            });
            if let Err(e) = r {
                pgrx::warning!("synthsearch: training job {job}: recording the stop failed: {e}");
            }
            pgrx::log!(
                "synthsearch: training job {job} stopped by the server; it resumes from its checkpoint"
            )
        }
        Err(message) => {
            pgrx::log!("synthsearch: training job {job} failed: {message}");
            let r = transaction(|| {
                // The last checkpoint stays: after a transient error synth_resume() continues
                // from it (synth_cancel gives it up).
                as_owner(|| {
                    Spi::run_with_args(
                        &q("UPDATE @extschema@.synth_train_jobs SET state = 'failed', error = $2, eta = NULL, \
                            worker_pid = NULL, finished_at = pg_catalog.now(), updated_at = pg_catalog.now() \
                            WHERE id OPERATOR(pg_catalog.=) $1"),
                        &[job.into(), message.as_str().into()],
                    )
                    .expect("mark failed");
                })
            });
            if let Err(e) = r {
                pgrx::warning!(
                    "synthsearch: could not record the failure of training job {job}: {e}"
                );
            }
        }
    }
}

/// The job row once the transaction that inserted (or requeued) it has ended; None when the job
/// is gone or finished (that transaction rolled back), or the wait ran out.
fn wait_for_row(args: WorkerArgs) -> Option<Job> {
    let started = Instant::now();
    // A job made by a transaction (synth_train, or synth_resume requeuing a failed job) waits
    // for it to end.
    loop {
        if args.xid == 0 {
            break;
        }
        let status = transaction(|| {
            security::pinned(|| {
                Spi::get_one_with_args::<String>(
                    "SELECT pg_catalog.pg_xact_status($1::pg_catalog.text::pg_catalog.xid8)",
                    &[args.xid.to_string().into()],
                )
            })
            .ok()
            .flatten()
        });
        match status {
            Ok(Some(s)) if s == "in progress" => {}
            Ok(_) => break,
            Err(e) => {
                pgrx::warning!("synthsearch: training job {}: {e}", args.job);
                return None;
            }
        }
        if started.elapsed() > COMMIT_WAIT {
            pgrx::log!(
                "synthsearch: training job {} waited {} s for its transaction to commit; synth_resume() starts it later",
                args.job,
                COMMIT_WAIT.as_secs()
            );
            return None;
        }
        nap(Duration::from_millis(100));
        if stop_requested() {
            return None;
        }
    }
    let found = transaction(|| {
        as_owner(|| {
            Spi::get_three_with_args::<String, pg_sys::Oid, pg_sys::Oid>(
                &q("SELECT state, images::pg_catalog.oid, pairs::pg_catalog.oid \
                    FROM @extschema@.synth_train_jobs WHERE id OPERATOR(pg_catalog.=) $1"),
                &[args.job.into()],
            )
            .ok()
            .zip(
                Spi::get_one_with_args::<JsonB>(
                    &q("SELECT options FROM @extschema@.synth_train_jobs WHERE id OPERATOR(pg_catalog.=) $1"),
                    &[args.job.into()],
                )
                .ok(),
            )
        })
    });
    let (state, images, pairs, options) = match found {
        Ok(Some(((Some(state), Some(images), pairs), Some(options)))) => {
            (state, images, pairs, options.0)
        }
        Ok(_) => return None,
        Err(e) => {
            pgrx::warning!("synthsearch: training job {}: {e}", args.job);
            return None;
        }
    };
    if !super::jobs::UNFINISHED.contains(&state.as_str()) {
        return None;
    }
    match serde_json::from_value::<TrainOptions>(options) {
        Ok(options) => Some(Job {
            state,
            images,
            pairs,
            options,
        }),
        Err(e) => {
            pgrx::warning!(
                "synthsearch: training job {} has unreadable options: {e}",
                args.job
            );
            None
        }
    }
}

fn set_state(job: i64, sql: &str) -> Result<(), String> {
    transaction(|| {
        as_owner(|| Spi::run_with_args(&q(sql), &[job.into()]).expect("job update"));
    })
}

fn cancelled(job: i64) -> Result<Outcome, String> {
    set_state(
        job,
        "UPDATE @extschema@.synth_train_jobs SET state = 'cancelled', eta = NULL, worker_pid = NULL, \
         finished_at = pg_catalog.now(), updated_at = pg_catalog.now() WHERE id OPERATOR(pg_catalog.=) $1",
    )?;
    set_state(
        job,
        "DELETE FROM @extschema@.synth_train_checkpoints WHERE job OPERATOR(pg_catalog.=) $1",
    )?;
    Ok(Outcome::Cancelled)
}

fn device(name: &str) -> Result<tch::Device, String> {
    Ok(match name {
        "cpu" => tch::Device::Cpu,
        "cuda" => {
            if !tch::Cuda::is_available() {
                return Err(
                    "the job asks for device cuda, but the worker sees no CUDA device".into(),
                );
            }
            tch::Device::Cuda(0)
        }
        _ => tch::Device::cuda_if_available(),
    })
}

fn execute(job: i64, row: Job) -> Result<Outcome, String> {
    if row.state == "cancelling" {
        return cancelled(job);
    }
    let opts = row.options;
    set_state(
        job,
        "UPDATE @extschema@.synth_train_jobs SET state = 'running', worker_pid = pg_catalog.pg_backend_pid(), \
         server_started = pg_catalog.pg_postmaster_start_time(), started_at = coalesce(started_at, pg_catalog.now()), \
         attempts = attempts OPERATOR(pg_catalog.+) 1, error = NULL, updated_at = pg_catalog.now() WHERE id OPERATOR(pg_catalog.=) $1",
    )?;
    synthsearch_model::set_threads(opts.threads as usize);
    let dev = device(&opts.device)?;

    // What to start from: the job's checkpoint, a base model, or fresh weights.
    let (checkpoint, base) = transaction(|| {
        let checkpoint = as_owner(|| {
            Spi::get_two_with_args::<i64, Vec<u8>>(
                &q("SELECT step, bytes FROM @extschema@.synth_train_checkpoints WHERE job OPERATOR(pg_catalog.=) $1"),
                &[job.into()],
            )
        })
        .ok()
        .and_then(|(s, b)| Some((s?, b?)));
        // Anyone may run a stored model, so anyone may start from one; its weights are read as
        // the owner (the role cannot read synth_model_parts).
        let base = opts.base_model.map(|id| as_owner(|| model_bytes(id)));
        (checkpoint, base)
    })?;
    let image_size = match (&checkpoint, &base) {
        (Some((_, bytes)), _) | (None, Some(bytes)) => Model::from_bytes(bytes, tch::Device::Cpu)
            .map_err(|e| e.to_string())?
            .image_size(),
        (None, None) => opts.encoder.image_size as usize,
    };

    // One short transaction, as the calling role under a security-restricted operation: it reads
    // only what that role may read.
    // Safety: the worker's user id, the job's role it connected as.
    let role = unsafe { pg_sys::GetUserId() };
    let budget = data::DataBudget::new(image_size);
    let raw = transaction(|| {
        security::as_role(role, || data::read(row.images, row.pairs, &opts, &budget))
    })?;
    // The trainer takes its data as an Arc; it stays on this thread.
    #[allow(clippy::arc_with_non_send_sync)]
    let data = Arc::new(data::assemble(
        raw,
        row.pairs.is_none(),
        &opts,
        image_size,
        opts.threads as usize,
        &budget,
    )?);

    let mut trainer = if let Some((step, bytes)) = &checkpoint {
        let t = Trainer::resume(bytes, data.clone(), dev)
            .map_err(|e| format!("resuming from the checkpoint of step {step}: {e}"))?;
        pgrx::log!(
            "synthsearch: training job {job} resumes at step {}",
            t.steps_done()
        );
        t
    } else {
        let mut cfg = opts.train.clone();
        // A small table still trains: the batch shrinks to the training pairs.
        cfg.batch_size = cfg.batch_size.min(data.train.len());
        if cfg.batch_size < 2 {
            return Err(format!(
                "{} training pairs: at least 2 are needed",
                data.train.len()
            ));
        }
        if let Some(bytes) = &base {
            let model = Model::from_bytes(bytes, dev).map_err(|e| e.to_string())?;
            Trainer::retrain_gan(model, opts.generator.clone(), cfg, data.clone())
                .map_err(|e| e.to_string())?
        } else {
            tch::manual_seed(opts.train.seed as i64);
            let init = ModelInit {
                encoder: opts.encoder.clone(),
                generator: opts.generator.clone(),
                word_vectors: None,
                script: None,
            };
            let model = Model::new(init, dev).map_err(|e| e.to_string())?;
            Trainer::new(model, cfg, data.clone()).map_err(|e| e.to_string())?
        }
    };
    train(job, &opts, &mut trainer)
}

/// The final evaluation ([`final_evaluation`], the figures `synth eval` reports for the same
/// model and data): Recall@K on `eval_queries` pairs and every headline wish, over the
/// validation split's held-out images and, under "test", the test split's, the synthesized
/// images read by a judge trained on held-out real images.
fn eval(trainer: &Trainer, opts: &TrainOptions) -> Result<Option<serde_json::Value>, String> {
    if trainer.data().val.is_empty() && trainer.data().images_in(Split::Val).is_empty() {
        return Ok(None);
    }
    final_evaluation(
        trainer.model(),
        trainer.data(),
        opts.eval_queries,
        (opts.judge_steps > 0)
            .then(|| JudgeConfig {
                steps: opts.judge_steps,
                ..JudgeConfig::default()
            })
            .as_ref(),
        trainer.ablation_head(),
    )
    .map(Some)
    .map_err(|e| e.to_string())
}

/// Losses as a JSON object (a loss that is not finite reads as null, the others stay).
fn losses_json(losses: &BTreeMap<String, f64>) -> serde_json::Value {
    serde_json::Value::Object(
        losses
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::json!(v)))
            .collect(),
    )
}

/// Rows of the preview grid kept with each evaluation.
const PREVIEW_ROWS: usize = 6;

/// Whether this database's synthsearch has the evaluations table (it came with 0.2.0; a job
/// that runs under this library before ALTER EXTENSION synthsearch UPDATE keeps its last
/// evaluation in synth_jobs.recall only).
fn has_evals_table() -> bool {
    transaction(|| {
        as_owner(|| {
            spi_bool(
                &q("SELECT pg_catalog.to_regclass('@extschema@.synth_train_evals') IS NOT NULL"),
                &[],
            )
        })
    })
    .unwrap_or(false)
}

/// An evaluation during training (and at its end, on the same sample): kept in
/// synth_train_evals with the losses since the previous one and a preview grid. Returns the
/// figures, which the next progress write shows in synth_jobs.recall. A failed write is a
/// warning, not a failed job.
fn record_eval(
    job: i64,
    trainer: &Trainer,
    opts: &TrainOptions,
    stage: &str,
    losses: BTreeMap<String, f64>,
    keep: bool,
) -> Result<Option<serde_json::Value>, String> {
    if trainer.data().val.is_empty() {
        return Ok(None);
    }
    let sample = EvalSample {
        queries: opts.eval_sample,
        ..EvalSample::default()
    };
    let started = Instant::now();
    let point = evaluate_point(
        trainer.model(),
        trainer.data(),
        &sample,
        trainer.steps_done(),
        stage,
        losses,
    )
    .map_err(|e| e.to_string())?;
    let picture = preview(trainer.model(), trainer.data(), PREVIEW_ROWS, 0).ok();
    let seconds = started.elapsed().as_secs_f64();
    if keep {
        let written = transaction(|| {
            as_owner(|| {
                Spi::run_with_args(
                    &q("INSERT INTO @extschema@.synth_train_evals \
                        (job, step, stage, seconds, losses, recall, preview, preview_wishes) \
                        VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                        ON CONFLICT (job, step) DO UPDATE SET stage = excluded.stage, seconds = excluded.seconds, \
                        losses = excluded.losses, recall = excluded.recall, preview = excluded.preview, \
                        preview_wishes = excluded.preview_wishes, evaluated_at = pg_catalog.now()"),
                    &[
                        job.into(),
                        (point.step as i64).into(),
                        point.stage.as_str().into(),
                        ((seconds * 1e3).round() / 1e3).into(),
                        JsonB(losses_json(&point.losses)).into(),
                        JsonB(point.recall.clone()).into(),
                        picture.as_ref().map(|p| p.png.as_slice()).into(),
                        picture.as_ref().map(|p| p.wishes.clone()).into(),
                    ],
                )
            })
        });
        if let Err(e) = written.and_then(|r| r.map_err(|e| e.to_string())) {
            pgrx::warning!(
                "synthsearch: training job {job}: keeping the evaluation at step {} failed: {e}",
                point.step
            );
        }
    }
    Ok(Some(point.recall))
}

/// Evaluations from a run's lost steps (after the checkpoint it resumes from) are not its history.
fn forget_evals_after(job: i64, step: u64) {
    let done = transaction(|| {
        as_owner(|| {
            Spi::run_with_args(
                &q("DELETE FROM @extschema@.synth_train_evals \
                    WHERE job OPERATOR(pg_catalog.=) $1 AND step OPERATOR(pg_catalog.>) $2"),
                &[job.into(), (step as i64).into()],
            )
        })
    });
    if !matches!(done, Ok(Ok(()))) {
        pgrx::warning!(
            "synthsearch: training job {job}: could not clear evaluations after step {step}"
        );
    }
}

fn save_checkpoint(job: i64, trainer: &Trainer) -> Result<(), String> {
    let bytes = trainer
        .save()
        .map_err(|e| format!("saving a checkpoint: {e}"))?;
    let step = trainer.steps_done() as i64;
    transaction(|| {
        as_owner(|| {
            Spi::run_with_args(
                &q("INSERT INTO @extschema@.synth_train_checkpoints (job, step, bytes) VALUES ($1, $2, $3) \
                    ON CONFLICT (job) DO UPDATE SET step = excluded.step, bytes = excluded.bytes, saved_at = pg_catalog.now()"),
                &[job.into(), step.into(), bytes.as_slice().into()],
            )
            .expect("checkpoint");
            // Progress since the last crash: the count of crashes in a row starts again.
            Spi::run_with_args(
                &q("UPDATE @extschema@.synth_train_jobs SET crashes = 0 WHERE id OPERATOR(pg_catalog.=) $1"),
                &[job.into()],
            )
            .expect("crash count")
        })
    })
}

/// Saves a checkpoint; one that fails is not a failed job (the previous one stays, and the next
/// one tries again).
fn keep_checkpoint(job: i64, trainer: &Trainer) {
    if let Err(e) = save_checkpoint(job, trainer) {
        pgrx::warning!("synthsearch: training job {job}: saving a checkpoint failed: {e}");
    }
}

/// Steps until done, a cancel, or a shutdown.
fn train(job: i64, opts: &TrainOptions, trainer: &mut Trainer) -> Result<Outcome, String> {
    let mut total = trainer.total_steps();
    let first = trainer.steps_done();
    let train_pairs = trainer.data().train.len().max(1) as f64;
    let batch = trainer.config().batch_size as f64;
    let started = Instant::now();
    let mut last_report = Instant::now();
    let mut last_checkpoint = Instant::now();
    let mut since = LossMeans::default();
    let mut last_losses = serde_json::json!({});
    let mut recall: Option<serde_json::Value> = None;
    let mut stage = format!("{:?}", trainer.stage()).to_lowercase();
    // Mean of each loss since the previous evaluation.
    let mut since_eval = LossMeans::default();
    let keep_evals = has_evals_table();
    if keep_evals {
        forget_evals_after(job, first);
    }
    loop {
        let done = trainer.is_done();
        let stopping = stop_requested();
        let step = trainer.steps_done();
        let due = done
            || stopping
            || step == first + 1
            || (step > first && (step - first).is_multiple_of(opts.progress_every))
            || last_report.elapsed() >= PROGRESS_INTERVAL;
        if due && step > first || stopping {
            if !since.is_empty() {
                last_losses = losses_json(&since.take());
            }
            let rate = (step - first) as f64 / started.elapsed().as_secs_f64().max(1e-9);
            let eta = (total.saturating_sub(step)) as f64 / rate.max(1e-9);
            let state = transaction(|| {
                as_owner(|| {
                    Spi::get_one_with_args::<String>(
                        &q("UPDATE @extschema@.synth_train_jobs SET step = $2, total_steps = $3, epoch = $4, stage = $5, \
                            losses = $6, rate = $7, eta = pg_catalog.make_interval(secs => $8), \
                            recall = coalesce($9, recall), updated_at = pg_catalog.now() WHERE id OPERATOR(pg_catalog.=) $1 RETURNING state"),
                        &[
                            job.into(),
                            (step as i64).into(),
                            (total as i64).into(),
                            (step as f64 * batch / train_pairs).into(),
                            stage.as_str().into(),
                            JsonB(last_losses.clone()).into(),
                            rate.into(),
                            eta.min(1e9).into(),
                            recall.clone().map(JsonB).into(),
                        ],
                    )
                })
                .ok()
                .flatten()
            });
            // A progress write that fails (a lock or statement timeout, a full disk) is not a
            // failed job: training goes on and the next report tries again.
            let state = match state {
                Ok(state) => {
                    recall = None;
                    state
                }
                Err(e) => {
                    pgrx::warning!("synthsearch: training job {job}: writing progress failed: {e}");
                    None
                }
            };
            last_report = Instant::now();
            if state.as_deref() == Some("cancelling") {
                return cancelled(job);
            }
            // Leaves the process if the postmaster is gone.
            nap(Duration::ZERO);
        }
        if stopping {
            if !done {
                keep_checkpoint(job, trainer);
            }
            return Ok(Outcome::Stopped);
        }
        if done {
            break;
        }
        if opts.max_seconds > 0 && trainer.stage() == Stage::Encoder && step > first {
            // Stage 1 may take its share of the time (its share of the planned steps), so that
            // on a slow machine the GAN stage still gets the rest.
            let cfg = trainer.config();
            let share = opts.max_seconds as f64 * cfg.encoder_steps as f64
                / (cfg.encoder_steps + cfg.gan_steps).max(1) as f64;
            if started.elapsed().as_secs_f64() >= share {
                trainer.end_encoder_stage();
                total = trainer.total_steps();
                pgrx::log!(
                    "synthsearch: training job {job} used stage 1's share of max_seconds; the GAN stage starts at step {step}"
                );
                continue;
            }
        }
        if opts.max_seconds > 0
            && trainer.stage() == Stage::Gan
            && started.elapsed().as_secs() >= opts.max_seconds
        {
            // Out of time: the GAN stage ends here (the next pass writes the final progress).
            let encoder_steps = trainer.config().encoder_steps;
            trainer.set_gan_steps(step - encoder_steps);
            total = trainer.total_steps();
            pgrx::log!(
                "synthsearch: training job {job} reached max_seconds; the GAN stage ends at step {step}"
            );
            continue;
        }
        let report = trainer
            .step()
            .map_err(|e| format!("step {}: {e}", step + 1))?;
        stage = format!("{:?}", report.stage).to_lowercase();
        since.add(&report.losses);
        since_eval.add(&report.losses);
        let step = report.step;
        if step.is_multiple_of(opts.checkpoint_every)
            && step < total
            && last_checkpoint.elapsed() >= Duration::from_secs(opts.checkpoint_seconds)
        {
            keep_checkpoint(job, trainer);
            last_checkpoint = Instant::now();
        }
        if opts.eval_every > 0 && step.is_multiple_of(opts.eval_every) && step < total {
            recall = record_eval(job, trainer, opts, &stage, since_eval.take(), keep_evals)?;
        }
    }

    // The end: the last point of the history (on the same sample as the others), Recall@K on the
    // validation pairs, then the model and the job's success together.
    if opts.eval_every > 0 && keep_evals {
        record_eval(job, trainer, opts, &stage, since_eval.take(), true)?;
    }
    let recall = eval(trainer, opts)?;
    let bytes = trainer
        .model()
        .to_bytes()
        .map_err(|e| format!("saving the model: {e}"))?;
    let metrics = serde_json::json!({
        "job": job,
        "steps": trainer.steps_done(),
        "images": trainer.data().len(),
        "train_pairs": trainer.data().train.len(),
        "val_pairs": trainer.data().val.len(),
        "test_pairs": trainer.data().test.len(),
        "dropped_pairs": trainer.data().dropped_pairs,
        "losses": last_losses,
        "recall": recall,
        "seconds": (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
    });
    let stored = transaction(|| {
        let stored = store_model(&opts.name, &bytes, &metrics, Some(job), opts.activation());
        as_owner(|| {
            Spi::run_with_args(
                &q("UPDATE @extschema@.synth_train_jobs SET state = 'succeeded', model = $2, recall = $3, \
                    stage = 'done', eta = NULL, worker_pid = NULL, finished_at = pg_catalog.now(), updated_at = pg_catalog.now() \
                    WHERE id OPERATOR(pg_catalog.=) $1"),
                &[job.into(), stored.id.into(), recall.clone().map(JsonB).into()],
            )
            .expect("job succeeded");
            // The note column came with 0.2.0: a job that ends under this library before
            // ALTER EXTENSION synthsearch UPDATE has ran keeps its note in the server log only.
            if stored.note.is_some()
                && spi_bool(
                    &q("SELECT EXISTS (SELECT FROM pg_catalog.pg_attribute \
                        WHERE attrelid OPERATOR(pg_catalog.=) '@extschema@.synth_train_jobs'::pg_catalog.regclass \
                          AND attname OPERATOR(pg_catalog.=) 'note'::pg_catalog.name AND NOT attisdropped)"),
                    &[],
                )
            {
                Spi::run_with_args(
                    &q("UPDATE @extschema@.synth_train_jobs SET note = $2 WHERE id OPERATOR(pg_catalog.=) $1"),
                    &[job.into(), stored.note.clone().into()],
                )
                .expect("job note");
            }
            Spi::run_with_args(
                &q("DELETE FROM @extschema@.synth_train_checkpoints WHERE job OPERATOR(pg_catalog.=) $1"),
                &[job.into()],
            )
            .expect("drop checkpoint");
        });
        stored
    });
    match stored {
        Ok(stored) => {
            if let Some(note) = stored.note {
                pgrx::log!("synthsearch: training job {job}: {note}");
            }
        }
        Err(e) => {
            // The trained model must not be lost with the failure: a checkpoint of the finished
            // run lets synth_resume() go straight to storing it.
            keep_checkpoint(job, trainer);
            return Err(format!("storing the model failed: {e}"));
        }
    }
    Ok(Outcome::Succeeded)
}
