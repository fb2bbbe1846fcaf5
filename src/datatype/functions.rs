//! Distances, arithmetic, comparison and the avg aggregate of `embedding`.

use super::memory::{arg_values, check_same_dims, new_datum};
use crate::fmgr::{arg, error, float8};
use crate::pg_function_info_v1;
use pgrx::pg_sys::errcodes::PgSqlErrorCode;
use pgrx::{pg_guard, pg_sys};
use synthsearch_vector as vector;

pg_function_info_v1!(
    pg_finfo_l2_distance,
    pg_finfo_cosine_distance,
    pg_finfo_inner_product,
    pg_finfo_negative_inner_product,
    pg_finfo_l2_norm,
    pg_finfo_embedding_dims,
    pg_finfo_embedding_normalize,
    pg_finfo_embedding_add,
    pg_finfo_embedding_sub,
    pg_finfo_embedding_cmp,
    pg_finfo_embedding_lt,
    pg_finfo_embedding_le,
    pg_finfo_embedding_eq,
    pg_finfo_embedding_ne,
    pg_finfo_embedding_ge,
    pg_finfo_embedding_gt,
    pg_finfo_embedding_accum,
    pg_finfo_embedding_combine,
    pg_finfo_embedding_avg,
);

/// The two embedding operands of a binary function, with equal dimensions.
///
/// # Safety
/// Arguments 0 and 1 of `fcinfo` must be non-NULL embeddings.
unsafe fn operands<'a>(fcinfo: pg_sys::FunctionCallInfo) -> (&'a [f32], &'a [f32]) {
    // Safety: guaranteed by the caller.
    let (a, b) = unsafe { (arg_values(fcinfo, 0), arg_values(fcinfo, 1)) };
    check_same_dims(a, b);
    (a, b)
}

macro_rules! binary_float8 {
    ($name:ident, |$a:ident, $b:ident| $body:expr) => {
        #[pg_guard]
        #[unsafe(no_mangle)]
        pub extern "C-unwind" fn $name(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
            // Safety: declared STRICT (embedding, embedding).
            let ($a, $b) = unsafe { operands(fcinfo) };
            float8($body)
        }
    };
}

binary_float8!(l2_distance, |a, b| vector::l2_distance(a, b));
binary_float8!(cosine_distance, |a, b| vector::cosine_distance(a, b));
binary_float8!(inner_product, |a, b| vector::dot(a, b) as f64);
binary_float8!(negative_inner_product, |a, b| -(vector::dot(a, b) as f64));

#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn l2_norm(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // Safety: declared STRICT (embedding).
    float8(vector::norm(unsafe { arg_values(fcinfo, 0) }))
}

#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn embedding_dims(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // Safety: declared STRICT (embedding).
    pg_sys::Datum::from(unsafe { arg_values(fcinfo, 0) }.len() as i32)
}

/// Unit-length copy; the zero embedding stays zero (it has no direction).
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn embedding_normalize(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // Safety: declared STRICT (embedding).
    let a = unsafe { arg_values(fcinfo, 0) };
    let n = vector::norm(a);
    if n == 0.0 {
        return new_datum(a);
    }
    let out: Vec<f32> = a.iter().map(|&x| (x as f64 / n) as f32).collect();
    new_datum(&out)
}

fn elementwise(a: &[f32], b: &[f32], op: impl Fn(f32, f32) -> f32) -> pg_sys::Datum {
    let out: Vec<f32> = a.iter().zip(b).map(|(&x, &y)| op(x, y)).collect();
    if out.iter().any(|v| v.is_infinite()) {
        error(
            PgSqlErrorCode::ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE,
            "value out of range: overflow",
        );
    }
    new_datum(&out)
}

#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn embedding_add(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // Safety: declared STRICT (embedding, embedding).
    let (a, b) = unsafe { operands(fcinfo) };
    elementwise(a, b, |x, y| x + y)
}

#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn embedding_sub(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // Safety: declared STRICT (embedding, embedding).
    let (a, b) = unsafe { operands(fcinfo) };
    elementwise(a, b, |x, y| x - y)
}

/// Total order for btree: element by element, then the shorter first. -0 equals 0.
fn compare(a: &[f32], b: &[f32]) -> std::cmp::Ordering {
    for (x, y) in a.iter().zip(b) {
        // Values are finite, so partial_cmp always answers.
        match x.partial_cmp(y).expect("embedding values are finite") {
            std::cmp::Ordering::Equal => continue,
            other => return other,
        }
    }
    a.len().cmp(&b.len())
}

/// # Safety
/// Arguments 0 and 1 of `fcinfo` must be non-NULL embeddings.
unsafe fn compare_args(fcinfo: pg_sys::FunctionCallInfo) -> std::cmp::Ordering {
    // Safety: guaranteed by the caller.
    unsafe { compare(arg_values(fcinfo, 0), arg_values(fcinfo, 1)) }
}

