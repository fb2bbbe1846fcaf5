//! The `synthquery` type: a search request with its synthesized embedding, the wish text and the
//! model it came from, so the GAN runs once per query and never once per row.
//!
//! Text form: a bare phrase (`'in black leather'`) runs the active model's generator, text only.
//! The output form `synthquery:{"model":..,"embedding":[..],..}` reads back without running the
//! GAN, so pg_dump, prepared statements and planners that ship constants as text carry the
//! synthesized embedding and only the first reader needs the generator.

use crate::datatype::memory::{arg_values, check_same_dims, corrupt, unsupported_format};
use crate::fmgr::{arg, arg_cstr, cstring, error, float8};
use crate::pg_function_info_v1;
use pgrx::pg_sys::errcodes::PgSqlErrorCode;
use pgrx::{pg_guard, pg_sys};
use serde::{Deserialize, Serialize};

/// What introduces the self-contained text form.
pub const TEXT_PREFIX: &str = "synthquery:";
/// The on-disk layout's version, byte 4 of every value (1 since 0.1.0). A value of another version
/// (from a newer release) is refused with 0A000; a malformed one is XX001.
const FORMAT: u8 = 1;
const HEADER: usize = 24;

/// A decoded `synthquery`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SynthQuery {
    pub model: i64,
    pub encoder: String,
    pub generator: String,
    pub text: String,
    pub reference: bool,
    pub embedding: Vec<f32>,
}

impl SynthQuery {
    /// A palloc'd varlena: header, then the embedding (4-byte aligned), then the strings.
    pub fn to_datum(&self) -> pg_sys::Datum {
        let d = self.embedding.len();
        let size = HEADER + 4 * d + self.text.len() + self.encoder.len() + self.generator.len();
        let mut buf = vec![0u8; size];
        buf[4] = FORMAT;
        buf[5] = self.reference as u8;
        buf[6..8].copy_from_slice(&(d as u16).to_ne_bytes());
        buf[8..16].copy_from_slice(&self.model.to_ne_bytes());
        buf[16..20].copy_from_slice(&(self.text.len() as u32).to_ne_bytes());
        buf[20..22].copy_from_slice(&(self.encoder.len() as u16).to_ne_bytes());
        buf[22..24].copy_from_slice(&(self.generator.len() as u16).to_ne_bytes());
        for (i, v) in self.embedding.iter().enumerate() {
            buf[HEADER + 4 * i..HEADER + 4 * i + 4].copy_from_slice(&v.to_ne_bytes());
        }
        let mut at = HEADER + 4 * d;
        for s in [&self.text, &self.encoder, &self.generator] {
            buf[at..at + s.len()].copy_from_slice(s.as_bytes());
            at += s.len();
        }
        // Safety: palloc returns `size` writable bytes or raises an ERROR; the varlena header is
        // set after the copy.
        unsafe {
            let p = pg_sys::palloc(size) as *mut u8;
            std::ptr::copy_nonoverlapping(buf.as_ptr(), p, size);
            pgrx::varlena::set_varsize_4b(p as *mut pg_sys::varlena, size as i32);
            pg_sys::Datum::from(p)
        }
    }

    /// Decodes a `synthquery` datum.
    ///
    /// # Safety
    /// `datum` must be a non-NULL synthquery.
    pub unsafe fn from_datum(datum: pg_sys::Datum) -> SynthQuery {
        // Safety: pg_detoast_datum gives a plain varlena of varsize bytes.
        let bytes = unsafe {
            let p = pg_sys::pg_detoast_datum(datum.cast_mut_ptr()) as *const u8;
            let size = pgrx::varlena::varsize_4b(p as *const pg_sys::varlena);
            std::slice::from_raw_parts(p, size)
        };
        if bytes.len() > 4 && bytes[4] != FORMAT {
            unsupported_format("synthquery", bytes[4].into(), FORMAT.into());
        }
        Self::from_bytes(bytes)
            .unwrap_or_else(|| corrupt(format!("malformed synthquery of {} bytes", bytes.len())))
    }

