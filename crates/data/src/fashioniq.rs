//! Reads training data in the Fashion-IQ layout:
//!
//! ```text
//! captions/cap.<category>.<split>.json       [{"candidate", "target", "captions": [..]}, ..]
//! image_splits/split.<category>.<split>.json  ["id", ..]
//! images/<id>.{png,jpg,jpeg,webp}
//! attributes.json                            optional: id -> known attributes (our generator)
//! columns.json                               optional: a shop's attribute columns, any names:
//!                                            {"columns": ["kind", ..], "values": {"id": ["coat", ..]}}
//! ```

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use image::RgbImage;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::attributes::{Attributes, Category, Split};
use crate::image_io::{self, DecodeLimits, ImageError};

/// One entry of a captions file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptionRecord {
    pub candidate: String,
    pub target: String,
    pub captions: Vec<String>,
}

/// One entry of `attributes.json`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttributeRecord {
    pub category: Category,
    pub split: Split,
    #[serde(flatten)]
    pub attrs: Attributes,
}

/// The file of [`ColumnTable`].
pub const COLUMNS_FILE: &str = "columns.json";

/// `columns.json`: attribute columns of any names and each image's values, in column order
/// (`null` where a value is not known). The generic form of `attributes.json`, for data whose
/// attributes are not the generated catalog's six (the photos' kind, tone and pattern).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnTable {
    pub columns: Vec<String>,
    pub values: BTreeMap<String, Vec<Option<String>>>,
}

impl ColumnTable {
    /// The values of `id`, one a column.
    pub fn row(&self, id: &str) -> Option<&[Option<String>]> {
        self.values.get(id).map(Vec::as_slice)
    }
}

/// A candidate image, a wish about it, and the image that fulfils it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Triplet {
    pub candidate: String,
    pub target: String,
    pub captions: Vec<String>,
    /// As named in the file name; Fashion-IQ has dress, shirt and toptee.
    pub category: String,
    pub split: Split,
}

#[derive(Clone, Debug, Default)]
pub struct Dataset {
    pub root: PathBuf,
    pub triplets: Vec<Triplet>,
    /// Image ids per (category, split).
    pub splits: BTreeMap<(String, Split), Vec<String>>,
    /// Image file per id.
    pub images: HashMap<String, PathBuf>,
    /// Known attributes, when the data set came from our generator.
    pub attributes: Option<HashMap<String, AttributeRecord>>,
    /// A shop's attribute columns (`columns.json`), when the data set has them.
    pub columns: Option<ColumnTable>,
    /// Triplets and split entries dropped for missing images (only with `skip_missing`).
    pub skipped: usize,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadOptions {
    /// Drop triplets whose images are missing instead of failing: copies of the real Fashion-IQ
    /// often lack images whose web addresses died.
    pub skip_missing: bool,
}

#[derive(Debug)]
pub enum FiqError {
    Io {
        path: PathBuf,
        source: io::Error,
    },
    NoCaptions {
        dir: PathBuf,
    },
    BadFileName {
        path: PathBuf,
        expected: &'static str,
    },
    UnknownSplit {
        path: PathBuf,
        name: String,
    },
    Json {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    EmptyCaptions {
        path: PathBuf,
        index: usize,
    },
    /// A caption names an id that no image_splits file lists.
    UnknownId {
        id: String,
        path: PathBuf,
        index: usize,
        role: &'static str,
    },
    /// A listed id has no image file.
    MissingImage {
        id: String,
        path: PathBuf,
    },
    Image {
        path: PathBuf,
        source: ImageError,
    },
    /// `columns.json` has no columns, a column twice, or a row of the wrong length.
    BadColumns {
        path: PathBuf,
        message: String,
    },
}

impl fmt::Display for FiqError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FiqError::Io { path, source } => {
                write!(f, "could not read {}: {source}", path.display())
            }
            FiqError::NoCaptions { dir } => {
                write!(
                    f,
                    "no captions files (cap.<category>.<split>.json) in {}",
                    dir.display()
                )
            }
            FiqError::BadFileName { path, expected } => {
                write!(f, "file name {} does not match {expected}", path.display())
            }
            FiqError::UnknownSplit { path, name } => write!(
                f,
                "unknown split \"{name}\" in file name {}; expected train, val or test",
                path.display()
            ),
            FiqError::Json {
                path,
                line,
                column,
                message,
            } => {
                write!(
                    f,
                    "malformed json in {} at line {line} column {column}: {message}",
                    path.display()
                )
            }
            FiqError::EmptyCaptions { path, index } => {
                write!(f, "{}: entry {index} has no captions", path.display())
            }
            FiqError::UnknownId {
                id,
                path,
                index,
                role,
            } => write!(
                f,
                "{}: entry {index}: {role} \"{id}\" is in no image_splits file",
                path.display()
            ),
            FiqError::MissingImage { id, path } => write!(
                f,
                "no image for \"{id}\" (listed in {}): expected images/{id}.png, .jpg, .jpeg or .webp",
                path.display()
            ),
            FiqError::Image { path, source } => write!(f, "{}: {source}", path.display()),
            FiqError::BadColumns { path, message } => write!(f, "{}: {message}", path.display()),
        }
    }
}

