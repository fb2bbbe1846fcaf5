//! The embedding index: algorithm and on-page layout, generic over a page-storage trait.
//!
//! An IVF index (Jégou et al., "Product quantization for nearest neighbor search", 2011, the
//! inverted-file part) with 8-bit scalar codes of each vector's residual to its list centroid and the
//! full vector kept beside it for an exact rerank. It knows nothing of PostgreSQL: the extension
//! implements [`Relation`] over shared buffers and GenericXLog and calls the functions below from
//! its access method callbacks.
//!
//! | callback           | here                                              |
//! |--------------------|---------------------------------------------------|
//! | `ambuild`          | [`build::Build`] (steppable) or [`build::build`]   |
//! | `aminsert`         | [`insert::insert`]                                |
//! | `amgettuple`       | [`scan::Scan::next`]                              |
//! | `ambulkdelete`     | [`vacuum::bulk_delete`]                           |
//! | `amvacuumcleanup`  | [`meta::live_count`] for the counts               |
//! | `amcostestimate`   | [`scan::scan_fraction`]                           |
//! | amcheck-like       | [`check::check`]                                  |

pub mod build;
pub mod check;
pub mod insert;
pub mod kmeans;
pub mod meta;
pub mod options;
pub mod page;
pub mod quantize;
pub mod relation;
pub mod scan;
pub mod vacuum;

pub use build::{Build, BuildError, BuildStats, Phase, Progress, build};
pub use check::{CheckError, Report, check};
pub use insert::{InsertError, insert, insert_cached, insert_with};
pub use meta::{ListStats, Meta, Stale, list_stats, read_meta, set_encoder_version};
pub use options::{BuildOptions, OptionsError, ScanOptions};
pub use relation::{MemRelation, Relation};
pub use scan::{Hit, Scan, ScanError};
pub use vacuum::{VacuumStats, bulk_delete};

/// A heap tuple identifier, opaque to the index: PostgreSQL's ItemPointer (block, offset).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tid {
    pub block: u32,
    pub offset: u16,
}

impl Tid {
    pub const fn new(block: u32, offset: u16) -> Tid {
        Tid { block, offset }
    }
}

/// The distance an index orders by. Each matches one operator class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// `<->`: Euclidean distance.
    L2,
    /// `<=>`: 1 - cosine similarity. Vectors are normalized when stored; zero vectors are not indexed.
    Cosine,
    /// `<#>`: negative inner product.
    InnerProduct,
}

impl Metric {
    pub fn to_u8(self) -> u8 {
        match self {
            Metric::L2 => 1,
            Metric::Cosine => 2,
            Metric::InnerProduct => 3,
        }
    }

    pub fn from_u8(v: u8) -> Option<Metric> {
        match v {
            1 => Some(Metric::L2),
            2 => Some(Metric::Cosine),
            3 => Some(Metric::InnerProduct),
            _ => None,
        }
    }

    /// The exact distance this metric reports, between a prepared query and a stored vector (both
    /// already normalized for cosine).
    #[inline]
    pub fn distance(self, q: &[f32], x: &[f32]) -> f32 {
        use synthsearch_vector::distance;
        match self {
            Metric::L2 => distance::l2_squared(q, x).sqrt(),
            Metric::Cosine => (1.0 - distance::dot(q, x)).clamp(0.0, 2.0),
            Metric::InnerProduct => -distance::dot(q, x),
        }
    }

    /// Brings a vector into the form the index stores and compares: unit length for cosine.
    /// Returns false for a zero vector under cosine, which has no direction and is not indexed.
    pub fn prepare(self, v: &mut [f32]) -> bool {
        if self == Metric::Cosine {
            let n = synthsearch_vector::norm(v);
            if n == 0.0 || !n.is_finite() {
                return false;
            }
            let inv = (1.0 / n) as f32;
            v.iter_mut().for_each(|x| *x *= inv);
        }
        true
    }
}

/// A seeded generator of clustered vectors (a Gaussian mixture), shared by tests and the benchmark.
pub mod testdata {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Standard normal by Box-Muller, so that no distribution crate is needed.
    pub fn gauss(rng: &mut ChaCha8Rng) -> f32 {
        let u: f64 = rng.random::<f64>().max(1e-12);
        let v: f64 = rng.random();
        ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
    }

    /// Mixture centers drawn N(0, 1) per dimension; points are a center plus N(0, spread²).
    /// With a latent space ([`Mixture::latent`]) the mixture lives in `latent` dimensions and
    /// each point is projected to `dims` by one fixed random matrix, plus a little isotropic
    /// noise: data of low intrinsic dimension whose clusters overlap, as real embeddings are.
    pub struct Mixture {
        pub dims: usize,
        pub centers: Vec<Vec<f32>>,
        pub spread: f32,
        /// `dims` rows of `latent` columns, N(0, 1/latent), when the mixture is latent.
        pub projection: Option<Vec<f32>>,
        /// Standard deviation of the isotropic noise added after the projection.
        pub noise: f32,
    }

    impl Mixture {
        pub fn new(dims: usize, clusters: usize, spread: f32, seed: u64) -> Mixture {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let centers = (0..clusters)
                .map(|_| (0..dims).map(|_| gauss(&mut rng)).collect())
                .collect();
            Mixture {
                dims,
                centers,
                spread,
                projection: None,
                noise: 0.0,
            }
        }

        /// A mixture of `clusters` in `latent` dimensions (centers N(0, 1), points a center plus
        /// N(0, spread²)), projected to `dims`, plus N(0, noise²) per dimension.
        pub fn latent(
            dims: usize,
            latent: usize,
            clusters: usize,
            spread: f32,
            noise: f32,
            seed: u64,
        ) -> Mixture {
            let mut m = Mixture::new(latent, clusters, spread, seed);
            let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5bd1_e995);
            let scale = 1.0 / (latent as f32).sqrt();
            m.projection = Some(
                (0..dims * latent)
                    .map(|_| scale * gauss(&mut rng))
                    .collect(),
            );
            m.dims = dims;
            m.noise = noise;
            m
        }

        /// The `i`-th point of the stream with this seed; any range can be generated in parallel.
        pub fn point(&self, seed: u64, i: u64) -> Vec<f32> {
            let mut rng = ChaCha8Rng::seed_from_u64(seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let c = &self.centers[rng.random_range(0..self.centers.len())];
            let z: Vec<f32> = c
                .iter()
                .map(|&m| m + self.spread * gauss(&mut rng))
                .collect();
            match &self.projection {
                None => z,
                Some(p) => p
                    .chunks_exact(z.len())
                    .map(|row| {
                        row.iter().zip(&z).map(|(a, b)| a * b).sum::<f32>()
                            + self.noise * gauss(&mut rng)
                    })
                    .collect(),
            }
        }
    }
}
