//! Signals in processes that run threads: PostgreSQL's (and pgrx's) handlers must run on the
//! process's main thread, and a signal sent to the process goes to any thread that does not block
//! it. A thread inherits the mask of the thread that starts it, so the threads libtorch's pools
//! and the index build start are started while every asynchronous signal is blocked; they never
//! see one, and the main thread takes each signal when it unblocks.
//!
//! Two ways to use it:
//! - [`Blocked`], a guard for one stretch of work in a backend (the index build's threads);
//! - [`hold`] and [`open`], for a background worker that runs libtorch: it holds the signals for
//!   its whole life and opens them only where it waits, checks its flags or runs a transaction, so
//!   no libtorch thread it starts, whenever it starts one, can take a SIGTERM or SIGHUP (pgrx's
//!   handlers abort the process when they run on another thread, and the postmaster then restarts
//!   the whole cluster).

use std::cell::Cell;
use std::mem::MaybeUninit;

/// Signals that stay deliverable while held: the synchronous ones (a fault is the thread's own)
/// and SIGQUIT, whose handler in a background worker only calls `_exit(2)` (safe on any thread),
/// so an immediate shutdown stays immediate.
const LEFT_OPEN: [libc::c_int; 8] = [
    libc::SIGQUIT,
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGILL,
    libc::SIGFPE,
    libc::SIGTRAP,
    libc::SIGABRT,
    libc::SIGSYS,
];

fn full_set() -> libc::sigset_t {
    let mut set = MaybeUninit::<libc::sigset_t>::uninit();
    // Safety: sigfillset initialises the set it is given.
    unsafe {
        libc::sigfillset(set.as_mut_ptr());
        set.assume_init()
    }
}

fn held_set() -> libc::sigset_t {
    let mut set = full_set();
    for s in LEFT_OPEN {
        // Safety: the set is initialised and s is a valid signal number.
        unsafe { libc::sigdelset(&mut set, s) };
    }
    set
}

fn set_mask(set: &libc::sigset_t) -> libc::sigset_t {
    let mut old = MaybeUninit::<libc::sigset_t>::uninit();
    // Safety: both pointers are valid sigset_t; pthread_sigmask fills `old`.
    unsafe {
        libc::pthread_sigmask(libc::SIG_SETMASK, set, old.as_mut_ptr());
        old.assume_init()
    }
}

/// Blocks every signal on this thread while alive and restores the mask when dropped: threads
/// started meanwhile never run a handler.
pub struct Blocked {
    old: libc::sigset_t,
}

impl Blocked {
    pub fn new() -> Blocked {
        Blocked {
            old: set_mask(&full_set()),
        }
    }
}

impl Drop for Blocked {
    fn drop(&mut self) {
        set_mask(&self.old);
    }
}

thread_local! {
    /// The mask from before [`hold`], while held; and how deep [`open`] calls nest.
    static OPEN_MASK: Cell<Option<libc::sigset_t>> = const { Cell::new(None) };
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// Blocks every asynchronous signal but SIGQUIT on this (the main) thread from now on, except
/// inside [`open`]. Called once, before the process starts any thread.
pub fn hold() {
    if OPEN_MASK.with(Cell::get).is_some() {
        return;
    }
    let old = set_mask(&held_set());
    OPEN_MASK.with(|m| m.set(Some(old)));
}

/// Re-blocks when the outermost [`open`] ends, on return or unwinding (an ERROR).
struct Reblock;

impl Drop for Reblock {
    fn drop(&mut self) {
        let depth = DEPTH.with(|d| {
            let n = d.get().saturating_sub(1);
            d.set(n);
            n
        });
        if depth == 0 {
            set_mask(&held_set());
        }
    }
}

/// Runs `f` with the signals open (as before [`hold`]): signals that arrived meanwhile run their
/// handlers now, on this thread. Without [`hold`] it only runs `f`. `f` must not start threads.
pub fn open<R>(f: impl FnOnce() -> R) -> R {
    let Some(mask) = OPEN_MASK.with(Cell::get) else {
        return f();
    };
    let first = DEPTH.with(|d| {
        d.set(d.get() + 1);
        d.get() == 1
    });
    if first {
        set_mask(&mask);
    }
    let _reblock = Reblock;
    f()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocked(sig: libc::c_int) -> bool {
        let mut cur = MaybeUninit::<libc::sigset_t>::uninit();
        // Safety: reads this thread's mask into `cur`.
        unsafe {
            libc::pthread_sigmask(libc::SIG_SETMASK, std::ptr::null(), cur.as_mut_ptr());
            libc::sigismember(cur.as_ptr(), sig) == 1
        }
    }

    #[test]
    fn threads_started_while_held_block_signals() {
        // On a thread of its own: the test harness's threads keep their masks.
        std::thread::spawn(|| {
            assert!(!blocked(libc::SIGTERM));
            hold();
            assert!(blocked(libc::SIGTERM) && blocked(libc::SIGHUP) && blocked(libc::SIGUSR1));
            assert!(!blocked(libc::SIGQUIT) && !blocked(libc::SIGSEGV));
            let child = std::thread::spawn(|| blocked(libc::SIGTERM))
                .join()
                .unwrap();
            assert!(child, "a thread started while held takes SIGTERM");
            open(|| {
                assert!(!blocked(libc::SIGTERM));
                open(|| assert!(!blocked(libc::SIGTERM)));
                assert!(
                    !blocked(libc::SIGTERM),
                    "an inner open closed the outer one"
                );
            });
            assert!(blocked(libc::SIGTERM));
            let unwound = std::panic::catch_unwind(|| open(|| panic!("an ERROR")));
            assert!(unwound.is_err());
            assert!(
                blocked(libc::SIGTERM),
                "an ERROR inside open left the signals open"
            );
            let child = std::thread::spawn(|| blocked(libc::SIGTERM))
                .join()
                .unwrap();
            assert!(child);
        })
        .join()
        .unwrap();
        // A guard restores the mask.
        std::thread::spawn(|| {
            {
                let _b = Blocked::new();
                assert!(blocked(libc::SIGTERM) && blocked(libc::SIGQUIT));
            }
            assert!(!blocked(libc::SIGTERM));
        })
        .join()
        .unwrap();
    }
}
