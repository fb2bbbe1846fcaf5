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

/// What a DBA asks of an index's lists: how many rows they were trained on and hold now, and
/// whether they have gone stale. Read from the meta page and the directory alone.
#[derive(Debug, Clone, PartialEq)]
pub struct ListStats {
    pub lists: u32,
    /// Rows the build saw (the lists' k-means sample came from these).
    pub build_rows: u64,
    pub live_rows: u64,
    /// Vector slots of deleted rows (free for inserts into their list).
    pub dead_rows: u64,
    /// Rows in the fullest list.
    pub largest_list: u64,
    pub empty_lists: u32,
}

/// Why the lists no longer fit the data, if they do not: the build saw fewer than 4 rows a list
/// (pgvector's "little data"), the table has more than doubled since, or one list holds more than
/// 10 times its share (the data drifted from the centroids). REINDEX trains new lists.
#[derive(Debug, Clone, PartialEq)]
pub enum Stale {
    LittleData { build_rows: u64, lists: u32 },
    Grown { factor: f64 },
    Skewed { share: f64 },
}

impl std::fmt::Display for Stale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stale::LittleData { build_rows, lists } => write!(
                f,
                "the lists were trained on {build_rows} rows, fewer than 4 for each of its {lists} lists"
            ),
            Stale::Grown { factor } => write!(
                f,
                "the index holds {factor:.1} times the rows its lists were trained on"
            ),
            Stale::Skewed { share } => write!(
                f,
                "one list holds {:.0}% of the rows, more than 10 times its share",
                share * 100.0
            ),
        }
    }
}

impl ListStats {
    pub fn stale(&self) -> Option<Stale> {
        let lists = self.lists.max(1) as u64;
        if self.build_rows < 4 * lists && self.live_rows > self.build_rows {
            return Some(Stale::LittleData {
                build_rows: self.build_rows,
                lists: self.lists,
            });
        }
        if self.live_rows > 2 * self.build_rows.max(1) && self.live_rows >= 4 * lists {
            return Some(Stale::Grown {
                factor: self.live_rows as f64 / self.build_rows.max(1) as f64,
            });
        }
        let share = self.largest_list as f64 / self.live_rows.max(1) as f64;
        if self.lists > 1 && self.live_rows >= 40 * lists && share * lists as f64 > 10.0 {
            return Some(Stale::Skewed { share });
        }
        None
    }
}

/// The lists' counts (see [`ListStats`]).
pub fn list_stats<R: Relation>(rel: &R) -> ListStats {
    let meta = read_meta(rel);
    let (entries, _) = read_directory(rel, &meta);
    ListStats {
        lists: meta.lists,
        build_rows: meta.build_rows,
        live_rows: entries.iter().map(|e| e.live as u64).sum(),
        dead_rows: entries.iter().map(|e| e.dead as u64).sum(),
        largest_list: entries.iter().map(|e| e.live as u64).max().unwrap_or(0),
        empty_lists: entries.iter().filter(|e| e.live == 0).count() as u32,
    }
}

#[cfg(test)]
mod stale_tests {
    use super::*;

    fn stats(lists: u32, build_rows: u64, live_rows: u64, largest_list: u64) -> ListStats {
        ListStats {
            lists,
            build_rows,
            live_rows,
            dead_rows: 0,
            largest_list,
            empty_lists: 0,
        }
    }

    #[test]
    fn staleness() {
        // Fresh and balanced: not stale.
        assert_eq!(stats(10, 1000, 1000, 150).stale(), None);
        // Grown 1.5x: not yet.
        assert_eq!(stats(10, 1000, 1500, 200).stale(), None);
        // Grown 3x.
        let s = stats(10, 1000, 3000, 400).stale().unwrap();
        assert!(matches!(s, Stale::Grown { factor } if (factor - 3.0).abs() < 1e-9));
        assert!(s.to_string().contains("3.0 times"), "{s}");
        // Built on an empty table (one list) and filled since.
        assert!(matches!(
            stats(1, 0, 500, 500).stale(),
            Some(Stale::LittleData { build_rows: 0, .. })
        ));
        // Built on little data, and still little: nothing to gain from a REINDEX yet.
        assert_eq!(stats(100, 10, 10, 1).stale(), None);
        // One list of 100 holds half the rows.
        assert!(matches!(
            stats(100, 10_000, 10_000, 5_000).stale(),
            Some(Stale::Skewed { share }) if (share - 0.5).abs() < 1e-9
        ));
    }
}
