//! The core's [`Relation`] over PostgreSQL buffers.
//!
//! A read guard holds a pin and a share lock. A write guard holds a pin and an exclusive lock and,
//! in logged mode, a GenericXLog record over the buffer: the guard finishes it when dropped
//! normally and aborts it when dropped during a panic (an ERROR unwinding), so a half-made change
//! never reaches the page or the WAL. The build writes without WAL and logs whole pages at the end
//! (see [`PgRelation::log_all`]), as pgvector does.
//!
//! Inside [`Relation::atomic`] the write guards of up to four pages share one GenericXLog record,
//! finished (or aborted) when the closure returns; their pages stay locked until then, and a read
//! or write of a page already in the record sees the record's copy.
//!
//! The core's page area is the [`PAGE_AREA`] bytes after the 24-byte page header. `pd_lower` is set
//! past the whole area so that GenericXLog's and log_newpage's hole compression never drops data.

use pgrx::pg_sys;
use std::cell::RefCell;
use std::ops::{Deref, DerefMut};
use synthsearch_index::Relation;
use synthsearch_index::meta::META_BLOCK;
use synthsearch_index::page;
use synthsearch_index::relation::{BLCKSZ, MAX_ATOMIC_PAGES, PAGE_AREA};

/// Size of PostgreSQL's page header; the core's area starts here.
const PAGE_HEADER: usize = 24;
const _: () = assert!(PAGE_HEADER + PAGE_AREA <= BLCKSZ);
const _: () = assert!(BLCKSZ == pg_sys::BLCKSZ as usize);

pub struct PgRelation {
    rel: pg_sys::Relation,
    fork: pg_sys::ForkNumber::Type,
    /// GenericXLog on every write (false: the build, which logs whole pages at the end).
    logged: bool,
    /// The record of the [`Relation::atomic`] call running, if any.
    group: RefCell<Option<Group>>,
}

/// One GenericXLog record over several pages: (block, buffer, the record's copy of the page).
struct Group {
    state: *mut pg_sys::GenericXLogState,
    pages: Vec<(u32, pg_sys::Buffer, *mut u8)>,
}

impl PgRelation {
    /// The main fork, every write WAL-logged.
    ///
    /// # Safety
    /// `rel` must be an open index relation that outlives the value.
    pub unsafe fn new(rel: pg_sys::Relation) -> PgRelation {
        PgRelation {
            rel,
            fork: pg_sys::ForkNumber::MAIN_FORKNUM,
            logged: true,
            group: RefCell::new(None),
        }
    }

    /// A fork written without WAL; the caller calls [`PgRelation::log_all`] when done.
    ///
    /// # Safety
    /// As [`PgRelation::new`], and the relation must be new in this transaction (a build).
    pub unsafe fn unlogged_build(
        rel: pg_sys::Relation,
        fork: pg_sys::ForkNumber::Type,
    ) -> PgRelation {
        PgRelation {
            rel,
            fork,
            logged: false,
            group: RefCell::new(None),
        }
    }

    pub fn raw(&self) -> pg_sys::Relation {
        self.rel
    }

    /// Writes every page of the fork to the WAL, when the relation needs it: a permanent relation,
    /// or any relation's init fork (it is what recovery copies over an unlogged index).
    pub fn log_all(&self) {
        // Safety: `rel` is open (constructor's contract); rd_rel is always set for an open relation.
        unsafe {
            let persistence = (*(*self.rel).rd_rel).relpersistence as u8;
            let needs = self.fork == pg_sys::ForkNumber::INIT_FORKNUM
                || persistence == pg_sys::RELPERSISTENCE_PERMANENT;
            let n = self.len();
            if needs && n > 0 {
                pg_sys::log_newpage_range(self.rel, self.fork, 0, n, true);
            }
        }
    }

    fn read_buffer(&self, blkno: u32, mode: u32) -> pg_sys::Buffer {
        // Safety: the relation is open; ReadBufferExtended raises an ERROR (an unwinding panic
        // here) for a block past the end or on I/O failure, and the lock mode is a valid one.
        unsafe {
            let buf = pg_sys::ReadBufferExtended(
                self.rel,
                self.fork,
                blkno,
                pg_sys::ReadBufferMode::RBM_NORMAL,
                std::ptr::null_mut(),
            );
            pg_sys::LockBuffer(buf, mode as i32);
            buf
        }
    }

    pub fn name(&self) -> String {
        // Safety: an open relation's rd_rel->relname is a NUL-terminated NameData.
        unsafe {
            std::ffi::CStr::from_ptr((*(*self.rel).rd_rel).relname.data.as_ptr())
                .to_string_lossy()
                .into_owned()
        }
    }

