//! The job's tables (images, and pairs unless they are formed from attribute columns), read as the
//! calling role in one short transaction, and the images decoded (outside any transaction) into
//! the model crate's dataset.

use std::collections::{HashMap, HashSet};

use pgrx::pg_sys::errcodes::PgSqlErrorCode;
use pgrx::prelude::*;
use pgrx::spi::quote_identifier;
use synthsearch_data::Split;
use synthsearch_data::image_io::{DecodeLimits, decode, guess_format, header_dimensions, to_chw};
use synthsearch_data::wishes::PairPlan;
use synthsearch_model::{AttributeTable, Dataset, pairs_from_attributes};

use super::options::TrainOptions;
use crate::fmgr::{error, require_privilege, spi_bool};

/// A table's name (as regclass prints it under the pinned search path: schema-qualified, so it
/// can be put in SQL as it is) and its columns with their types.
pub struct Columns {
    pub name: String,
    pub columns: Vec<(String, String)>,
}

impl Columns {
    pub fn type_of(&self, column: &str) -> Option<String> {
        self.columns
            .iter()
            .find(|(n, _)| n == column)
            .map(|(_, t)| t.clone())
    }
    pub fn has(&self, column: &str) -> bool {
        self.type_of(column).is_some()
    }
}

/// The table's columns, after checking that the current user may SELECT `needed` (42501) and that
/// they exist (42703). `what` names the argument in messages.
pub fn describe(rel: pg_sys::Oid, what: &str, needed: &[&str]) -> Columns {
    let name = Spi::get_one_with_args::<String>(
        "SELECT c.oid::pg_catalog.regclass::pg_catalog.text FROM pg_catalog.pg_class c \
         WHERE c.oid OPERATOR(pg_catalog.=) $1 AND c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p,v,m,f}')",
        &[rel.into()],
    )
    .ok()
    .flatten()
    .unwrap_or_else(|| {
        error(
            PgSqlErrorCode::ERRCODE_UNDEFINED_TABLE,
            format!("{what}: relation with OID {} does not exist or is not a table", rel.to_u32()),
        )
    });
    let readable = spi_bool(
        "SELECT pg_catalog.has_table_privilege($1, 'SELECT') OR pg_catalog.has_any_column_privilege($1, 'SELECT')",
        &[rel.into()],
    );
    require_privilege(readable, || format!("permission denied for table {name}"));
    let columns: Vec<(String, String)> = Spi::connect(|client| {
        client
            .select(
                "SELECT attname::pg_catalog.text, pg_catalog.format_type(atttypid, atttypmod) FROM pg_catalog.pg_attribute \
                 WHERE attrelid OPERATOR(pg_catalog.=) $1 AND attnum OPERATOR(pg_catalog.>) 0 AND NOT attisdropped ORDER BY attnum",
                None,
                &[rel.into()],
            )
            .expect("pg_attribute")
            .map(|r| (r.get::<String>(1).ok().flatten().unwrap_or_default(), r.get::<String>(2).ok().flatten().unwrap_or_default()))
            .collect()
    });
    let cols = Columns { name, columns };
    for column in needed {
        if !cols.has(column) {
            error(
                PgSqlErrorCode::ERRCODE_UNDEFINED_COLUMN,
                format!(
                    "column \"{column}\" of {what} table {} does not exist",
                    cols.name
                ),
            );
        }
        let ok = spi_bool(
            "SELECT pg_catalog.has_column_privilege($1, $2, 'SELECT')",
            &[rel.into(), (*column).into()],
        );
        require_privilege(ok, || {
            format!(
                "permission denied for column \"{column}\" of table {}",
                cols.name
            )
        });
    }
    cols
}

/// One row of the images table.
pub struct ImageRow {
    pub id: String,
    pub category: Option<String>,
    pub split: Option<String>,
    pub bytes: Option<Vec<u8>>,
    /// The values of the attribute columns, in the options' order.
    pub attributes: Vec<Option<String>>,
}

/// One row of the pairs table.
pub struct PairRow {
    pub source: String,
    pub target: String,
    pub captions: [String; 2],
    pub split: Option<String>,
}

pub struct RawData {
    pub images: Vec<ImageRow>,
    pub pairs: Vec<PairRow>,
}

