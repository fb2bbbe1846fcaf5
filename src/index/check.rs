//! `synth_index_check(index regclass, heap boolean DEFAULT false)`: checks a synthivf index in
//! the spirit of amcheck and returns what it counted; an inconsistency is an ERROR with SQLSTATE
//! XX002 (index_corrupted). By default only the index is read, under an AccessShareLock. With
//! `heap`, the table is read as CREATE INDEX reads it (under a ShareLock, which blocks writers
//! meanwhile; the caller needs SELECT on it) and the index must hold exactly its rows with equal
//! vectors. Rows deleted but not yet vacuumed are still in the index: VACUUM before comparing.
//! Not executable by PUBLIC, as amcheck's functions.

use super::build::scan_table;
use super::storage::PgRelation;
use super::tid_of;
use crate::datatype::memory::datum_values;
use crate::fmgr::{arg, error};
use crate::pg_function_info_v1;
use pgrx::pg_sys::errcodes::PgSqlErrorCode;
use pgrx::{pg_guard, pg_sys};
use synthsearch_index::{Relation, Report, Tid};

pg_function_info_v1!(pg_finfo_synth_index_check, pg_finfo_synth_index_stats);

/// The table's rows, read with a per-row memory context (a detoasted value is freed at once).
struct HeapRows {
    rows: Vec<(Tid, Vec<f32>)>,
    context: super::build::RowContext,
}

#[pg_guard]
unsafe extern "C-unwind" fn collect_row(
    _index: pg_sys::Relation,
    tid: pg_sys::ItemPointer,
    values: *mut pg_sys::Datum,
    isnull: *mut bool,
    _alive: bool,
    state: *mut std::ffi::c_void,
) {
    // Safety: `state` is the HeapRows below; one index column.
    unsafe {
        if *isnull {
            return;
        }
        let heap = &mut *(state as *mut HeapRows);
        let v = heap.context.run(|| datum_values(*values).to_vec());
        heap.rows.push((tid_of(tid), v));
    }
}

#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn synth_index_check(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // Safety: declared STRICT (regclass, boolean) RETURNS record with OUT parameters.
    unsafe {
        let index_oid = pg_sys::Oid::from(arg(fcinfo, 0).value() as u32);
        let with_heap = arg(fcinfo, 1).value() != 0;
        // Lock the table before the index, as every other path does.
        let heap_oid = table_of_index(index_oid);
        // Reading the table needs the right to read it (EXECUTE alone is a DBA's grant).
        if with_heap {
            require_table_privilege(heap_oid, "synth_index_check with heap => true");
        }
        let lock = if with_heap {
            pg_sys::ShareLock
        } else {
            pg_sys::AccessShareLock
        } as i32;
        let heap = pg_sys::table_open(heap_oid, lock);
        let index = open_synthivf(index_oid);
        let rel = PgRelation::new(index);
        let mut rows = HeapRows {
            rows: Vec::new(),
            context: super::build::RowContext::new(),
        };
        if with_heap {
            // The index's expressions and predicate are the table owner's code: they run as the
            // owner under SECURITY_RESTRICTED_OPERATION with a pinned search_path, as CREATE
            // INDEX, REINDEX and amcheck (CVE-2022-1552) run them, never as the caller.
            let owner = (*(*heap).rd_rel).relowner;
            let rows_ptr = &mut rows as *mut HeapRows as *mut std::ffi::c_void;
            crate::security::as_role(owner, || {
                let info = pg_sys::BuildIndexInfo(index);
                scan_table(heap, index, info, false, Some(collect_row), rows_ptr);
            });
        }
        let rows = rows.rows;
        let report = if rel.is_empty() {
            if !rows.is_empty() {
                corrupt(format!(
                    "index \"{}\" has no pages but the table has {} rows to index",
                    rel.name(),
                    rows.len()
                ));
            }
            Report::default()
        } else {
            let mut it = rows.into_iter();
            let heap_rows: Option<&mut dyn Iterator<Item = (Tid, Vec<f32>)>> =
                if with_heap { Some(&mut it) } else { None };
            synthsearch_index::check(&rel, heap_rows)
                .unwrap_or_else(|e| corrupt(format!("index \"{}\": {e}", rel.name())))
        };
        pg_sys::index_close(index, pg_sys::NoLock as i32);
        pg_sys::table_close(heap, pg_sys::NoLock as i32);
        result_row(fcinfo, &report)
    }
}

