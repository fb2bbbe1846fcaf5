//! `aminsert`: one row into its nearest list. NULL embeddings are not indexed; a vector of the
//! wrong dimension count is an ERROR (22000) naming both counts.

use super::storage::PgRelation;
use super::{build, cache, handler, insert_error, options, tid_of};
use crate::datatype::memory::datum_values;
use pgrx::{pg_guard, pg_sys};
use synthsearch_index::Relation;

#[allow(clippy::too_many_arguments)]
#[pg_guard]
pub unsafe extern "C-unwind" fn aminsert(
    index: pg_sys::Relation,
    values: *mut pg_sys::Datum,
    isnull: *mut bool,
    heap_tid: pg_sys::ItemPointer,
    _heap: pg_sys::Relation,
    _check_unique: pg_sys::IndexUniqueCheck::Type,
    _unchanged: bool,
    _info: *mut pg_sys::IndexInfo,
) -> bool {
    // Safety: one index column, so values/isnull have one entry; the datum is an embedding.
    unsafe {
        if *isnull {
            return false;
        }
        let v = datum_values(*values);
        let rel = PgRelation::new(index);
        if rel.is_empty() {
            create_on_first_insert(&rel, v.len());
        }
        let meta = synthsearch_index::read_meta(&rel);
        let centroids = cache::centroids(index, &rel, &meta);
        synthsearch_index::insert_cached(&rel, &meta, centroids, tid_of(heap_tid), v)
            .unwrap_or_else(|e| insert_error(e));
    }
    false
}

/// An index built without knowing its dimensions has no pages: the first row fixes them.
/// The extension lock keeps two first inserts from both creating the meta page.
///
/// # Safety
/// `rel` is an open index of this access method.
unsafe fn create_on_first_insert(rel: &PgRelation, dims: usize) {
    // Safety: the extension lock is a heavyweight lock this backend may take again in extend().
    unsafe {
        let index = rel.raw();
        pg_sys::LockRelationForExtension(index, pg_sys::ExclusiveLock as i32);
        if rel.is_empty() {
            let (_, sample_per_list, kmeans_iterations) = options::index_options(index);
            build::build_empty(
                rel,
                dims,
                handler::opclass_metric(index),
                (1, sample_per_list, kmeans_iterations),
            );
        }
        pg_sys::UnlockRelationForExtension(index, pg_sys::ExclusiveLock as i32);
    }
}
