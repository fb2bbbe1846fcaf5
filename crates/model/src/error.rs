//! The crate's one error type. Messages are lowercase and name the offending value.

use tch::TchError;

/// Everything that can go wrong in the model crate.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// libtorch refused an operation (bad shape, device, out of memory).
    #[error("libtorch error: {0}")]
    Torch(#[from] TchError),
    /// The checkpoint bytes are damaged: bad magic, truncated, checksum mismatch, bad JSON.
    #[error("checkpoint is corrupt: {0}")]
    Corrupt(String),
    /// The checkpoint was written by a newer format than this build reads.
    #[error("checkpoint format version {found} is not supported (this build reads {supported})")]
    UnsupportedFormat { found: u32, supported: u32 },
    /// The checkpoint's weights do not fit its architecture, or parts come from different models.
    #[error("checkpoint does not match the model: {0}")]
    Mismatch(String),
    /// A configuration value is out of range.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A vector or image of the wrong size.
    #[error("expected {expected} {what}, not {found}")]
    Dimension {
        what: &'static str,
        expected: usize,
        found: usize,
    },
    /// NaN or infinity in an input vector.
    #[error("{what} contains a non-finite value at position {index}")]
    NonFinite { what: &'static str, index: usize },
    /// The wish text has no words in it.
    #[error("text is empty: {0:?} has no words")]
    EmptyText(String),
    /// The wish text is longer than the limit.
    #[error("text is too long: {len} bytes, at most {max}")]
    TextTooLong { len: usize, max: usize },
    /// A fastText `.vec` file that cannot be parsed.
    #[error("invalid fastText vectors at line {line}: {message}")]
    WordVectors { line: usize, message: String },
    /// The model has no generator yet (only the encoder stage was trained).
    #[error("the model has no generator: train the GAN stage first")]
    NoGenerator,
    /// Training data that cannot be used.
    #[error("training data: {0}")]
    Data(String),
    /// A file could not be read or written.
    #[error("cannot access {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl ModelError {
    pub(crate) fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        ModelError::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }
}

pub type Result<T, E = ModelError> = std::result::Result<T, E>;
