#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use synthsearch_data::{CatalogConfig, generate};
use synthsearch_model::{
    Dataset, EncoderConfig, GeneratorConfig, Model, ModelInit, TextConfig, TrainConfig,
};
use tch::Device;

pub const SIZE: usize = 16;

/// A small catalog at 16x16 with half the products held out for validation.
// The trainer takes an Arc like the database worker does; these tests stay on one thread.
#[allow(clippy::arc_with_non_send_sync)]
pub fn data(products: usize) -> Arc<Dataset> {
    let cat = generate(&CatalogConfig {
        seed: 7,
        products,
        pairs_per_product: 0.8,
        image_size: SIZE as u32,
        split_shares: [0.6, 0.4, 0.0],
        ..CatalogConfig::default()
    });
    Arc::new(Dataset::from_catalog(&cat, SIZE).unwrap())
}

/// A catalog of `products` at 16x16 (seed `seed`, split by `shares`) trained from pairs formed
/// from its attribute values, at most `max_pairs` of them, as a shop without captions would.
pub fn attribute_data(seed: u64, products: usize, shares: [f32; 3], max_pairs: usize) -> Dataset {
    let cat = generate(&CatalogConfig {
        seed,
        products,
        image_size: SIZE as u32,
        split_shares: shares,
        ..CatalogConfig::default()
    });
    let plan = synthsearch_data::wishes::PairPlan {
        seed,
        max_pairs,
        ..Default::default()
    };
    Dataset::from_catalog_attributes(&cat, SIZE, &plan).unwrap()
}

pub fn init() -> ModelInit {
    ModelInit {
        encoder: EncoderConfig {
            image_size: SIZE as i64,
            embed_dim: 32,
            text: TextConfig {
                buckets: 4096,
                dim: 32,
                ..TextConfig::default()
            },
            compose_hidden: 64,
            kind: synthsearch_model::EncoderKind::Cnn { width: 8 },
        },
        generator: GeneratorConfig {
            noise_dim: 8,
            width: 8,
            cond_dim: 32,
            critic_width: 8,
            compose_condition: true,
            pixel_skips: None,
            query_expansion: Some(1.0),
        },
        ..ModelInit::default()
    }
}

/// libtorch's thread count is global and the tests of a file run in parallel: a test that sets
/// it holds this for its whole run, so another test cannot change it midway (a run and its
/// resumed copy must compute with the same threads to give the same losses).
#[allow(dead_code)]
pub fn threads(n: usize) -> std::sync::MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    let guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    synthsearch_model::set_threads(n);
    guard
}

/// libtorch's generator is global and tests run in parallel: initialize models one at a time.
pub fn seeded<T>(seed: i64, f: impl FnOnce() -> T) -> T {
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    tch::manual_seed(seed);
    f()
}

pub fn model(seed: i64) -> Model {
    seeded(seed, || Model::new(init(), Device::Cpu).unwrap())
}

pub fn train_config(encoder_steps: u64, gan_steps: u64) -> TrainConfig {
    TrainConfig {
        seed: 3,
        batch_size: 24,
        encoder_steps,
        gan_steps,
        ..TrainConfig::default()
    }
}

/// The largest absolute difference between two equally long vectors.
#[allow(dead_code)]
pub fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}
