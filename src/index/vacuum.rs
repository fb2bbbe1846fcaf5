//! `ambulkdelete` and `amvacuumcleanup`.

use super::storage::PgRelation;
use pgrx::{pg_guard, pg_sys};
use std::ops::ControlFlow;
use synthsearch_index::{Relation, meta};

/// # Safety
/// `stats` is null or a result PostgreSQL handed us.
unsafe fn stats_or_new(
    stats: *mut pg_sys::IndexBulkDeleteResult,
) -> *mut pg_sys::IndexBulkDeleteResult {
    if stats.is_null() {
        // Safety: palloc0 returns zeroed memory or raises an ERROR.
        unsafe {
            pg_sys::palloc0(std::mem::size_of::<pg_sys::IndexBulkDeleteResult>())
                as *mut pg_sys::IndexBulkDeleteResult
        }
    } else {
        stats
    }
}

#[pg_guard]
pub unsafe extern "C-unwind" fn ambulkdelete(
    info: *mut pg_sys::IndexVacuumInfo,
    stats: *mut pg_sys::IndexBulkDeleteResult,
    callback: pg_sys::IndexBulkDeleteCallback,
    callback_state: *mut std::ffi::c_void,
) -> *mut pg_sys::IndexBulkDeleteResult {
    // Safety: VACUUM passes a valid info with an open index and its dead-TID callback.
    unsafe {
        let stats = stats_or_new(stats);
        let rel = PgRelation::new((*info).index);
        if rel.is_empty() {
            return stats;
        }
        let callback = callback.expect("ambulkdelete without a callback");
        let mut dead = |tid: synthsearch_index::Tid| {
            let mut ip = pg_sys::ItemPointerData::default();
            pgrx::itemptr::item_pointer_set_all(&mut ip, tid.block, tid.offset);
            pg_sys::ffi::pg_guard_ffi_boundary(|| callback(&mut ip, callback_state))
        };
        let mut between_lists = |_: u32, _: u32| {
            // Sleeps for vacuum_cost_delay and checks for interrupts.
            pg_sys::vacuum_delay_point();
            ControlFlow::Continue(())
        };
        let v = synthsearch_index::bulk_delete(&rel, &mut dead, &mut between_lists)
            .unwrap_or_else(|e| super::build_error(e));
        (*stats).tuples_removed += v.removed as f64;
        (*stats).num_index_tuples = v.remaining as f64;
        (*stats).num_pages = rel.len();
        stats
    }
}

#[pg_guard]
pub unsafe extern "C-unwind" fn amvacuumcleanup(
    info: *mut pg_sys::IndexVacuumInfo,
    stats: *mut pg_sys::IndexBulkDeleteResult,
) -> *mut pg_sys::IndexBulkDeleteResult {
    // Safety: as ambulkdelete.
    unsafe {
        if (*info).analyze_only {
            return stats;
        }
        let had = !stats.is_null();
        let stats = stats_or_new(stats);
        let rel = PgRelation::new((*info).index);
        (*stats).num_pages = rel.len();
        if !had {
            // No bulk delete ran (nothing to remove): count from the directory.
            (*stats).num_index_tuples = if rel.is_empty() {
                0.0
            } else {
                meta::live_count(&rel) as f64
            };
        }
        (*stats).estimated_count = false;
        stats
    }
}
