//! synth_encode, synth_query and synth_generate.

use super::cache;
use super::query::{SynthQuery, check_wish};
use super::registry::resolve;
use crate::datatype::memory::{datum_values, new_datum};
use crate::fmgr::{arg, error};
use crate::pg_function_info_v1;
use crate::server::client;
use crate::server::message::{Ref, Reply, Request};
use pgrx::pg_sys::errcodes::PgSqlErrorCode;
use pgrx::{pg_guard, pg_sys};
use std::cell::RefCell;
use synthsearch_data::image_io::{self, DecodeLimits, ImageError};
use synthsearch_model::{ModelError, Reference};

/// A query's reference, as the SQL functions receive it.
pub enum RefArg<'a> {
    Image(&'a [u8]),
    Embedding(&'a [f32]),
}

fn image_error(e: ImageError) -> ! {
    crate::errors::image(&e).raise()
}

fn model_error(e: ModelError) -> ! {
    crate::errors::model(&e).raise()
}

/// Image bytes -> CHW floats at the model's input size.
fn decode(bytes: &[u8], size: usize) -> Vec<f32> {
    let image =
        image_io::decode(bytes, &DecodeLimits::default()).unwrap_or_else(|e| image_error(e));
    image_io::to_chw(&image, size as u32)
}

/// The embedding of one image under the model `model` names (None: the active one).
pub fn encode(bytes: &[u8], model: Option<&str>) -> Vec<f32> {
    if crate::server::enabled() {
        let row = resolve(model);
        let request = Request::Encode {
            key: client::key(&row),
            image: bytes.to_vec(),
        };
        return match client::call(&row, request) {
            Reply::Embedding(v) => v,
            other => unexpected(other),
        };
    }
    let (_, m) = cache::model(model);
    let chw = decode(bytes, m.image_size());
    m.encode_images(&chw, 1).unwrap_or_else(|e| model_error(e))
}

/// A query's reference as the model server takes it (images undecoded: the server decodes).
fn to_ref(reference: Option<RefArg<'_>>) -> Ref {
    match reference {
        None => Ref::None,
        Some(RefArg::Image(b)) => Ref::Image(b.to_vec()),
        Some(RefArg::Embedding(v)) => Ref::Embedding(v.to_vec()),
    }
}

fn unexpected(_: Reply) -> ! {
    error(
        PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
        "unexpected reply from the model server",
    )
}

/// synth_generate through the model server: the synthesized image as PNG.
fn generate_png_served(reference: Option<RefArg<'_>>, text: &str, model: Option<&str>) -> Vec<u8> {
    let row = resolve(model);
    let request = Request::Generate {
        key: client::key(&row),
        reference: to_ref(reference),
        text: text.to_string(),
        png: true,
    };
    match client::call(&row, request) {
        Reply::Image { png, .. } => png,
        other => unexpected(other),
    }
}

/// Recent queries of this backend, so a query built per row from the same arguments (for example
/// a synthquery cast from a non-constant text inside a sequential scan's ORDER BY) runs the
/// generator once. Within one statement an entry is reused without even looking up the model:
/// the active model is read once per statement, as a STABLE function may.
struct Memo {
    /// (model argument, reference hash, wish text)
    args: (Option<String>, u64, String),
    statement: pg_sys::TimestampTz,
    /// (model id, generator version)
    model: (i64, String),
    query: SynthQuery,
}

thread_local! {
    static MEMO: RefCell<Vec<Memo>> = const { RefCell::new(Vec::new()) };
}
const MEMO_ENTRIES: usize = 16;

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Runs the generator: the synthesized image's embedding, as a `SynthQuery`.
pub fn synthesize(reference: Option<RefArg<'_>>, text: &str, model: Option<&str>) -> SynthQuery {
    check_wish(text);
    let ref_hash = match &reference {
        None => 0,
        Some(RefArg::Image(b)) => fnv1a(b) | 1,
        Some(RefArg::Embedding(v)) => {
            v.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, x| {
                (h ^ x.to_bits() as u64).wrapping_mul(0x0100_0000_01b3)
            }) | 1
        }
    };
    let args = (model.map(str::to_string), ref_hash, text.to_string());
    // Safety: reads the backend's statement start time.
    let statement = unsafe { pg_sys::GetCurrentStatementStartTimestamp() };
    let fast = MEMO.with_borrow(|memo| {
        memo.iter()
            .find(|e| e.statement == statement && e.args == args)
            .map(|e| e.query.clone())
    });
    if let Some(q) = fast {
        return q;
    }
    let served = crate::server::enabled();
    let row = resolve(model);
    let model_key = (row.id, row.generator_version.clone());
    let known = MEMO.with_borrow_mut(|memo| {
        memo.iter_mut()
            .find(|e| e.model == model_key && e.args == args)
            .map(|e| {
                e.statement = statement;
                e.query.clone()
            })
    });
    if let Some(q) = known {
        return q;
    }
    let has_reference = reference.is_some();
    let embedding = if served {
        let request = Request::Generate {
            key: client::key(&row),
            reference: to_ref(reference),
            text: text.to_string(),
            png: false,
        };
        match client::call(&row, request) {
            Reply::Embedding(v) => v,
            other => unexpected(other),
        }
    } else {
        let (_, m) = cache::model(model);
        let generated = match reference {
            None => m.generate(Reference::None, text, None),
            Some(RefArg::Image(bytes)) => {
                let chw = decode(bytes, m.image_size());
                m.generate(Reference::Image(&chw), text, None)
            }
            Some(RefArg::Embedding(v)) => m.generate(Reference::Embedding(v), text, None),
        };
        generated.unwrap_or_else(|e| model_error(e)).embedding
    };
    let query = SynthQuery {
        model: row.id,
        encoder: row.encoder_version,
        generator: row.generator_version,
        text: text.to_string(),
        reference: has_reference,
        embedding,
    };
    MEMO.with_borrow_mut(|memo| {
        if memo.len() == MEMO_ENTRIES {
            memo.remove(0);
        }
        memo.push(Memo {
            args,
            statement,
            model: model_key,
            query: query.clone(),
        });
    });
    query
}

