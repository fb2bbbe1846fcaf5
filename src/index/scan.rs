//! Index scans: `ORDER BY col <op> query LIMIT k`. The query is the ORDER BY key's argument (a
//! constant, a parameter or an InitPlan's result, known at rescan). Rows come back nearest first
//! for as long as the executor asks: when the first `synthsearch.nprobe` lists run dry the core
//! probes the next ones, so a WHERE clause that drops rows never shortens the result. Distances
//! are exact (reranked with the stored vector), so no recheck is needed.

use super::handler::{QUERY_ENCODER_PROC, QUERY_PROC, optional_proc};
use super::storage::PgRelation;
use super::{cache, options, scan_error};
use crate::datatype::memory::datum_values;
use crate::fmgr::{error, float8};
use pgrx::pg_sys::errcodes::PgSqlErrorCode;
use pgrx::{pg_guard, pg_sys};
use synthsearch_index::{Relation, Scan, meta};

/// The scan's Rust state, owned through a slot in the scan's memory context: freed by amendscan,
/// or by the context's reset callback when an ERROR ends the query first.
struct Slot {
    scan: *mut Option<Scan>,
    callback: pg_sys::MemoryContextCallback,
}

#[pg_guard]
unsafe extern "C-unwind" fn free_slot(arg: *mut std::ffi::c_void) {
    // Safety: `arg` is the Slot registered in ambeginscan; the Box is dropped at most once.
    unsafe {
        let slot = arg as *mut Slot;
        if !(*slot).scan.is_null() {
            if let Some(s) = &*(*slot).scan {
                super::explain::account(&s.stats());
            }
            drop(Box::from_raw((*slot).scan));
            (*slot).scan = std::ptr::null_mut();
        }
    }
}

/// # Safety
/// `scan` comes from ambeginscan and is not ended.
unsafe fn state<'a>(scan: pg_sys::IndexScanDesc) -> &'a mut Option<Scan> {
    // Safety: opaque is our Slot, its scan pointer live until amendscan.
    unsafe { &mut *(*((*scan).opaque as *mut Slot)).scan }
}

#[pg_guard]
pub unsafe extern "C-unwind" fn ambeginscan(
    index: pg_sys::Relation,
    nkeys: std::ffi::c_int,
    norderbys: std::ffi::c_int,
) -> pg_sys::IndexScanDesc {
    // Safety: RelationGetIndexScan allocates the descriptor in the current memory context, the
    // context the slot and its reset callback go into.
    unsafe {
        let scan = pg_sys::RelationGetIndexScan(index, nkeys, norderbys);
        let slot = pg_sys::palloc0(std::mem::size_of::<Slot>()) as *mut Slot;
        (*slot).scan = Box::into_raw(Box::new(None));
        (*slot).callback.func = Some(free_slot);
        (*slot).callback.arg = slot as *mut std::ffi::c_void;
        pg_sys::MemoryContextRegisterResetCallback(
            pg_sys::CurrentMemoryContext,
            &mut (*slot).callback,
        );
        (*scan).opaque = slot as *mut std::ffi::c_void;
        let n = norderbys.max(1) as usize;
        (*scan).xs_orderbyvals = pg_sys::palloc0(n * std::mem::size_of::<pg_sys::Datum>()) as _;
        (*scan).xs_orderbynulls = pg_sys::palloc(n) as *mut bool;
        std::ptr::write_bytes((*scan).xs_orderbynulls, 1, n);
        scan
    }
}

#[pg_guard]
pub unsafe extern "C-unwind" fn amrescan(
    scan: pg_sys::IndexScanDesc,
    keys: pg_sys::ScanKey,
    nkeys: std::ffi::c_int,
    orderbys: pg_sys::ScanKey,
    norderbys: std::ffi::c_int,
) {
    // Safety: the executor passes key arrays of the sizes given at beginscan; the ORDER BY key's
    // argument is a value of the operator's right-hand type.
    unsafe {
        if !keys.is_null() && nkeys > 0 {
            std::ptr::copy(keys, (*scan).keyData, nkeys as usize);
        }
        if !orderbys.is_null() && norderbys > 0 {
            std::ptr::copy(orderbys, (*scan).orderByData, norderbys as usize);
        }
        let state = state(scan);
        if let Some(s) = state.take() {
            super::explain::account(&s.stats());
        }
        if (*scan).numberOfOrderBys == 0 {
            error(
                PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
                "synthivf index scans need ORDER BY column <-> value",
            );
        }
        let key = &*(*scan).orderByData;
        if key.sk_flags & pg_sys::SK_ISNULL as i32 != 0 {
            // ORDER BY distance to NULL: every distance is NULL; the index returns no rows.
            return;
        }
        let index = (*scan).indexRelation;
        let rel = PgRelation::new(index);
        if rel.is_empty() {
            return;
        }
        let m = meta::read_meta(&rel);
        if let Some(f) = optional_proc(index, QUERY_ENCODER_PROC) {
            let version =
                pg_sys::FunctionCall1Coll(f, pg_sys::InvalidOid, key.sk_argument).value() as u64;
            let built = m.encoder_version;
            if version != built {
                error(
                    PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                    format!(
                        "query comes from encoder version {version}, index \"{}\" was built with version {built}; REINDEX it",
                        rel.name()
                    ),
                );
            }
        }
        let query = match optional_proc(index, QUERY_PROC) {
            Some(f) => pg_sys::FunctionCall1Coll(f, pg_sys::InvalidOid, key.sk_argument),
            None => key.sk_argument,
        };
        let values = datum_values(query);
        let centroids = cache::centroids(index, &rel, &m);
        let s = Scan::with_centroids(&rel, m, values, options::scan_options(), centroids)
            .unwrap_or_else(|e| scan_error(e));
        *state = Some(s);
    }
}

#[pg_guard]
pub unsafe extern "C-unwind" fn amgettuple(
    scan: pg_sys::IndexScanDesc,
    _direction: pg_sys::ScanDirection::Type,
) -> bool {
    // Safety: the scan is live; xs_orderbyvals/nulls were allocated in beginscan.
    unsafe {
        let Some(s) = state(scan).as_mut() else {
            return false;
        };
        // The block count is asked only when a list's chain is suspiciously long (the scan
        // remembers it from rescan): not an lseek for every row returned.
        let rel = PgRelation::new((*scan).indexRelation);
        let Some(hit) = s.next(&rel) else {
            return false;
        };
        pgrx::itemptr::item_pointer_set_all(&mut (*scan).xs_heaptid, hit.tid.block, hit.tid.offset);
        (*scan).xs_recheck = false;
        (*scan).xs_recheckorderby = false;
        *(*scan).xs_orderbyvals = float8(hit.distance as f64);
        *(*scan).xs_orderbynulls = hit.distance.is_nan();
        true
    }
}

#[pg_guard]
pub unsafe extern "C-unwind" fn amendscan(scan: pg_sys::IndexScanDesc) {
    // Safety: frees the state now; the reset callback then finds nothing to free.
    unsafe { free_slot((*scan).opaque) };
}
