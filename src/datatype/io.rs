//! Input, output, typmod, binary send/recv and casts of the `embedding` type.

use super::memory::{arg_values, check, check_typmod, new_datum, value_error};
use crate::fmgr::{arg, arg_cstr, arg_i32, cstring, error};
use crate::pg_function_info_v1;
use pgrx::pg_sys::errcodes::PgSqlErrorCode;
use pgrx::{pg_guard, pg_sys};
use synthsearch_vector::{MAX_DIMS, ParseError};

pg_function_info_v1!(
    pg_finfo_embedding_in,
    pg_finfo_embedding_out,
    pg_finfo_embedding_typmod_in,
    pg_finfo_embedding_recv,
    pg_finfo_embedding_send,
    pg_finfo_embedding,
    pg_finfo_array_to_embedding,
    pg_finfo_embedding_to_float4,
);

/// `embedding_in(cstring, oid, integer)`.
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn embedding_in(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // Safety: declared STRICT (cstring, oid, integer).
    let (text, typmod) = unsafe { (arg_cstr(fcinfo, 0), arg_i32(fcinfo, 2)) };
    let text = match text.to_str() {
        Ok(t) => t,
        Err(_) => error(
            PgSqlErrorCode::ERRCODE_INVALID_TEXT_REPRESENTATION,
            "embedding text is not valid UTF-8",
        ),
    };
    let values = match synthsearch_vector::parse(text) {
        Ok(v) => v,
        Err(ParseError::Malformed(m)) => {
            error(PgSqlErrorCode::ERRCODE_INVALID_TEXT_REPRESENTATION, m)
        }
        Err(e @ ParseError::OutOfRange(_)) => error(
            PgSqlErrorCode::ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE,
            e.to_string(),
        ),
        Err(ParseError::Value(e)) => value_error(e),
    };
    check_typmod(&values, typmod);
    new_datum(&values)
}

/// `embedding_out(embedding)`.
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn embedding_out(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // Safety: declared STRICT (embedding).
    let values = unsafe { arg_values(fcinfo, 0) };
    cstring(&synthsearch_vector::format(values))
}

/// `embedding_typmod_in(cstring[])`: the `n` of `embedding(n)`.
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn embedding_typmod_in(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // Safety: declared STRICT (cstring[]); ArrayGetIntegerTypmods checks the array and returns n ints.
    let mods = unsafe {
        let array =
            pg_sys::pg_detoast_datum(arg(fcinfo, 0).cast_mut_ptr()) as *mut pg_sys::ArrayType;
        let mut n = 0;
        let p = pg_sys::ArrayGetIntegerTypmods(array, &mut n);
        std::slice::from_raw_parts(p, n as usize).to_vec()
    };
    if mods.len() != 1 {
        error(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            "invalid type modifier: embedding takes one, its dimension count",
        );
    }
    let dims = mods[0];
    if dims < 1 {
        error(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            "dimensions for type embedding must be at least 1",
        );
    }
    if dims as usize > MAX_DIMS {
        error(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("dimensions for type embedding cannot exceed {MAX_DIMS}"),
        );
    }
    pg_sys::Datum::from(dims)
}

