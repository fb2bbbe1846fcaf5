//! The storage the index lives in: numbered pages of [`PAGE_AREA`] usable bytes.
//!
//! The extension implements [`Relation`] over shared buffers: `read` pins and share-locks a buffer,
//! `write` pins, exclusive-locks and starts a GenericXLog record that the guard finishes when it is
//! dropped (one WAL unit per guard), `extend` adds a block. The core never holds two write guards
//! at once except in the order meta/directory page, then list page, so lock order is fixed.

use parking_lot::{ArcRwLockReadGuard, ArcRwLockWriteGuard, RawRwLock, RwLock};
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

/// PostgreSQL's block size.
pub const BLCKSZ: usize = 8192;
/// Bytes of each page the core uses: BLCKSZ less the 24-byte page header and room for a special
/// space. A `Relation` must hand out at least this many bytes; the core uses exactly these.
pub const PAGE_AREA: usize = 8128;

/// A block number that points nowhere.
pub const INVALID_BLOCK: u32 = u32::MAX;

/// Numbered pages. Guards dereference to the page's usable area (at least [`PAGE_AREA`] bytes).
pub trait Relation {
    type ReadGuard<'a>: Deref<Target = [u8]>
    where
        Self: 'a;
    type WriteGuard<'a>: DerefMut<Target = [u8]>
    where
        Self: 'a;

    /// Shared access to an existing page.
    fn read(&self, blkno: u32) -> Self::ReadGuard<'_>;
    /// Exclusive access to an existing page; its changes are one WAL record in the PostgreSQL impl.
    fn write(&self, blkno: u32) -> Self::WriteGuard<'_>;
    /// A new zeroed page at the end, returned locked for writing.
    fn extend(&self) -> (u32, Self::WriteGuard<'_>);
    /// Number of pages.
    fn len(&self) -> u32;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Runs `f`, whose writes (at most [`MAX_ATOMIC_PAGES`] pages) reach the WAL as one record:
    /// after a crash all of them are there or none. The pages stay locked until `f` returns.
    fn atomic<T>(&self, f: impl FnOnce() -> T) -> T {
        f()
    }
}

/// Most pages one [`Relation::atomic`] call may write (PostgreSQL's GenericXLog takes four).
pub const MAX_ATOMIC_PAGES: usize = 4;

type Page = Box<[u8]>;

/// Pages in memory, for tests and benchmarks. Each page has its own lock; the page vector has one.
#[derive(Default)]
pub struct MemRelation {
    pages: RwLock<Vec<Arc<RwLock<Page>>>>,
}

impl MemRelation {
    pub fn new() -> MemRelation {
        MemRelation::default()
    }

    fn page(&self, blkno: u32) -> Arc<RwLock<Page>> {
        let pages = self.pages.read();
        match pages.get(blkno as usize) {
            Some(p) => p.clone(),
            None => panic!(
                "data corruption: block {blkno} is past the end ({} blocks)",
                pages.len()
            ),
        }
    }

    /// Size in bytes as PostgreSQL would count it (whole blocks).
    pub fn size_bytes(&self) -> u64 {
        self.len() as u64 * BLCKSZ as u64
    }
}

pub struct MemRead(ArcRwLockReadGuard<RawRwLock, Page>);
pub struct MemWrite(ArcRwLockWriteGuard<RawRwLock, Page>);

impl Deref for MemRead {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}
impl Deref for MemWrite {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}
impl DerefMut for MemWrite {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
}

impl Relation for MemRelation {
    type ReadGuard<'a> = MemRead;
    type WriteGuard<'a> = MemWrite;

    fn read(&self, blkno: u32) -> MemRead {
        MemRead(self.page(blkno).read_arc())
    }

    fn write(&self, blkno: u32) -> MemWrite {
        MemWrite(self.page(blkno).write_arc())
    }

    fn extend(&self) -> (u32, MemWrite) {
        // Reads of f32 fields borrow in place when the buffer is 4-byte aligned and copy otherwise.
        let page: Page = vec![0u8; PAGE_AREA].into_boxed_slice();
        let lock = Arc::new(RwLock::new(page));
        let guard = lock.write_arc();
        let mut pages = self.pages.write();
        pages.push(lock);
        ((pages.len() - 1) as u32, MemWrite(guard))
    }

    fn len(&self) -> u32 {
        self.pages.read().len() as u32
    }
}
