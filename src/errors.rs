//! One map from the core crates' errors to what PostgreSQL users read: a SQLSTATE, a lowercase
//! message that names the value, and a detail and hint where they help. Both modes use it: a
//! backend raises the report, the model server sends it back whole and the backend raises it
//! there (as parallel query rethrows a worker's error).

use pgrx::pg_sys::errcodes::PgSqlErrorCode;
use synthsearch_data::image_io::ImageError;
use synthsearch_model::ModelError;

/// An ERROR to raise.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    pub code: PgSqlErrorCode,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

impl Report {
    pub fn new(code: PgSqlErrorCode, message: impl Into<String>) -> Report {
        Report {
            code,
            message: message.into(),
            detail: None,
            hint: None,
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Report {
        self.hint = Some(hint.into());
        self
    }

    /// Raises it. Never returns.
    #[track_caller]
    pub fn raise(self) -> ! {
        crate::fmgr::error_with(self.code, self.message, self.detail, self.hint)
    }
}

/// A bad image: 54000 over a limit, 22P03 for bytes that are not a readable image.
pub fn image(e: &ImageError) -> Report {
    let over = matches!(
        e,
        ImageError::TooManyBytes { .. }
            | ImageError::TooLarge { .. }
            | ImageError::CanvasTooLarge { .. }
    );
    if over {
        Report::new(
            PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
            format!("invalid image: {e}"),
        )
        .hint("Scale the image down before storing or querying it.")
    } else {
        Report::new(
            PgSqlErrorCode::ERRCODE_INVALID_BINARY_REPRESENTATION,
            format!("invalid image: {e}"),
        )
    }
}

/// libtorch's refusal: out of memory is 53200, anything else an internal error.
fn torch(e: &ModelError) -> Report {
    let text = e.to_string();
    if text.contains("out of memory") || text.contains("can't allocate memory") {
        Report::new(PgSqlErrorCode::ERRCODE_OUT_OF_MEMORY, text).hint(
            "Use smaller batches, or fewer models in the model server (synthsearch.server_models).",
        )
    } else {
        Report::new(PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, text)
    }
}

/// A model's refusal of a query or an input: the caller's mistake where it is one.
pub fn model(e: &ModelError) -> Report {
    match e {
        ModelError::EmptyText(_) | ModelError::TextTooLong { .. } => Report::new(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            e.to_string(),
        ),
        ModelError::Dimension { .. } | ModelError::NonFinite { .. } => {
            Report::new(PgSqlErrorCode::ERRCODE_DATA_EXCEPTION, e.to_string())
        }
        ModelError::NoGenerator => Report::new(
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            e.to_string(),
        ),
        ModelError::Config(_) => Report::new(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            e.to_string(),
        ),
        ModelError::Torch(_) => torch(e),
        _ => Report::new(PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, e.to_string()),
    }
}

/// Checkpoint bytes that do not load. `what` names them ("model 3 (shop version 2)", "invalid
/// model"); `given` says whether a caller handed them in (22P03: the caller's bad bytes) or they
/// were stored (XX001: stored data that no longer loads).
pub fn checkpoint(e: &ModelError, what: &str, given: bool) -> Report {
    match e {
        ModelError::UnsupportedFormat { found, supported } => Report::new(
            PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
            format!(
                "model checkpoint format version {found} is not supported by synthsearch {} (it reads version {supported})",
                env!("CARGO_PKG_VERSION")
            ),
        )
        .hint("The value was written by a newer release of synthsearch: install that release again."),
        ModelError::Torch(_) => torch(e),
        _ if given => Report::new(
            PgSqlErrorCode::ERRCODE_INVALID_BINARY_REPRESENTATION,
            format!("{what}: {e}"),
        ),
        _ => Report::new(
            PgSqlErrorCode::ERRCODE_DATA_CORRUPTED,
            format!("{what} cannot be loaded: {e}"),
        ),
    }
}