/// The columns of the images table that the options need.
pub fn image_columns(opts: &TrainOptions) -> Vec<&str> {
    let mut needed = vec![opts.id_column.as_str(), opts.image_column.as_str()];
    needed.extend(opts.attributes.iter().map(String::as_str));
    needed
}

/// The columns of the pairs table that the options need.
pub fn pair_columns(opts: &TrainOptions) -> [&str; 3] {
    [
        &opts.source_column,
        &opts.target_column,
        &opts.caption_column,
    ]
}

/// What a job's data may take in the worker's memory: the images' bytes as read plus their
/// decoded pixels (rows x 3 x image_size^2 floats). Counted before anything is allocated, and
/// again while the rows stream in (the table may grow in between).
pub struct DataBudget {
    pub limit_bytes: u64,
    /// Bytes each row's decoded image takes.
    pub per_row: u64,
}

impl DataBudget {
    pub fn new(image_size: usize) -> DataBudget {
        DataBudget {
            limit_bytes: crate::gucs::train_memory_limit_bytes(),
            per_row: 3 * (image_size as u64).pow(2) * std::mem::size_of::<f32>() as u64,
        }
    }

    fn need(&self, rows: u64, image_bytes: u64) -> u64 {
        rows.saturating_mul(self.per_row)
            .saturating_add(image_bytes)
    }

    /// The message when `rows` decoded images and `bytes` more would pass the limit.
    pub fn over(&self, rows: u64, bytes: u64) -> Option<String> {
        let need = self.need(rows, bytes);
        (need > self.limit_bytes).then(|| {
            format!(
                "the training data would take {} MB, more than synthsearch.train_memory_limit ({} MB)",
                need.div_ceil(1 << 20),
                self.limit_bytes >> 20
            )
        })
    }

    /// 54000 when `rows` images of `image_bytes` bytes in all would pass the limit.
    pub fn check(&self, table: &str, rows: u64, image_bytes: u64) {
        if let Some(message) = self.over(rows, image_bytes) {
            crate::fmgr::error_with(
                PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
                message,
                Some(format!(
                    "{rows} images of table {table}: {} MB as read and {} MB decoded at the model's image size.",
                    image_bytes.div_ceil(1 << 20),
                    rows.saturating_mul(self.per_row).div_ceil(1 << 20)
                )),
                Some("Train on a sample of the table (a view with LIMIT or TABLESAMPLE), a smaller image_size, or ask a superuser to raise synthsearch.train_memory_limit.".into()),
            );
        }
    }
}

/// Rows fetched at a time: one, so that no fetch can hold more than one row past the budget (a
/// view may compute a value of up to 1 GB per row, and larger than its count query saw).
const FETCH_ROWS: i64 = 1;

