//! `ambulkdelete`: drops the codes of deleted rows, compacting each code page, and marks their
//! stored vectors dead and puts them on their list's free chain, where inserts into the list
//! take them before they append. Each code page is compacted in one WAL record with the list's
//! counts, then each vector page's slots are freed in one record with the chain's new head (the
//! directory page first in both, the lock order of inserts), so a crash leaves at worst a dead
//! code's vector not yet freed (counted by synth_index_check as an orphan, unused until
//! REINDEX), never counts or a chain out of step with the pages.

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
    let vstride = page::vec_stride(dims);
    let (dblk, doff) = meta.entry_at(list);
    let head = meta::read_entry(rel, meta, list).code_head;
    let (mut removed, mut remaining) = (0u64, 0u64);
    let mut blk = head;
    let mut hops = 0;
    while blk != INVALID_BLOCK {
        // The code page and the list's counts in one WAL record (directory page first, the lock
        // order of inserts).
        let (next, kept, mut gone) = rel.atomic(|| {
            let mut dir = rel.write(dblk);
            page::expect(&dir, dblk, Kind::Directory);
            let mut p = rel.write(blk);
            let h = page::expect(&p, blk, Kind::Codes);
            let n = (h.count as usize).min(page::capacity(stride));
            let mut kept = 0usize;
            let mut gone = Vec::new();
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
            if !gone.is_empty() {
                let end = page::record(n, stride);
                p[page::record(kept, stride)..end].fill(0);
                page::set_count(&mut p, kept as u16);
                let mut e = ListEntry::read(&dir, doff);
                e.live = e.live.saturating_sub(gone.len() as u32);
                e.dead += gone.len() as u32;
                e.write(&mut dir, doff);
            }
            (h.next, kept, gone)
        });
        remaining += kept as u64;
        removed += gone.len() as u64;
        // Then each vector page's freed slots and the chain's new head, one record a page: a
        // crash in between leaves vectors not yet freed (orphans, harmless), never a chain that
        // names a slot that is not free.
        gone.sort_unstable();
        for piece in gone.chunk_by(|a, b| a.0 == b.0) {
            let vb = piece[0].0;
            rel.atomic(|| {
                let mut dir = rel.write(dblk);
                page::expect(&dir, dblk, Kind::Directory);
                let mut e = ListEntry::read(&dir, doff);
                let mut p = rel.write(vb);
                let h = page::expect(&p, vb, Kind::Vectors);
                for &(_, slot) in piece {
                    let off = page::record(slot as usize, vstride);
                    if slot < h.count && page::vector_flags(&p, off) & VEC_DEAD == 0 {
                        page::put_free_vector(&mut p, off, e.free, blk);
                        e.free = Some((vb, slot));
                    }
                }
                e.write(&mut dir, doff);
            });
        }
        blk = next;
        hops += 1;
        if hops > rel.len() {
            panic!("data corruption: code chain of list {list} loops");
        }
    }
    (removed, remaining)
}
