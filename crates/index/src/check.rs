//! A consistency checker in the spirit of amcheck: every page's header, the directory, every
//! chain, every record, the bound the scan relies on, and optionally the heap's rows.

use crate::meta::Meta;
use crate::page::{self, CodeHead, Kind, ListEntry, VEC_DEAD};
use crate::relation::{INVALID_BLOCK, Relation};
use crate::{Tid, insert};
use std::collections::HashMap;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub pages: u32,
    pub lists: u32,
    pub live: u64,
    pub code_pages: u32,
    pub vector_pages: u32,
    /// Vector slots of deleted rows.
    pub dead_vectors: u64,
    /// Of those, the slots on their list's free chain (the next inserts into the list take them).
    pub free_vectors: u64,
    /// Pages no chain reaches (left by a crash between extending and linking; harmless).
    pub orphan_pages: u32,
    /// Vectors not marked dead that no code points at (a crash inside a vacuum; harmless).
    pub orphan_vectors: u64,
    /// Heap rows compared, when a heap was given.
    pub heap_rows: u64,
}

/// The first inconsistency found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckError {
    pub block: Option<u32>,
    pub message: String,
}

impl std::fmt::Display for CheckError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.block {
            Some(b) => write!(f, "index is corrupt at block {b}: {}", self.message),
            None => write!(f, "index is corrupt: {}", self.message),
        }
    }
}

impl std::error::Error for CheckError {}

fn fail<T>(block: Option<u32>, message: String) -> Result<T, CheckError> {
    Err(CheckError { block, message })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    None,
    Meta,
    Directory,
    Codes,
    Vectors,
}