pg_function_info_v1!(
    pg_finfo_synth_encode,
    pg_finfo_synth_query_bytea,
    pg_finfo_synth_query_emb,
    pg_finfo_synth_generate_bytea,
    pg_finfo_synth_generate_emb,
    pg_finfo_synth_generate_text,
);

/// # Safety
/// Argument `n` must be a non-NULL bytea.
unsafe fn bytea_arg<'a>(fcinfo: pg_sys::FunctionCallInfo, n: usize) -> &'a [u8] {
    // Safety: guaranteed by the caller; pg_detoast_datum gives a plain varlena.
    unsafe {
        pgrx::varlena::varlena_to_byte_slice(pg_sys::pg_detoast_datum(
            arg(fcinfo, n).cast_mut_ptr(),
        ))
    }
}

/// # Safety
/// Argument `n` must be a non-NULL text.
unsafe fn text_arg<'a>(fcinfo: pg_sys::FunctionCallInfo, n: usize) -> &'a str {
    // Safety: guaranteed by the caller; text is valid in the server encoding (UTF-8 here, and
    // a non-UTF-8 database gets an error rather than garbage).
    let bytes = unsafe { bytea_arg(fcinfo, n) };
    std::str::from_utf8(bytes).unwrap_or_else(|_| {
        error(
            PgSqlErrorCode::ERRCODE_CHARACTER_NOT_IN_REPERTOIRE,
            "text is not valid UTF-8",
        )
    })
}

/// Optional trailing `model text` argument (NULL: the active model).
///
/// # Safety
/// `fcinfo` must be a valid frame; argument `n`, if present, a text.
unsafe fn model_arg<'a>(fcinfo: pg_sys::FunctionCallInfo, n: usize) -> Option<&'a str> {
    // Safety: guaranteed by the caller.
    unsafe {
        if ((*fcinfo).nargs as usize) <= n || pgrx::fcinfo::pg_arg_is_null(fcinfo, n) {
            None
        } else {
            Some(text_arg(fcinfo, n))
        }
    }
}

/// `synth_encode(image bytea, model text DEFAULT NULL) -> embedding`.
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn synth_encode(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // Safety: the image argument is checked for NULL first; the SQL declaration fixes the types.
    unsafe {
        if pgrx::fcinfo::pg_arg_is_null(fcinfo, 0) {
            return pgrx::fcinfo::pg_return_null(fcinfo);
        }
        new_datum(&encode(bytea_arg(fcinfo, 0), model_arg(fcinfo, 1)))
    }
}

