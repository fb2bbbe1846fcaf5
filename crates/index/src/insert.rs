//! `aminsert`: a vector goes to its nearest list's head pages. Also the append routine the build
//! shares.

use crate::meta::{self, Meta};
use crate::page::{self, Kind, ListEntry};
use crate::quantize::Quantizer;
use crate::relation::Relation;
use crate::{Metric, Tid, kmeans};

/// A vector the index cannot take: a user's mistake.
#[derive(Debug, Clone, PartialEq)]
pub enum InsertError {
    Dims { expected: usize, got: usize },
    NotFinite { index: usize },
}

impl std::fmt::Display for InsertError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InsertError::Dims { expected, got } => {
                write!(f, "expected {expected} dimensions, not {got}")
            }
            InsertError::NotFinite { index } => {
                write!(f, "embedding value at position {index} is not finite")
            }
        }
    }
}

impl std::error::Error for InsertError {}

/// Checks and prepares a vector for `metric`; `Ok(None)` for a zero vector under cosine (not indexed).
pub fn prepare(metric: Metric, dims: usize, v: &[f32]) -> Result<Option<Vec<f32>>, InsertError> {
    if v.len() != dims {
        return Err(InsertError::Dims {
            expected: dims,
            got: v.len(),
        });
    }
    if let Some(index) = v.iter().position(|x| !x.is_finite()) {
        return Err(InsertError::NotFinite { index });
    }
    let mut v = v.to_vec();
    Ok(metric.prepare(&mut v).then_some(v))
}

/// One encoded vector waiting to be written.
pub struct Encoded<'a> {
    pub tid: Tid,
    pub values: &'a [f32],
    pub code: &'a [u8],
    pub error: f32,
}

/// Writes vectors then their codes into list pages: vectors into the slots on the list's free
/// chain first (left by VACUUM), then into the head page, growing each chain at its head when
/// full. Updates `entry` (heads, free chain, live and dead counts); the caller holds the
/// directory page and writes the entry back after (so a crash between the records leaves at
/// worst a chain head that names a reused slot, which [`reuse`] drops).
pub fn append<R: Relation>(rel: &R, dims: usize, entry: &mut ListEntry, items: &[Encoded<'_>]) {
    let vstride = page::vec_stride(dims);
    let vcap = page::capacity(vstride);
    let cstride = page::code_stride(dims);
    let ccap = page::capacity(cstride);
    let mut places = Vec::with_capacity(items.len());
    // Codes of reused slots go to the code page VACUUM freed room on, when it still has room.
    let mut code_pages = Vec::with_capacity(items.len());
    while places.len() < items.len() {
        match reuse(rel, dims, entry, &items[places.len()]) {
            Some((place, code_page)) => {
                places.push(place);
                code_pages.push(code_page);
            }
            None => break,
        }
    }
    let mut i = places.len();
    while i < items.len() {
        let (blk, mut p) = open_head(rel, &mut entry.vec_head, Kind::Vectors, vcap);
        let mut n = page::header(&p).count as usize;
        while n < vcap && i < items.len() {
            page::write_vector(
                &mut p,
                page::record(n, vstride),
                items[i].tid,
                items[i].values,
            );
            places.push((blk, n as u16));
            n += 1;
            i += 1;
        }
        page::set_count(&mut p, n as u16);
    }
    let write_code = |p: &mut [u8], n: usize, i: usize| {
        let off = page::record(n, cstride);
        let (vec_block, vec_slot) = places[i];
        page::CodeHead {
            tid: items[i].tid,
            vec_block,
            vec_slot,
            error: items[i].error,
        }
        .write(p, off);
        p[off + page::CODE..off + page::CODE + dims].copy_from_slice(items[i].code);
    };
    let mut i = 0;
    while i < code_pages.len() {
        // Looked at before it is locked for writing (only inserts into this list, which hold its
        // directory page as we do, add codes to it), so a page without room is not part of the
        // insert's WAL record.
        let room = |blk: u32| {
            let p = rel.read(blk);
            let h = page::header(&p);
            h.magic == page::MAGIC && h.kind == Kind::Codes as u16 && (h.count as usize) < ccap
        };
        if let Some(blk) = code_pages[i].filter(|&b| b > 0 && b < rel.len() && room(b)) {
            let mut p = rel.write(blk);
            let n = page::header(&p).count;
            write_code(&mut p, n as usize, i);
            page::set_count(&mut p, n + 1);
            i += 1;
            continue;
        }
        break;
    }
    while i < items.len() {
        let (_, mut p) = open_head(rel, &mut entry.code_head, Kind::Codes, ccap);
        let mut n = page::header(&p).count as usize;
        while n < ccap && i < items.len() {
            write_code(&mut p, n, i);
            n += 1;
            i += 1;
        }
        page::set_count(&mut p, n as u16);
    }
    entry.live += items.len() as u32;
}

/// Takes the first slot of the list's free chain for `item`'s vector. None when the chain is
/// empty, or when its head is not a free slot of a vector page (a crash between a reuse's page
/// record and its directory record): the chain is dropped then, and its slots stay unused until
/// REINDEX; nothing else is wrong.
///
/// Also returns the code page the slot's code was removed from (VACUUM keeps its block in the
/// free slot): code pages never leave their list, so it is this list's, and it had room then.
fn reuse<R: Relation>(
    rel: &R,
    dims: usize,
    entry: &mut ListEntry,
    item: &Encoded<'_>,
) -> Option<((u32, u16), Option<u32>)> {
    let (blk, slot) = entry.free?;
    if blk >= rel.len() {
        entry.free = None;
        return None;
    }
    let off = page::record(slot as usize, page::vec_stride(dims));
    // Checked before the page is locked for writing (slots on the chain change only under the
    // directory page we hold), so a bad head is not part of the insert's WAL record.
    let free = {
        let p = rel.read(blk);
        let h = page::header(&p);
        h.magic == page::MAGIC
            && h.kind == Kind::Vectors as u16
            && slot < h.count
            && page::vector_flags(&p, off) == page::VEC_DEAD | page::VEC_FREE
    };
    if !free {
        entry.free = None;
        return None;
    }
    let mut p = rel.write(blk);
    entry.free = page::free_vector_link(&p, off);
    let code_page = page::free_vector_code_page(&p, off);
    page::write_vector(&mut p, off, item.tid, item.values);
    entry.dead = entry.dead.saturating_sub(1);
    Some(((blk, slot), code_page))
}

/// The chain's head page with room for a record, adding a new head in front when it is full.
fn open_head<'a, R: Relation>(
    rel: &'a R,
    head: &mut u32,
    kind: Kind,
    cap: usize,
) -> (u32, R::WriteGuard<'a>) {
    if *head != crate::relation::INVALID_BLOCK {
        // Looked at first: a full head page is not written (nor part of an insert's WAL record).
        // Only writers holding the list's directory page, as the caller does, add records.
        let room = {
            let p = rel.read(*head);
            (page::expect(&p, *head, kind).count as usize) < cap
        };
        if room {
            return (*head, rel.write(*head));
        }
    }
    let (blk, mut p) = rel.extend();
    page::init(&mut p, kind, *head);
    *head = blk;
    (blk, p)
}

