//! The access method's handler (`synthivf_handler`), its validator, cost estimate and phase names,
//! and what the opclass tells the index: its metric (support function 1) and, for query types
//! other than `embedding`, how to turn a query into an embedding (2) and its encoder version (3).

use super::{build, insert, options, scan, storage::PgRelation, vacuum};
use crate::pg_function_info_v1;
use pgrx::{pg_guard, pg_sys};
use synthsearch_index::{Metric, Relation, meta};

/// Support function 1: `(internal) -> int4`, the opclass's metric (1 L2, 2 cosine, 3 inner product).
pub const METRIC_PROC: u16 = 1;
/// Support function 2 (optional): `(query type) -> embedding`, the query's embedding.
pub const QUERY_PROC: u16 = 2;
/// Support function 3 (optional): `(query type) -> int8`, the encoder version a query came from.
pub const QUERY_ENCODER_PROC: u16 = 3;

/// `pg_stat_progress_create_index` subphases; 1 is PostgreSQL's "initializing".
pub const PHASE_SAMPLING: i64 = 2;
pub const PHASE_TRAINING: i64 = 3;
pub const PHASE_LOADING: i64 = 4;

pg_function_info_v1!(
    pg_finfo_synthivf_handler,
    pg_finfo_synthivf_metric_l2,
    pg_finfo_synthivf_metric_cosine,
    pg_finfo_synthivf_metric_ip,
);

#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn synthivf_handler(_fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // Safety: palloc0 returns zeroed memory for the node or raises an ERROR.
    let am = unsafe {
        let am = pg_sys::palloc0(std::mem::size_of::<pg_sys::IndexAmRoutine>())
            as *mut pg_sys::IndexAmRoutine;
        &mut *am
    };
    am.type_ = pg_sys::NodeTag::T_IndexAmRoutine;
    am.amstrategies = 0;
    am.amsupport = 3;
    am.amoptsprocnum = 0;
    am.amcanorder = false;
    am.amcanorderbyop = true;
    am.amcanbackward = false;
    am.amcanunique = false;
    am.amcanmulticol = false;
    // No WHERE operators: a scan has only an ORDER BY key.
    am.amoptionalkey = true;
    am.amsearcharray = false;
    am.amsearchnulls = false;
    am.amstorage = false;
    am.amclusterable = false;
    am.ampredlocks = false;
    am.amcanparallel = false;
    am.amcaninclude = false;
    am.amusemaintenanceworkmem = true;
    am.amparallelvacuumoptions = pg_sys::VACUUM_OPTION_PARALLEL_BULKDEL as u8;
    am.amkeytype = pg_sys::InvalidOid;

    am.ambuild = Some(build::ambuild);
    am.ambuildempty = Some(build::ambuildempty);
    am.aminsert = Some(insert::aminsert);
    am.ambulkdelete = Some(vacuum::ambulkdelete);
    am.amvacuumcleanup = Some(vacuum::amvacuumcleanup);
    am.amcanreturn = None;
    am.amcostestimate = Some(amcostestimate);
    am.amoptions = Some(options::amoptions);
    am.amproperty = None;
    am.ambuildphasename = Some(ambuildphasename);
    am.amvalidate = Some(amvalidate);
    am.amadjustmembers = None;
    am.ambeginscan = Some(scan::ambeginscan);
    am.amrescan = Some(scan::amrescan);
    am.amgettuple = Some(scan::amgettuple);
    am.amgetbitmap = None;
    am.amendscan = Some(scan::amendscan);
    am.ammarkpos = None;
    am.amrestrpos = None;
    am.amestimateparallelscan = None;
    am.aminitparallelscan = None;
    am.amparallelrescan = None;
    pg_sys::Datum::from(am as *mut pg_sys::IndexAmRoutine)
}

macro_rules! metric_fn {
    ($name:ident, $metric:expr) => {
        #[pg_guard]
        #[unsafe(no_mangle)]
        pub extern "C-unwind" fn $name(_fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
            pg_sys::Datum::from($metric.to_u8() as i32)
        }
    };
}

metric_fn!(synthivf_metric_l2, Metric::L2);
metric_fn!(synthivf_metric_cosine, Metric::Cosine);
metric_fn!(synthivf_metric_ip, Metric::InnerProduct);

