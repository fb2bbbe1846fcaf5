//! Embedding vectors without PostgreSQL: limits, the text format and the distance kernels.
//!
//! The extension converts datums at the edge and hands this crate borrowed `&[f32]` slices.

pub mod distance;
pub mod text;

pub use distance::{cosine_distance, dot, l2_distance, l2_squared, norm};
pub use text::{ParseError, format, parse};

/// Fewest dimensions an embedding may have.
pub const MIN_DIMS: usize = 1;
/// Most dimensions an embedding may have (pgvector's limit: 4 bytes a dimension fits a page-sized
/// TOAST chunk set and keeps an index tuple's size sane).
pub const MAX_DIMS: usize = 16000;

/// Why a vector's values were refused.
#[derive(Debug, Clone, PartialEq)]
pub enum ValueError {
    NotFinite { index: usize, value: f32 },
    TooManyDims(usize),
    Empty,
}

impl std::fmt::Display for ValueError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ValueError::NotFinite { value, .. } if value.is_nan() => {
                write!(f, "NaN not allowed in embedding")
            }
            ValueError::NotFinite { .. } => write!(f, "infinite value not allowed in embedding"),
            ValueError::TooManyDims(n) => {
                write!(
                    f,
                    "embedding cannot have more than {MAX_DIMS} dimensions, not {n}"
                )
            }
            ValueError::Empty => write!(f, "embedding must have at least {MIN_DIMS} dimension"),
        }
    }
}

/// Checks what every stored embedding must satisfy: 1..=MAX_DIMS finite values.
pub fn check_values(values: &[f32]) -> Result<(), ValueError> {
    if values.is_empty() {
        return Err(ValueError::Empty);
    }
    if values.len() > MAX_DIMS {
        return Err(ValueError::TooManyDims(values.len()));
    }
    if let Some((index, &value)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(ValueError::NotFinite { index, value });
    }
    Ok(())
}