/// Adds one heap tuple's vector. Returns false when it is not indexed (a zero vector under cosine).
pub fn insert<R: Relation>(rel: &R, tid: Tid, vector: &[f32]) -> Result<bool, InsertError> {
    let meta = meta::read_meta(rel);
    insert_with(rel, &meta, tid, vector)
}

/// As [`insert`], with the meta page already read (the glue may cache it per statement).
pub fn insert_with<R: Relation>(
    rel: &R,
    meta: &Meta,
    tid: Tid,
    vector: &[f32],
) -> Result<bool, InsertError> {
    insert_cached(rel, meta, None, tid, vector)
}

/// As [`insert_with`], with the index's centroids at hand ([`meta::read_centroids`]): only the
/// chosen list's directory record is read. Centroids of another shape are not used.
pub fn insert_cached<R: Relation>(
    rel: &R,
    meta: &Meta,
    centroids: Option<&[f32]>,
    tid: Tid,
    vector: &[f32],
) -> Result<bool, InsertError> {
    let Some(v) = prepare(meta.metric, meta.dims, vector)? else {
        return Ok(false);
    };
    let read;
    let centroids = match centroids.filter(|c| c.len() == meta.lists as usize * meta.dims) {
        Some(c) => c,
        None => {
            read = meta::read_centroids(rel, meta);
            &read[..]
        }
    };
    let (list, _) = kmeans::nearest(centroids, meta.dims, &v);
    let centroid = &centroids[list as usize * meta.dims..(list as usize + 1) * meta.dims];
    // lo and step are fixed by the build: the record read now has the same ones.
    let e = meta::read_entry(rel, meta, list);
    let mut code = vec![0u8; meta.dims];
    let error = Quantizer {
        lo: e.lo,
        step: e.step,
    }
    .encode(&v, centroid, &mut code);
    // Directory page first, then list pages: the same lock order as every other writer. One
    // WAL record for the directory, the vector page and the code page (at most four pages: a
    // full head page is replaced by a new one, and a reused slot's code page may be full), so a
    // crash never leaves the list's counts, free chain and pages out of step.
    let (blk, off) = meta.entry_at(list);
    rel.atomic(|| {
        let mut dir = rel.write(blk);
        page::expect(&dir, blk, Kind::Directory);
        let mut entry = ListEntry::read(&dir, off);
        append(
            rel,
            meta.dims,
            &mut entry,
            &[Encoded {
                tid,
                values: &v,
                code: &code,
                error,
            }],
        );
        entry.write(&mut dir, off);
    });
    Ok(true)
}