/// Checks the index; with `heap`, also that it holds exactly the heap's rows with equal vectors.
pub fn check<R: Relation>(
    rel: &R,
    heap: Option<&mut dyn Iterator<Item = (Tid, Vec<f32>)>>,
) -> Result<Report, CheckError> {
    let len = rel.len();
    if len == 0 {
        return fail(None, "no meta page".into());
    }
    let meta = Meta::parse(&rel.read(0)).or_else(|m| fail(Some(0), m))?;
    let dims = meta.dims;
    let mut roles = vec![Role::None; len as usize];
    roles[0] = Role::Meta;
    let mut report = Report {
        pages: len,
        lists: meta.lists,
        ..Report::default()
    };
    if meta.dir_start + meta.dir_pages > len {
        return fail(
            Some(0),
            format!(
                "directory of {} pages runs past the end ({len} pages)",
                meta.dir_pages
            ),
        );
    }
    let mut entries = Vec::new();
    let mut centroids = Vec::new();
    for d in 0..meta.dir_pages {
        let blk = meta.dir_start + d;
        roles[blk as usize] = Role::Directory;
        let p = rel.read(blk);
        check_header(&p, blk, Kind::Directory)?;
        let n = meta.per_dir_page.min(meta.lists - d * meta.per_dir_page);
        if page::header(&p).count as u32 != n {
            return fail(
                Some(blk),
                format!(
                    "directory page holds {} lists, expected {n}",
                    page::header(&p).count
                ),
            );
        }
        for i in 0..n as usize {
            let off = page::record(i, page::dir_stride(dims));
            let e = ListEntry::read(&p, off);
            let c = page::get_f32s(&p, off + page::CENTROID, dims);
            if !(e.lo.is_finite() && e.step.is_finite() && e.step > 0.0)
                || c.iter().any(|x| !x.is_finite())
            {
                return fail(
                    Some(blk),
                    format!(
                        "list {} has a non-finite quantizer or centroid",
                        d * meta.per_dir_page + i as u32
                    ),
                );
            }
            entries.push(e);
            centroids.extend_from_slice(&c);
        }
    }
    let cstride = page::code_stride(dims);
    let vstride = page::vec_stride(dims);
    // Every live code's (tid -> (vector block, slot)), to find duplicates and compare with the heap.
    let mut seen: HashMap<Tid, (u32, u16)> = HashMap::new();
    let mut referenced: HashMap<(u32, u16), ()> = HashMap::new();
    for (list, e) in entries.iter().enumerate() {
        let centroid = &centroids[list * dims..(list + 1) * dims];
        // The vector chain first, so codes can be checked against its pages.
        let mut blk = e.vec_head;
        let mut list_vectors = std::collections::HashSet::new();
        while blk != INVALID_BLOCK {
            claim(&mut roles, blk, Role::Vectors, list)?;
            list_vectors.insert(blk);
            report.vector_pages += 1;
            let p = rel.read(blk);
            let h = check_header(&p, blk, Kind::Vectors)?;
            if h.count as usize > page::capacity(vstride) {
                return fail(Some(blk), format!("vector page claims {} records", h.count));
            }
            for r in 0..h.count as usize {
                let off = page::record(r, vstride);
                if page::vector_flags(&p, off) & VEC_DEAD != 0 {
                    report.dead_vectors += 1;
                    continue;
                }
                let x = page::get_f32s(&p, off + page::VALUES, dims);
                if let Some(i) = x.iter().position(|v| !v.is_finite()) {
                    return fail(
                        Some(blk),
                        format!("vector in slot {r} has a non-finite value at position {i}"),
                    );
                }
            }
            blk = h.next;
        }
        // The free chain: free slots of this list's vector pages, each once. Its head may name
        // a slot an insert reused just before a crash (the insert's directory record was lost):
        // inserts drop the chain then, so that ends it here without an error.
        let mut link = e.free;
        let mut on_chain = std::collections::HashSet::new();
        let mut first = true;
        while let Some((fb, fs)) = link {
            let page_ok = fb < len && list_vectors.contains(&fb);
            let free = page_ok && {
                let p = rel.read(fb);
                fs < page::header(&p).count
                    && page::vector_flags(&p, page::record(fs as usize, vstride))
                        == VEC_DEAD | page::VEC_FREE
            };
            if !free {
                if first {
                    break;
                }
                return fail(
                    Some(fb),
                    format!(
                        "the free chain of list {list} names slot {fs} of block {fb}, which is not a free slot of the list"
                    ),
                );
            }
            if !on_chain.insert((fb, fs)) {
                return fail(Some(fb), format!("the free chain of list {list} loops"));
            }
            let p = rel.read(fb);
            link = page::free_vector_link(&p, page::record(fs as usize, vstride));
            first = false;
        }
        report.free_vectors += on_chain.len() as u64;
        let mut live = 0u32;
        let mut blk = e.code_head;
        while blk != INVALID_BLOCK {
            claim(&mut roles, blk, Role::Codes, list)?;
            report.code_pages += 1;
            let p = rel.read(blk);
            let h = check_header(&p, blk, Kind::Codes)?;
            if h.count as usize > page::capacity(cstride) {
                return fail(Some(blk), format!("code page claims {} records", h.count));
            }
            for r in 0..h.count as usize {
                let off = page::record(r, cstride);
                let c = CodeHead::read(&p, off);
                if !(c.error.is_finite() && c.error >= 0.0) {
                    return fail(
                        Some(blk),
                        format!("code in slot {r} has a bad error bound {}", c.error),
                    );
                }
                if c.vec_block >= len || roles[c.vec_block as usize] != Role::Vectors {
                    return fail(
                        Some(blk),
                        format!(
                            "code in slot {r} points at block {} which is not a vector page",
                            c.vec_block
                        ),
                    );
                }
                let vp = rel.read(c.vec_block);
                if c.vec_slot >= page::header(&vp).count {
                    return fail(
                        Some(blk),
                        format!(
                            "code in slot {r} points past the end of block {}",
                            c.vec_block
                        ),
                    );
                }
                let voff = page::record(c.vec_slot as usize, vstride);
                if page::vector_tid(&vp, voff) != c.tid
                    || page::vector_flags(&vp, voff) & VEC_DEAD != 0
                {
                    return fail(
                        Some(blk),
                        format!(
                            "code in slot {r} and its vector disagree on the row or its liveness"
                        ),
                    );
                }
                let x = page::get_f32s(&vp, voff + page::VALUES, dims);
                // The scan's lower bound is only true if the stored error covers the code's error.
                let code = &p[off + page::CODE..off + page::CODE + dims];
                let err: f32 = x
                    .iter()
                    .zip(centroid)
                    .zip(code)
                    .map(|((&v, &cv), &k)| {
                        let d = v - (cv + e.lo + k as f32 * e.step);
                        d * d
                    })
                    .sum::<f32>()
                    .sqrt();
                if err > c.error * 1.001 + 1e-5 {
                    return fail(
                        Some(blk),
                        format!(
                            "code in slot {r} is off its vector by {err}, more than its bound {}",
                            c.error
                        ),
                    );
                }
                if seen.insert(c.tid, (c.vec_block, c.vec_slot)).is_some() {
                    return fail(
                        Some(blk),
                        format!("row ({},{}) is indexed twice", c.tid.block, c.tid.offset),
                    );
                }
                referenced.insert((c.vec_block, c.vec_slot), ());
                live += 1;
            }
            blk = h.next;
        }
        if live != e.live {
            return fail(
                Some(meta.entry_at(list as u32).0),
                format!("list {list} counts {} live rows but holds {live}", e.live),
            );
        }
        report.live += live as u64;
    }
    report.orphan_pages = roles.iter().filter(|r| **r == Role::None).count() as u32;
    // Live vectors nobody references.
    for (blk, role) in roles.iter().enumerate() {
        if *role == Role::Vectors {
            let p = rel.read(blk as u32);
            for r in 0..page::header(&p).count {
                let off = page::record(r as usize, vstride);
                if page::vector_flags(&p, off) & VEC_DEAD == 0
                    && !referenced.contains_key(&(blk as u32, r))
                {
                    report.orphan_vectors += 1;
                }
            }
        }
    }
    if let Some(heap) = heap {
        let mut found = 0u64;
        for (tid, v) in heap {
            report.heap_rows += 1;
            let want = insert::prepare(meta.metric, dims, &v).or_else(|e| {
                fail(
                    None,
                    format!("heap row ({},{}): {e}", tid.block, tid.offset),
                )
            })?;
            match (want, seen.get(&tid)) {
                (None, None) => {}
                (None, Some(_)) => {
                    return fail(
                        None,
                        format!(
                            "row ({},{}) is indexed but should not be",
                            tid.block, tid.offset
                        ),
                    );
                }
                (Some(_), None) => {
                    return fail(
                        None,
                        format!(
                            "heap row ({},{}) is missing from the index",
                            tid.block, tid.offset
                        ),
                    );
                }
                (Some(w), Some(&(vb, vs))) => {
                    found += 1;
                    let p = rel.read(vb);
                    let x =
                        page::get_f32s(&p, page::record(vs as usize, vstride) + page::VALUES, dims);
                    if x.iter()
                        .zip(&w)
                        .any(|(a, b)| (a - b).abs() > 1e-6 * (1.0 + b.abs()))
                    {
                        return fail(
                            Some(vb),
                            format!(
                                "row ({},{}) is stored with a different vector",
                                tid.block, tid.offset
                            ),
                        );
                    }
                }
            }
        }
        if found != seen.len() as u64 {
            return fail(
                None,
                format!(
                    "index holds {} rows the heap does not",
                    seen.len() as u64 - found
                ),
            );
        }
    }
    Ok(report)
}

fn check_header(p: &[u8], blk: u32, kind: Kind) -> Result<page::Header, CheckError> {
    let h = page::header(p);
    if h.magic != page::MAGIC {
        return fail(Some(blk), format!("bad magic {:#x}", h.magic));
    }
    if h.version != page::VERSION {
        return fail(Some(blk), format!("bad version {}", h.version));
    }
    if h.kind != kind as u16 {
        return fail(
            Some(blk),
            format!("page of kind {} where a {kind:?} page belongs", h.kind),
        );
    }
    Ok(h)
}

fn claim(roles: &mut [Role], blk: u32, role: Role, list: usize) -> Result<(), CheckError> {
    match roles.get_mut(blk as usize) {
        None => fail(
            None,
            format!("list {list} links to block {blk}, past the end"),
        ),
        Some(r) if *r != Role::None => fail(
            Some(blk),
            format!("list {list} links to a page already in use (a loop or a shared page)"),
        ),
        Some(r) => {
            *r = role;
            Ok(())
        }
    }
}
