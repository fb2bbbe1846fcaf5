//! What synthivf scans did, in `EXPLAIN (ANALYZE)`: lists probed, codes scanned, rows reranked
//! and returned, and rows dropped by `strict_order`, summed over the statement's synthivf scans.
//!
//! PostgreSQL 15 and 17 have no hook into one plan node's EXPLAIN output, so the counters are
//! backend-wide sums that every scan adds to when it ends (or is rescanned), and an
//! `ExplainOneQuery_hook` prints the difference a statement made. In the text format they come
//! after the plan; the other formats get an object of their own after the query's (an extra
//! element of the JSON array, a YAML list item, an XML element). The hook is in place once the
//! library is loaded: always when preloaded, otherwise from the session's first use of it.

use pgrx::{pg_guard, pg_sys};
use std::cell::Cell;
use synthsearch_index::scan::ScanStats;

#[derive(Clone, Copy, Default)]
struct Totals {
    scans: u64,
    lists: u64,
    codes: u64,
    reranked: u64,
    returned: u64,
    dropped: u64,
}

thread_local! {
    static TOTALS: Cell<Totals> = const { Cell::new(Totals { scans: 0, lists: 0, codes: 0, reranked: 0, returned: 0, dropped: 0 }) };
}

/// Adds a finished (or replaced) scan's counters.
pub(super) fn account(s: &ScanStats) {
    TOTALS.with(|t| {
        let mut v = t.get();
        v.scans += 1;
        v.lists += s.lists as u64;
        v.codes += s.codes;
        v.reranked += s.reranked;
        v.returned += s.returned;
        v.dropped += s.dropped;
        t.set(v);
    });
}

static mut PREVIOUS: pg_sys::ExplainOneQuery_hook_type = None;

pub(super) fn init() {
    // Safety: _PG_init runs once per process, before any EXPLAIN of this backend.
    unsafe {
        PREVIOUS = pg_sys::ExplainOneQuery_hook;
        pg_sys::ExplainOneQuery_hook = Some(explain_one_query);
    }
}

#[cfg(feature = "pg15")]
fn monotonic_now() -> pg_sys::instr_time {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // Safety: CLOCK_MONOTONIC, as INSTR_TIME_SET_CURRENT reads it.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    pg_sys::instr_time {
        tv_sec: ts.tv_sec,
        tv_nsec: ts.tv_nsec,
    }
}

/// What PostgreSQL 17 does when no hook is set (exported from 17 on).
///
/// # Safety
/// The hook's arguments, as PostgreSQL passes them.
#[cfg(feature = "pg17")]
unsafe fn standard(
    query: *mut pg_sys::Query,
    cursor_options: std::ffi::c_int,
    into: *mut pg_sys::IntoClause,
    es: *mut pg_sys::ExplainState,
    query_string: *const std::ffi::c_char,
    params: pg_sys::ParamListInfo,
    query_env: *mut pg_sys::QueryEnvironment,
) {
    // Safety: the arguments pass through unchanged.
    unsafe {
        pg_sys::standard_ExplainOneQuery(
            query,
            cursor_options,
            into,
            es,
            query_string,
            params,
            query_env,
        )
    }
}

/// What PostgreSQL 15's ExplainOneQuery does when no hook is set (it is static there): plan,
/// time the planning and its buffer use, and explain the plan.
///
/// # Safety
/// The hook's arguments, as PostgreSQL passes them.
#[cfg(feature = "pg15")]
unsafe fn standard(
    query: *mut pg_sys::Query,
    cursor_options: std::ffi::c_int,
    into: *mut pg_sys::IntoClause,
    es: *mut pg_sys::ExplainState,
    query_string: *const std::ffi::c_char,
    params: pg_sys::ParamListInfo,
    query_env: *mut pg_sys::QueryEnvironment,
) {
    // Safety: as PostgreSQL's own code does; pgBufferUsage is this backend's.
    unsafe {
        let buffers = (*es).buffers;
        let usage_start = pg_sys::pgBufferUsage;
        let start = monotonic_now();
        let plan = pg_sys::pg_plan_query(query, query_string, cursor_options, params);
        let end = monotonic_now();
        let mut nanos = (end.tv_sec - start.tv_sec) * 1_000_000_000 + (end.tv_nsec - start.tv_nsec);
        nanos = nanos.max(0);
        let duration = pg_sys::instr_time {
            tv_sec: nanos / 1_000_000_000,
            tv_nsec: nanos % 1_000_000_000,
        };
        let mut usage = pg_sys::BufferUsage::default();
        if buffers {
            pg_sys::BufferUsageAccumDiff(
                &mut usage,
                &raw const pg_sys::pgBufferUsage,
                &usage_start,
            );
        }
        pg_sys::ExplainOnePlan(
            plan,
            into,
            es,
            query_string,
            params,
            query_env,
            &duration,
            if buffers { &usage } else { std::ptr::null() },
        );
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn explain_one_query(
    query: *mut pg_sys::Query,
    cursor_options: std::ffi::c_int,
    into: *mut pg_sys::IntoClause,
    es: *mut pg_sys::ExplainState,
    query_string: *const std::ffi::c_char,
    params: pg_sys::ParamListInfo,
    query_env: *mut pg_sys::QueryEnvironment,
) {
    let before = TOTALS.with(Cell::get);
    // Safety: the arguments pass through unchanged; the previous hook is whoever loaded first.
    unsafe {
        match PREVIOUS {
            Some(previous) => previous(
                query,
                cursor_options,
                into,
                es,
                query_string,
                params,
                query_env,
            ),
            None => standard(
                query,
                cursor_options,
                into,
                es,
                query_string,
                params,
                query_env,
            ),
        }
        if !(*es).analyze {
            return;
        }
    }
    let after = TOTALS.with(Cell::get);
    let scans = after.scans - before.scans;
    if scans == 0 {
        return;
    }
    let rows = [
        ("Synthivf Scans", scans),
        ("Synthivf Lists Probed", after.lists - before.lists),
        ("Synthivf Codes Scanned", after.codes - before.codes),
        ("Synthivf Rows Reranked", after.reranked - before.reranked),
        ("Synthivf Rows Returned", after.returned - before.returned),
        ("Synthivf Rows Dropped", after.dropped - before.dropped),
    ];
    // Safety: es is the statement's ExplainState; its output is a valid StringInfo.
    unsafe {
        if (*es).format == pg_sys::ExplainFormat::EXPLAIN_FORMAT_TEXT {
            let line = format!(
                "synthivf: {scans} scan{}, {} lists probed, {} codes scanned, {} rows reranked, {} returned, {} dropped (strict order)\n",
                if scans == 1 { "" } else { "s" },
                rows[1].1,
                rows[2].1,
                rows[3].1,
                rows[4].1,
                rows[5].1
            );
            let c = std::ffi::CString::new(line).expect("no NUL");
            pg_sys::appendStringInfoString((*es).str_, c.as_ptr());
        } else {
            pg_sys::ExplainOpenGroup(c"Synthivf".as_ptr(), std::ptr::null(), true, es);
            for (label, value) in rows {
                let c = std::ffi::CString::new(label).expect("no NUL");
                pg_sys::ExplainPropertyInteger(c.as_ptr(), std::ptr::null(), value as i64, es);
            }
            pg_sys::ExplainCloseGroup(c"Synthivf".as_ptr(), std::ptr::null(), true, es);
        }
    }
}
