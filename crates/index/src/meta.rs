//! The meta page (block 0) and the list directory that follows it.
//!
//! Meta page fields after the common header: dims u32 @16, metric u8 @20, lists u32 @24,
//! directory start block u32 @28, directory pages u32 @32, lists per directory page u32 @36,
//! encoder_version u64 @40, rows at build u64 @48.

use crate::page::{self, Kind, ListEntry};
use crate::relation::{INVALID_BLOCK, Relation};
use crate::{Metric, options};

pub const META_BLOCK: u32 = 0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub dims: usize,
    pub metric: Metric,
    pub lists: u32,
    pub dir_start: u32,
    pub dir_pages: u32,
    pub per_dir_page: u32,
    /// Set by the extension: the encoder version the indexed embeddings came from.
    pub encoder_version: u64,
    pub build_rows: u64,
}

impl Meta {
    pub fn new(dims: usize, metric: Metric, lists: u32) -> Meta {
        let per = page::capacity(page::dir_stride(dims)) as u32;
        Meta {
            dims,
            metric,
            lists,
            dir_start: 1,
            dir_pages: lists.div_ceil(per),
            per_dir_page: per,
            encoder_version: 0,
            build_rows: 0,
        }
    }

    /// Where list `list`'s directory record lives: (block, byte offset).
    #[inline]
    pub fn entry_at(&self, list: u32) -> (u32, usize) {
        let blk = self.dir_start + list / self.per_dir_page;
        let off = page::record(
            (list % self.per_dir_page) as usize,
            page::dir_stride(self.dims),
        );
        (blk, off)
    }

    pub fn write(&self, p: &mut [u8]) {
        page::init(p, Kind::Meta, INVALID_BLOCK);
        page::put_u32(p, 16, self.dims as u32);
        p[20] = self.metric.to_u8();
        page::put_u32(p, 24, self.lists);
        page::put_u32(p, 28, self.dir_start);
        page::put_u32(p, 32, self.dir_pages);
        page::put_u32(p, 36, self.per_dir_page);
        page::put_u64(p, 40, self.encoder_version);
        page::put_u64(p, 48, self.build_rows);
    }

    /// Parses the meta page; `Err` names what is wrong.
    pub fn parse(p: &[u8]) -> Result<Meta, String> {
        let h = page::header(p);
        if h.magic != page::MAGIC {
            return Err(format!("bad magic {:#x} on meta page", h.magic));
        }
        if h.version != page::VERSION {
            return Err(format!(
                "index version {} is not supported (expected {})",
                h.version,
                page::VERSION
            ));
        }
        if h.kind != Kind::Meta as u16 {
            return Err(format!(
                "block 0 is a page of kind {}, not the meta page",
                h.kind
            ));
        }
        let dims = page::get_u32(p, 16) as usize;
        options::validate_dims(dims).map_err(|e| format!("bad dims on meta page: {e}"))?;
        let metric =
            Metric::from_u8(p[20]).ok_or_else(|| format!("bad metric {} on meta page", p[20]))?;
        let lists = page::get_u32(p, 24);
        if lists == 0 || lists > options::MAX_LISTS {
            return Err(format!("bad list count {lists} on meta page"));
        }
        let m = Meta {
            dims,
            metric,
            lists,
            dir_start: page::get_u32(p, 28),
            dir_pages: page::get_u32(p, 32),
            per_dir_page: page::get_u32(p, 36),
            encoder_version: page::get_u64(p, 40),
            build_rows: page::get_u64(p, 48),
        };
        let expect = Meta::new(dims, metric, lists);
        if (m.dir_start, m.dir_pages, m.per_dir_page)
            != (expect.dir_start, expect.dir_pages, expect.per_dir_page)
        {
            return Err(format!(
                "directory fields ({}, {}, {}) on meta page do not match dims {dims} and {lists} lists",
                m.dir_start, m.dir_pages, m.per_dir_page
            ));
        }
        Ok(m)
    }
}

/// Reads block 0; a bad meta page is corruption.
pub fn read_meta<R: Relation>(rel: &R) -> Meta {
    if rel.is_empty() {
        panic!("data corruption: index has no meta page");
    }
    let p = rel.read(META_BLOCK);
    Meta::parse(&p).unwrap_or_else(|e| panic!("data corruption: {e}"))
}

/// Records the encoder version the indexed embeddings were made with.
pub fn set_encoder_version<R: Relation>(rel: &R, version: u64) {
    let mut p = rel.write(META_BLOCK);
    Meta::parse(&p).unwrap_or_else(|e| panic!("data corruption: {e}"));
    page::put_u64(&mut p, 40, version);
}

/// A list's directory record.
pub fn read_entry<R: Relation>(rel: &R, meta: &Meta, list: u32) -> ListEntry {
    let (blk, off) = meta.entry_at(list);
    let p = rel.read(blk);
    page::expect(&p, blk, Kind::Directory);
    ListEntry::read(&p, off)
}

/// Every list's record and centroid (centroids flattened, `lists * dims`).
pub fn read_directory<R: Relation>(rel: &R, meta: &Meta) -> (Vec<ListEntry>, Vec<f32>) {
    let mut entries = Vec::with_capacity(meta.lists as usize);
    let mut centroids = Vec::with_capacity(meta.lists as usize * meta.dims);
    for d in 0..meta.dir_pages {
        let blk = meta.dir_start + d;
        let p = rel.read(blk);
        page::expect(&p, blk, Kind::Directory);
        let first = d * meta.per_dir_page;
        let n = meta.per_dir_page.min(meta.lists - first);
        for i in 0..n as usize {
            let off = page::record(i, page::dir_stride(meta.dims));
            entries.push(ListEntry::read(&p, off));
            centroids.extend_from_slice(&page::get_f32s(&p, off + page::CENTROID, meta.dims));
        }
    }
    (entries, centroids)
}

/// Every list's centroid, flattened (`lists * dims`). A build writes them and nothing changes them
/// after, so a reader may keep them for as long as the index's storage is the same (the extension
/// caches them in the relation cache, which a REINDEX invalidates).
pub fn read_centroids<R: Relation>(rel: &R, meta: &Meta) -> Vec<f32> {
    read_directory(rel, meta).1
}

/// Live vectors in the index, from the directory (for amvacuumcleanup's num_index_tuples).
pub fn live_count<R: Relation>(rel: &R) -> u64 {
    let meta = read_meta(rel);
    let (entries, _) = read_directory(rel, &meta);
    entries.iter().map(|e| e.live as u64).sum()
}