/// The metric the index's opclass names (support function 1).
///
/// # Safety
/// `index` must be an open index of this access method.
pub unsafe fn opclass_metric(index: pg_sys::Relation) -> Metric {
    // Safety: index_getprocinfo raises an ERROR if the opclass lacks function 1; the function
    // ignores its internal argument.
    let v = unsafe {
        let f = pg_sys::index_getprocinfo(index, 1, METRIC_PROC);
        pg_sys::FunctionCall1Coll(f, pg_sys::InvalidOid, pg_sys::Datum::from(0usize)).value() as i32
    };
    Metric::from_u8(v as u8).unwrap_or_else(|| {
        crate::fmgr::error(
            pg_sys::errcodes::PgSqlErrorCode::ERRCODE_INVALID_OBJECT_DEFINITION,
            format!("operator class support function 1 returned unknown metric {v}"),
        )
    })
}

/// An optional support function of the index's opclass, if it has one.
///
/// # Safety
/// `index` must be an open index of this access method.
pub unsafe fn optional_proc(
    index: pg_sys::Relation,
    procnum: u16,
) -> Option<*mut pg_sys::FmgrInfo> {
    // Safety: index_getprocid returns InvalidOid for a missing function; index_getprocinfo then
    // finds it present.
    unsafe {
        if pg_sys::index_getprocid(index, 1, procnum) == pg_sys::InvalidOid {
            None
        } else {
            Some(pg_sys::index_getprocinfo(index, 1, procnum))
        }
    }
}

/// `amvalidate`: the opclass's members are checked where they are used (support function 1 at
/// build time, the ORDER BY operator by the planner).
#[pg_guard]
pub unsafe extern "C-unwind" fn amvalidate(_opclassoid: pg_sys::Oid) -> bool {
    true
}

#[pg_guard]
pub unsafe extern "C-unwind" fn ambuildphasename(phase: i64) -> *mut std::ffi::c_char {
    let name: &'static std::ffi::CStr = match phase {
        PHASE_SAMPLING => c"sampling rows",
        PHASE_TRAINING => c"training lists",
        PHASE_LOADING => c"loading rows",
        _ => return std::ptr::null_mut(),
    };
    name.as_ptr() as *mut std::ffi::c_char
}

/// `amcostestimate`: the generic estimate scaled by the share of lists a scan reads first, all
/// of it spent before the first row. Without an ORDER BY the index is useless: infinite cost.
#[allow(clippy::too_many_arguments)]
#[pg_guard]
pub unsafe extern "C-unwind" fn amcostestimate(
    root: *mut pg_sys::PlannerInfo,
    path: *mut pg_sys::IndexPath,
    loop_count: f64,
    startup_cost: *mut pg_sys::Cost,
    total_cost: *mut pg_sys::Cost,
    selectivity: *mut pg_sys::Selectivity,
    correlation: *mut f64,
    pages: *mut f64,
) {
    // Safety: the planner passes valid pointers; the index is locked by the planner, and reading
    // its meta page under a share lock is what a scan does.
    unsafe {
        if (*path).indexorderbys.is_null() {
            *startup_cost = f64::MAX;
            *total_cost = f64::MAX;
            *selectivity = 0.0;
            *correlation = 0.0;
            *pages = 0.0;
            return;
        }
        let mut costs = pg_sys::GenericCosts::default();
        pg_sys::genericcostestimate(root, path, loop_count, &mut costs);
        let index = pg_sys::index_open((*(*path).indexinfo).indexoid, pg_sys::NoLock as i32);
        let rel = PgRelation::new(index);
        let (lists, dims) = if rel.is_empty() {
            (1, 1)
        } else {
            let m = meta::read_meta(&rel);
            (m.lists, m.dims)
        };
        pg_sys::index_close(index, pg_sys::NoLock as i32);
        let nprobe = options::scan_options().nprobe;
        let ratio = synthsearch_index::scan::scan_fraction(lists, nprobe);
        // A scan reads the code pages of its lists (a code is about a fifth of a row's bytes)
        // and only a few vector pages to rerank; the generic estimate counts every page.
        let code_share = (dims + 16) as f64 / (5 * dims + 24) as f64;
        let page_cost = costs.numIndexPages * costs.spc_random_page_cost;
        let cost = ratio * (costs.indexTotalCost - page_cost + page_cost * code_share);
        *startup_cost = cost;
        *total_cost = cost;
        *selectivity = costs.indexSelectivity;
        *correlation = 0.0;
        *pages = costs.numIndexPages * ratio;
    }
}