    fn start_write(&self, blkno: u32, buf: pg_sys::Buffer, flags: i32) -> PgWrite {
        // Safety: `buf` is pinned and exclusively locked by us. GenericXLogRegisterBuffer returns
        // a private BLCKSZ copy of the page that stays valid until finish or abort.
        unsafe {
            // The borrow ends before the ERROR: the unwinding ends the record and borrows again.
            let full =
                self.group.borrow().as_ref().map(|g| g.pages.len()) == Some(MAX_ATOMIC_PAGES);
            if full {
                pg_sys::UnlockReleaseBuffer(buf);
                crate::fmgr::error(
                    pgrx::pg_sys::errcodes::PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
                    format!(
                        "synthivf: one change of index \"{}\" would write more than {MAX_ATOMIC_PAGES} pages",
                        self.name()
                    ),
                );
            }
            if let Some(g) = self.group.borrow_mut().as_mut() {
                let page = pg_sys::GenericXLogRegisterBuffer(g.state, buf, flags) as *mut u8;
                g.pages.push((blkno, buf, page));
                return PgWrite {
                    buf,
                    state: std::ptr::null_mut(),
                    page,
                    grouped: true,
                };
            }
            if self.logged {
                let state = pg_sys::GenericXLogStart(self.rel);
                let page = pg_sys::GenericXLogRegisterBuffer(state, buf, flags) as *mut u8;
                PgWrite {
                    buf,
                    state,
                    page,
                    grouped: false,
                }
            } else {
                let page = pg_sys::BufferGetPage(buf) as *mut u8;
                PgWrite {
                    buf,
                    state: std::ptr::null_mut(),
                    page,
                    grouped: false,
                }
            }
        }
    }

    /// The record's copy of `blkno` when the running atomic change has it.
    fn grouped_page(&self, blkno: u32) -> Option<(pg_sys::Buffer, *mut u8)> {
        self.group
            .borrow()
            .as_ref()?
            .pages
            .iter()
            .find(|(b, _, _)| *b == blkno)
            .map(|&(_, buf, page)| (buf, page))
    }
}

/// Ends the atomic change's record when the closure returns (finish) or unwinds (abort), then
/// unlocks and releases its pages.
struct GroupEnd<'a>(&'a PgRelation);

impl Drop for GroupEnd<'_> {
    fn drop(&mut self) {
        let Some(g) = self.0.group.borrow_mut().take() else {
            return;
        };
        // Safety: the state is the live record started in atomic(); each buffer is pinned and
        // exclusively locked by us, released exactly once here.
        unsafe {
            if std::thread::panicking() {
                pg_sys::GenericXLogAbort(g.state);
            } else {
                pg_sys::GenericXLogFinish(g.state);
            }
            for (_, buf, _) in g.pages {
                pg_sys::UnlockReleaseBuffer(buf);
            }
        }
    }
}

pub struct PgRead {
    buf: pg_sys::Buffer,
    page: *const u8,
    /// A page of the running atomic change: its lock is the change's, not this guard's.
    grouped: bool,
}

impl Deref for PgRead {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // Safety: the buffer is pinned and share-locked while the guard lives; the area lies
        // within the BLCKSZ page.
        unsafe { std::slice::from_raw_parts(self.page.add(PAGE_HEADER), PAGE_AREA) }
    }
}

impl Drop for PgRead {
    fn drop(&mut self) {
        if self.grouped {
            return;
        }
        // Safety: we hold the pin and the lock taken in `read`.
        unsafe { pg_sys::UnlockReleaseBuffer(self.buf) };
    }
}

pub struct PgWrite {
    buf: pg_sys::Buffer,
    /// Null when the relation is written without WAL (a build).
    state: *mut pg_sys::GenericXLogState,
    page: *mut u8,
    /// A page of the running atomic change: its record and lock are the change's.
    grouped: bool,
}

impl Deref for PgWrite {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // Safety: as PgRead; the page is the GenericXLog copy or the locked buffer.
        unsafe { std::slice::from_raw_parts(self.page.add(PAGE_HEADER), PAGE_AREA) }
    }
}

impl DerefMut for PgWrite {
    fn deref_mut(&mut self) -> &mut [u8] {
        // Safety: exclusive lock (and a private copy in logged mode); only we write it.
        unsafe { std::slice::from_raw_parts_mut(self.page.add(PAGE_HEADER), PAGE_AREA) }
    }
}