impl std::error::Error for FiqError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FiqError::Io { source, .. } => Some(source),
            FiqError::Image { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Image extensions in order of preference when an id has several files.
const EXTENSIONS: [&str; 4] = ["png", "jpg", "jpeg", "webp"];

/// The largest captions, splits, attributes or columns file read: its size is checked before
/// anything is allocated for it (a file the caller names must not size an allocation unbounded).
pub const MAX_JSON_BYTES: u64 = 256 << 20;

fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, FiqError> {
    read_json_limited(path, MAX_JSON_BYTES)
}

fn read_json_limited<T: DeserializeOwned>(path: &Path, limit: u64) -> Result<T, FiqError> {
    let io_err = |source| FiqError::Io {
        path: path.to_path_buf(),
        source,
    };
    let len = fs::metadata(path).map_err(io_err)?.len();
    if len > limit {
        return Err(io_err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the file is {len} bytes, more than the limit of {limit}"),
        )));
    }
    let text = fs::read(path).map_err(io_err)?;
    serde_json::from_slice(&text).map_err(|e| FiqError::Json {
        path: path.to_path_buf(),
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })
}

/// Splits "cap.dress.train.json" into ("dress", Train).
fn parse_name(
    path: &Path,
    prefix: &str,
    expected: &'static str,
) -> Result<Option<(String, Split)>, FiqError> {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return Ok(None);
    };
    let Some(rest) = name
        .strip_prefix(prefix)
        .and_then(|r| r.strip_suffix(".json"))
    else {
        return Ok(None);
    };
    let Some((category, split)) = rest.rsplit_once('.') else {
        return Err(FiqError::BadFileName {
            path: path.to_path_buf(),
            expected,
        });
    };
    if category.is_empty() {
        return Err(FiqError::BadFileName {
            path: path.to_path_buf(),
            expected,
        });
    }
    let split = Split::parse(split).map_err(|_| FiqError::UnknownSplit {
        path: path.to_path_buf(),
        name: split.to_string(),
    })?;
    Ok(Some((category.to_string(), split)))
}

fn list_dir(dir: &Path) -> Result<Vec<PathBuf>, FiqError> {
    let io_err = |source| FiqError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err)? {
        out.push(entry.map_err(io_err)?.path());
    }
    // Directory order differs between machines; sort so triplets come in a stable order.
    out.sort();
    Ok(out)
}

pub fn read(dir: &Path) -> Result<Dataset, FiqError> {
    read_with(dir, &ReadOptions::default())
}

