//! `ambuild` and `ambuildempty`: two passes over the table through the table AM's
//! `index_build_range_scan` (a sample for k-means, then every row into its list), driving the
//! core's steppable build between them, with progress in `pg_stat_progress_create_index`.
//!
//! The pages are written without WAL and logged whole at the end, which is cheaper than a
//! GenericXLog record per change. An index over a column without dimensions (`embedding`, not
//! `embedding(n)`) on an empty table has no pages at all; the first insert creates them.

use super::handler::{self, PHASE_LOADING, PHASE_SAMPLING, PHASE_TRAINING};
use super::storage::PgRelation;
use super::{build_error, options, tid_of};
use crate::datatype::memory::datum_values;
use pgrx::{pg_guard, pg_sys};
use synthsearch_index::options::BuildOptions;
use synthsearch_index::{Build, Metric, Relation, meta};

/// How often (rows) the build reports progress and checks for interrupts.
const REPORT_EVERY: u64 = 1024;

enum Pass {
    Sampling,
    Loading,
}

struct BuildState {
    rel: PgRelation,
    metric: Metric,
    reloptions: (u32, u32, u32),
    threads: usize,
    expected_rows: u64,
    /// Created with the first row when the column has no typmod.
    build: Option<Build>,
    pass: Pass,
    rows: u64,
    indexed: u64,
    row_context: RowContext,
}

/// The core's build options for this index.
fn build_options(
    dims: usize,
    metric: Metric,
    reloptions: (u32, u32, u32),
    threads: usize,
) -> BuildOptions {
    let mut o = BuildOptions::new(dims, metric);
    (o.lists, o.sample_per_list, o.kmeans_iterations) = reloptions;
    // Safety: a plain global int of the backend.
    let kb = unsafe { pg_sys::maintenance_work_mem };
    o.memory = kb.max(1024) as usize * 1024;
    o.threads = threads;
    o
}

/// A memory context for one row's work, reset after it (pgvector's pattern): a TOASTed value is
/// detoasted into a fresh palloc, which would otherwise stay until the end of the statement, a
/// table's worth of vectors on top of `maintenance_work_mem`.
pub(super) struct RowContext(pg_sys::MemoryContext);

impl RowContext {
    pub(super) fn new() -> RowContext {
        // Safety: a child of the current context, freed with it (or by Drop).
        RowContext(unsafe {
            pg_sys::AllocSetContextCreateInternal(
                pg_sys::CurrentMemoryContext,
                c"synthivf row".as_ptr(),
                0,
                8 * 1024,
                8 * 1024 * 1024,
            )
        })
    }

    /// Runs `f` with this context current, then frees what it allocated there. On an ERROR the
    /// context stays until its parent goes (the statement's end).
    pub(super) fn run<R>(&self, f: impl FnOnce() -> R) -> R {
        // Safety: the context is alive; the previous one is restored before the reset.
        unsafe {
            let old = pg_sys::MemoryContextSwitchTo(self.0);
            let r = f();
            pg_sys::MemoryContextSwitchTo(old);
            pg_sys::MemoryContextReset(self.0);
            r
        }
    }
}

impl Drop for RowContext {
    fn drop(&mut self) {
        // Safety: created in new(), not deleted elsewhere; Drop does not run after an ERROR's
        // unwinding past a pg_guard (the parent context frees it then).
        unsafe { pg_sys::MemoryContextDelete(self.0) };
    }
}

/// A new build whose worker threads never see signals.
pub(super) fn new_build(opts: BuildOptions, expected_rows: u64) -> Build {
    let _blocked = crate::signals::Blocked::new();
    Build::new(opts, expected_rows).unwrap_or_else(|e| build_error(e))
}

/// The GPU the build's k-means runs on: CUDA when `synthsearch.device` picks it (`cuda`, an
/// ERROR without one, or `auto` with one in sight), otherwise none and the CPU runs it.
fn gpu_device() -> Option<tch::Device> {
    match crate::torch::device() {
        d @ tch::Device::Cuda(_) => Some(d),
        _ => None,
    }
}

