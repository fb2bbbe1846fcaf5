//! Writes a catalog in the Fashion-IQ layout, images encoded in parallel.

use std::fmt;
use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use image::ImageFormat;
use rayon::prelude::*;
use serde::Serialize;

use crate::attributes::{Category, Split};
use crate::catalog::Catalog;
use crate::fashioniq::{AttributeRecord, CaptionRecord};
use crate::image_io::{self, ImageError};

#[derive(Debug)]
pub enum WriteError {
    Io { path: PathBuf, source: io::Error },
    Encode { id: String, source: ImageError },
    UnsupportedFormat { format: ImageFormat },
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteError::Io { path, source } => {
                write!(f, "could not write {}: {source}", path.display())
            }
            WriteError::Encode { id, source } => {
                write!(f, "could not encode image \"{id}\": {source}")
            }
            WriteError::UnsupportedFormat { format } => {
                write!(
                    f,
                    "unsupported image format {format:?}; expected png, jpeg or webp"
                )
            }
        }
    }
}

impl std::error::Error for WriteError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WriteError::Io { source, .. } => Some(source),
            WriteError::Encode { source, .. } => Some(source),
            WriteError::UnsupportedFormat { .. } => None,
        }
    }
}

/// What [`write_fashioniq`] wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteSummary {
    pub images: usize,
    pub image_bytes: u64,
    pub pairs: usize,
}

fn extension(format: ImageFormat) -> Result<&'static str, WriteError> {
    match format {
        ImageFormat::Png => Ok("png"),
        ImageFormat::Jpeg => Ok("jpg"),
        ImageFormat::WebP => Ok("webp"),
        format => Err(WriteError::UnsupportedFormat { format }),
    }
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> WriteError + '_ {
    move |source| WriteError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub(crate) fn write_json<T: Serialize + ?Sized>(
    path: &Path,
    value: &T,
    pretty: bool,
) -> Result<(), WriteError> {
    let file = fs::File::create(path).map_err(io_err(path))?;
    let mut w = BufWriter::new(file);
    let result = if pretty {
        serde_json::to_writer_pretty(&mut w, value)
    } else {
        serde_json::to_writer(&mut w, value)
    };
    result.map_err(|e| WriteError::Io {
        path: path.to_path_buf(),
        source: e.into(),
    })?;
    w.write_all(b"\n")
        .and_then(|()| w.flush())
        .map_err(io_err(path))
}

/// Makes the Fashion-IQ layout's folders under `dir` (captions, image_splits, images) and
/// returns the images folder.
pub(crate) fn make_layout(dir: &Path) -> Result<PathBuf, WriteError> {
    let images = dir.join("images");
    for sub in [
        dir.join("captions"),
        dir.join("image_splits"),
        images.clone(),
    ] {
        fs::create_dir_all(&sub).map_err(io_err(&sub))?;
    }
    Ok(images)
}

/// Writes one category's and split's `image_splits/split.<category>.<split>.json` (its ids) and
/// `captions/cap.<category>.<split>.json` (its pairs).
pub(crate) fn write_split(
    dir: &Path,
    category: &str,
    split: Split,
    ids: &[&str],
    captions: &[CaptionRecord],
    pretty: bool,
) -> Result<(), WriteError> {
    let path = dir
        .join("image_splits")
        .join(format!("split.{category}.{split}.json"));
    write_json(&path, ids, pretty)?;
    let path = dir
        .join("captions")
        .join(format!("cap.{category}.{split}.json"));
    write_json(&path, captions, pretty)
}

/// Writes `captions/cap.<category>.<split>.json`, `image_splits/split.<category>.<split>.json`,
/// `images/<id>.<ext>` and `attributes.json` (id to known attributes) under `dir`.
/// Files for every category in the catalog and every split are written, empty ones included.
pub fn write_fashioniq(
    catalog: &Catalog,
    dir: &Path,
    format: ImageFormat,
) -> Result<WriteSummary, WriteError> {
    let ext = extension(format)?;
    let images = make_layout(dir)?;

    let mut categories: Vec<Category> = catalog.products.iter().map(|p| p.category).collect();
    categories.sort();
    categories.dedup();
    for &category in &categories {
        for &split in Split::ALL {
            let ids: Vec<&str> = catalog
                .products
                .iter()
                .filter(|p| p.category == category && p.split == split)
                .map(|p| p.id.as_str())
                .collect();
            let caps: Vec<CaptionRecord> = catalog
                .pairs
                .iter()
                .filter(|p| p.category == category && p.split == split)
                .map(|p| CaptionRecord {
                    candidate: p.candidate.clone(),
                    target: p.target.clone(),
                    captions: p.captions.to_vec(),
                })
                .collect();
            write_split(dir, category.name(), split, &ids, &caps, true)?;
        }
    }

    let attributes: std::collections::BTreeMap<&str, AttributeRecord> = catalog
        .products
        .iter()
        .map(|p| {
            (
                p.id.as_str(),
                AttributeRecord {
                    category: p.category,
                    split: p.split,
                    attrs: p.attrs,
                },
            )
        })
        .collect();
    write_json(&dir.join("attributes.json"), &attributes, false)?;

    let image_bytes = catalog
        .products
        .par_iter()
        .map(|p| {
            let img = catalog.image(p);
            let bytes = image_io::encode(&img, format).map_err(|source| WriteError::Encode {
                id: p.id.clone(),
                source,
            })?;
            let path = images.join(format!("{}.{ext}", p.id));
            fs::write(&path, &bytes).map_err(io_err(&path))?;
            Ok(bytes.len() as u64)
        })
        .try_reduce(|| 0, |a, b| Ok(a + b))?;

    Ok(WriteSummary {
        images: catalog.products.len(),
        image_bytes,
        pairs: catalog.pairs.len(),
    })
}