    fn from_bytes(b: &[u8]) -> Option<SynthQuery> {
        if b.len() < HEADER || b[4] != FORMAT {
            return None;
        }
        let d = u16::from_ne_bytes([b[6], b[7]]) as usize;
        let model = i64::from_ne_bytes(b[8..16].try_into().ok()?);
        let tl = u32::from_ne_bytes(b[16..20].try_into().ok()?) as usize;
        let el = u16::from_ne_bytes([b[20], b[21]]) as usize;
        let gl = u16::from_ne_bytes([b[22], b[23]]) as usize;
        if b.len() != HEADER + 4 * d + tl + el + gl {
            return None;
        }
        let embedding = b[HEADER..HEADER + 4 * d]
            .chunks_exact(4)
            .map(|c| f32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let mut at = HEADER + 4 * d;
        let mut take = |n: usize| {
            let s = std::str::from_utf8(&b[at..at + n]).ok().map(str::to_string);
            at += n;
            s
        };
        Some(SynthQuery {
            model,
            text: take(tl)?,
            encoder: take(el)?,
            generator: take(gl)?,
            reference: b[5] & 1 == 1,
            embedding,
        })
    }

    /// Checks what every query must satisfy before it is stored or used.
    fn validate(&self) -> Result<(), String> {
        synthsearch_vector::check_values(&self.embedding).map_err(|e| e.to_string())?;
        if self.text.len() > MAX_WISH_BYTES {
            return Err(format!(
                "wish text is too long: {} bytes, at most {MAX_WISH_BYTES}",
                self.text.len()
            ));
        }
        if self.encoder.len() > 256 || self.generator.len() > 256 {
            return Err("model version strings are too long".into());
        }
        Ok(())
    }
}

/// Longest wish text accepted.
pub const MAX_WISH_BYTES: usize = 1000;

/// Raises 22023 unless `text` is a usable wish.
pub fn check_wish(text: &str) {
    if text.trim().is_empty() {
        error(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            "wish text is empty: say what should be different",
        );
    }
    if text.len() > MAX_WISH_BYTES {
        error(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!(
                "wish text is too long: {} bytes, at most {MAX_WISH_BYTES}",
                text.len()
            ),
        );
    }
}

pg_function_info_v1!(
    pg_finfo_synthquery_in,
    pg_finfo_synthquery_out,
    pg_finfo_synthquery_recv,
    pg_finfo_synthquery_send,
    pg_finfo_synth_query_distance,
    pg_finfo_synth_query_text,
    pg_finfo_synth_query_embedding,
    pg_finfo_synth_query_model,
    pg_finfo_synth_query_encoder,
);

/// `synthquery_in(cstring)`: the self-contained form, or a bare phrase that runs the GAN.
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn synthquery_in(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // Safety: declared STRICT (cstring, oid, integer).
    let text = unsafe { arg_cstr(fcinfo, 0) }.to_str().unwrap_or_else(|_| {
        error(
            PgSqlErrorCode::ERRCODE_INVALID_TEXT_REPRESENTATION,
            "synthquery text is not valid UTF-8",
        )
    });
    if let Some(json) = text.trim_start().strip_prefix(TEXT_PREFIX) {
        let q: SynthQuery = serde_json::from_str(json).unwrap_or_else(|e| {
            error(
                PgSqlErrorCode::ERRCODE_INVALID_TEXT_REPRESENTATION,
                format!("invalid input syntax for type synthquery: {e}"),
            )
        });
        if let Err(e) = q.validate() {
            error(
                PgSqlErrorCode::ERRCODE_INVALID_TEXT_REPRESENTATION,
                format!("invalid synthquery: {e}"),
            );
        }
        return q.to_datum();
    }
    super::functions::synthesize(None, text, None).to_datum()
}

/// `synthquery_out(synthquery)`.
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn synthquery_out(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // Safety: declared STRICT (synthquery).
    let q = unsafe { SynthQuery::from_datum(arg(fcinfo, 0)) };
    cstring(&format!(
        "{TEXT_PREFIX}{}",
        serde_json::to_string(&q).expect("a query serializes")
    ))
}

/// `synthquery_recv(internal)`: the same fields as the text form, as JSON bytes (floats round-trip
/// exactly through JSON's shortest representation).
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn synthquery_recv(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // Safety: declared STRICT (internal StringInfo, oid, integer); we consume [cursor, len).
    let bytes = unsafe {
        let buf = arg(fcinfo, 0).cast_mut_ptr::<pg_sys::StringInfoData>();
        let start = (*buf).cursor as usize;
        let len = (*buf).len as usize;
        (*buf).cursor = (*buf).len;
        std::slice::from_raw_parts(((*buf).data as *const u8).add(start), len - start)
    };
    let q: SynthQuery = serde_json::from_slice(bytes).unwrap_or_else(|e| {
        error(
            PgSqlErrorCode::ERRCODE_INVALID_BINARY_REPRESENTATION,
            format!("invalid binary synthquery: {e}"),
        )
    });
    if let Err(e) = q.validate() {
        error(
            PgSqlErrorCode::ERRCODE_INVALID_BINARY_REPRESENTATION,
            format!("invalid synthquery: {e}"),
        );
    }
    q.to_datum()
}

/// `synthquery_send(synthquery) -> bytea`.
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn synthquery_send(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // Safety: declared STRICT (synthquery).
    let q = unsafe { SynthQuery::from_datum(arg(fcinfo, 0)) };
    let json = serde_json::to_vec(&q).expect("a query serializes");
    pg_sys::Datum::from(pgrx::varlena::rust_byte_slice_to_bytea(&json).into_pg())
}

/// `embedding <-> synthquery`: Euclidean distance to the synthesized embedding (the models'
/// embeddings are unit length, so this ranks as cosine distance does).
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn synth_query_distance(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // Safety: declared STRICT (embedding, synthquery).
    let (product, q) = unsafe { (arg_values(fcinfo, 0), query_embedding(arg(fcinfo, 1))) };
    check_same_dims(product, q);
    float8(synthsearch_vector::l2_distance(product, q))
}

/// The embedding of a synthquery datum, borrowed, without decoding its strings (the per-row path).
///
/// # Safety
/// `datum` must be a non-NULL synthquery.
unsafe fn query_embedding<'a>(datum: pg_sys::Datum) -> &'a [f32] {
    // Safety: pg_detoast_datum gives a plain, 4-byte aligned varlena of varsize bytes; the
    // embedding sits at offset HEADER and its length is checked against the size.
    unsafe {
        let p = pg_sys::pg_detoast_datum(datum.cast_mut_ptr()) as *const u8;
        let size = pgrx::varlena::varsize_4b(p as *const pg_sys::varlena);
        if size > 4 && *p.add(4) != FORMAT {
            unsupported_format("synthquery", (*p.add(4)).into(), FORMAT.into());
        }
        let d = if size >= HEADER {
            std::ptr::read_unaligned(p.add(6) as *const u16) as usize
        } else {
            0
        };
        if size < HEADER + 4 * d || d == 0 {
            corrupt(format!("malformed synthquery of {size} bytes"));
        }
        std::slice::from_raw_parts(p.add(HEADER) as *const f32, d)
    }
}

#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn synth_query_text(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // Safety: declared STRICT (synthquery).
    let q = unsafe { SynthQuery::from_datum(arg(fcinfo, 0)) };
    pg_sys::Datum::from(pgrx::varlena::rust_str_to_text_p(&q.text).into_pg())
}

#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn synth_query_embedding(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // Safety: declared STRICT (synthquery).
    let q = unsafe { SynthQuery::from_datum(arg(fcinfo, 0)) };
    crate::datatype::memory::new_datum(&q.embedding)
}

#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn synth_query_model(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // Safety: declared STRICT (synthquery).
    let q = unsafe { SynthQuery::from_datum(arg(fcinfo, 0)) };
    pg_sys::Datum::from(q.model)
}

/// `synth_query_encoder(synthquery) -> bigint`: the encoder version the query's embedding lives in,
/// as a number (the index's support function 3 compares it with the index's).
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn synth_query_encoder(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // Safety: declared STRICT (synthquery).
    let q = unsafe { SynthQuery::from_datum(arg(fcinfo, 0)) };
    pg_sys::Datum::from(super::registry::encoder_number(&q.encoder) as i64)
}
