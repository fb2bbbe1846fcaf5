//! `ambulkdelete`: drops the codes of deleted rows, compacting each code page, and marks their
//! stored vectors dead and puts them on their list's free chain, where inserts into the list
//! take them before they append. Each page is changed under its own guard (its own WAL record);
//! for each code page, the code page first, then (holding the directory page, as inserts do)
//! the vector pages, then the directory record, so a crash leaves at worst slots that are off
//! the chain (unused until REINDEX) or a dead code's vector not yet marked (counted by
//! synth_index_check as an orphan), never a chain that names a live slot.

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
        if !gone.is_empty() {
            free_vectors(rel, meta, list, &mut gone, blk);
            removed += gone.len() as u64;
        }
        blk = next;
        hops += 1;
        if hops > rel.len() {
            panic!("data corruption: code chain of list {list} loops");
        }
    }
    (removed, remaining)
}

/// Marks the vectors of removed codes dead and puts them on the list's free chain, under the
/// directory page (the lock inserts take first), and counts them in the list's record. Each
/// slot names `code_page`, where its code was: an insert that takes it puts its code there.
fn free_vectors<R: Relation>(
    rel: &R,
    meta: &Meta,
    list: u32,
    gone: &mut [(u32, u16)],
    code_page: u32,
) {
    let vstride = page::vec_stride(meta.dims);
    let (dblk, doff) = meta.entry_at(list);
    let mut dir = rel.write(dblk);
    page::expect(&dir, dblk, Kind::Directory);
    let mut e = ListEntry::read(&dir, doff);
    gone.sort_unstable();
    let mut i = 0;
    while i < gone.len() {
        let vb = gone[i].0;
        let mut p = rel.write(vb);
        let h = page::expect(&p, vb, Kind::Vectors);
        while i < gone.len() && gone[i].0 == vb {
            let slot = gone[i].1;
            if slot < h.count {
                let off = page::record(slot as usize, vstride);
                if page::vector_flags(&p, off) & VEC_DEAD == 0 {
                    page::put_free_vector(&mut p, off, e.free, code_page);
                    e.free = Some((vb, slot));
                }
            }
            i += 1;
        }
    }
    e.dead += gone.len() as u32;
    e.live = e.live.saturating_sub(gone.len() as u32);
    e.write(&mut dir, doff);
}
