//! Training data from the server's file system: `synth_import_fashioniq` reads the Fashion-IQ
//! layout into two tables, `synth_generate_catalog` writes the synthetic catalog in that layout.
//! Like COPY to or from a file, they need superuser or pg_read_server_files / pg_write_server_files.

use std::path::Path;

use pgrx::JsonB;
use pgrx::pg_sys::errcodes::PgSqlErrorCode;
use pgrx::prelude::*;
use serde::Deserialize;
use synthsearch_data::fashioniq::{self, FiqError, ReadOptions};
use synthsearch_data::image_io::{DEFAULT_MAX_BYTES, Format, guess_format};
use synthsearch_data::{CatalogConfig, generate, write_fashioniq};

use crate::fmgr::{error, require_privilege, spi_bool};

/// Rows per INSERT.
const BATCH: usize = 256;

fn require_role(role: &str, what: &str) {
    let ok = spi_bool(
        "SELECT pg_catalog.pg_has_role(current_user, $1, 'USAGE')",
        &[role.into()],
    );
    require_privilege(ok, || {
        format!(
            "permission denied to {what}: it needs superuser or the privileges of the {role} role"
        )
    });
}

fn not_null<T>(v: Option<T>, what: &str) -> T {
    v.unwrap_or_else(|| {
        error(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            format!("{what} must not be null"),
        )
    })
}

/// A possibly qualified table name, quoted, or an ERROR naming it.
fn table_name(name: &str) -> String {
    Spi::get_one_with_args::<String>(
        "SELECT pg_catalog.string_agg(pg_catalog.quote_ident(p), '.') FROM pg_catalog.unnest(pg_catalog.parse_ident($1)) p",
        &[name.into()],
    )
    .ok()
    .flatten()
    .unwrap_or_else(|| error(PgSqlErrorCode::ERRCODE_INVALID_NAME, format!("invalid table name \"{name}\"")))
}

fn fiq_error(e: FiqError) -> ! {
    let code = match &e {
        FiqError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            PgSqlErrorCode::ERRCODE_UNDEFINED_FILE
        }
        FiqError::Io { .. } => PgSqlErrorCode::ERRCODE_IO_ERROR,
        FiqError::NoCaptions { .. } | FiqError::MissingImage { .. } => {
            PgSqlErrorCode::ERRCODE_UNDEFINED_FILE
        }
        _ => PgSqlErrorCode::ERRCODE_DATA_EXCEPTION,
    };
    error(code, format!("cannot import Fashion-IQ data: {e}"))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct ImportOptions {
    /// Drop pairs and ids whose image file is missing (copies of the real Fashion-IQ lack some).
    skip_missing: bool,
}

