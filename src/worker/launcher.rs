//! The launcher: a static background worker, registered only when the library is preloaded
//! (shared_preload_libraries). After every server start, and after every crash of a backend (the
//! postmaster then restarts all workers but forgets those that had exited), it visits each
//! database that allows connections, one short-lived worker at a time, and relaunches the
//! unfinished training jobs there whose worker is gone: they resume from their last checkpoint.
//! Then it sleeps until shutdown. `synth_resume()` does the same on demand.

use std::time::Duration;

use pgrx::bgworkers::{BackgroundWorker, BackgroundWorkerBuilder, SignalWakeFlags};
use pgrx::pg_sys;
use pgrx::prelude::*;

use super::xact::{nap, stop_requested, transaction};
use crate::fmgr::spi_bool;

pub fn register() {
    BackgroundWorkerBuilder::new("synthsearch launcher")
        .set_type("synthsearch launcher")
        .set_library("synthsearch")
        .set_function("synth_launcher_main")
        .enable_spi_access()
        // Restarted after a crash of the server's processes, so that it resumes jobs again.
        .set_restart_time(Some(Duration::from_secs(10)))
        .load();
}

#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn synth_launcher_main(_arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    // No database: only the shared catalogs, so no database is kept busy (CREATE/DROP DATABASE).
    BackgroundWorker::connect_worker_to_spi(None, None);
    sweep();
    // Stay, so that the postmaster restarts the launcher after a crash (an exited worker would
    // be forgotten); a SIGTERM at shutdown ends the wait.
    while !stop_requested() {
        nap(Duration::from_secs(3600));
    }
}

/// Relaunches the orphaned jobs of every database, one database at a time.
fn sweep() {
    let databases = match transaction(|| {
        // Safety: pg_database is a shared catalog, readable without a database; the scan runs in
        // the transaction opened above and every tuple is read before the scan ends.
        unsafe { database_list() }
    }) {
        Ok(d) => d,
        Err(e) => {
            pgrx::warning!("synthsearch launcher: cannot list the databases: {e}");
            return;
        }
    };
    for db in databases {
        if stop_requested() {
            return;
        }
        // Safety: this process's pid, so the postmaster tells it when the worker stops.
        let pid = unsafe { pg_sys::MyProcPid };
        let worker = BackgroundWorkerBuilder::new("synthsearch resume")
            .set_type("synthsearch resume")
            .set_library("synthsearch")
            .set_function("synth_resume_worker_main")
            .enable_spi_access()
            .set_argument(Some(pg_sys::Datum::from(db.to_u32())))
            .set_notify_pid(pid)
            .load_dynamic();
        match worker {
            Ok(w) => {
                let _ = w.wait_for_shutdown();
            }
            Err(_) => pgrx::warning!(
                "synthsearch launcher: no background worker slot is free to resume training jobs"
            ),
        }
    }
}

/// Databases that allow connections and are not templates.
unsafe fn database_list() -> Vec<pg_sys::Oid> {
    let mut out = Vec::new();
    // Safety: see the caller.
    unsafe {
        let rel = pg_sys::table_open(
            pg_sys::DatabaseRelationId,
            pg_sys::AccessShareLock as pg_sys::LOCKMODE,
        );
        let scan = pg_sys::table_beginscan_catalog(rel, 0, std::ptr::null_mut());
        loop {
            let tuple = pg_sys::heap_getnext(scan, pg_sys::ScanDirection::ForwardScanDirection);
            if tuple.is_null() {
                break;
            }
            let form = pg_sys::heap_tuple_get_struct::<pg_sys::FormData_pg_database>(tuple);
            if (*form).datallowconn && !(*form).datistemplate {
                out.push((*form).oid);
            }
        }
        pg_sys::heap_endscan(scan);
        pg_sys::table_close(rel, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
    }
    out
}

/// Connects to one database as the bootstrap superuser and relaunches its orphaned jobs there,
/// if the extension is installed in it.
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn synth_resume_worker_main(arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    let db = pg_sys::Oid::from(arg.value() as u32);
    BackgroundWorker::connect_worker_to_spi_by_oid(Some(db), None);
    // It runs as a superuser: the database's search_path default must not reach its SQL.
    crate::security::pin_session();
    let r = transaction(|| {
        let installed = spi_bool(
            "SELECT EXISTS (SELECT FROM pg_catalog.pg_extension \
             WHERE extname OPERATOR(pg_catalog.=) 'synthsearch'::pg_catalog.name)",
            &[],
        );
        if installed {
            super::jobs::resume_orphans(true, false)
        } else {
            0
        }
    });
    match r {
        Ok(0) => {}
        Ok(n) => pgrx::log!(
            "synthsearch: resumed {n} training jobs in database {}",
            db.to_u32()
        ),
        Err(e) => pgrx::warning!(
            "synthsearch: resuming training jobs in database {} failed: {e}",
            db.to_u32()
        ),
    }
}
