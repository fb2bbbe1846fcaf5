//! Each backend loads a model once per version and reloads it when the requested (or active)
//! model changes. libtorch is touched here, lazily, in the backend that needs it, never in the
//! postmaster.

use super::registry::{ModelRow, model_bytes, resolve};
use crate::security::as_owner;
use std::cell::RefCell;
use std::rc::Rc;
use synthsearch_model::Model;

struct Cached {
    row: ModelRow,
    device: tch::Device,
    model: Rc<Model>,
}

thread_local! {
    // Backends are single-threaded; the model never leaves this thread.
    static CACHE: RefCell<Option<Cached>> = const { RefCell::new(None) };
}

/// The model that `model` names (None: the active one), loaded on the device that
/// `synthsearch.device` picks, with libtorch's threads capped by `synthsearch.threads`.
pub fn model(model: Option<&str>) -> (ModelRow, Rc<Model>) {
    let row = resolve(model);
    crate::torch::apply_threads();
    let device = crate::torch::device();
    let hit = CACHE.with_borrow(|c| {
        c.as_ref()
            .filter(|c| c.row == row && c.device == device)
            .map(|c| c.model.clone())
    });
    if let Some(m) = hit {
        return (row, m);
    }
    // Weights are read as the extension's owner: anyone may run the active model.
    let bytes = as_owner(|| model_bytes(row.id));
    let loaded = Model::from_bytes(&bytes, device).unwrap_or_else(|e| {
        let what = format!("model {} ({} version {})", row.id, row.name, row.version);
        crate::errors::checkpoint(&e, &what, false).raise()
    });
    let loaded = Rc::new(loaded);
    CACHE.with_borrow_mut(|c| {
        *c = Some(Cached {
            row: row.clone(),
            device,
            model: loaded.clone(),
        });
    });
    (row, loaded)
}