/// `synth_import_fashioniq(dir, images_table, pairs_table, options)`: creates
/// `images_table (id text PRIMARY KEY, category text, split text, attributes jsonb, img bytea)` and
/// `pairs_table (source text, target text, caption text[], category text, split text)` and fills
/// them from the Fashion-IQ layout under `dir` on the server.
#[pg_extern(volatile, parallel_unsafe)]
fn synth_import_fashioniq(
    dir: Option<&str>,
    images_table: Option<&str>,
    pairs_table: Option<&str>,
    options: default!(Option<JsonB>, "'{}'"),
) -> TableIterator<'static, (name!(images, i64), name!(pairs, i64))> {
    let dir = not_null(dir, "dir");
    let images_table = table_name(not_null(images_table, "images_table"));
    let pairs_table = table_name(not_null(pairs_table, "pairs_table"));
    let options: ImportOptions = serde_json::from_value(not_null(options, "options").0)
        .unwrap_or_else(|e| {
            error(
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                format!("invalid import options: {e}"),
            )
        });
    require_role("pg_read_server_files", "import files from the server");
    let fiq = fashioniq::read_with(
        Path::new(dir),
        &ReadOptions {
            skip_missing: options.skip_missing,
        },
    )
    .unwrap_or_else(|e| fiq_error(e));

    Spi::run(&format!(
        "CREATE TABLE {images_table} (id text PRIMARY KEY, category text NOT NULL, split text NOT NULL, \
         attributes jsonb, img bytea NOT NULL)"
    ))
    .unwrap_or_else(|e| error(PgSqlErrorCode::ERRCODE_DUPLICATE_TABLE, e.to_string()));
    Spi::run(&format!(
        "CREATE TABLE {pairs_table} (source text NOT NULL, target text NOT NULL, caption text[] NOT NULL, \
         category text NOT NULL, split text NOT NULL)"
    ))
    .unwrap_or_else(|e| error(PgSqlErrorCode::ERRCODE_DUPLICATE_TABLE, e.to_string()));

    // Every listed id once, with its category and split.
    let mut seen = std::collections::HashSet::new();
    let mut ids: Vec<(&str, &str, &str)> = Vec::new();
    for ((category, split), list) in &fiq.splits {
        for id in list {
            if seen.insert(id.as_str()) {
                ids.push((id.as_str(), category.as_str(), split.name()));
            }
        }
    }
    let insert_images = format!(
        "INSERT INTO {images_table} (id, category, split, attributes, img) \
         SELECT u.i, u.c, u.s, u.a::jsonb, u.b FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bytea[]) AS u(i, c, s, a, b)"
    );
    let mut images = 0i64;
    for chunk in ids.chunks(BATCH) {
        pg_sys::check_for_interrupts!();
        let mut bytes = Vec::with_capacity(chunk.len());
        let mut attrs = Vec::with_capacity(chunk.len());
        for (id, _, _) in chunk {
            let path = fiq.image_path(id).unwrap_or_else(|| {
                fiq_error(FiqError::MissingImage {
                    id: id.to_string(),
                    path: fiq.root.clone(),
                })
            });
            let meta = std::fs::metadata(path).unwrap_or_else(|e| {
                fiq_error(FiqError::Io {
                    path: path.to_path_buf(),
                    source: e,
                })
            });
            if meta.len() > DEFAULT_MAX_BYTES as u64 {
                error(
                    PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
                    format!(
                        "image file {} is {} bytes, more than the limit of {DEFAULT_MAX_BYTES}",
                        path.display(),
                        meta.len()
                    ),
                );
            }
            let b = std::fs::read(path).unwrap_or_else(|e| {
                fiq_error(FiqError::Io {
                    path: path.to_path_buf(),
                    source: e,
                })
            });
            if let Err(e) = guess_format(&b) {
                error(
                    PgSqlErrorCode::ERRCODE_INVALID_BINARY_REPRESENTATION,
                    format!("image file {}: {e}", path.display()),
                );
            }
            bytes.push(b);
            // A shop's own columns (columns.json) as {column: value}, else our generator's
            // attributes (attributes.json).
            let columns = fiq.columns.as_ref().and_then(|t| {
                let row = t.row(id)?;
                let object: serde_json::Map<String, serde_json::Value> = t
                    .columns
                    .iter()
                    .zip(row)
                    .filter_map(|(c, v)| Some((c.clone(), v.clone()?.into())))
                    .collect();
                serde_json::to_string(&object).ok()
            });
            attrs.push(columns.or_else(|| {
                fiq.attributes
                    .as_ref()
                    .and_then(|a| a.get(*id))
                    .and_then(|r| serde_json::to_string(&r.attrs).ok())
            }));
        }
        let ids: Vec<String> = chunk.iter().map(|r| r.0.to_string()).collect();
        let categories: Vec<String> = chunk.iter().map(|r| r.1.to_string()).collect();
        let splits: Vec<String> = chunk.iter().map(|r| r.2.to_string()).collect();
        Spi::run_with_args(
            &insert_images,
            &[
                ids.into(),
                categories.into(),
                splits.into(),
                attrs.into(),
                bytes.into(),
            ],
        )
        .unwrap_or_else(|e| {
            error(
                PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
                format!("inserting images failed: {e}"),
            )
        });
        images += chunk.len() as i64;
    }

    let insert_pairs = format!(
        "INSERT INTO {pairs_table} (source, target, caption, category, split) \
         SELECT u.s, u.t, pg_catalog.string_to_array(u.c, E'\\x1f'), u.g, u.p \
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) AS u(s, t, c, g, p)"
    );
    let mut pairs = 0i64;
    for chunk in fiq.triplets.chunks(BATCH) {
        pg_sys::check_for_interrupts!();
        let sources: Vec<String> = chunk.iter().map(|t| t.candidate.clone()).collect();
        let targets: Vec<String> = chunk.iter().map(|t| t.target.clone()).collect();
        let captions: Vec<String> = chunk.iter().map(|t| t.captions.join("\u{1f}")).collect();
        let categories: Vec<String> = chunk.iter().map(|t| t.category.clone()).collect();
        let splits: Vec<String> = chunk.iter().map(|t| t.split.name().to_string()).collect();
        Spi::run_with_args(
            &insert_pairs,
            &[
                sources.into(),
                targets.into(),
                captions.into(),
                categories.into(),
                splits.into(),
            ],
        )
        .unwrap_or_else(|e| {
            error(
                PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
                format!("inserting pairs failed: {e}"),
            )
        });
        pairs += chunk.len() as i64;
    }
    TableIterator::once((images, pairs))
}

/// `synth_generate_catalog(dir, products, seed, image_size)`: writes a synthetic catalog with known
/// attributes in the Fashion-IQ layout under `dir` on the server, for synth_import_fashioniq.
#[pg_extern(volatile, parallel_unsafe)]
fn synth_generate_catalog(
    dir: Option<&str>,
    products: Option<i32>,
    seed: default!(Option<i64>, 42),
    image_size: default!(Option<i32>, 64),
) -> TableIterator<'static, (name!(images, i64), name!(pairs, i64))> {
    let dir = not_null(dir, "dir");
    let products = not_null(products, "products");
    let seed = not_null(seed, "seed");
    let image_size = not_null(image_size, "image_size");
    if !(10..=1_000_000).contains(&products) {
        error(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("products must be in 10..=1000000, not {products}"),
        );
    }
    let sizes = synthsearch_data::catalog::MIN_IMAGE_SIZE as i32
        ..=synthsearch_data::catalog::MAX_IMAGE_SIZE as i32;
    if !sizes.contains(&image_size) {
        error(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!(
                "image_size must be in {}..={}, not {image_size}",
                sizes.start(),
                sizes.end()
            ),
        );
    }
    require_role("pg_write_server_files", "write files on the server");
    let catalog = generate(&CatalogConfig {
        seed: seed as u64,
        products: products as usize,
        image_size: image_size as u32,
        ..CatalogConfig::default()
    });
    let summary = write_fashioniq(&catalog, Path::new(dir), Format::Png.image_format())
        .unwrap_or_else(|e| {
            error(
                PgSqlErrorCode::ERRCODE_IO_ERROR,
                format!("cannot write the catalog: {e}"),
            )
        });
    TableIterator::once((summary.images as i64, summary.pairs as i64))
}