#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn embedding_cmp(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // Safety: declared STRICT (embedding, embedding).
    pg_sys::Datum::from(unsafe { compare_args(fcinfo) } as i32)
}

macro_rules! comparison {
    ($name:ident, $pat:pat) => {
        #[pg_guard]
        #[unsafe(no_mangle)]
        pub extern "C-unwind" fn $name(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
            // Safety: declared STRICT (embedding, embedding).
            pg_sys::Datum::from(matches!(unsafe { compare_args(fcinfo) }, $pat))
        }
    };
}

use std::cmp::Ordering::{Equal, Greater, Less};
comparison!(embedding_lt, Less);
comparison!(embedding_le, Less | Equal);
comparison!(embedding_eq, Equal);
comparison!(embedding_ne, Less | Greater);
comparison!(embedding_ge, Greater | Equal);
comparison!(embedding_gt, Greater);

/// The avg aggregate's state, a float8[]: the row count, then the per-dimension sums.
///
/// # Safety
/// `datum` must be a non-NULL float8[] without nulls.
unsafe fn read_state(datum: pg_sys::Datum) -> Vec<f64> {
    // Safety: float8[] is a 1-D array of 8-byte by-value elements; deconstruct_array returns n datums.
    unsafe {
        let array = pg_sys::pg_detoast_datum(datum.cast_mut_ptr()) as *mut pg_sys::ArrayType;
        let (mut elems, mut n) = (std::ptr::null_mut(), 0);
        pg_sys::deconstruct_array(
            array,
            pg_sys::FLOAT8OID,
            8,
            true,
            pg_sys::TYPALIGN_DOUBLE as std::ffi::c_char,
            &mut elems,
            std::ptr::null_mut(),
            &mut n,
        );
        if n == 0 {
            panic!("data corruption: empty embedding avg state");
        }
        std::slice::from_raw_parts(elems, n as usize)
            .iter()
            .map(|d| f64::from_bits(d.value() as u64))
            .collect()
    }
}

fn state_datum(state: &[f64]) -> pg_sys::Datum {
    let mut datums: Vec<pg_sys::Datum> = state
        .iter()
        .map(|v| pg_sys::Datum::from(v.to_bits()))
        .collect();
    // Safety: float8 is 8 bytes, by value, double-aligned; construct_array copies the datums.
    unsafe {
        pg_sys::Datum::from(pg_sys::construct_array(
            datums.as_mut_ptr(),
            datums.len() as i32,
            pg_sys::FLOAT8OID,
            8,
            true,
            pg_sys::TYPALIGN_DOUBLE as std::ffi::c_char,
        ))
    }
}

fn check_state_dims(state: &[f64], dims: usize) {
    if state[0] > 0.0 && state.len() - 1 != dims {
        error(
            PgSqlErrorCode::ERRCODE_DATA_EXCEPTION,
            format!(
                "different embedding dimensions {} and {dims}",
                state.len() - 1
            ),
        );
    }
}

/// `embedding_accum(double precision[], embedding)`.
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn embedding_accum(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // Safety: declared STRICT (double precision[], embedding).
    let (mut state, values) = unsafe { (read_state(arg(fcinfo, 0)), arg_values(fcinfo, 1)) };
    check_state_dims(&state, values.len());
    if state[0] == 0.0 {
        state.resize(values.len() + 1, 0.0);
    }
    state[0] += 1.0;
    for (s, &v) in state[1..].iter_mut().zip(values) {
        *s += v as f64;
    }
    state_datum(&state)
}

/// `embedding_combine(double precision[], double precision[])`, for parallel aggregation.
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn embedding_combine(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // Safety: declared STRICT (double precision[], double precision[]).
    let (a, b) = unsafe { (read_state(arg(fcinfo, 0)), read_state(arg(fcinfo, 1))) };
    if a[0] == 0.0 {
        return state_datum(&b);
    }
    if b[0] == 0.0 {
        return state_datum(&a);
    }
    check_state_dims(&a, b.len() - 1);
    let sum: Vec<f64> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
    state_datum(&sum)
}

/// `embedding_avg(double precision[]) -> embedding`; NULL when no rows were aggregated.
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn embedding_avg(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // Safety: declared STRICT (double precision[]).
    let state = unsafe { read_state(arg(fcinfo, 0)) };
    if state[0] == 0.0 {
        // Safety: a valid call frame.
        return unsafe { pgrx::fcinfo::pg_return_null(fcinfo) };
    }
    let n = state[0];
    let values: Vec<f32> = state[1..].iter().map(|s| (s / n) as f32).collect();
    new_datum(&values)
}