/// Dimensions fixed by the indexed column's or expression's typmod, if any.
///
/// # Safety
/// `index` must be an open index.
unsafe fn typmod_dims(index: pg_sys::Relation) -> Option<usize> {
    // Safety: an index has at least one attribute in rd_att.
    let typmod = unsafe { (*(*(*index).rd_att).attrs.as_ptr()).atttypmod };
    (typmod > 0).then_some(typmod as usize)
}

fn progress(param: u32, value: i64) {
    // Safety: plain call; a no-op when no progress command is running.
    unsafe { pg_sys::pgstat_progress_update_param(param as i32, value) };
}

impl BuildState {
    fn row(&mut self, tid: pg_sys::ItemPointer, datum: pg_sys::Datum) {
        // Safety: the datum is a non-NULL value of the indexed embedding column or expression.
        let v = unsafe { datum_values(datum) };
        self.rows += 1;
        match self.pass {
            Pass::Sampling => {
                let build = self.build.get_or_insert_with(|| {
                    let o = build_options(v.len(), self.metric, self.reloptions, self.threads);
                    new_build(o, self.expected_rows)
                });
                build.sample(v).unwrap_or_else(|e| build_error(e));
                if self.rows.is_multiple_of(REPORT_EVERY) {
                    progress(pg_sys::PROGRESS_CREATEIDX_TUPLES_DONE, self.rows as i64);
                }
            }
            Pass::Loading => {
                let build = self.build.as_mut().expect("loading without a build");
                if build
                    .load(&self.rel, tid_of(tid), v)
                    .unwrap_or_else(|e| build_error(e))
                {
                    self.indexed += 1;
                }
                if self.rows.is_multiple_of(REPORT_EVERY) {
                    progress(pg_sys::PROGRESS_CREATEIDX_TUPLES_DONE, self.rows as i64);
                }
            }
        }
        if self.rows.is_multiple_of(REPORT_EVERY) {
            // Can take a while, so ensure we can interrupt.
            pgrx::check_for_interrupts!();
        }
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn build_callback(
    _index: pg_sys::Relation,
    tid: pg_sys::ItemPointer,
    values: *mut pg_sys::Datum,
    isnull: *mut bool,
    _alive: bool,
    state: *mut std::ffi::c_void,
) {
    // Safety: `state` is the BuildState ambuild passed; values/isnull have one entry (one column).
    unsafe {
        if *isnull {
            return;
        }
        let state = &mut *(state as *mut BuildState);
        let context = state.row_context.0;
        let old = pg_sys::MemoryContextSwitchTo(context);
        state.row(tid, *values);
        pg_sys::MemoryContextSwitchTo(old);
        pg_sys::MemoryContextReset(context);
    }
}

/// One pass of the table AM's build scan over the whole table, calling `callback` with `state`.
///
/// # Safety
/// Open heap and index, a valid IndexInfo, and `state` what `callback` expects.
pub(super) unsafe fn scan_table(
    heap: pg_sys::Relation,
    index: pg_sys::Relation,
    info: *mut pg_sys::IndexInfo,
    progress: bool,
    callback: pg_sys::IndexBuildCallback,
    state: *mut std::ffi::c_void,
) -> f64 {
    // Safety: table_index_build_scan is static inline in tableam.h; this is its body. The call
    // goes through pg_guard_ffi_boundary so an ERROR inside unwinds our frames properly.
    unsafe {
        let scan = (*(*heap).rd_tableam)
            .index_build_range_scan
            .expect("table access method without index_build_range_scan");
        pg_sys::ffi::pg_guard_ffi_boundary(|| {
            scan(
                heap,
                index,
                info,
                true,
                false,
                progress,
                0,
                pg_sys::InvalidBlockNumber,
                callback,
                state,
                std::ptr::null_mut(),
            )
        })
    }
}

#[pg_guard]
pub unsafe extern "C-unwind" fn ambuild(
    heap: pg_sys::Relation,
    index: pg_sys::Relation,
    info: *mut pg_sys::IndexInfo,
) -> *mut pg_sys::IndexBuildResult {
    // Safety: PostgreSQL passes open relations and the IndexInfo; the index is new and empty, so
    // it may be written without WAL (logged whole at the end).
    unsafe {
        if (*index).rd_att.is_null() || (*(*index).rd_att).natts != 1 {
            crate::fmgr::error(
                pg_sys::errcodes::PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
                "synthivf indexes take exactly one column",
            );
        }
        let rel = PgRelation::unlogged_build(index, pg_sys::ForkNumber::MAIN_FORKNUM);
        let reltuples = (*(*heap).rd_rel).reltuples as f64;
        // Never analyzed (-1): guess from the table's size, so that the sample is big enough.
        let reltuples = if reltuples >= 0.0 {
            reltuples
        } else {
            let blocks =
                pg_sys::RelationGetNumberOfBlocksInFork(heap, pg_sys::ForkNumber::MAIN_FORKNUM);
            let row = typmod_dims(index).map_or(100, |d| 4 * d + 40).min(2000);
            blocks as f64 * (pg_sys::BLCKSZ as usize / row) as f64
        };
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(pg_sys::max_parallel_maintenance_workers.max(0) as usize + 1);
        let mut state = BuildState {
            rel,
            metric: handler::opclass_metric(index),
            reloptions: options::index_options(index),
            threads,
            expected_rows: reltuples.max(0.0) as u64,
            build: None,
            pass: Pass::Sampling,
            rows: 0,
            indexed: 0,
            row_context: RowContext::new(),
        };
        if let Some(dims) = typmod_dims(index) {
            let o = build_options(dims, state.metric, state.reloptions, threads);
            state.build = Some(new_build(o, state.expected_rows));
        }
        progress(pg_sys::PROGRESS_CREATEIDX_SUBPHASE, PHASE_SAMPLING);
        progress(
            pg_sys::PROGRESS_CREATEIDX_TUPLES_TOTAL,
            state.expected_rows as i64,
        );
        let state_ptr = &mut state as *mut BuildState as *mut std::ffi::c_void;
        let heap_tuples = scan_table(heap, index, info, true, Some(build_callback), state_ptr);
        if let Some(build) = state.build.as_mut() {
            progress(pg_sys::PROGRESS_CREATEIDX_SUBPHASE, PHASE_TRAINING);
            // Asking libtorch for CUDA may start the driver's threads: not while signals are open.
            let gpu = {
                let _blocked = crate::signals::Blocked::new();
                gpu_device()
            };
            loop {
                pgrx::check_for_interrupts!();
                if let Some(device) = gpu
                    && build.seeded()
                {
                    // CUDA starts threads of its own: they must never take a signal.
                    let _blocked = crate::signals::Blocked::new();
                    build.lloyd_with(|sample, centers, dims, iterations, spherical| {
                        match super::gpu_kmeans::lloyd(
                            sample, centers, dims, iterations, spherical, device,
                        ) {
                            Ok(()) => true,
                            Err(e) => {
                                pgrx::notice!(
                                    "synthivf: k-means on {device:?} failed ({e}); the CPU runs it"
                                );
                                false
                            }
                        }
                    });
                }
                let (done, total) = build.train_step();
                if done == total {
                    break;
                }
            }
            build.begin_load(&state.rel);
            progress(pg_sys::PROGRESS_CREATEIDX_SUBPHASE, PHASE_LOADING);
            progress(pg_sys::PROGRESS_CREATEIDX_TUPLES_TOTAL, build.seen() as i64);
            progress(pg_sys::PROGRESS_CREATEIDX_TUPLES_DONE, 0);
            state.pass = Pass::Loading;
            state.rows = 0;
            scan_table(heap, index, info, true, Some(build_callback), state_ptr);
            let build = state.build.take().expect("build vanished");
            let (rows, lists) = (build.seen(), build.lists());
            build.finish(&state.rel);
            state.rel.log_all();
            little_data_notice(index, rows, lists);
        } else {
            little_data_notice(index, 0, 0);
        }
        // An index for synthquery remembers the encoder its embeddings came from (the active one).
        if handler::optional_proc(index, handler::QUERY_ENCODER_PROC).is_some() {
            let logged = PgRelation::new(index);
            if !logged.is_empty() {
                let version = crate::model::registry::active_encoder_number();
                meta::set_encoder_version(&logged, version);
            }
        }
        let result = pg_sys::palloc0(std::mem::size_of::<pg_sys::IndexBuildResult>())
            as *mut pg_sys::IndexBuildResult;
        (*result).heap_tuples = heap_tuples;
        (*result).index_tuples = state.indexed as f64;
        result
    }
}

/// A build trains its lists on the rows the table has then: built on an empty table, or on fewer
/// rows than k-means needs for its lists, the index works but its lists are poor until a REINDEX
/// (pgvector says the same of IVFFlat).
///
/// # Safety
/// `index` is the open index being built.
unsafe fn little_data_notice(index: pg_sys::Relation, rows: u64, lists: u32) {
    use pgrx::pg_sys::errcodes::PgSqlErrorCode;
    use synthsearch_index::options::MIN_SAMPLE_PER_LIST;
    // Safety: an open relation's rd_rel->relname is a NUL-terminated NameData.
    let name = unsafe {
        std::ffi::CStr::from_ptr((*(*index).rd_rel).relname.data.as_ptr())
            .to_string_lossy()
            .into_owned()
    };
    let report = if rows == 0 {
        pgrx::pg_sys::panic::ErrorReport::new(
            PgSqlErrorCode::ERRCODE_SUCCESSFUL_COMPLETION,
            format!("synthivf index \"{name}\" was built on an empty table"),
            "ambuild",
        )
        .set_detail(
            "Its lists are trained when it is built: until then every row goes to one list and every scan reads it whole.",
        )
    } else if lists > 1 && rows < u64::from(lists) * u64::from(MIN_SAMPLE_PER_LIST) {
        pgrx::pg_sys::panic::ErrorReport::new(
            PgSqlErrorCode::ERRCODE_SUCCESSFUL_COMPLETION,
            format!("synthivf index \"{name}\" was built from {rows} rows for {lists} lists"),
            "ambuild",
        )
        .set_detail(format!(
            "k-means had fewer than {MIN_SAMPLE_PER_LIST} rows a list, so the lists are poor and recall will be low."
        ))
    } else {
        return;
    };
    report
        .set_hint(
            "Build the index after loading the data, or REINDEX it then (or use fewer lists).",
        )
        .report(pgrx::PgLogLevel::NOTICE);
}

/// Writes an index of no rows into `rel` (one list, centroid arbitrary).
pub(super) fn build_empty(
    rel: &PgRelation,
    dims: usize,
    metric: Metric,
    reloptions: (u32, u32, u32),
) {
    let mut build = new_build(build_options(dims, metric, reloptions, 1), 0);
    loop {
        let (done, total) = build.train_step();
        if done == total {
            break;
        }
    }
    // The meta page and the directory in one WAL record, both locked until it is written: a
    // crash leaves no index with a meta page and no directory, and a concurrent scan waits on
    // the meta page rather than reading a directory that is not there yet.
    rel.atomic(|| {
        build.begin_load(rel);
        build.finish(rel);
    });
}

/// `ambuildempty`: the init fork of an index on an UNLOGGED table, what the index becomes after
/// a crash: the meta page and an empty directory, WAL-logged.
#[pg_guard]
pub unsafe extern "C-unwind" fn ambuildempty(index: pg_sys::Relation) {
    // Safety: PostgreSQL calls this after ambuild with the init fork created and empty.
    unsafe {
        let main = PgRelation::new(index);
        let dims =
            typmod_dims(index).or_else(|| (!main.is_empty()).then(|| meta::read_meta(&main).dims));
        let Some(dims) = dims else {
            // No dimensions known: an empty init fork, the first insert after a crash creates it.
            return;
        };
        let (_, sample_per_list, kmeans_iterations) = options::index_options(index);
        let rel = PgRelation::unlogged_build(index, pg_sys::ForkNumber::INIT_FORKNUM);
        build_empty(
            &rel,
            dims,
            handler::opclass_metric(index),
            (1, sample_per_list, kmeans_iterations),
        );
        rel.log_all();
    }
}
