//! synthsearch: SynthTriplet-GAN multimodal product search inside PostgreSQL.
//!
//! This crate is the PostgreSQL glue: types, SQL functions and settings. The algorithms live in the
//! PostgreSQL-free crates under `crates/`.

use pgrx::prelude::*;

mod datatype;
mod errors;
mod fmgr;
mod gucs;
mod index;
mod model;
mod security;
mod server;
mod signals;
mod torch;
mod worker;

::pgrx::pg_module_magic!(name, version);

// The embedding type, its functions, operators, casts and operator classes are written by hand in
// sql/, where their exact SQL signatures are reviewable. pgrx allows one `finalize` block, so the
// files are ordered by `requires` (a generated function that uses `embedding` requires it too).
pgrx::extension_sql_file!("../sql/embedding.sql", name = "embedding");
// The synthivf index access method and its operator classes.
pgrx::extension_sql_file!("../sql/index.sql", name = "index", requires = ["embedding"]);
// The model registry, the synthquery type and the model functions.
pgrx::extension_sql_file!(
    "../sql/model.sql",
    name = "model",
    requires = ["embedding", "index"]
);
// Training jobs, their checkpoints and the synth_jobs view.
pgrx::extension_sql_file!("../sql/worker.sql", name = "worker");

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    // Settings only: never touch libtorch or CUDA here, the postmaster forks every backend.
    index::init();
    // Before gucs::init reserves the prefix; registers the launcher when preloaded.
    worker::init();
    // Settings, and with preloading the shared memory and the model servers.
    server::init();
    gucs::init();
}

#[cfg(any(test, feature = "pg_test"))]
mod tests;

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