impl Drop for PgWrite {
    fn drop(&mut self) {
        if self.grouped {
            return;
        }
        let failed = std::thread::panicking();
        // Safety: we hold the pin and exclusive lock; `state` is the live record started for this
        // buffer, finished or aborted exactly once here.
        unsafe {
            if !self.state.is_null() {
                if failed {
                    pg_sys::GenericXLogAbort(self.state);
                } else {
                    pg_sys::GenericXLogFinish(self.state);
                }
            } else if !failed {
                pg_sys::MarkBufferDirty(self.buf);
            }
            pg_sys::UnlockReleaseBuffer(self.buf);
        }
    }
}

impl PgRelation {
    /// Every scan, insert, vacuum and check reads the meta page first: an index whose pages have
    /// another layout version than this build's (built by a newer release) is refused here with
    /// 0A000 and a hint to REINDEX, before any other page is interpreted. A page without the magic
    /// is left to the core, which reports it as corruption.
    fn check_format(&self, page: &[u8]) {
        let h = page::header(page);
        if h.magic == page::MAGIC && h.version != page::VERSION {
            let name = self.name();
            pgrx::ereport!(
                ERROR,
                pgrx::pg_sys::errcodes::PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
                format!(
                    "index \"{name}\" has synthivf page format version {}; synthsearch {} reads version {}",
                    h.version,
                    env!("CARGO_PKG_VERSION"),
                    page::VERSION
                ),
                format!("REINDEX INDEX \"{name}\" rebuilds it in this release's format.")
            );
        }
    }
}

impl Relation for PgRelation {
    type ReadGuard<'a> = PgRead;
    type WriteGuard<'a> = PgWrite;

    fn read(&self, blkno: u32) -> PgRead {
        if let Some((buf, page)) = self.grouped_page(blkno) {
            return PgRead {
                buf,
                page,
                grouped: true,
            };
        }
        let buf = self.read_buffer(blkno, pg_sys::BUFFER_LOCK_SHARE);
        // Safety: pinned and locked.
        let page = unsafe { pg_sys::BufferGetPage(buf) } as *const u8;
        let guard = PgRead {
            buf,
            page,
            grouped: false,
        };
        if blkno == META_BLOCK {
            self.check_format(&guard);
        }
        guard
    }

    fn write(&self, blkno: u32) -> PgWrite {
        if let Some((buf, page)) = self.grouped_page(blkno) {
            return PgWrite {
                buf,
                state: std::ptr::null_mut(),
                page,
                grouped: true,
            };
        }
        let buf = self.read_buffer(blkno, pg_sys::BUFFER_LOCK_EXCLUSIVE);
        let guard = self.start_write(blkno, buf, 0);
        if blkno == META_BLOCK {
            self.check_format(&guard);
        }
        guard
    }

    fn extend(&self) -> (u32, PgWrite) {
        // Safety: the extension lock serializes extenders (P_NEW); the new buffer is locked before
        // the extension lock is released, so nobody else sees it uninitialized. PageInit zeroes
        // the page; the full image goes to the WAL with the first change.
        unsafe {
            pg_sys::LockRelationForExtension(self.rel, pg_sys::ExclusiveLock as i32);
            let buf = pg_sys::ReadBufferExtended(
                self.rel,
                self.fork,
                pg_sys::InvalidBlockNumber,
                pg_sys::ReadBufferMode::RBM_NORMAL,
                std::ptr::null_mut(),
            );
            pg_sys::LockBuffer(buf, pg_sys::BUFFER_LOCK_EXCLUSIVE as i32);
            pg_sys::UnlockRelationForExtension(self.rel, pg_sys::ExclusiveLock as i32);
            let blkno = pg_sys::BufferGetBlockNumber(buf);
            let mut w = self.start_write(blkno, buf, pg_sys::GENERIC_XLOG_FULL_IMAGE as i32);
            pg_sys::PageInit(w.page as pg_sys::Page, BLCKSZ, 0);
            let header = w.page as *mut pg_sys::PageHeaderData;
            (*header).pd_lower = (PAGE_HEADER + PAGE_AREA) as u16;
            w.deref_mut().fill(0);
            (blkno, w)
        }
    }

    fn len(&self) -> u32 {
        // Safety: the relation is open.
        unsafe { pg_sys::RelationGetNumberOfBlocksInFork(self.rel, self.fork) }
    }

    fn atomic<T>(&self, f: impl FnOnce() -> T) -> T {
        if !self.logged || self.group.borrow().is_some() {
            return f();
        }
        // Safety: the relation is open; the record is finished or aborted by GroupEnd.
        let state = unsafe { pg_sys::GenericXLogStart(self.rel) };
        *self.group.borrow_mut() = Some(Group {
            state,
            pages: Vec::with_capacity(MAX_ATOMIC_PAGES),
        });
        let _end = GroupEnd(self);
        f()
    }
}
