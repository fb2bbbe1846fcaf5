//! Build options (reloptions of `CREATE INDEX ... WITH (...)`) and search knobs (GUCs), each with
//! the core's minimum, default and maximum. PostgreSQL rejects a value out of range with 22023.

use crate::gucs::IterativeScan;
use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting, pg_sys};
use std::ffi::CStr;
use std::sync::atomic::{AtomicU32, Ordering};
use synthsearch_index::options as core;

/// The reloption kind our options are registered under (0 until `init`).
static RELOPT_KIND: AtomicU32 = AtomicU32::new(0);

pub static NPROBE: GucSetting<i32> = GucSetting::<i32>::new(core::DEFAULT_NPROBE as i32);
pub static MAX_PROBES: GucSetting<i32> = GucSetting::<i32>::new(core::DEFAULT_MAX_PROBES as i32);
pub static ITERATIVE_SCAN: GucSetting<IterativeScan> =
    GucSetting::<IterativeScan>::new(IterativeScan::RelaxedOrder);
pub static MAX_SCAN_TUPLES: GucSetting<i32> = GucSetting::<i32>::new(0);

/// What `build_reloptions` fills, laid out as PostgreSQL expects (a varlena header first).
#[repr(C)]
pub struct Options {
    vl_len_: i32,
    pub lists: i32,
    pub sample_per_list: i32,
    pub kmeans_iterations: i32,
}

struct IntOption {
    name: &'static CStr,
    description: &'static CStr,
    default: u32,
    min: u32,
    max: u32,
    offset: usize,
}

const INT_OPTIONS: [IntOption; 3] = [
    IntOption {
        name: c"lists",
        description: c"Number of inverted lists (0: the square root of the rows at build time)",
        default: core::DEFAULT_LISTS,
        min: core::MIN_LISTS,
        max: core::MAX_LISTS,
        offset: std::mem::offset_of!(Options, lists),
    },
    IntOption {
        name: c"sample_per_list",
        description: c"Rows sampled per list to train the k-means centroids",
        default: core::DEFAULT_SAMPLE_PER_LIST,
        min: core::MIN_SAMPLE_PER_LIST,
        max: core::MAX_SAMPLE_PER_LIST,
        offset: std::mem::offset_of!(Options, sample_per_list),
    },
    IntOption {
        name: c"kmeans_iterations",
        description: c"Lloyd iterations of k-means after k-means++ seeding",
        default: core::DEFAULT_KMEANS_ITERATIONS,
        min: core::MIN_KMEANS_ITERATIONS,
        max: core::MAX_KMEANS_ITERATIONS,
        offset: std::mem::offset_of!(Options, kmeans_iterations),
    },
];

/// Registers the reloptions and the GUCs. Called once per backend from `_PG_init`.
pub fn init() {
    // Safety: called once from _PG_init; the names and descriptions are static C strings, which
    // add_int_reloption keeps by pointer.
    unsafe {
        let kind = pg_sys::add_reloption_kind();
        RELOPT_KIND.store(kind, Ordering::Relaxed);
        for o in &INT_OPTIONS {
            pg_sys::add_int_reloption(
                kind,
                o.name.as_ptr(),
                o.description.as_ptr(),
                o.default as i32,
                o.min as i32,
                o.max as i32,
                pg_sys::AccessExclusiveLock as pg_sys::LOCKMODE,
            );
        }
    }
    GucRegistry::define_int_guc(
        c"synthsearch.nprobe",
        c"Lists an index scan probes first.",
        c"More lists: better recall, slower queries. A scan probes more when the query asks for more rows.",
        &NPROBE,
        core::MIN_NPROBE as i32,
        core::MAX_NPROBE as i32,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"synthsearch.max_probes",
        c"Most lists an index scan may probe in all (0: every list).",
        c"0 lets a filtered query keep going until it has every row it asks for.",
        &MAX_PROBES,
        core::MIN_MAX_PROBES as i32,
        core::MAX_MAX_PROBES as i32,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_enum_guc(
        c"synthsearch.iterative_scan",
        c"What an index scan does when its first nprobe lists run dry: off, relaxed_order or strict_order.",
        c"off stops there; relaxed_order probes further lists, whose rows may be nearer than rows already returned; strict_order probes further lists but drops such rows, so rows come back in distance order.",
        &ITERATIVE_SCAN,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"synthsearch.max_scan_tuples",
        c"Codes an index scan may scan before it stops probing further lists (0: no cap).",
        c"The first nprobe lists are always scanned; the cap ends the further rounds of an iterative scan.",
        &MAX_SCAN_TUPLES,
        0,
        i32::MAX,
        GucContext::Userset,
        GucFlags::default(),
    );
}

/// `amoptions`: parses and validates `WITH (...)`.
#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn amoptions(
    reloptions: pg_sys::Datum,
    validate: bool,
) -> *mut pg_sys::bytea {
    let table: Vec<pg_sys::relopt_parse_elt> = INT_OPTIONS
        .iter()
        .map(|o| pg_sys::relopt_parse_elt {
            optname: o.name.as_ptr(),
            opttype: pg_sys::relopt_type::RELOPT_TYPE_INT,
            offset: o.offset as i32,
        })
        .collect();
    // Safety: the table describes `Options` (offsets from offset_of!, int fields); the kind was
    // registered in init.
    unsafe {
        pg_sys::build_reloptions(
            reloptions,
            validate,
            RELOPT_KIND.load(Ordering::Relaxed),
            std::mem::size_of::<Options>(),
            table.as_ptr(),
            table.len() as i32,
        ) as *mut pg_sys::bytea
    }
}

/// The index's options, or the defaults when it has none.
///
/// # Safety
/// `index` must be an open index relation of this access method.
pub unsafe fn index_options(index: pg_sys::Relation) -> (u32, u32, u32) {
    // Safety: rd_options is null or the bytea amoptions built.
    unsafe {
        let o = (*index).rd_options as *const Options;
        if o.is_null() {
            (
                core::DEFAULT_LISTS,
                core::DEFAULT_SAMPLE_PER_LIST,
                core::DEFAULT_KMEANS_ITERATIONS,
            )
        } else {
            (
                (*o).lists as u32,
                (*o).sample_per_list as u32,
                (*o).kmeans_iterations as u32,
            )
        }
    }
}

/// The search knobs as the core takes them.
pub fn scan_options() -> core::ScanOptions {
    core::ScanOptions {
        nprobe: NPROBE.get() as u32,
        max_probes: MAX_PROBES.get() as u32,
        iterative: match ITERATIVE_SCAN.get() {
            IterativeScan::Off => core::Iterative::Off,
            IterativeScan::RelaxedOrder => core::Iterative::Relaxed,
            IterativeScan::StrictOrder => core::Iterative::Strict,
        },
        max_scan_tuples: MAX_SCAN_TUPLES.get().max(0) as u64,
    }
}