/// Shared body of the synth_query and synth_generate variants: NULL reference or wish gives NULL.
///
/// # Safety
/// A valid frame of (bytea | embedding, text, text).
unsafe fn with_args<R>(
    fcinfo: pg_sys::FunctionCallInfo,
    embedding_reference: bool,
    f: impl FnOnce(RefArg<'_>, &str, Option<&str>) -> R,
) -> Option<R> {
    // Safety: guaranteed by the caller.
    unsafe {
        if pgrx::fcinfo::pg_arg_is_null(fcinfo, 0) || pgrx::fcinfo::pg_arg_is_null(fcinfo, 1) {
            return None;
        }
        let reference = if embedding_reference {
            RefArg::Embedding(datum_values(arg(fcinfo, 0)))
        } else {
            RefArg::Image(bytea_arg(fcinfo, 0))
        };
        Some(f(reference, text_arg(fcinfo, 1), model_arg(fcinfo, 2)))
    }
}

fn query_datum(fcinfo: pg_sys::FunctionCallInfo, embedding_reference: bool) -> pg_sys::Datum {
    // Safety: declared (bytea | embedding, text, text DEFAULT NULL).
    match unsafe {
        with_args(fcinfo, embedding_reference, |r, t, m| {
            synthesize(Some(r), t, m)
        })
    } {
        Some(q) => q.to_datum(),
        // Safety: a valid frame.
        None => unsafe { pgrx::fcinfo::pg_return_null(fcinfo) },
    }
}

/// `synth_query(reference bytea, wish text, model text DEFAULT NULL) -> synthquery`.
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn synth_query_bytea(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    query_datum(fcinfo, false)
}

/// `synth_query(reference embedding, wish text, model text DEFAULT NULL) -> synthquery`.
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn synth_query_emb(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    query_datum(fcinfo, true)
}

fn generate_datum(fcinfo: pg_sys::FunctionCallInfo, embedding_reference: bool) -> pg_sys::Datum {
    let png = |reference: RefArg<'_>, text: &str, model: Option<&str>| -> Vec<u8> {
        check_wish(text);
        if crate::server::enabled() {
            return generate_png_served(Some(reference), text, model);
        }
        let (_, m) = cache::model(model);
        let generated = match reference {
            RefArg::Image(bytes) => {
                let chw = decode(bytes, m.image_size());
                m.generate(Reference::Image(&chw), text, None)
            }
            RefArg::Embedding(v) => m.generate(Reference::Embedding(v), text, None),
        }
        .unwrap_or_else(|e| model_error(e));
        image_io::chw_to_png(&generated.image, m.image_size() as u32)
            .unwrap_or_else(|e| image_error(e))
    };
    // Safety: declared (bytea | embedding, text, text DEFAULT NULL).
    match unsafe { with_args(fcinfo, embedding_reference, png) } {
        Some(bytes) => {
            pg_sys::Datum::from(pgrx::varlena::rust_byte_slice_to_bytea(&bytes).into_pg())
        }
        // Safety: a valid frame.
        None => unsafe { pgrx::fcinfo::pg_return_null(fcinfo) },
    }
}

/// `synth_generate(reference bytea, wish text, model text DEFAULT NULL) -> bytea` (PNG).
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn synth_generate_bytea(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    generate_datum(fcinfo, false)
}

/// `synth_generate(reference embedding, wish text, model text DEFAULT NULL) -> bytea` (PNG).
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn synth_generate_emb(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    generate_datum(fcinfo, true)
}

/// `synth_generate(wish text [, model text]) -> bytea` (PNG): what a text-only query synthesizes.
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn synth_generate_text(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // Safety: declared STRICT (text [, text]).
    let (text, model) = unsafe { (text_arg(fcinfo, 0), model_arg(fcinfo, 1)) };
    check_wish(text);
    if crate::server::enabled() {
        let png = generate_png_served(None, text, model);
        return pg_sys::Datum::from(pgrx::varlena::rust_byte_slice_to_bytea(&png).into_pg());
    }
    let (_, m) = cache::model(model);
    let generated = m
        .generate(Reference::None, text, None)
        .unwrap_or_else(|e| model_error(e));
    let png = image_io::chw_to_png(&generated.image, m.image_size() as u32)
        .unwrap_or_else(|e| image_error(e));
    pg_sys::Datum::from(pgrx::varlena::rust_byte_slice_to_bytea(&png).into_pg())
}

