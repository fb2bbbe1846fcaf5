//! Short transactions in a background worker, and errors turned into messages for the job row.
//!
//! The worker trains outside any transaction; it opens one only to read its data, to write
//! progress and checkpoints, and to store the model. An ERROR inside one aborts it and comes back
//! as `Err(message)`, so the worker can still record what went wrong.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use pgrx::bgworkers::BackgroundWorker;
use pgrx::pg_sys;
use pgrx::pg_sys::panic::{CaughtError, ErrorReportWithLevel};

/// Runs `f` in a transaction of its own and commits, or aborts and returns the error's message.
pub fn transaction<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    // Lock waits, deadlock checks and barriers inside it need their signals.
    crate::signals::open(|| transaction_open(f))
}

fn transaction_open<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    // Safety: the worker is connected to its database and outside any transaction (this function
    // never nests); the memory context is saved to be restored after an abort.
    let context = unsafe {
        let context = pg_sys::CurrentMemoryContext;
        pg_sys::SetCurrentStatementStartTimestamp();
        pg_sys::StartTransactionCommand();
        pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
        context
    };
    let result = catch_unwind(AssertUnwindSafe(f)).and_then(|r| {
        catch_unwind(|| {
            // Safety: the snapshot pushed above is still the active one.
            unsafe {
                pg_sys::PopActiveSnapshot();
                pg_sys::CommitTransactionCommand();
            }
        })
        .map(|()| r)
    });
    result.map_err(|payload| {
        // Safety: an ERROR was caught (and its state flushed by pgrx); abort cleans up the
        // transaction, its snapshots, SPI and locks, and restores the user id.
        unsafe {
            pg_sys::AbortCurrentTransaction();
            pg_sys::CurrentMemoryContext = context;
        }
        panic_message(payload.as_ref())
    })
}

/// The message of a caught ERROR or Rust panic.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    fn report(r: &ErrorReportWithLevel) -> String {
        match r.detail() {
            Some(d) if !d.is_empty() => format!("{} ({d})", r.message()),
            _ => r.message().to_string(),
        }
    }
    if let Some(e) = payload.downcast_ref::<CaughtError>() {
        match e {
            CaughtError::PostgresError(r) | CaughtError::ErrorReport(r) => report(r),
            CaughtError::RustPanic { ereport, .. } => report(ereport),
        }
    } else if let Some(r) = payload.downcast_ref::<ErrorReportWithLevel>() {
        report(r)
    } else if let Some(s) = payload.downcast_ref::<&str>() {
        format!("internal error: {s}")
    } else if let Some(s) = payload.downcast_ref::<String>() {
        format!("internal error: {s}")
    } else {
        "internal error".to_string()
    }
}

static STOP: AtomicBool = AtomicBool::new(false);

/// Whether the server asked this worker to stop (SIGTERM: a shutdown or pg_terminate_backend).
pub fn stop_requested() -> bool {
    // A SIGTERM that came while the signals were held runs its handler now.
    crate::signals::open(|| ());
    if BackgroundWorker::sigterm_received() {
        STOP.store(true, Ordering::SeqCst);
    }
    STOP.load(Ordering::SeqCst)
}

/// Sleeps up to `timeout` on the latch and handles interrupts; the process exits if the
/// postmaster has died.
pub fn nap(timeout: Duration) {
    crate::signals::open(|| nap_open(timeout));
}

fn nap_open(timeout: Duration) {
    // Safety: MyLatch is this process's latch; WL_EXIT_ON_PM_DEATH ends the process cleanly
    // when the postmaster is gone.
    unsafe {
        pg_sys::WaitLatch(
            pg_sys::MyLatch,
            (pg_sys::WL_LATCH_SET | pg_sys::WL_TIMEOUT | pg_sys::WL_EXIT_ON_PM_DEATH) as i32,
            timeout.as_millis() as std::ffi::c_long,
            pg_sys::PG_WAIT_EXTENSION,
        );
        pg_sys::ResetLatch(pg_sys::MyLatch);
    }
    // Absorbs ProcSignalBarriers (DROP DATABASE waits for every process to take them).
    pg_sys::check_for_interrupts!();
}
