//! `synthivf`: the index access method for embeddings, the PostgreSQL side of
//! `synthsearch_index` (IVF lists, 8-bit residual codes, exact rerank).
//!
//! | file          | role                                                          |
//! |---------------|---------------------------------------------------------------|
//! | `handler.rs`  | `synthivf_handler`, amvalidate, cost estimate, opclass lookups |
//! | `options.rs`  | reloptions (`lists`, ...) and the search GUCs                  |
//! | `storage.rs`  | the core's page trait over buffers and GenericXLog             |
//! | `build.rs`    | ambuild, ambuildempty                                          |
//! | `insert.rs`   | aminsert                                                       |
//! | `cache.rs`    | the centroids in `rd_amcache`, for scans and inserts            |
//! | `scan.rs`     | ambeginscan, amrescan, amgettuple, amendscan                   |
//! | `vacuum.rs`   | ambulkdelete, amvacuumcleanup                                  |
//! | `explain.rs`  | the scans' counters in EXPLAIN (ANALYZE)                       |
//! | `gpu_kmeans.rs` | the build's Lloyd iterations on a GPU (libtorch)             |
//! | `check.rs`    | `synth_index_check(regclass)`, in the spirit of amcheck        |

mod build;
mod cache;
mod check;
mod explain;
mod gpu_kmeans;
mod handler;
mod insert;
mod options;
mod scan;
mod storage;
mod vacuum;

use crate::fmgr::error;
use pgrx::pg_sys;
use pgrx::pg_sys::errcodes::PgSqlErrorCode;
use synthsearch_index::{BuildError, InsertError, OptionsError, ScanError, Tid};

/// Registers reloptions and GUCs; called from `_PG_init`.
pub fn init() {
    options::init();
    explain::init();
}

fn tid_of(ptr: pg_sys::ItemPointer) -> Tid {
    // Safety: the callers pass a valid heap TID from PostgreSQL.
    let (block, offset) = pgrx::itemptr::item_pointer_get_both(unsafe { *ptr });
    Tid::new(block, offset)
}

fn options_error(e: OptionsError) -> ! {
    let code = match e {
        OptionsError::OutOfRange { .. } => PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
        OptionsError::Dims(_) | OptionsError::MemoryTooSmall { .. } => {
            PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED
        }
    };
    error(code, e.to_string())
}

fn insert_error(e: InsertError) -> ! {
    error(PgSqlErrorCode::ERRCODE_DATA_EXCEPTION, e.to_string())
}

fn build_error(e: BuildError) -> ! {
    match e {
        BuildError::Options(e) => options_error(e),
        BuildError::Vector(e) => insert_error(e),
        BuildError::Cancelled => error(
            PgSqlErrorCode::ERRCODE_QUERY_CANCELED,
            "index build cancelled",
        ),
    }
}

fn scan_error(e: ScanError) -> ! {
    match e {
        ScanError::Options(e) => options_error(e),
        ScanError::Dims { .. } | ScanError::NotFinite { .. } => {
            error(PgSqlErrorCode::ERRCODE_DATA_EXCEPTION, e.to_string())
        }
    }
}
