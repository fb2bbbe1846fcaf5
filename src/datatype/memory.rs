//! The on-disk form of an embedding and its conversion at the edge: a varlena with a 4-byte header,
//! the dimension count (u16), the format version (u16, [`FORMAT_VERSION`]), then 4 bytes a
//! dimension. Detoasted once, the values are handed on as a borrowed `&[f32]`.
//!
//! The version field was two unused bytes in 0.1.0, always zero (palloc0), so version 0 is that
//! layout and every 0.1.0 value reads as it is. A value of another version (written by a newer
//! release, then read by this one after a downgrade) is refused with 0A000, never misread.

use crate::fmgr::error;
use pgrx::pg_sys;
use pgrx::pg_sys::errcodes::PgSqlErrorCode;
use synthsearch_vector::ValueError;

/// Bytes before the first value.
pub const HEADER_SIZE: usize = 8;
/// The layout this build writes and reads: 0, the layout of every release so far.
pub const FORMAT_VERSION: u16 = 0;

/// The values of embedding argument `n`.
///
/// # Safety
/// `fcinfo` must be a valid call frame whose argument `n` is a non-NULL embedding.
pub unsafe fn arg_values<'a>(fcinfo: pg_sys::FunctionCallInfo, n: usize) -> &'a [f32] {
    // Safety: guaranteed by the caller.
    unsafe { datum_values(crate::fmgr::arg(fcinfo, n)) }
}

/// The values of an embedding datum, detoasted into the current memory context if need be.
///
/// # Safety
/// `datum` must be a non-NULL embedding datum.
pub unsafe fn datum_values<'a>(datum: pg_sys::Datum) -> &'a [f32] {
    // Safety: pg_detoast_datum returns a plain 4-byte-header varlena, 4-byte aligned (a fresh palloc
    // or the original, which the type's int4 alignment keeps aligned); its size is checked before
    // the values are read.
    unsafe {
        let ptr = pg_sys::pg_detoast_datum(datum.cast_mut_ptr()) as *const u8;
        let size = pgrx::varlena::varsize_4b(ptr as *const pg_sys::varlena);
        if size < HEADER_SIZE {
            corrupt(format!(
                "embedding of {size} bytes, shorter than its header"
            ));
        }
        let dims = std::ptr::read_unaligned(ptr.add(4) as *const u16) as usize;
        let version = std::ptr::read_unaligned(ptr.add(6) as *const u16);
        if version != FORMAT_VERSION {
            unsupported_format("embedding", version.into(), FORMAT_VERSION.into());
        }
        if size != HEADER_SIZE + 4 * dims || dims == 0 {
            corrupt(format!(
                "embedding of {size} bytes claims {dims} dimensions"
            ));
        }
        std::slice::from_raw_parts(ptr.add(HEADER_SIZE) as *const f32, dims)
    }
}

/// Raises 0A000 for a stored value of format version `found`, which this build cannot read.
pub fn unsupported_format(what: &str, found: u32, supported: u32) -> ! {
    pgrx::ereport!(
        ERROR,
        PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
        format!(
            "{what} format version {found} is not supported by synthsearch {} (it reads version {supported})",
            env!("CARGO_PKG_VERSION")
        ),
        "The value was written by a newer release of synthsearch: install that release again."
    );
}

/// Raises XX001 (data corrupted) with `message`.
pub fn corrupt(message: String) -> ! {
    error(PgSqlErrorCode::ERRCODE_DATA_CORRUPTED, message)
}

/// A new embedding datum holding `values`, palloc'd in the current memory context. The caller has
/// checked the values (see [`check`]).
pub fn new_datum(values: &[f32]) -> pg_sys::Datum {
    debug_assert!(!values.is_empty() && values.len() <= synthsearch_vector::MAX_DIMS);
    let size = HEADER_SIZE + 4 * values.len();
    // Safety: palloc0 returns `size` zeroed bytes, MAXALIGNed, or raises an ERROR; we write within them.
    unsafe {
        let ptr = pg_sys::palloc0(size) as *mut u8;
        pgrx::varlena::set_varsize_4b(ptr as *mut pg_sys::varlena, size as i32);
        std::ptr::write(ptr.add(4) as *mut u16, values.len() as u16);
        std::ptr::write(ptr.add(6) as *mut u16, FORMAT_VERSION);
        std::ptr::copy_nonoverlapping(
            values.as_ptr(),
            ptr.add(HEADER_SIZE) as *mut f32,
            values.len(),
        );
        pg_sys::Datum::from(ptr)
    }
}

/// Raises the fitting ERROR when values cannot form an embedding.
pub fn check(values: &[f32]) {
    if let Err(e) = synthsearch_vector::check_values(values) {
        value_error(e)
    }
}

pub fn value_error(e: ValueError) -> ! {
    let code = match e {
        ValueError::TooManyDims(_) => PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
        ValueError::Empty | ValueError::NotFinite { .. } => PgSqlErrorCode::ERRCODE_DATA_EXCEPTION,
    };
    error(code, e.to_string())
}

/// Raises an ERROR unless `values` fits typmod `typmod` (-1: any dimension count).
pub fn check_typmod(values: &[f32], typmod: i32) {
    if typmod != -1 && values.len() != typmod as usize {
        error(
            PgSqlErrorCode::ERRCODE_DATA_EXCEPTION,
            format!("expected {typmod} dimensions, not {}", values.len()),
        );
    }
}

/// Raises an ERROR unless the two operands have the same dimension count.
pub fn check_same_dims(a: &[f32], b: &[f32]) {
    if a.len() != b.len() {
        error(
            PgSqlErrorCode::ERRCODE_DATA_EXCEPTION,
            format!("different embedding dimensions {} and {}", a.len(), b.len()),
        );
    }
}
