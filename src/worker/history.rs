//! `synth_job_curves(job)`: a job's evaluations during training, drawn as SVG.

use pgrx::pg_sys::errcodes::PgSqlErrorCode;
use pgrx::prelude::*;
use pgrx::{JsonB, pg_sys};
use std::collections::BTreeMap;
use synthsearch_model::{EvalPoint, curves_svg};

use crate::fmgr::error;
use crate::model::registry::q;
use crate::pg_function_info_v1;
use crate::security;

pg_function_info_v1!(pg_finfo_synth_job_curves);

/// `synth_job_curves(job bigint) RETURNS text`: the SVG document. Read as the caller, through
/// `synth_job_evals` and `synth_jobs` (which everyone may read).
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn synth_job_curves(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // Safety: declared STRICT (bigint).
    let job = unsafe { crate::fmgr::arg(fcinfo, 0) }.value() as i64;
    let svg = security::pinned(|| curves(job));
    pg_sys::Datum::from(
        // Safety: a palloc'd text in the current memory context, returned as the result.
        unsafe { pgrx::pg_sys::cstring_to_text_with_len(svg.as_ptr().cast(), svg.len() as i32) },
    )
}

fn curves(job: i64) -> String {
    let head = Spi::get_three_with_args::<String, String, i64>(
        &q(
            "SELECT model, state, total_steps FROM @extschema@.synth_jobs WHERE job OPERATOR(pg_catalog.=) $1",
        ),
        &[job.into()],
    );
    let (model, state, total) = match head {
        Ok((Some(m), Some(s), t)) => (m, s, t.unwrap_or(0)),
        _ => error(
            PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
            format!("training job {job} does not exist"),
        ),
    };
    let points: Vec<EvalPoint> =
        Spi::connect(|client| {
            client
            .select(
                &q("SELECT step, stage, seconds, losses, recall FROM @extschema@.synth_job_evals \
                    WHERE job OPERATOR(pg_catalog.=) $1 ORDER BY step"),
                None,
                &[job.into()],
            )
            .expect("synth_job_evals")
            .map(|r| {
                let losses: BTreeMap<String, f64> = r
                    .get::<JsonB>(4)
                    .ok()
                    .flatten()
                    .and_then(|j| serde_json::from_value(j.0).ok())
                    .unwrap_or_default();
                EvalPoint {
                    step: r.get::<i64>(1).ok().flatten().unwrap_or(0).max(0) as u64,
                    stage: r.get::<String>(2).ok().flatten().unwrap_or_default(),
                    seconds: r.get::<f64>(3).ok().flatten().unwrap_or(0.0),
                    losses,
                    recall: r
                        .get::<JsonB>(5)
                        .ok()
                        .flatten()
                        .map(|j| j.0)
                        .unwrap_or_default(),
                }
            })
            .collect()
        });
    curves_svg(
        &points,
        &format!("synthsearch training job {job}: model {model}, {state}, {total} steps"),
    )
}