/// A relation's name for a message, or "OID n" for one that is gone.
fn rel_name(oid: pg_sys::Oid) -> String {
    // Safety: a catalog lookup by OID; NULL for a missing relation, else a palloc'd C string.
    unsafe {
        let name = pg_sys::get_rel_name(oid);
        if name.is_null() {
            format!("OID {}", oid.to_u32())
        } else {
            std::ffi::CStr::from_ptr(name)
                .to_string_lossy()
                .into_owned()
        }
    }
}

/// The table of `index_oid`, or 42809 when it is not an index. Take the table's lock before
/// the index's, as every other path does.
///
/// # Safety
/// A plain catalog lookup; raises an ERROR for a relation that is not an index.
unsafe fn table_of_index(index_oid: pg_sys::Oid) -> pg_sys::Oid {
    // Safety: catalog lookups by OID; get_rel_name returns NULL for a missing relation.
    unsafe {
        let heap_oid = pg_sys::IndexGetRelation(index_oid, true);
        if heap_oid == pg_sys::InvalidOid {
            let name = rel_name(index_oid);
            error(
                PgSqlErrorCode::ERRCODE_WRONG_OBJECT_TYPE,
                format!("relation \"{name}\" is not an index"),
            );
        }
        heap_oid
    }
}

/// Raises 42501 unless the current user may SELECT from the table or has the privileges of
/// pg_stat_scan_tables (the role pgstattuple's functions are granted to). Checked before any lock.
///
/// # Safety
/// A catalog lookup by OID.
unsafe fn require_table_privilege(heap_oid: pg_sys::Oid, what: &str) {
    // Safety: ACL and role lookups by OID.
    unsafe {
        let user = pg_sys::GetUserId();
        if pg_sys::pg_class_aclcheck(heap_oid, user, pg_sys::ACL_SELECT as pg_sys::AclMode)
            == pg_sys::AclResult::ACLCHECK_OK
            || pg_sys::has_privs_of_role(
                user,
                pg_sys::get_role_oid(c"pg_stat_scan_tables".as_ptr(), false),
            )
        {
            return;
        }
        let name = rel_name(heap_oid);
        crate::fmgr::error_with(
            PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!("permission denied for table {name}"),
            None,
            Some(format!(
                "{what} needs SELECT on the table or the privileges of pg_stat_scan_tables."
            )),
        );
    }
}

/// Opens the index under an AccessShareLock, or 42809 when it is not a synthivf index.
///
/// # Safety
/// `index_oid` is an index whose table the caller has locked.
unsafe fn open_synthivf(index_oid: pg_sys::Oid) -> pg_sys::Relation {
    // Safety: index_open raises an ERROR for a missing index; rd_rel is set on an open relation.
    unsafe {
        let index = pg_sys::index_open(index_oid, pg_sys::AccessShareLock as i32);
        let am = pg_sys::get_am_name((*(*index).rd_rel).relam);
        if am.is_null() || std::ffi::CStr::from_ptr(am) != c"synthivf" {
            let name = PgRelation::new(index).name();
            error(
                PgSqlErrorCode::ERRCODE_WRONG_OBJECT_TYPE,
                format!("index \"{name}\" is not a synthivf index"),
            );
        }
        index
    }
}

fn corrupt(message: String) -> ! {
    error(PgSqlErrorCode::ERRCODE_INDEX_CORRUPTED, message)
}

/// The OUT parameters: pages, lists, live_rows, dead_vectors, orphan_pages, orphan_vectors,
/// heap_rows.
///
/// # Safety
/// `fcinfo` is the call frame of a function returning a record of those seven columns.
unsafe fn result_row(fcinfo: pg_sys::FunctionCallInfo, r: &Report) -> pg_sys::Datum {
    // Safety: get_call_result_type resolves the OUT parameters' row type; heap_form_tuple copies
    // the by-value datums.
    unsafe {
        let mut desc: pg_sys::TupleDesc = std::ptr::null_mut();
        if pg_sys::get_call_result_type(fcinfo, std::ptr::null_mut(), &mut desc)
            != pg_sys::TypeFuncClass::TYPEFUNC_COMPOSITE
        {
            error(
                PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
                "function returning record called in context that cannot accept type record",
            );
        }
        let desc = pg_sys::BlessTupleDesc(desc);
        let mut values = [
            pg_sys::Datum::from(r.pages as i32),
            pg_sys::Datum::from(r.lists as i32),
            pg_sys::Datum::from(r.live as i64),
            pg_sys::Datum::from(r.dead_vectors as i64),
            pg_sys::Datum::from(r.orphan_pages as i32),
            pg_sys::Datum::from(r.orphan_vectors as i64),
            pg_sys::Datum::from(r.heap_rows as i64),
        ];
        let mut nulls = [false; 7];
        let tuple = pg_sys::heap_form_tuple(desc, values.as_mut_ptr(), nulls.as_mut_ptr());
        pg_sys::heap_copy_tuple_as_datum(tuple, desc)
    }
}