// ---- walking between two queries ------------------------------------------------------------

pg_function_info_v1!(
    pg_finfo_synth_walk_images_bytea,
    pg_finfo_synth_walk_images_emb,
    pg_finfo_synth_walk_images_text,
    pg_finfo_synth_image_strip,
);

/// The images of a walk from (from reference, from wish) to (to reference, to wish), as PNGs in
/// order. `references` None: text only at both ends.
fn walk_pngs(
    references: Option<(RefArg<'_>, RefArg<'_>)>,
    from_wish: &str,
    to_wish: &str,
    points: i32,
    model: Option<&str>,
) -> Vec<Vec<u8>> {
    check_wish(from_wish);
    check_wish(to_wish);
    if !(2..=synthsearch_model::MAX_WALK_POINTS as i32).contains(&points) {
        error(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!(
                "points must be between 2 and {}, not {points}",
                synthsearch_model::MAX_WALK_POINTS
            ),
        );
    }
    if crate::server::enabled() {
        let row = resolve(model);
        let (from, to) = match references {
            None => (Ref::None, Ref::None),
            Some((a, b)) => (to_ref(Some(a)), to_ref(Some(b))),
        };
        let request = Request::Walk {
            key: client::key(&row),
            from: (from, from_wish.to_string()),
            to: (to, to_wish.to_string()),
            points: points as u32,
        };
        return match client::call(&row, request) {
            Reply::Images(images) => images,
            other => unexpected(other),
        };
    }
    let (_, m) = cache::model(model);
    let size = m.image_size();
    // Decoded pixels live here while the walk borrows them.
    let pixels: Vec<Option<Vec<f32>>> = match &references {
        None => vec![None, None],
        Some((a, b)) => [a, b]
            .iter()
            .map(|r| match r {
                RefArg::Image(bytes) => Some(decode(bytes, size)),
                RefArg::Embedding(_) => None,
            })
            .collect(),
    };
    let reference = |i: usize| -> Reference<'_> {
        match &references {
            None => Reference::None,
            Some((a, b)) => match (if i == 0 { a } else { b }, &pixels[i]) {
                (RefArg::Image(_), Some(chw)) => Reference::Image(chw),
                (RefArg::Embedding(v), _) => Reference::Embedding(v),
                (RefArg::Image(_), None) => unreachable!("decoded above"),
            },
        }
    };
    let walk = m
        .walk(
            synthsearch_model::WalkEnd {
                reference: reference(0),
                text: from_wish,
            },
            synthsearch_model::WalkEnd {
                reference: reference(1),
                text: to_wish,
            },
            points as usize,
            None,
        )
        .unwrap_or_else(|e| model_error(e));
    walk.iter()
        .map(|(_, g)| {
            image_io::chw_to_png(&g.image, size as u32).unwrap_or_else(|e| image_error(e))
        })
        .collect()
}

/// # Safety
/// A valid frame whose arguments `args` may be NULL.
unsafe fn any_null(fcinfo: pg_sys::FunctionCallInfo, args: std::ops::Range<usize>) -> bool {
    // Safety: guaranteed by the caller.
    args.into_iter()
        .any(|n| unsafe { pgrx::fcinfo::pg_arg_is_null(fcinfo, n) })
}

fn bytea_array_datum(images: Vec<Vec<u8>>) -> pg_sys::Datum {
    use pgrx::IntoDatum;
    images
        .into_datum()
        .expect("an array of bytea is never NULL")
}

/// Shared body of the walks with two references (bytea or embedding): (from_reference,
/// to_reference, from_wish, to_wish, points, model). NULL reference, wish or points: NULL.
fn walk_refs_datum(fcinfo: pg_sys::FunctionCallInfo, embedding: bool) -> pg_sys::Datum {
    // Safety: declared (bytea|embedding, bytea|embedding, text, text, integer, text), not STRICT;
    // the first five are checked for NULL before they are read.
    unsafe {
        if any_null(fcinfo, 0..5) {
            return pgrx::fcinfo::pg_return_null(fcinfo);
        }
        let read = |n: usize| {
            if embedding {
                RefArg::Embedding(datum_values(arg(fcinfo, n)))
            } else {
                RefArg::Image(bytea_arg(fcinfo, n))
            }
        };
        let pngs = walk_pngs(
            Some((read(0), read(1))),
            text_arg(fcinfo, 2),
            text_arg(fcinfo, 3),
            crate::fmgr::arg_i32(fcinfo, 4),
            model_arg(fcinfo, 5),
        );
        bytea_array_datum(pngs)
    }
}

