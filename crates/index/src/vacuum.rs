//! `ambulkdelete`: drops the codes of deleted rows, compacting each code page, and marks their
//! stored vectors dead. Vector space is not reused (appends go to the head page); REINDEX
//! reclaims it. Each page is changed under its own guard, one at a time.

use crate::Tid;
use crate::meta::{self, Meta};
use crate::page::{self, CodeHead, Kind, ListEntry, VEC_DEAD};
use crate::relation::{INVALID_BLOCK, Relation};
use std::ops::ControlFlow;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VacuumStats {
    pub removed: u64,
    pub remaining: u64,
    pub pages: u32,
}

/// Removes every row for which `dead(tid)` is true. `progress(lists done, lists)` runs between
/// lists; `Break` stops early (what was removed so far stays removed and consistent).
pub fn bulk_delete<R: Relation>(
    rel: &R,
    dead: &mut dyn FnMut(Tid) -> bool,
    progress: &mut dyn FnMut(u32, u32) -> ControlFlow<()>,
) -> Result<VacuumStats, crate::BuildError> {
    let meta = meta::read_meta(rel);
    let mut stats = VacuumStats {
        pages: rel.len(),
        ..VacuumStats::default()
    };
    for list in 0..meta.lists {
        let (removed, remaining) = vacuum_list(rel, &meta, list, dead);
        stats.removed += removed;
        stats.remaining += remaining;
        if progress(list + 1, meta.lists).is_break() {
            return Err(crate::BuildError::Cancelled);
        }
    }
    Ok(stats)
}

fn vacuum_list<R: Relation>(
    rel: &R,
    meta: &Meta,
    list: u32,
    dead: &mut dyn FnMut(Tid) -> bool,
) -> (u64, u64) {
    let dims = meta.dims;
    let stride = page::code_stride(dims);
    let head = meta::read_entry(rel, meta, list).code_head;
    let (mut removed, mut remaining) = (0u64, 0u64);
    let mut blk = head;
    let mut hops = 0;
    while blk != INVALID_BLOCK {
        let mut gone = Vec::new();
        let next = {
            let mut p = rel.write(blk);
            let h = page::expect(&p, blk, Kind::Codes);
            let n = (h.count as usize).min(page::capacity(stride));
            let mut kept = 0usize;
            for r in 0..n {
                let off = page::record(r, stride);
                let c = CodeHead::read(&p, off);
                if dead(c.tid) {
                    gone.push((c.vec_block, c.vec_slot));
                } else {
                    if kept != r {
                        p.copy_within(off..off + stride, page::record(kept, stride));
                    }
                    kept += 1;
                }
            }
            if kept != n {
                let end = page::record(n, stride);
                p[page::record(kept, stride)..end].fill(0);
                page::set_count(&mut p, kept as u16);
            }
            remaining += kept as u64;
            h.next
        };
        removed += gone.len() as u64;
        gone.sort_unstable();
        let vstride = page::vec_stride(dims);
        let mut i = 0;
        while i < gone.len() {
            let vb = gone[i].0;
            let mut p = rel.write(vb);
            page::expect(&p, vb, Kind::Vectors);
            while i < gone.len() && gone[i].0 == vb {
                page::put_u16(
                    &mut p,
                    page::record(gone[i].1 as usize, vstride) + 6,
                    VEC_DEAD,
                );
                i += 1;
            }
        }
        blk = next;
        hops += 1;
        if hops > rel.len() {
            panic!("data corruption: code chain of list {list} loops");
        }
    }
    if removed > 0 {
        let (dblk, off) = meta.entry_at(list);
        let mut p = rel.write(dblk);
        page::expect(&p, dblk, Kind::Directory);
        let mut e = ListEntry::read(&p, off);
        e.dead += removed as u32;
        e.live = e.live.saturating_sub(removed as u32);
        e.write(&mut p, off);
    }
    (removed, remaining)
}