/// `embedding_recv(internal, oid, integer)`: u16 dimensions, u16 unused, then float4s, big-endian.
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn embedding_recv(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // Safety: declared STRICT (internal StringInfo, oid, integer); we read within [cursor, len).
    let (bytes, typmod, buf) = unsafe {
        let buf = arg(fcinfo, 0).cast_mut_ptr::<pg_sys::StringInfoData>();
        let start = (*buf).cursor as usize;
        let len = (*buf).len as usize;
        let bytes = std::slice::from_raw_parts(((*buf).data as *const u8).add(start), len - start);
        (bytes, arg_i32(fcinfo, 2), buf)
    };
    let insufficient = || -> ! {
        error(
            PgSqlErrorCode::ERRCODE_INVALID_BINARY_REPRESENTATION,
            "insufficient data left in message",
        )
    };
    if bytes.len() < 4 {
        insufficient();
    }
    let dims = u16::from_be_bytes([bytes[0], bytes[1]]) as usize;
    if dims > MAX_DIMS {
        error(
            PgSqlErrorCode::ERRCODE_INVALID_BINARY_REPRESENTATION,
            format!("embedding cannot have more than {MAX_DIMS} dimensions, not {dims}"),
        );
    }
    let body = &bytes[4..];
    if body.len() < 4 * dims {
        insufficient();
    }
    let values: Vec<f32> = body[..4 * dims]
        .chunks_exact(4)
        .map(|c| f32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    // Safety: the bytes consumed were within the message.
    unsafe { (*buf).cursor += (4 + 4 * dims) as i32 };
    check(&values);
    check_typmod(&values, typmod);
    new_datum(&values)
}

/// `embedding_send(embedding) -> bytea`.
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn embedding_send(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // Safety: declared STRICT (embedding).
    let values = unsafe { arg_values(fcinfo, 0) };
    let mut out = Vec::with_capacity(4 + 4 * values.len());
    out.extend_from_slice(&(values.len() as u16).to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    for v in values {
        out.extend_from_slice(&v.to_be_bytes());
    }
    pg_sys::Datum::from(pgrx::varlena::rust_byte_slice_to_bytea(&out).into_pg())
}

/// `embedding(embedding, integer, boolean)`: the length coercion behind `::embedding(n)`.
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn embedding(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // Safety: declared STRICT (embedding, integer, boolean).
    let (values, typmod) = unsafe { (arg_values(fcinfo, 0), arg_i32(fcinfo, 1)) };
    check_typmod(values, typmod);
    // Safety: as above; the argument is returned unchanged.
    unsafe { arg(fcinfo, 0) }
}

/// `array_to_embedding(integer[] | real[] | double precision[] | numeric[], integer, boolean)`.
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn array_to_embedding(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // Safety: declared STRICT with an array first argument.
    let (array, typmod) = unsafe {
        (
            pg_sys::pg_detoast_datum(arg(fcinfo, 0).cast_mut_ptr()) as *mut pg_sys::ArrayType,
            arg_i32(fcinfo, 1),
        )
    };
    // Safety: `array` is a detoasted array; deconstruct_array returns n datums and n null flags.
    let (elemtype, datums, nulls) = unsafe {
        if (*array).ndim > 1 {
            error(
                PgSqlErrorCode::ERRCODE_DATA_EXCEPTION,
                "array must be one-dimensional",
            );
        }
        let elemtype = (*array).elemtype;
        let (mut typlen, mut typbyval, mut typalign) = (0i16, false, 0 as std::ffi::c_char);
        pg_sys::get_typlenbyvalalign(elemtype, &mut typlen, &mut typbyval, &mut typalign);
        let (mut elems, mut nulls, mut n) = (std::ptr::null_mut(), std::ptr::null_mut(), 0);
        pg_sys::deconstruct_array(
            array,
            elemtype,
            typlen as i32,
            typbyval,
            typalign,
            &mut elems,
            &mut nulls,
            &mut n,
        );
        let n = n as usize;
        if n == 0 {
            (elemtype, &[][..], &[][..])
        } else {
            (
                elemtype,
                std::slice::from_raw_parts(elems, n),
                std::slice::from_raw_parts(nulls, n),
            )
        }
    };
    if nulls.iter().any(|&n| n) {
        error(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            "array must not contain nulls",
        );
    }
    if datums.len() > MAX_DIMS {
        value_error(synthsearch_vector::ValueError::TooManyDims(datums.len()));
    }
    let values: Vec<f32> = datums
        .iter()
        .map(|&d| match elemtype {
            pg_sys::INT4OID => d.value() as i32 as f32,
            pg_sys::FLOAT4OID => f32::from_bits(d.value() as u32),
            pg_sys::FLOAT8OID => {
                let x = f64::from_bits(d.value() as u64);
                if x.is_finite() && x.abs() > f32::MAX as f64 {
                    error(
                        PgSqlErrorCode::ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE,
                        format!("\"{x:e}\" is out of range for type real"),
                    );
                }
                x as f32
            }
            pg_sys::NUMERICOID => {
                // Safety: numeric_float4 takes one numeric datum; it raises its own range errors.
                let r = unsafe {
                    pgrx::direct_function_call_as_datum(pg_sys::numeric_float4, &[Some(d)])
                };
                f32::from_bits(r.expect("numeric_float4 returned NULL").value() as u32)
            }
            other => error(
                PgSqlErrorCode::ERRCODE_DATA_EXCEPTION,
                format!(
                    "unsupported array element type {} for embedding",
                    other.to_u32()
                ),
            ),
        })
        .collect();
    check(&values);
    check_typmod(&values, typmod);
    new_datum(&values)
}

/// `embedding_to_float4(embedding, integer, boolean) -> real[]`.
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn embedding_to_float4(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // Safety: declared STRICT (embedding, ...).
    let values = unsafe { arg_values(fcinfo, 0) };
    let mut datums: Vec<pg_sys::Datum> = values
        .iter()
        .map(|v| pg_sys::Datum::from(v.to_bits()))
        .collect();
    // Safety: float4 is 4 bytes, by value, int-aligned; construct_array copies the datums.
    unsafe {
        let array = pg_sys::construct_array(
            datums.as_mut_ptr(),
            datums.len() as i32,
            pg_sys::FLOAT4OID,
            4,
            true,
            pg_sys::TYPALIGN_INT as std::ffi::c_char,
        );
        pg_sys::Datum::from(array)
    }
}