pub fn read_with(dir: &Path, options: &ReadOptions) -> Result<Dataset, FiqError> {
    let captions_dir = dir.join("captions");
    let splits_dir = dir.join("image_splits");

    let mut images: HashMap<String, PathBuf> = HashMap::new();
    for path in list_dir(&dir.join("images"))? {
        let (Some(stem), Some(ext)) = (
            path.file_stem().and_then(|s| s.to_str()),
            path.extension().and_then(|e| e.to_str()),
        ) else {
            continue;
        };
        let Some(rank) = EXTENSIONS.iter().position(|e| e.eq_ignore_ascii_case(ext)) else {
            continue;
        };
        let better = match images.get(stem) {
            Some(old) => {
                let old_ext = old.extension().and_then(|e| e.to_str()).unwrap_or("");
                rank < EXTENSIONS
                    .iter()
                    .position(|e| e.eq_ignore_ascii_case(old_ext))
                    .unwrap_or(usize::MAX)
            }
            None => true,
        };
        if better {
            images.insert(stem.to_string(), path);
        }
    }

    let mut skipped = 0;
    let mut splits = BTreeMap::new();
    let mut listed: HashSet<String> = HashSet::new();
    for path in list_dir(&splits_dir)? {
        let Some(key) = parse_name(&path, "split.", "split.<category>.<split>.json")? else {
            continue;
        };
        let ids: Vec<String> = read_json(&path)?;
        let mut kept = Vec::with_capacity(ids.len());
        for id in ids {
            if !images.contains_key(&id) {
                if options.skip_missing {
                    skipped += 1;
                    continue;
                }
                return Err(FiqError::MissingImage { id, path });
            }
            listed.insert(id.clone());
            kept.push(id);
        }
        splits.insert(key, kept);
    }

    let mut triplets = Vec::new();
    let mut any = false;
    for path in list_dir(&captions_dir)? {
        let Some((category, split)) = parse_name(&path, "cap.", "cap.<category>.<split>.json")?
        else {
            continue;
        };
        any = true;
        let records: Vec<CaptionRecord> = read_json(&path)?;
        for (index, r) in records.into_iter().enumerate() {
            if r.captions.is_empty() {
                return Err(FiqError::EmptyCaptions { path, index });
            }
            let mut missing = false;
            for (role, id) in [("candidate", &r.candidate), ("target", &r.target)] {
                if listed.contains(id) {
                    continue;
                }
                // With skip_missing, an id listed but without an image was dropped above.
                if options.skip_missing && !images.contains_key(id) {
                    missing = true;
                    continue;
                }
                return Err(FiqError::UnknownId {
                    id: id.clone(),
                    path,
                    index,
                    role,
                });
            }
            if missing {
                skipped += 1;
                continue;
            }
            triplets.push(Triplet {
                candidate: r.candidate,
                target: r.target,
                captions: r.captions,
                category: category.clone(),
                split,
            });
        }
    }
    if !any {
        return Err(FiqError::NoCaptions { dir: captions_dir });
    }

    let attributes_path = dir.join("attributes.json");
    let attributes = if attributes_path.is_file() {
        Some(read_json(&attributes_path)?)
    } else {
        None
    };

    let columns_path = dir.join(COLUMNS_FILE);
    let columns = if columns_path.is_file() {
        let table: ColumnTable = read_json(&columns_path)?;
        check_columns(&table, &columns_path)?;
        Some(table)
    } else {
        None
    };

    Ok(Dataset {
        root: dir.to_path_buf(),
        triplets,
        splits,
        images,
        attributes,
        columns,
        skipped,
    })
}

fn check_columns(table: &ColumnTable, path: &Path) -> Result<(), FiqError> {
    let bad = |message: String| FiqError::BadColumns {
        path: path.to_path_buf(),
        message,
    };
    if table.columns.is_empty() {
        return Err(bad("no columns".into()));
    }
    let mut seen = HashSet::new();
    for c in &table.columns {
        if c.trim().is_empty() {
            return Err(bad("a column has an empty name".into()));
        }
        if !seen.insert(c.as_str()) {
            return Err(bad(format!("column \"{c}\" is named twice")));
        }
    }
    if let Some((id, row)) = table
        .values
        .iter()
        .find(|(_, row)| row.len() != table.columns.len())
    {
        return Err(bad(format!(
            "\"{id}\" has {} values for {} columns",
            row.len(),
            table.columns.len()
        )));
    }
    Ok(())
}

impl Dataset {
    pub fn image_path(&self, id: &str) -> Option<&Path> {
        self.images.get(id).map(PathBuf::as_path)
    }

    /// Decodes the image of `id` under `limits`.
    pub fn load_image(&self, id: &str, limits: &DecodeLimits) -> Result<RgbImage, FiqError> {
        let path = self.image_path(id).ok_or_else(|| FiqError::MissingImage {
            id: id.to_string(),
            path: self.root.join("image_splits"),
        })?;
        let meta = fs::metadata(path).map_err(|source| FiqError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        if meta.len() > limits.max_bytes as u64 {
            let source = ImageError::TooManyBytes {
                bytes: meta.len() as usize,
                max: limits.max_bytes,
            };
            return Err(FiqError::Image {
                path: path.to_path_buf(),
                source,
            });
        }
        let bytes = fs::read(path).map_err(|source| FiqError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        image_io::decode(&bytes, limits).map_err(|source| FiqError::Image {
            path: path.to_path_buf(),
            source,
        })
    }

    pub fn triplets_in(&self, split: Split) -> impl Iterator<Item = &Triplet> {
        self.triplets.iter().filter(move |t| t.split == split)
    }

    /// All ids of a split, over every category.
    pub fn ids_in(&self, split: Split) -> impl Iterator<Item = &str> {
        self.splits
            .iter()
            .filter(move |((_, s), _)| *s == split)
            .flat_map(|(_, ids)| ids.iter().map(String::as_str))
    }
}

#[cfg(test)]
mod json_limit_tests {
    use super::*;

    #[test]
    fn a_json_file_over_the_limit_is_an_error_before_it_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.json");
        fs::write(&path, format!("[\"{}\"]", "x".repeat(100))).unwrap();
        let ok: Vec<String> = read_json_limited(&path, 200).unwrap();
        assert_eq!(ok[0].len(), 100);
        let e = read_json_limited::<Vec<String>>(&path, 50).unwrap_err();
        assert!(e.to_string().contains("more than the limit of 50"), "{e}");
    }
}
