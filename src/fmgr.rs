//! Helpers for functions written against PostgreSQL's version-1 calling convention.

use pgrx::pg_sys;
use pgrx::pg_sys::errcodes::PgSqlErrorCode;

/// Declares `pg_finfo_<name>` for a hand-written `extern "C-unwind" fn(FunctionCallInfo) -> Datum`.
#[macro_export]
macro_rules! pg_function_info_v1 {
    ($($finfo:ident),* $(,)?) => {
        $(
            #[unsafe(no_mangle)]
            pub extern "C" fn $finfo() -> &'static pgrx::pg_sys::Pg_finfo_record {
                static V1: pgrx::pg_sys::Pg_finfo_record = pgrx::pg_sys::Pg_finfo_record { api_version: 1 };
                &V1
            }
        )*
    };
}

/// The boolean a one-row SQL query of the extension's own returns (run with a pinned search
/// path); false when it returns no row or NULL.
pub fn spi_bool(query: &str, args: &[pgrx::datum::DatumWithOid<'_>]) -> bool {
    crate::security::pinned(|| {
        // Read-only (see security::extension): no transaction id for a check.
        pgrx::Spi::connect(|client| {
            client
                .select(query, Some(1), args)?
                .first()
                .get_one::<bool>()
        })
        .ok()
        .flatten()
        .unwrap_or(false)
    })
}

/// Raises 42501 (insufficient privilege) with `message` unless `allowed`.
pub fn require_privilege(allowed: bool, message: impl FnOnce() -> String) {
    if !allowed {
        error(PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE, message());
    }
}

/// Raises an ERROR with the given SQLSTATE. Never returns.
pub fn error(code: PgSqlErrorCode, message: impl Into<String>) -> ! {
    pgrx::ereport!(ERROR, code, message.into());
}

/// Raises an ERROR with the given SQLSTATE, message, and the detail and hint where given.
#[track_caller]
pub fn error_with(
    code: PgSqlErrorCode,
    message: impl Into<String>,
    detail: Option<String>,
    hint: Option<String>,
) -> ! {
    let mut report = pgrx::pg_sys::panic::ErrorReport::new(code, message.into(), "synthsearch");
    if let Some(d) = detail {
        report = report.set_detail(d);
    }
    if let Some(h) = hint {
        report = report.set_hint(h);
    }
    report.report(pgrx::PgLogLevel::ERROR);
    unreachable!("an ERROR does not return")
}

/// Argument `n` as a raw datum.
///
/// # Safety
/// `fcinfo` must be a valid call frame with at least `n + 1` arguments, none of them NULL
/// (the SQL functions using this are STRICT).
pub unsafe fn arg(fcinfo: pg_sys::FunctionCallInfo, n: usize) -> pg_sys::Datum {
    // Safety: guaranteed by the caller.
    unsafe { pgrx::fcinfo::pg_getarg_datum_raw(fcinfo, n) }
}

/// Argument `n` as int4.
///
/// # Safety
/// As [`arg`].
pub unsafe fn arg_i32(fcinfo: pg_sys::FunctionCallInfo, n: usize) -> i32 {
    // Safety: guaranteed by the caller.
    unsafe { arg(fcinfo, n) }.value() as i32
}

/// Argument `n` as a C string.
///
/// # Safety
/// As [`arg`], and the argument must be of type cstring.
pub unsafe fn arg_cstr<'a>(fcinfo: pg_sys::FunctionCallInfo, n: usize) -> &'a std::ffi::CStr {
    // Safety: a cstring argument is a NUL-terminated string that lives for the call.
    unsafe { std::ffi::CStr::from_ptr(arg(fcinfo, n).cast_mut_ptr()) }
}

/// A float8 result.
pub fn float8(v: f64) -> pg_sys::Datum {
    pg_sys::Datum::from(v.to_bits())
}

/// A palloc'd copy of `s` as a cstring datum.
pub fn cstring(s: &str) -> pg_sys::Datum {
    // Safety: palloc returns at least len + 1 writable bytes or raises an ERROR.
    unsafe {
        let p = pg_sys::palloc(s.len() + 1) as *mut u8;
        std::ptr::copy_nonoverlapping(s.as_ptr(), p, s.len());
        *p.add(s.len()) = 0;
        pg_sys::Datum::from(p)
    }
}
