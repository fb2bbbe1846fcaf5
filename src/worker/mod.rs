//! Training as a background worker.
//!
//! | file          | what                                                                   |
//! | ------------- | ---------------------------------------------------------------------- |
//! | `jobs.rs`     | `synth_train`, `synth_cancel`, `synth_resume`: the job rows and launches |
//! | `options.rs`  | the options of `synth_train`, with their defaults                       |
//! | `train.rs`    | the training worker: reads the data, trains between short transactions   |
//! | `data.rs`     | the job's tables read as the calling role, images decoded into a dataset |
//! | `history.rs`  | `synth_job_curves`: a job's evaluations drawn as SVG                     |
//! | `launcher.rs` | the launcher that resumes unfinished jobs after a server start           |
//! | `import.rs`   | `synth_import_fashioniq`, `synth_generate_catalog`                       |
//! | `xact.rs`     | short transactions in a worker, errors turned into messages              |

mod data;
mod history;
mod import;
mod jobs;
mod launcher;
mod options;
mod train;
mod xact;

pub(crate) use xact::panic_message;

use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting, pg_sys};

pub const MAX_JOBS_MIN: i32 = 0;
pub const MAX_JOBS_DEFAULT: i32 = 2;
pub const MAX_JOBS_MAX: i32 = 64;

/// Unfinished training jobs a database may have at once.
pub static MAX_JOBS: GucSetting<i32> = GucSetting::<i32>::new(MAX_JOBS_DEFAULT);

/// Settings, and the launcher when the library is preloaded. Call before the prefix is reserved.
pub fn init() {
    GucRegistry::define_int_guc(
        c"synthsearch.max_jobs",
        c"Training jobs a database may run or queue at once (0 turns training off).",
        c"Each job is a background worker and counts against max_worker_processes.",
        &MAX_JOBS,
        MAX_JOBS_MIN,
        MAX_JOBS_MAX,
        GucContext::Suset,
        GucFlags::default(),
    );
    // Safety: a plain read of a flag the postmaster sets around shared_preload_libraries.
    if unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        launcher::register();
    }
}