/// `synth_walk_images(from_reference bytea, to_reference bytea, from_wish text, to_wish text,
/// points integer, model text) -> bytea[]`.
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn synth_walk_images_bytea(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    walk_refs_datum(fcinfo, false)
}

/// `synth_walk_images(from_reference embedding, to_reference embedding, ...) -> bytea[]`.
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn synth_walk_images_emb(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    walk_refs_datum(fcinfo, true)
}

/// `synth_walk_images(from_wish text, to_wish text, points integer, model text) -> bytea[]`:
/// text only at both ends.
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn synth_walk_images_text(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // Safety: declared (text, text, integer, text), not STRICT; the first three are checked for
    // NULL before they are read.
    unsafe {
        if any_null(fcinfo, 0..3) {
            return pgrx::fcinfo::pg_return_null(fcinfo);
        }
        let pngs = walk_pngs(
            None,
            text_arg(fcinfo, 0),
            text_arg(fcinfo, 1),
            crate::fmgr::arg_i32(fcinfo, 2),
            model_arg(fcinfo, 3),
        );
        bytea_array_datum(pngs)
    }
}

/// The most images one strip takes.
const MAX_STRIP_IMAGES: usize = 256;

/// `synth_image_strip(images bytea[]) -> bytea`: the images (PNG, JPEG or WebP) side by side in
/// one PNG, 2 pixels apart on white.
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn synth_image_strip(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // Safety: declared STRICT (bytea[]).
    let Some(images) = (unsafe { pgrx::fcinfo::pg_getarg::<pgrx::datum::Array<&[u8]>>(fcinfo, 0) })
    else {
        // Safety: a valid frame.
        return unsafe { pgrx::fcinfo::pg_return_null(fcinfo) };
    };
    if images.is_empty() {
        error(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            "a strip needs at least one image",
        );
    }
    if images.len() > MAX_STRIP_IMAGES {
        error(
            PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
            format!(
                "a strip takes at most {MAX_STRIP_IMAGES} images, not {}",
                images.len()
            ),
        );
    }
    let limits = DecodeLimits::default();
    let mut tiles = Vec::with_capacity(images.len());
    let mut pixels = 0u64;
    for (i, bytes) in images.iter().enumerate() {
        let Some(bytes) = bytes else {
            error(
                PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
                format!("image {} of the strip is NULL", i + 1),
            );
        };
        let tile = image_io::decode(bytes, &limits).unwrap_or_else(|e| image_error(e));
        pixels += u64::from(tile.width()) * u64::from(tile.height());
        if pixels > limits.max_pixels {
            too_many_pixels(limits.max_pixels);
        }
        tiles.push(tile);
    }
    // Smaller images (a model's 32x32 beside a catalog photo) grow by whole factors toward the
    // tallest, so that a strip shows them side by side at one size; the grown sizes are counted
    // before anything grows.
    let tallest = tiles.iter().map(|t| t.height()).max().unwrap_or(1);
    let grown: u64 = tiles
        .iter()
        .map(|t| {
            let k = u64::from(image_io::upscale_factor(t, tallest));
            u64::from(t.width()) * u64::from(t.height()) * k * k
        })
        .sum();
    if grown > limits.max_pixels {
        too_many_pixels(limits.max_pixels);
    }
    let tiles = image_io::match_heights(&tiles);
    let png = image_io::strip(&tiles, 2, image_io::MAX_STRIP_PIXELS)
        .and_then(|canvas| image_io::encode_png(&canvas))
        .unwrap_or_else(|e| image_error(e));
    pg_sys::Datum::from(pgrx::varlena::rust_byte_slice_to_bytea(&png).into_pg())
}

fn too_many_pixels(max: u64) -> ! {
    error(
        PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
        format!("the strip would have more than {max} pixels"),
    )
}

