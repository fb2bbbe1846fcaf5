//! The index's centroids, kept in the relation cache (`rd_amcache`) of each backend.
//!
//! A scan orders every list by its centroid's distance to the query, and an insert looks for the
//! nearest centroid: without a cache each reads the whole directory (for 1,000 lists of 128
//! dimensions, 67 pages) every time. Centroids are written by the build and never change after,
//! and PostgreSQL frees `rd_amcache` whenever the index's relation cache entry is invalidated (a
//! REINDEX, a TRUNCATE, any change to its pg_class row), so a copy stays right for as long as it
//! lives. As a guard against a rebuild in place that sent no invalidation, the copy also
//! remembers the meta page's shape and the first centroid, and is checked against them (one
//! directory page) before each use.
//!
//! The slice handed out lives in the relation cache: use it within the call that got it.

use super::storage::PgRelation;
use pgrx::pg_sys;
use synthsearch_index::meta::Meta;
use synthsearch_index::{Relation, page};

const MAGIC: u32 = 0x5359_4e43; // "SYNC"
/// Centroids larger than this are read from the pages every time instead.
const MAX_BYTES: usize = 64 << 20;

#[repr(C)]
struct Head {
    magic: u32,
    lists: u32,
    dims: u32,
    dir_start: u32,
    build_rows: u64,
}

/// Whether `first` is, bit for bit, the first list's centroid on its directory page.
fn is_first_centroid(rel: &PgRelation, meta: &Meta, first: &[f32]) -> bool {
    let (blk, off) = meta.entry_at(0);
    let p = rel.read(blk);
    page::expect(&p, blk, page::Kind::Directory);
    page::get_f32s(&p, off + page::CENTROID, meta.dims)
        .iter()
        .zip(first)
        .all(|(a, b)| a.to_bits() == b.to_bits())
}

/// The centroids of `index` (`meta.lists * meta.dims` values), from the cache or read now and
/// cached; None for an index without lists or with centroids too large to keep.
///
/// # Safety
/// `index` is the open relation `rel` reads; the slice is used before the caller returns.
pub unsafe fn centroids<'a>(
    index: pg_sys::Relation,
    rel: &PgRelation,
    meta: &Meta,
) -> Option<&'a [f32]> {
    let n = meta.lists as usize * meta.dims;
    let bytes = std::mem::size_of::<Head>() + n * std::mem::size_of::<f32>();
    if n == 0 || bytes > MAX_BYTES {
        return None;
    }
    // Safety: rd_amcache is either NULL or a block this module allocated in rd_indexcxt with a
    // Head followed by `lists * dims` f32 values (checked by magic and shape before the values
    // are read); the block is 8-byte aligned (palloc), so the f32s after the 16-byte head are too.
    unsafe {
        let cached = (*index).rd_amcache as *const Head;
        if !cached.is_null() {
            let h = &*cached;
            if h.magic == MAGIC
                && h.lists == meta.lists
                && h.dims as usize == meta.dims
                && h.dir_start == meta.dir_start
                && h.build_rows == meta.build_rows
            {
                let values = std::slice::from_raw_parts(cached.add(1) as *const f32, n);
                if is_first_centroid(rel, meta, &values[..meta.dims]) {
                    return Some(values);
                }
            }
            (*index).rd_amcache = std::ptr::null_mut();
            pg_sys::pfree(cached as *mut std::ffi::c_void);
        }
        let all = synthsearch_index::meta::read_centroids(rel, meta);
        if all.len() != n {
            return None;
        }
        let block = pg_sys::MemoryContextAlloc((*index).rd_indexcxt, bytes) as *mut Head;
        block.write(Head {
            magic: MAGIC,
            lists: meta.lists,
            dims: meta.dims as u32,
            dir_start: meta.dir_start,
            build_rows: meta.build_rows,
        });
        let values = block.add(1) as *mut f32;
        std::ptr::copy_nonoverlapping(all.as_ptr(), values, n);
        (*index).rd_amcache = block as *mut std::ffi::c_void;
        Some(std::slice::from_raw_parts(values, n))
    }
}