/// Reads `sql` through a cursor, one row at a time, each fetch's tuple table freed before the
/// next: memory is the rows `each` keeps, never the whole result.
fn stream(
    client: &pgrx::spi::SpiClient<'_>,
    sql: &str,
    mut each: impl FnMut(&pgrx::spi::SpiHeapTupleData<'_>),
) {
    let mut cursor = client.open_cursor(sql, &[]);
    loop {
        let table = cursor
            .fetch(FETCH_ROWS as _)
            .unwrap_or_else(|e| error(PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, e.to_string()));
        if table.is_empty() {
            break;
        }
        for r in table {
            each(&r);
        }
        // Safety: the fetch's tuple table; every value was copied out above.
        unsafe { pg_sys::SPI_freetuptable(pg_sys::SPI_tuptable) };
    }
}

fn text_len(v: &Option<String>) -> u64 {
    v.as_ref().map_or(0, |s| s.len() as u64)
}

/// Reads the tables as the current user, in a stable order (a resumed run must see the same
/// data), within `budget`. Without a pairs table there are no pair rows: they are formed from
/// the attributes.
pub fn read(
    images: pg_sys::Oid,
    pairs: Option<pg_sys::Oid>,
    opts: &TrainOptions,
    budget: &DataBudget,
) -> RawData {
    let ic = describe(images, "images", &image_columns(opts));
    let pc = pairs.map(|p| describe(p, "pairs", &pair_columns(opts)));
    let optional = |c: &Columns, col: &str| {
        if c.has(col) {
            format!("{}::text", quote_identifier(col))
        } else {
            "NULL::text".into()
        }
    };
    let attributes: String = opts
        .attributes
        .iter()
        .map(|a| format!(", {}::text", quote_identifier(a)))
        .collect();
    let image_sql = format!(
        "SELECT {}::text, {}, {}, {}{attributes} FROM {} ORDER BY 1",
        quote_identifier(&opts.id_column),
        optional(&ic, "category"),
        optional(&ic, "split"),
        quote_identifier(&opts.image_column),
        ic.name
    );
    let pair_sql = pc.as_ref().map(|pc| {
        let cap = quote_identifier(&opts.caption_column);
        let captions = if pc
            .type_of(&opts.caption_column)
            .unwrap_or_default()
            .ends_with("[]")
        {
            format!("{cap}[1]::text, coalesce({cap}[2], {cap}[1])::text")
        } else {
            format!("{cap}::text, {cap}::text")
        };
        format!(
            "SELECT {s}::text, {t}::text, {captions}, {split} FROM {rel} ORDER BY 1, 2, 3, 4",
            s = quote_identifier(&opts.source_column),
            t = quote_identifier(&opts.target_column),
            split = optional(pc, "split"),
            rel = pc.name
        )
    });
    // The size first, without detoasting a value (octet_length of a bytea reads its header).
    let size_sql = format!(
        "SELECT pg_catalog.count(*), coalesce(pg_catalog.sum(pg_catalog.octet_length({})), 0)::bigint FROM {}",
        quote_identifier(&opts.image_column),
        ic.name
    );
    let (rows, bytes) = Spi::get_two::<i64, i64>(&size_sql)
        .unwrap_or_else(|e| error(PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, e.to_string()));
    budget.check(
        &ic.name,
        rows.unwrap_or(0).max(0) as u64,
        bytes.unwrap_or(0).max(0) as u64,
    );
    Spi::connect(|client| {
        let mut out = RawData {
            images: Vec::new(),
            pairs: Vec::new(),
        };
        // Every column read counts, in both tables, against one budget.
        let mut read_bytes = 0u64;
        stream(client, &image_sql, |r| {
            let id = r.get::<String>(1).ok().flatten();
            let Some(id) = id else {
                error(
                    PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
                    format!(
                        "table {} has a row whose {} is NULL",
                        ic.name, opts.id_column
                    ),
                )
            };
            let row = ImageRow {
                category: r.get::<String>(2).ok().flatten(),
                split: r.get::<String>(3).ok().flatten(),
                bytes: r.get::<Vec<u8>>(4).ok().flatten(),
                attributes: (0..opts.attributes.len())
                    .map(|a| r.get::<String>(5 + a).ok().flatten())
                    .collect(),
                id,
            };
            read_bytes += row.id.len() as u64
                + text_len(&row.category)
                + text_len(&row.split)
                + row.bytes.as_ref().map_or(0, |b| b.len() as u64)
                + row.attributes.iter().map(text_len).sum::<u64>();
            budget.check(&ic.name, out.images.len() as u64 + 1, read_bytes);
            out.images.push(row);
        });
        let Some(pair_sql) = &pair_sql else {
            return out;
        };
        let images = out.images.len() as u64;
        stream(client, pair_sql, |r| {
            let get = |i: usize| r.get::<String>(i).ok().flatten();
            let (source, target, c1, c2, split) = (get(1), get(2), get(3), get(4), get(5));
            read_bytes += [&source, &target, &c1, &c2, &split]
                .into_iter()
                .map(text_len)
                .sum::<u64>();
            budget.check(&ic.name, images, read_bytes);
            // A pair without both ends or a caption teaches nothing.
            if let (Some(source), Some(target), Some(c1), Some(c2)) = (source, target, c1, c2) {
                out.pairs.push(PairRow {
                    source,
                    target,
                    captions: [c1, c2],
                    split,
                });
            }
        });
        out
    })
}

/// Decodes every image at the model's size and assembles the dataset. Pure Rust: runs outside any
/// transaction, on `threads` threads.
pub fn assemble(
    raw: RawData,
    formed: bool,
    opts: &TrainOptions,
    image_size: usize,
    threads: usize,
    budget: &DataBudget,
) -> Result<Dataset, String> {
    // More decoding threads than cores buys nothing and multiplies what decoding holds at once.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = threads.clamp(1, cores);
    // What decoding holds besides the data: each thread one image at 16 bits a channel with
    // alpha (the largest a header here claims), read from the headers before decoding.
    let largest = raw
        .images
        .iter()
        .filter_map(|r| r.bytes.as_deref())
        .filter_map(|b| header_dimensions(b, guess_format(b).ok()?))
        .map(|(w, h)| u64::from(w) * u64::from(h))
        .max()
        .unwrap_or(0)
        .min(DecodeLimits::default().max_pixels);
    let raw_bytes: u64 = raw
        .images
        .iter()
        .map(|r| r.bytes.as_ref().map_or(0, |b| b.len() as u64))
        .sum();
    if let Some(message) = budget.over(
        raw.images.len() as u64,
        raw_bytes + threads as u64 * largest * 8,
    ) {
        return Err(format!(
            "{message}, decoding {} images on {threads} threads (the largest of {largest} pixels)",
            raw.images.len()
        ));
    }
    let mut seen = HashSet::with_capacity(raw.images.len());
    for img in &raw.images {
        if !seen.insert(img.id.as_str()) {
            return Err(format!(
                "image id \"{}\" appears twice in the images table",
                img.id
            ));
        }
    }
    let table = (!opts.attributes.is_empty()).then(|| {
        let rows: Vec<Vec<Option<String>>> =
            raw.images.iter().map(|i| i.attributes.clone()).collect();
        AttributeTable::from_rows(opts.attributes.clone(), &rows)
    });
    let parse_split = |s: &str, what: &str| -> Result<Split, String> {
        Split::parse(s.trim())
            .map_err(|_| format!("{what} has split \"{s}\": expected train, val or test"))
    };
    // A product's split where the images table has no split column: a seeded, stable share of
    // the products held out for validation and another for test.
    let hashed = |id: &str, salt: u8| -> Split {
        let mut key = id.as_bytes().to_vec();
        key.push(salt);
        key.extend_from_slice(&opts.train.seed.to_le_bytes());
        let u = (synthsearch_model::rng::fnv1a64(&key) % 10_000) as f64 / 10_000.0;
        if u < opts.val_fraction {
            Split::Val
        } else if u < opts.val_fraction + opts.test_fraction {
            Split::Test
        } else {
            Split::Train
        }
    };
    let has_image_split = raw.images.iter().any(|i| i.split.is_some());
    let mut image_split: Vec<Split> = Vec::with_capacity(raw.images.len());
    for img in &raw.images {
        image_split.push(match &img.split {
            Some(s) => parse_split(s, &format!("image \"{}\"", img.id))?,
            None if has_image_split => Split::Train,
            None => hashed(&img.id, 0),
        });
    }
    // Pairs with their splits.
    let mut pairs: Vec<(String, String, [String; 2], Split)> = Vec::new();
    if let (true, Some(table)) = (formed, &table) {
        // Pairs from the attribute columns, within each product split: held-out products pair
        // only with held-out products of their own split.
        let ids: Vec<String> = raw.images.iter().map(|i| i.id.clone()).collect();
        let cats: Vec<String> = raw
            .images
            .iter()
            .map(|i| i.category.clone().unwrap_or_else(|| "all".into()))
            .collect();
        let plan = PairPlan {
            seed: opts.train.seed,
            max_pairs: opts.max_pairs,
            ..PairPlan::default()
        };
        pairs = pairs_from_attributes(&ids, &cats, &image_split, table, &plan);
        if !pairs.iter().any(|p| p.3 == Split::Train) {
            return Err(format!(
                "no two training products of one category differ in just one or two of the attribute columns {}: there is nothing to train on",
                opts.attributes.join(", ")
            ));
        }
    } else {
        if raw.pairs.is_empty() {
            return Err(
                "the pairs table has no complete pairs (source, target and caption all set)".into(),
            );
        }
        let hold_out = raw.pairs.len() >= 20;
        for p in &raw.pairs {
            let split = match &p.split {
                Some(s) => parse_split(s, &format!("pair ({}, {})", p.source, p.target))?,
                // A seeded, stable share of the pairs is held out.
                None if hold_out => hashed(&format!("{}\u{0}{}", p.source, p.target), 1),
                None => Split::Train,
            };
            pairs.push((
                p.source.clone(),
                p.target.clone(),
                p.captions.clone(),
                split,
            ));
        }
        if !has_image_split {
            // The images' splits follow their pairs': an image any training pair shows is a
            // training image, one only held-out pairs show is of their split, and one no pair
            // shows keeps its hashed split (a distractor of the held-out galleries, or a key of
            // training's catalog-wide losses).
            let index: HashMap<&str, usize> = raw
                .images
                .iter()
                .enumerate()
                .map(|(i, r)| (r.id.as_str(), i))
                .collect();
            let mut shown: Vec<Option<Split>> = vec![None; raw.images.len()];
            let rank = |s: Split| match s {
                Split::Train => 0,
                Split::Val => 1,
                Split::Test => 2,
            };
            for (a, b, _, split) in &pairs {
                for id in [a, b] {
                    if let Some(&i) = index.get(id.as_str()) {
                        shown[i] = Some(match shown[i] {
                            Some(old) if rank(old) <= rank(*split) => old,
                            _ => *split,
                        });
                    }
                }
            }
            for (i, s) in shown.into_iter().enumerate() {
                if let Some(s) = s {
                    image_split[i] = s;
                }
            }
        }
    }
    // A pair whose images are not both of its split would put a held-out image into training
    // or a training image into a gallery: left out (counted in the job's metrics).
    let split_of: HashMap<&str, Split> = raw
        .images
        .iter()
        .zip(&image_split)
        .map(|(r, s)| (r.id.as_str(), *s))
        .collect();
    let before = pairs.len();
    pairs.retain(|(a, b, _, split)| {
        // A pair naming an unknown image stays, for assemble's error naming it.
        let of = |id: &String| split_of.get(id.as_str()).copied().unwrap_or(*split);
        of(a) == *split && of(b) == *split
    });
    let dropped = before - pairs.len();
    if !pairs.iter().any(|p| p.3 == Split::Train) {
        return Err(format!(
            "no training pairs: every pair {}",
            if dropped > 0 {
                "shows an image of another split than its own"
            } else {
                "is held out"
            }
        ));
    }
    let records: Vec<(String, String, Split)> = raw
        .images
        .iter()
        .zip(&image_split)
        .map(|(img, s)| {
            (
                img.id.clone(),
                img.category.clone().unwrap_or_else(|| "all".into()),
                *s,
            )
        })
        .collect();

    let per = 3 * image_size * image_size;
    // Fallible: a failed allocation is the job's error, never an abort of the worker (which the
    // postmaster answers by restarting every session of the cluster).
    let floats = raw
        .images
        .len()
        .checked_mul(per)
        .ok_or("the decoded images' size overflows")?;
    let mut chw: Vec<f32> = Vec::new();
    chw.try_reserve_exact(floats).map_err(|_| {
        format!(
            "cannot allocate {} MB for {} decoded images",
            (floats as u64 * 4).div_ceil(1 << 20),
            raw.images.len()
        )
    })?;
    chw.resize(floats, 0.0);
    let limits = DecodeLimits::default();
    let chunk = raw.images.len().div_ceil(threads.max(1)).max(1);
    let s = image_size as u32;
    let failures: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = raw
            .images
            .chunks(chunk)
            .zip(chw.chunks_mut(chunk * per))
            .map(|(rows, out)| {
                let limits = &limits;
                scope.spawn(move || -> Result<(), String> {
                    for (row, o) in rows.iter().zip(out.chunks_mut(per)) {
                        let bytes = row
                            .bytes
                            .as_deref()
                            .ok_or_else(|| format!("image \"{}\" is NULL", row.id))?;
                        let img = decode(bytes, limits)
                            .map_err(|e| format!("image \"{}\": {e}", row.id))?;
                        o.copy_from_slice(&to_chw(&img, s));
                    }
                    Ok(())
                })
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|h| match h.join() {
                Ok(r) => r.err(),
                Err(_) => Some("decoding an image panicked".to_string()),
            })
            .collect()
    });
    if let Some(e) = failures.into_iter().next() {
        return Err(e);
    }
    let mut data =
        Dataset::assemble(image_size, records, chw, &pairs).map_err(|e| e.to_string())?;
    data.dropped_pairs = dropped;
    match table {
        Some(t) => data.with_attributes(t).map_err(|e| e.to_string()),
        None => Ok(data),
    }
}