// ---- many images in one call ----------------------------------------------------------------

pg_function_info_v1!(pg_finfo_synth_encode_batch);

/// The most images one `synth_encode_batch` call takes.
const MAX_BATCH_IMAGES: usize = 4096;

/// The embeddings of many images (None: the active model): one forward pass per
/// `synthsearch.server_max_batch` images in either mode, so a set-based encode need not make a
/// round trip (or a pass) per row.
fn encode_batch(images: &[&[u8]], model: Option<&str>) -> Vec<Vec<f32>> {
    if crate::server::enabled() {
        let row = resolve(model);
        let request = Request::EncodeBatch {
            key: client::key(&row),
            images: images.iter().map(|b| b.to_vec()).collect(),
        };
        return match client::call(&row, request) {
            Reply::Embeddings(all) if all.len() == images.len() => all,
            other => unexpected(other),
        };
    }
    let (_, m) = cache::model(model);
    let size = m.image_size();
    let d = m.embed_dim();
    let per = crate::server::MAX_BATCH.get().max(1) as usize;
    let mut out = Vec::with_capacity(images.len());
    for (p, piece) in images.chunks(per).enumerate() {
        let mut chw = Vec::with_capacity(piece.len() * 3 * size * size);
        for (k, bytes) in piece.iter().enumerate() {
            let image = image_io::decode(bytes, &DecodeLimits::default()).unwrap_or_else(|e| {
                let mut r = crate::errors::image(&e);
                r.message = format!("image {}: {}", p * per + k + 1, r.message);
                r.raise()
            });
            chw.extend_from_slice(&image_io::to_chw(&image, size as u32));
        }
        let all = m
            .encode_images(&chw, piece.len())
            .unwrap_or_else(|e| model_error(e));
        out.extend(all.chunks(d).map(<[f32]>::to_vec));
    }
    out
}

/// `synth_encode_batch(images bytea[], model text DEFAULT NULL) -> embedding[]`: the embedding of
/// each image, in order; a NULL image gives a NULL embedding.
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn synth_encode_batch(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // Safety: declared (bytea[] [, text]) STRICT on the images; the model argument is checked.
    let Some(images) = (unsafe { pgrx::fcinfo::pg_getarg::<pgrx::datum::Array<&[u8]>>(fcinfo, 0) })
    else {
        // Safety: a valid frame.
        return unsafe { pgrx::fcinfo::pg_return_null(fcinfo) };
    };
    if images.len() > MAX_BATCH_IMAGES {
        error(
            PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
            format!(
                "synth_encode_batch takes at most {MAX_BATCH_IMAGES} images a call, not {}",
                images.len()
            ),
        );
    }
    let all: Vec<Option<&[u8]>> = images.iter().collect();
    let present: Vec<&[u8]> = all.iter().flatten().copied().collect();
    // Safety: argument 1, when given, is a text.
    let model = unsafe { model_arg(fcinfo, 1) };
    let mut embeddings = if present.is_empty() {
        Vec::new()
    } else {
        encode_batch(&present, model)
    }
    .into_iter();
    // Safety: the declared result type is embedding[]; its element type is found from it.
    unsafe {
        let array_type = pg_sys::get_fn_expr_rettype((*fcinfo).flinfo);
        let element = pg_sys::get_element_type(array_type);
        let n = all.len();
        let datums = pg_sys::palloc0(n.max(1) * std::mem::size_of::<pg_sys::Datum>())
            .cast::<pg_sys::Datum>();
        let nulls = pg_sys::palloc0(n.max(1)).cast::<bool>();
        for (i, image) in all.iter().enumerate() {
            match image {
                Some(_) => {
                    let v = embeddings.next().expect("one embedding per image");
                    *datums.add(i) = new_datum(&v);
                }
                None => *nulls.add(i) = true,
            }
        }
        let mut dims = [n as i32];
        let mut lbs = [1i32];
        let array = pg_sys::construct_md_array(
            datums,
            nulls,
            1,
            dims.as_mut_ptr(),
            lbs.as_mut_ptr(),
            element,
            -1,
            false,
            pg_sys::TYPALIGN_INT as std::ffi::c_char,
        );
        pg_sys::Datum::from(array)
    }
}