/// `synth_index_stats(index regclass)`: the lists' counts from the meta page and the directory
/// (no list is read), and whether the lists have gone stale with the advice to REINDEX. Under an
/// AccessShareLock; for roles that may read the table or have the privileges of
/// pg_stat_scan_tables, as pgstattuple's functions.
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn synth_index_stats(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // Safety: declared STRICT (regclass) RETURNS record with OUT parameters.
    unsafe {
        let index_oid = pg_sys::Oid::from(arg(fcinfo, 0).value() as u32);
        let heap_oid = table_of_index(index_oid);
        // As pgstattuple's functions: no lock on a table the caller has no rights on (a lock is
        // held to the end of the transaction and queues every later ALTER or DROP behind it).
        require_table_privilege(heap_oid, "synth_index_stats");
        let heap = pg_sys::table_open(heap_oid, pg_sys::AccessShareLock as i32);
        let index = open_synthivf(index_oid);
        let rel = PgRelation::new(index);
        let stats = if rel.is_empty() {
            None
        } else {
            Some(synthsearch_index::list_stats(&rel))
        };
        let name = rel.name();
        pg_sys::index_close(index, pg_sys::NoLock as i32);
        pg_sys::table_close(heap, pg_sys::NoLock as i32);
        stats_row(fcinfo, stats.as_ref(), &name)
    }
}

/// The OUT parameters: lists, build_rows, live_rows, dead_rows, largest_list, empty_lists, stale,
/// advice. An index without pages (built over an empty table, nothing inserted) has no lists.
///
/// # Safety
/// `fcinfo` is the call frame of a function returning a record of those eight columns.
unsafe fn stats_row(
    fcinfo: pg_sys::FunctionCallInfo,
    s: Option<&synthsearch_index::ListStats>,
    name: &str,
) -> pg_sys::Datum {
    let empty = synthsearch_index::ListStats {
        lists: 0,
        build_rows: 0,
        live_rows: 0,
        dead_rows: 0,
        largest_list: 0,
        empty_lists: 0,
    };
    let s = s.unwrap_or(&empty);
    let advice = s.stale().map(|why| {
        // Safety: quote_identifier returns its argument or a palloc'd quoted copy.
        let quoted = unsafe {
            let c = std::ffi::CString::new(name).unwrap_or_default();
            std::ffi::CStr::from_ptr(pg_sys::quote_identifier(c.as_ptr()))
                .to_string_lossy()
                .into_owned()
        };
        format!("{why}: REINDEX INDEX {quoted} trains new lists")
    });
    // Safety: as result_row; the advice text is copied into a palloc'd text datum.
    unsafe {
        let mut desc: pg_sys::TupleDesc = std::ptr::null_mut();
        if pg_sys::get_call_result_type(fcinfo, std::ptr::null_mut(), &mut desc)
            != pg_sys::TypeFuncClass::TYPEFUNC_COMPOSITE
        {
            error(
                PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
                "function returning record called in context that cannot accept type record",
            );
        }
        let desc = pg_sys::BlessTupleDesc(desc);
        let text = match &advice {
            Some(a) => {
                let c = std::ffi::CString::new(a.as_str()).unwrap_or_default();
                pg_sys::Datum::from(pg_sys::cstring_to_text(c.as_ptr()))
            }
            None => pg_sys::Datum::from(0usize),
        };
        let mut values = [
            pg_sys::Datum::from(s.lists as i32),
            pg_sys::Datum::from(s.build_rows as i64),
            pg_sys::Datum::from(s.live_rows as i64),
            pg_sys::Datum::from(s.dead_rows as i64),
            pg_sys::Datum::from(s.largest_list as i64),
            pg_sys::Datum::from(s.empty_lists as i32),
            pg_sys::Datum::from(advice.is_some()),
            text,
        ];
        let mut nulls = [
            false,
            false,
            false,
            false,
            false,
            false,
            false,
            advice.is_none(),
        ];
        let tuple = pg_sys::heap_form_tuple(desc, values.as_mut_ptr(), nulls.as_mut_ptr());
        pg_sys::heap_copy_tuple_as_datum(tuple, desc)
    }
}
