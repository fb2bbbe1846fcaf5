//! Real product photos: Zalando's Fashion-MNIST (Xiao, Rasul and Vollgraf 2017) as a catalog of
//! the project, with a shop's tags read from the pixels and relative captions in the style of
//! Fashion-IQ.
//!
//! Debian's package `dataset-fashion-mnist` installs the data set as gzip'ed IDX files in
//! [`SOURCE_DIR`]: `train-*` (60,000 photos) and `t10k-*` (10,000), 28x28 grey, one of ten
//! labels each. Here:
//!
//! * [`read_idx_images`] and [`read_idx_labels`] read the IDX files (gzip'ed or not), bounding
//!   every size a header gives before anything is read, so a corrupt header is an error and never
//!   a huge allocation;
//! * each photo is shown as a shop shows it ([`to_photo`]): the data set stores the garment bright
//!   on black, so the values are inverted (white background, garment dark), and made RGB;
//! * [`tags`] reads the shop's tags from the pixels: [`Kind`] from the label, [`Tone`] and
//!   [`Pattern`] by fixed rules (see [`measure`]);
//! * [`build`] takes a seeded sample of at most N products per split (train and val from the
//!   train file, test from the t10k file) and forms (candidate, target) pairs of one category and
//!   one split that differ in one or two tags, two captions each ([`captions`]);
//! * [`write`] writes the Fashion-IQ layout that [`crate::fashioniq`] reads, with the tags as
//!   `columns.json`.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;
use image::{Rgb, RgbImage};
use rayon::prelude::*;

use crate::attributes::Split;
use crate::captions::{join, pick};
use crate::fashioniq::{COLUMNS_FILE, CaptionRecord, ColumnTable};
use crate::image_io;
use crate::rng::{Rng, mix};
use crate::wishes::{self, PairPlan};
use crate::writer::{WriteError, WriteSummary, io_err, make_layout, write_json, write_split};

/// Where Debian's `dataset-fashion-mnist` puts the files.
pub const SOURCE_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// The most items an IDX file may hold here (Fashion-MNIST's train file has 60,000).
pub const MAX_IDX_ITEMS: usize = 1_000_000;
/// The longest side of an IDX image here (Fashion-MNIST's are 28).
pub const MAX_IDX_SIDE: usize = 256;
/// The most pixel bytes one IDX file may hold here (Fashion-MNIST's train file has 47 MB).
pub const MAX_IDX_BYTES: usize = 1 << 30;

/// The tag columns, in the order of [`Tags::row`].
pub const COLUMNS: [&str; 3] = ["kind", "tone", "pattern"];

#[derive(Debug)]
pub enum PhotoError {
    Io {
        path: PathBuf,
        source: io::Error,
    },
    /// Not an IDX file of the expected shape, or a damaged one.
    Idx {
        path: PathBuf,
        message: String,
    },
    /// The label file does not label every image.
    CountMismatch {
        images: PathBuf,
        image_count: usize,
        labels: PathBuf,
        label_count: usize,
    },
    Label {
        path: PathBuf,
        index: usize,
        label: u8,
    },
}

impl fmt::Display for PhotoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PhotoError::Io { path, source } if source.kind() == io::ErrorKind::NotFound => write!(
                f,
                "{} not found: {source} (Debian's package dataset-fashion-mnist installs it in {SOURCE_DIR})",
                path.display()
            ),
            PhotoError::Io { path, source } => {
                write!(f, "could not read {}: {source}", path.display())
            }
            PhotoError::Idx { path, message } => {
                write!(f, "{}: not a usable IDX file: {message}", path.display())
            }
            PhotoError::CountMismatch {
                images,
                image_count,
                labels,
                label_count,
            } => write!(
                f,
                "{} has {image_count} images but {} has {label_count} labels",
                images.display(),
                labels.display()
            ),
            PhotoError::Label { path, index, label } => write!(
                f,
                "{}: label {label} of item {index} is not one of the ten Fashion-MNIST classes (0..9)",
                path.display()
            ),
        }
    }
}

impl std::error::Error for PhotoError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PhotoError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// IDX files

/// The images of an IDX file (`0x00000803`): `count` images of `rows` x `cols` bytes, row-major.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxImages {
    pub count: usize,
    pub rows: usize,
    pub cols: usize,
    pub pixels: Vec<u8>,
}

impl IdxImages {
    /// Image `i`'s bytes, as stored (0 background, 255 full ink).
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.rows * self.cols;
        &self.pixels[i * n..(i + 1) * n]
    }
}

fn idx_error(path: &Path, message: impl Into<String>) -> PhotoError {
    PhotoError::Idx {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// Reads an IDX file of unsigned bytes with `ndims` dimensions: the dimensions and the data.
/// A file that starts with the gzip magic is decompressed on the fly. Every dimension is bounded
/// (`MAX_IDX_ITEMS` items, sides of at most `MAX_IDX_SIDE`) before any data is read, and the data
/// buffer grows only with bytes actually read, so a corrupt header cannot ask for a huge
/// allocation. The data must have exactly the size the header gives.
fn read_idx(path: &Path, ndims: u8) -> Result<(Vec<usize>, Vec<u8>), PhotoError> {
    let io_err = |source| PhotoError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = io::BufReader::new(fs::File::open(path).map_err(io_err)?);
    let mut head = [0u8; 2];
    let gzip = {
        use io::BufRead;
        let buf = file.fill_buf().map_err(io_err)?;
        head[..buf.len().min(2)].copy_from_slice(&buf[..buf.len().min(2)]);
        buf.len() >= 2 && head == [0x1f, 0x8b]
    };
    let mut reader: Box<dyn Read> = if gzip {
        Box::new(GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    // A read error inside the gzip stream is damage to the file, not to the disk.
    let stream_err = |e: io::Error| {
        if gzip && e.kind() != io::ErrorKind::UnexpectedEof {
            idx_error(path, format!("damaged gzip stream: {e}"))
        } else {
            idx_error(path, format!("ends inside its header ({e})"))
        }
    };
    let mut magic = [0u8; 4];
    reader.read_exact(&mut magic).map_err(stream_err)?;
    if magic[0] != 0 || magic[1] != 0 || magic[2] != 0x08 || magic[3] != ndims {
        return Err(idx_error(
            path,
            format!(
                "magic number 0x{} is not 0x000008{ndims:02x} (unsigned bytes, {ndims} dimension{})",
                magic.iter().map(|b| format!("{b:02x}")).collect::<String>(),
                if ndims == 1 { "" } else { "s" }
            ),
        ));
    }
    let mut dims = Vec::with_capacity(usize::from(ndims));
    for d in 0..usize::from(ndims) {
        let mut b = [0u8; 4];
        reader.read_exact(&mut b).map_err(stream_err)?;
        let v = u32::from_be_bytes(b) as usize;
        let (what, max) = if d == 0 {
            ("item count", MAX_IDX_ITEMS)
        } else {
            ("image side", MAX_IDX_SIDE)
        };
        if v == 0 || v > max {
            return Err(idx_error(
                path,
                format!("{what} {v} in the header is outside 1..={max}"),
            ));
        }
        dims.push(v);
    }
    // Bounded above: at most MAX_IDX_ITEMS * MAX_IDX_SIDE^2, which fits in u64 and usize on 64 bit.
    let total = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let total = match total {
        Some(t) if t <= MAX_IDX_BYTES => t,
        _ => {
            return Err(idx_error(
                path,
                format!("dimensions {dims:?} hold more than {MAX_IDX_BYTES} bytes"),
            ));
        }
    };
    let mut data = Vec::new();
    let read = reader
        .take(total as u64 + 1)
        .read_to_end(&mut data)
        .map_err(|e| {
            if gzip {
                idx_error(path, format!("damaged gzip stream: {e}"))
            } else {
                io_err(e)
            }
        })?;
    if read < total {
        return Err(idx_error(
            path,
            format!("truncated: {read} data bytes where the header {dims:?} says {total}"),
        ));
    }
    if read > total {
        return Err(idx_error(
            path,
            format!("more data than the header {dims:?} says ({total} bytes)"),
        ));
    }
    Ok((dims, data))
}

/// Reads an IDX image file (magic `0x00000803`, gzip'ed or not).
pub fn read_idx_images(path: &Path) -> Result<IdxImages, PhotoError> {
    let (dims, pixels) = read_idx(path, 3)?;
    Ok(IdxImages {
        count: dims[0],
        rows: dims[1],
        cols: dims[2],
        pixels,
    })
}

/// Reads an IDX label file (magic `0x00000801`, gzip'ed or not).
pub fn read_idx_labels(path: &Path) -> Result<Vec<u8>, PhotoError> {
    Ok(read_idx(path, 1)?.1)
}

/// One file pair of the data set: images and their labels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub images: IdxImages,
    pub labels: Vec<u8>,
}

/// Reads `<stem>-images-idx3-ubyte.gz` and `<stem>-labels-idx1-ubyte.gz` under `dir` (without the
/// `.gz` when only that exists), checking that every image has a label and every label names a
/// class.
pub fn read_source(dir: &Path, stem: &str) -> Result<Source, PhotoError> {
    let find = |name: String| {
        let gz = dir.join(format!("{name}.gz"));
        let plain = dir.join(&name);
        if !gz.exists() && plain.exists() {
            plain
        } else {
            gz
        }
    };
    let images_path = find(format!("{stem}-images-idx3-ubyte"));
    let labels_path = find(format!("{stem}-labels-idx1-ubyte"));
    let images = read_idx_images(&images_path)?;
    let labels = read_idx_labels(&labels_path)?;
    if labels.len() != images.count {
        return Err(PhotoError::CountMismatch {
            images: images_path,
            image_count: images.count,
            labels: labels_path,
            label_count: labels.len(),
        });
    }
    if let Some((index, &label)) = labels
        .iter()
        .enumerate()
        .find(|(_, l)| Kind::from_label(**l).is_none())
    {
        return Err(PhotoError::Label {
            path: labels_path,
            index,
            label,
        });
    }
    Ok(Source { images, labels })
}

// ---------------------------------------------------------------------------------------------
// Tags

/// What the product is, from the data set's label, in a shop's words.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    TShirt,
    Trousers,
    Pullover,
    Dress,
    Coat,
    Sandals,
    Shirt,
    Sneakers,
    Bag,
    AnkleBoots,
}

impl Kind {
    /// In label order (label 0 is `TShirt`).
    pub const ALL: [Kind; 10] = [
        Kind::TShirt,
        Kind::Trousers,
        Kind::Pullover,
        Kind::Dress,
        Kind::Coat,
        Kind::Sandals,
        Kind::Shirt,
        Kind::Sneakers,
        Kind::Bag,
        Kind::AnkleBoots,
    ];

    pub fn from_label(label: u8) -> Option<Kind> {
        Kind::ALL.get(usize::from(label)).copied()
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::TShirt => "t-shirt",
            Kind::Trousers => "trousers",
            Kind::Pullover => "pullover",
            Kind::Dress => "dress",
            Kind::Coat => "coat",
            Kind::Sandals => "sandals",
            Kind::Shirt => "shirt",
            Kind::Sneakers => "sneakers",
            Kind::Bag => "bag",
            Kind::AnkleBoots => "ankle boots",
        }
    }

    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Sold in pairs, named in the plural ("sneakers", "trousers").
    pub fn plural(self) -> bool {
        matches!(
            self,
            Kind::Trousers | Kind::Sandals | Kind::Sneakers | Kind::AnkleBoots
        )
    }

    /// "a t-shirt", "sneakers".
    fn with_article(self) -> String {
        if self.plural() {
            self.name().to_string()
        } else {
            format!("a {}", self.name())
        }
    }

    /// The shop's department, coarser than the kind, so that a wish can ask for another kind of
    /// the same department ("a pullover instead"):
    ///
    /// * `top`: t-shirt, pullover, shirt, coat and dress: garments that hang from the shoulders
    ///   and photograph with the same outline (shoulders, sleeves, a body); a shopper looking at a
    ///   t-shirt may well want "a dress instead", as Fashion-IQ's shoppers move between its dress,
    ///   shirt and top categories;
    /// * `shoes`: sandals, sneakers and ankle boots;
    /// * `trousers` and `bag`: a department of one kind each, whose pairs change tone or pattern.
    pub fn category(self) -> &'static str {
        match self {
            Kind::TShirt | Kind::Pullover | Kind::Dress | Kind::Coat | Kind::Shirt => "top",
            Kind::Sandals | Kind::Sneakers | Kind::AnkleBoots => "shoes",
            Kind::Trousers => "trousers",
            Kind::Bag => "bag",
        }
    }
}

/// How light the product is: the mean grey of its photo over the garment (see [`measure`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tone {
    Dark,
    Grey,
    Light,
}

impl Tone {
    /// Darkest first.
    pub const ALL: [Tone; 3] = [Tone::Dark, Tone::Grey, Tone::Light];

    pub fn name(self) -> &'static str {
        match self {
            Tone::Dark => "dark",
            Tone::Grey => "grey",
            Tone::Light => "light",
        }
    }

    pub fn parse(name: &str) -> Option<Tone> {
        Tone::ALL.into_iter().find(|t| t.name() == name)
    }
}

/// What the surface shows: nothing, stripes, or another print or texture (see [`measure`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Pattern {
    Plain,
    Striped,
    Patterned,
}

impl Pattern {
    pub const ALL: [Pattern; 3] = [Pattern::Plain, Pattern::Striped, Pattern::Patterned];

    pub fn name(self) -> &'static str {
        match self {
            Pattern::Plain => "plain",
            Pattern::Striped => "striped",
            Pattern::Patterned => "patterned",
        }
    }

    pub fn parse(name: &str) -> Option<Pattern> {
        Pattern::ALL.into_iter().find(|p| p.name() == name)
    }
}

/// A product's tags, the columns [`COLUMNS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tags {
    pub kind: Kind,
    pub tone: Tone,
    pub pattern: Pattern,
}

impl Tags {
    /// The values in [`COLUMNS`] order.
    pub fn names(&self) -> [&'static str; 3] {
        [self.kind.name(), self.tone.name(), self.pattern.name()]
    }

    pub fn row(&self) -> Vec<Option<String>> {
        self.names().iter().map(|v| Some(v.to_string())).collect()
    }
}

/// A photo pixel at least this light is background: the shop photographs on white, and the data
/// set's pipeline leaves its background at 0 (white once inverted) up to a little noise; 3 grey
/// levels of 255 (about 1%) allow for that and for nothing a garment shows.
pub const BACKGROUND_MIN: u8 = 252;
/// A photo darker than this on average over the garment is `dark`: the lower third of the grey
/// scale (0 black .. 255 white), black to charcoal.
pub const DARK_BELOW: f32 = 85.0;
/// A photo at least this light on average over the garment is `light`: the upper third of the
/// grey scale, light grey to white. Between the two it is `grey`.
pub const LIGHT_FROM: f32 = 170.0;
/// Tone is measured over the garment's interior (see [`Measures::interior`]) when it has at
/// least this many pixels (a 4x4 patch); a thinner product, a sandal's straps, over its whole
/// mask.
pub const INTERIOR_MIN_PIXELS: usize = 16;
/// The surface on which pattern is judged: garment pixels at least this far (city-block) from
/// the background. Their four neighbours are then at least 2 away, so the high-pass below never
/// reaches the outline's ring, which blends the product with the white background (and carries
/// the data set's sharpening halo).
pub const SURFACE_DEPTH: u8 = 3;
/// A product with a smaller surface than this (an 8x8 patch) is `plain`: on fewer pixels a
/// print cannot be told from a seam, a buckle or a strap.
pub const SURFACE_MIN_PIXELS: usize = 64;
/// A surface whose local contrast (RMS of the high-pass, in grey levels) reaches this is
/// printed or textured: 24 levels, close to a tenth of the grey scale, is a step a shopper sees
/// between a pixel and its neighbours, while folds and shading change smoothly and a plain
/// fabric's noise stays at a few levels.
pub const PATTERN_CONTRAST: f32 = 24.0;
/// A row takes part in the band profile with at least this many surface pixels.
pub const BAND_ROW_PIXELS: usize = 4;
/// Stripes need at least this many profile rows: bands repeat, so the surface must be tall
/// enough for two of the longest period looked for ([`BAND_MAX_PERIOD`]); the surface of a shoe
/// or a bag rarely is, and its soles, flaps and handles make one band, not a repetition.
pub const BAND_MIN_ROWS: usize = 2 * BAND_MAX_PERIOD;
/// Stripe periods looked for, in rows: 2 (one-pixel stripes) to 8 (four-pixel stripes), a
/// Breton stripe to a rugby stripe on a 28-pixel photo.
pub const BAND_MIN_PERIOD: usize = 2;
pub const BAND_MAX_PERIOD: usize = 8;
/// Stripes repeat: the high-passed row profile, shifted by one period, must correlate with
/// itself (the normalized correlation of the overlapping rows: 1 for a perfect repetition, about
/// 0 for unrelated rows) by at least a half, more than a single band of text, a seam or a
/// pocket gives.
pub const BAND_PERIODICITY: f32 = 0.5;
/// The bands must differ: an RMS of 12 grey levels around the local mean of the profile, bands
/// about 24 levels (a tenth of the scale) apart.
pub const BAND_AMPLITUDE: f32 = 12.0;
/// Stripes change down the garment, not across it: the mean vertical step over the surface must
/// be this many times the horizontal one. A check, a print or a texture changes about equally
/// both ways (ratio near 1), horizontal stripes far more downwards.
pub const BAND_ANISOTROPY: f32 = 1.5;

/// What [`tags`] reads from a photo (white background, 0 black .. 255 white).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Measures {
    /// Pixels of the garment: darker than [`BACKGROUND_MIN`].
    pub mask: usize,
    /// Garment pixels whose four neighbours are garment too. The outline's pixels blend the
    /// garment with the white background, so they say little about its tone.
    pub interior: usize,
    /// Garment pixels at least [`SURFACE_DEPTH`] from the background, where pattern is judged.
    pub surface: usize,
    /// Mean grey over the interior (over the mask when the interior is smaller than
    /// [`INTERIOR_MIN_PIXELS`]); 255 for an empty photo.
    pub mean: f32,
    /// Local contrast: the RMS over the surface of each pixel minus the mean of its four
    /// neighbours (a discrete Laplacian, a high-pass filter), in grey levels; 0 without surface.
    pub contrast: f32,
    /// Mean absolute step across (left to right) and down (top to bottom) the surface: half the
    /// difference of the two neighbours, in grey levels.
    pub step_across: f32,
    pub step_down: f32,
    /// Rows with at least [`BAND_ROW_PIXELS`] surface pixels: the band profile's length.
    pub band_rows: usize,
    /// The band profile (mean grey of each such row, top to bottom) less its running mean over
    /// 5 rows: its highest normalized autocorrelation at a lag of
    /// [`BAND_MIN_PERIOD`]..=[`BAND_MAX_PERIOD`] rows (at most half its length), and its RMS in
    /// grey levels.
    pub band_periodicity: f32,
    pub band_amplitude: f32,
}

/// City-block distance of each pixel to the background (0 on background, 1 on the garment's
/// outline, 2 just inside, ..), counting outside the photo as background.
fn depth_map(photo: &[u8], width: usize, height: usize) -> Vec<u8> {
    let mut depth: Vec<u8> = photo
        .iter()
        .map(|&v| if v < BACKGROUND_MIN { u8::MAX } else { 0 })
        .collect();
    // The two passes of the classic distance transform.
    for y in 0..height {
        for x in 0..width {
            let i = y * width + x;
            if depth[i] == 0 {
                continue;
            }
            let up = if y == 0 { 0 } else { depth[i - width] };
            let left = if x == 0 { 0 } else { depth[i - 1] };
            depth[i] = depth[i].min(up.min(left).saturating_add(1));
        }
    }
    for y in (0..height).rev() {
        for x in (0..width).rev() {
            let i = y * width + x;
            if depth[i] == 0 {
                continue;
            }
            let down = if y + 1 == height { 0 } else { depth[i + width] };
            let right = if x + 1 == width { 0 } else { depth[i + 1] };
            depth[i] = depth[i].min(down.min(right).saturating_add(1));
        }
    }
    depth
}

/// The band profile's highest autocorrelation at a stripe period, and its RMS, after taking
/// out its running mean over 5 rows (shading and the garment's large shapes). Zero for a
/// profile too short to shift by the shortest period.
fn banding(profile: &[f32]) -> (f32, f32) {
    if profile.len() < 5 + BAND_MIN_PERIOD {
        return (0.0, 0.0);
    }
    let high: Vec<f32> = (2..profile.len() - 2)
        .map(|y| profile[y] - profile[y - 2..=y + 2].iter().sum::<f32>() / 5.0)
        .collect();
    let energy: f32 = high.iter().map(|v| v * v).sum();
    let amplitude = (energy / high.len() as f32).sqrt();
    if energy <= f32::EPSILON {
        return (0.0, amplitude);
    }
    let mut best = 0f32;
    // At most half the profile, so that a period repeats at least twice.
    for lag in BAND_MIN_PERIOD..=BAND_MAX_PERIOD.min(high.len() / 2) {
        let (a, b) = (&high[..high.len() - lag], &high[lag..]);
        let c: f32 = a.iter().zip(b).map(|(a, b)| a * b).sum();
        let ea: f32 = a.iter().map(|v| v * v).sum();
        let eb: f32 = b.iter().map(|v| v * v).sum();
        if ea > f32::EPSILON && eb > f32::EPSILON {
            best = best.max(c / (ea * eb).sqrt());
        }
    }
    (best, amplitude)
}

/// Measures a photo of `width` x `height` grey pixels (white background). Deterministic.
pub fn measure(photo: &[u8], width: usize, height: usize) -> Measures {
    assert_eq!(photo.len(), width * height, "photo size");
    let depth = depth_map(photo, width, height);
    let at = |x: usize, y: usize| f64::from(photo[y * width + x]);
    let (mut mask, mut interior, mut surface) = (0usize, 0usize, 0usize);
    let (mut mask_sum, mut inner_sum) = (0f64, 0f64);
    let (mut high2, mut across, mut down) = (0f64, 0f64, 0f64);
    let mut row_sum = vec![0f64; height];
    let mut row_n = vec![0usize; height];
    for y in 0..height {
        for x in 0..width {
            let d = depth[y * width + x];
            if d == 0 {
                continue;
            }
            let v = at(x, y);
            mask += 1;
            mask_sum += v;
            if d < 2 {
                continue;
            }
            interior += 1;
            inner_sum += v;
            if d < SURFACE_DEPTH {
                continue;
            }
            // Depth >= 2 keeps x-1, x+1, y-1 and y+1 inside the photo.
            surface += 1;
            row_sum[y] += v;
            row_n[y] += 1;
            let around = at(x - 1, y) + at(x + 1, y) + at(x, y - 1) + at(x, y + 1);
            let high = v - around / 4.0;
            high2 += high * high;
            across += (at(x + 1, y) - at(x - 1, y)).abs() / 2.0;
            down += (at(x, y + 1) - at(x, y - 1)).abs() / 2.0;
        }
    }
    let mean = if interior >= INTERIOR_MIN_PIXELS {
        inner_sum / interior as f64
    } else if mask > 0 {
        mask_sum / mask as f64
    } else {
        255.0
    };
    let per_surface = |v: f64| (v / surface.max(1) as f64) as f32;
    let profile: Vec<f32> = row_sum
        .iter()
        .zip(&row_n)
        .filter(|(_, n)| **n >= BAND_ROW_PIXELS)
        .map(|(s, n)| (s / *n as f64) as f32)
        .collect();
    let (band_periodicity, band_amplitude) = banding(&profile);
    Measures {
        mask,
        interior,
        surface,
        mean: mean as f32,
        contrast: per_surface(high2).sqrt(),
        step_across: per_surface(across),
        step_down: per_surface(down),
        band_rows: profile.len(),
        band_periodicity,
        band_amplitude,
    }
}

impl Measures {
    /// `dark` below [`DARK_BELOW`], `light` from [`LIGHT_FROM`], `grey` between.
    pub fn tone(&self) -> Tone {
        if self.mean < DARK_BELOW {
            Tone::Dark
        } else if self.mean >= LIGHT_FROM {
            Tone::Light
        } else {
            Tone::Grey
        }
    }

    /// Whether the surface shows horizontal stripes: at least [`BAND_MIN_ROWS`] profile rows
    /// whose high-passed profile repeats at a stripe period ([`BAND_PERIODICITY`]) with bands of
    /// [`BAND_AMPLITUDE`], and steps down the garment [`BAND_ANISOTROPY`] times those across.
    /// Only horizontal stripes count: in these photos vertical structure is mostly the
    /// garment's own construction (sleeves against the body, plackets, zips, trouser legs).
    pub fn striped(&self) -> bool {
        self.band_rows >= BAND_MIN_ROWS
            && self.band_periodicity >= BAND_PERIODICITY
            && self.band_amplitude >= BAND_AMPLITUDE
            && self.step_down >= BAND_ANISOTROPY * self.step_across
    }

    /// `plain` when the surface is smaller than [`SURFACE_MIN_PIXELS`] (nothing to print on);
    /// else `striped` when [`Measures::striped`]; else `patterned` when the local contrast
    /// reaches [`PATTERN_CONTRAST`] (prints, checks, textures, graphics); else `plain`.
    pub fn pattern(&self) -> Pattern {
        if self.surface < SURFACE_MIN_PIXELS {
            Pattern::Plain
        } else if self.striped() {
            Pattern::Striped
        } else if self.contrast >= PATTERN_CONTRAST {
            Pattern::Patterned
        } else {
            Pattern::Plain
        }
    }
}

/// The tags of a photo (white background; see [`to_photo`]) of a product of `kind`.
pub fn tags(kind: Kind, photo: &[u8], width: usize, height: usize) -> Tags {
    let m = measure(photo, width, height);
    Tags {
        kind,
        tone: m.tone(),
        pattern: m.pattern(),
    }
}

/// A stored image as a shop's photo: inverted, so the background is white and the garment dark.
pub fn to_photo(stored: &[u8]) -> Vec<u8> {
    stored.iter().map(|&v| 255 - v).collect()
}

/// A grey photo as RGB.
pub fn photo_rgb(photo: &[u8], width: usize, height: usize) -> RgbImage {
    RgbImage::from_fn(width as u32, height as u32, |x, y| {
        let v = photo[y as usize * width + x as usize];
        Rgb([v, v, v])
    })
}

// ---------------------------------------------------------------------------------------------
// Captions

/// Ways to ask for tone `after` of a product whose tone is `before`. Each names the new tone
/// ("in black") or names it with a comparison ("is darker and black"); `loose` adds bare
/// comparisons ("is darker"), as shoppers write them too.
fn tone_options(before: Tone, after: Tone, loose: bool) -> Vec<String> {
    let mut o: Vec<String> = match after {
        Tone::Dark => vec![
            "is dark".into(),
            "in black".into(),
            "is black".into(),
            "in a dark shade".into(),
            "is dark colored".into(),
        ],
        Tone::Grey => vec![
            "is grey".into(),
            "in grey".into(),
            "in a mid grey".into(),
            "is a medium grey".into(),
        ],
        Tone::Light => vec![
            "is light".into(),
            "in white".into(),
            "is white".into(),
            "is pale".into(),
            "in a light color".into(),
        ],
    };
    let after_name = match after {
        Tone::Dark => "black",
        Tone::Grey => "grey",
        Tone::Light => "white",
    };
    let comparative = if after < before { "darker" } else { "lighter" };
    o.push(format!("is {comparative} and {after_name}"));
    o.push(format!("{after_name} instead of {}", before.name()));
    if loose {
        o.push(format!("is {comparative}"));
        o.push(format!("is a {comparative} shade"));
        o.push(format!("is much {comparative}"));
    }
    o
}

/// Ways to ask for pattern `after` of a product whose pattern is `before`: each names the new
/// pattern, or its absence ("without the print").
fn pattern_options(before: Pattern, after: Pattern) -> Vec<String> {
    let mut o: Vec<String> = match after {
        Pattern::Plain => vec![
            "is plain".into(),
            "is solid colored".into(),
            "has no pattern".into(),
            "in a plain color".into(),
        ],
        Pattern::Striped => vec![
            "is striped".into(),
            "has stripes".into(),
            "with stripes".into(),
            "has a striped pattern".into(),
        ],
        Pattern::Patterned => vec![
            "is patterned".into(),
            "has a print".into(),
            "with a pattern".into(),
            "has a busy print".into(),
            "is printed".into(),
        ],
    };
    match (before, after) {
        (Pattern::Striped, Pattern::Plain) => {
            o.push("without the stripes".into());
            o.push("without stripes".into());
        }
        (Pattern::Patterned, Pattern::Plain) => {
            o.push("without the print".into());
            o.push("without the pattern".into());
        }
        (Pattern::Patterned, Pattern::Striped) => o.push("has stripes instead of a print".into()),
        (Pattern::Striped, Pattern::Patterned) => o.push("has a print instead of stripes".into()),
        _ => {}
    }
    o
}

/// Ways to ask for another kind of the same department: each names the new kind.
fn kind_options(before: Kind, after: Kind) -> Vec<String> {
    let a = after.with_article();
    let b = before.with_article();
    let pronoun = if before.plural() { "them" } else { "it" };
    vec![
        format!("{a} instead"),
        format!("{a} instead of {b}"),
        if after.plural() {
            format!("are {a}")
        } else {
            format!("is {a}")
        },
        format!("should be {a}"),
        format!("make {pronoun} {a}"),
        format!("as {a}"),
    ]
}

/// The tags of a pair's candidate and target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct TagChange {
    before: Tags,
    after: Tags,
}

fn caption(change: &TagChange, rng: &mut Rng, loose: bool) -> String {
    let (b, a) = (change.before, change.after);
    let mut phrases = Vec::new();
    if b.kind != a.kind {
        phrases.push(pick(rng, &kind_options(b.kind, a.kind)));
    }
    if b.tone != a.tone {
        phrases.push(pick(rng, &tone_options(b.tone, a.tone, loose)));
    }
    if b.pattern != a.pattern {
        phrases.push(pick(rng, &pattern_options(b.pattern, a.pattern)));
    }
    if phrases.len() > 1 && rng.unit() < 0.5 {
        phrases.swap(0, 1);
    }
    join(&phrases)
}

const STREAM_CAPTION: u64 = 31;
const STREAM_VAL: u64 = 32;
const STREAM_SAMPLE: u64 = 33;
const STREAM_PAIRS: u64 = 34;

/// Two captions for a pair whose tags change from `before` to `after` (in one or more of kind,
/// tone and pattern): the first names every new value ("is dark and has stripes", "a pullover
/// instead"); the second may compare instead of naming the tone ("is darker"). Each change has
/// several phrasings, drawn from the pair's own stream of `seed`.
pub fn captions(before: Tags, after: Tags, seed: u64, index: u64) -> [String; 2] {
    let change = TagChange { before, after };
    let mut rng = Rng::for_item(seed, STREAM_CAPTION, index);
    let first = caption(&change, &mut rng, false);
    let mut second = caption(&change, &mut rng, true);
    for _ in 0..32 {
        if second != first {
            break;
        }
        second = caption(&change, &mut rng, true);
    }
    [first, second]
}

// ---------------------------------------------------------------------------------------------
// The catalog

/// Which products and pairs to take.
#[derive(Clone, Debug, PartialEq)]
pub struct PhotoConfig {
    /// The catalog seed: the val share, the sample and the pairs and captions follow from it.
    pub seed: u64,
    /// At most this many products per split (train, val and test each); `None`: all of them.
    pub products: Option<usize>,
    /// Share of the train file held out as val, by a hash of the index and the seed.
    pub val_share: f32,
    /// Pairs per product of a split, at most.
    pub pairs_per_product: f32,
}

impl Default for PhotoConfig {
    fn default() -> Self {
        PhotoConfig {
            seed: 42,
            products: None,
            val_share: 0.1,
            pairs_per_product: 2.0,
        }
    }
}

/// One product photo.
#[derive(Clone, Debug, PartialEq)]
pub struct Photo {
    /// `fm-train-0004217` (index in the train file) or `fm-test-0000042` (in the t10k file).
    pub id: String,
    pub split: Split,
    /// Grey, white background, `width * height` bytes.
    pub pixels: Vec<u8>,
    pub tags: Tags,
}

impl Photo {
    pub fn category(&self) -> &'static str {
        self.tags.kind.category()
    }
}

/// A relative caption pair: `target` is `candidate` changed as the captions say.
#[derive(Clone, Debug, PartialEq)]
pub struct PhotoPair {
    pub candidate: String,
    pub target: String,
    pub captions: [String; 2],
    pub category: &'static str,
    pub split: Split,
    /// The changed columns, as [`COLUMNS`] names them.
    pub changed: Vec<&'static str>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PhotoCatalog {
    pub width: usize,
    pub height: usize,
    pub photos: Vec<Photo>,
    pub pairs: Vec<PhotoPair>,
}

/// Reads the train and t10k files under `dir` and builds the catalog ([`build`]).
pub fn load(dir: &Path, config: &PhotoConfig) -> Result<PhotoCatalog, PhotoError> {
    let train = read_source(dir, "train")?;
    let test = read_source(dir, "t10k")?;
    if (train.images.rows, train.images.cols) != (test.images.rows, test.images.cols) {
        return Err(idx_error(
            dir,
            format!(
                "train images are {}x{} but test images {}x{}",
                train.images.cols, train.images.rows, test.images.cols, test.images.rows
            ),
        ));
    }
    Ok(build(&train, &test, config))
}

/// The catalog from the train file (train and val) and the test file (test): a seeded sample of
/// at most `config.products` products per split, each with its tags, and pairs within each
/// category and split that differ in one or two tags (formed by [`wishes::form_pairs`]), with
/// captions from [`captions`]. Deterministic in `config`. Both sources must have images of one
/// size.
pub fn build(train: &Source, test: &Source, config: &PhotoConfig) -> PhotoCatalog {
    let (width, height) = (train.images.cols, train.images.rows);
    // (file, index, split) of every product, before sampling.
    let mut by_split: BTreeMap<Split, Vec<(u8, usize)>> = BTreeMap::new();
    for i in 0..train.images.count {
        let val = Rng::for_item(config.seed, STREAM_VAL, i as u64).unit() < config.val_share;
        let split = if val { Split::Val } else { Split::Train };
        by_split.entry(split).or_default().push((0, i));
    }
    for i in 0..test.images.count {
        by_split.entry(Split::Test).or_default().push((1, i));
    }
    let mut photos = Vec::new();
    let mut pairs = Vec::new();
    for (&split, members) in &mut by_split {
        if let Some(n) = config.products
            && n < members.len()
        {
            // A seeded order of the split; a larger N keeps the products of a smaller one.
            members.sort_by_key(|&(f, i)| {
                Rng::for_item(config.seed, STREAM_SAMPLE, (u64::from(f) << 40) | i as u64)
                    .next_u64()
            });
            members.truncate(n);
            members.sort();
        }
        let first = photos.len();
        for &(f, i) in members.iter() {
            let (source, file) = if f == 0 {
                (train, "train")
            } else {
                (test, "test")
            };
            let pixels = to_photo(source.images.image(i));
            let kind = Kind::from_label(source.labels[i]).expect("labels are checked on reading");
            let tags = tags(kind, &pixels, width, height);
            photos.push(Photo {
                id: format!("fm-{file}-{i:07}"),
                split,
                pixels,
                tags,
            });
        }
        pairs.extend(split_pairs(&photos[first..], split, config));
    }
    PhotoCatalog {
        width,
        height,
        photos,
        pairs,
    }
}

fn split_pairs(photos: &[Photo], split: Split, config: &PhotoConfig) -> Vec<PhotoPair> {
    let columns: Vec<String> = COLUMNS.iter().map(|c| c.to_string()).collect();
    let categories: Vec<String> = photos.iter().map(|p| p.category().to_string()).collect();
    let rows: Vec<Vec<Option<String>>> = photos.iter().map(|p| p.tags.row()).collect();
    let seed = mix(config.seed ^ mix(STREAM_PAIRS + split as u64));
    let plan = PairPlan {
        seed,
        max_pairs: (photos.len() as f64 * f64::from(config.pairs_per_product.max(0.0))).ceil()
            as usize,
        partners: 1,
        two_changes: true,
    };
    wishes::form_pairs(&columns, &categories, &rows, &plan)
        .into_iter()
        .enumerate()
        .map(|(k, p)| {
            let (c, t) = (&photos[p.candidate], &photos[p.target]);
            PhotoPair {
                candidate: c.id.clone(),
                target: t.id.clone(),
                captions: captions(c.tags, t.tags, seed, k as u64),
                category: c.category(),
                split,
                changed: p.changed.iter().map(|&i| COLUMNS[i]).collect(),
            }
        })
        .collect()
}

impl PhotoCatalog {
    /// Products per split.
    pub fn split_counts(&self) -> BTreeMap<Split, usize> {
        let mut out = BTreeMap::new();
        for p in &self.photos {
            *out.entry(p.split).or_insert(0) += 1;
        }
        out
    }

    /// Pairs per split.
    pub fn pair_counts(&self) -> BTreeMap<Split, usize> {
        let mut out = BTreeMap::new();
        for p in &self.pairs {
            *out.entry(p.split).or_insert(0) += 1;
        }
        out
    }

    /// Products per (split, column, value).
    pub fn tag_counts(&self) -> BTreeMap<(Split, &'static str, &'static str), usize> {
        let mut out = BTreeMap::new();
        for p in &self.photos {
            for (c, v) in COLUMNS.iter().zip(p.tags.names()) {
                *out.entry((p.split, *c, v)).or_insert(0) += 1;
            }
        }
        out
    }

    /// Per split: products, pairs, and each tag value's count and share, one line a column.
    pub fn report(&self) -> String {
        let counts = self.tag_counts();
        let pairs = self.pair_counts();
        let mut out = String::new();
        for (split, n) in self.split_counts() {
            out.push_str(&format!(
                "{split}: {n} products, {} pairs\n",
                pairs.get(&split).copied().unwrap_or(0)
            ));
            for column in COLUMNS {
                let values: Vec<String> = counts
                    .iter()
                    .filter(|((s, c, _), _)| *s == split && *c == column)
                    .map(|((_, _, v), k)| format!("{v} {k} ({:.1}%)", 100.0 * *k as f64 / n as f64))
                    .collect();
                out.push_str(&format!("  {column}: {}\n", values.join(", ")));
            }
        }
        out
    }

    /// The tags as `columns.json` holds them.
    pub fn column_table(&self) -> ColumnTable {
        ColumnTable {
            columns: COLUMNS.iter().map(|c| c.to_string()).collect(),
            values: self
                .photos
                .iter()
                .map(|p| (p.id.clone(), p.tags.row()))
                .collect(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Writing

/// Writes the catalog in the Fashion-IQ layout under `dir`: `images/<id>.png` (RGB),
/// `image_splits/split.<category>.<split>.json`, `captions/cap.<category>.<split>.json` for every
/// category and split (empty ones included), and the tags as `columns.json`
/// (`{"columns": ["kind", "tone", "pattern"], "values": {"<id>": ["t-shirt", "dark", "plain"]}}`).
pub fn write(catalog: &PhotoCatalog, dir: &Path) -> Result<WriteSummary, WriteError> {
    let images = make_layout(dir)?;
    let mut categories: Vec<&str> = catalog.photos.iter().map(Photo::category).collect();
    categories.sort();
    categories.dedup();
    for &category in &categories {
        for &split in Split::ALL {
            let ids: Vec<&str> = catalog
                .photos
                .iter()
                .filter(|p| p.category() == category && p.split == split)
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
            write_split(dir, category, split, &ids, &caps, false)?;
        }
    }
    write_json(&dir.join(COLUMNS_FILE), &catalog.column_table(), false)?;
    let (w, h) = (catalog.width, catalog.height);
    let image_bytes = catalog
        .photos
        .par_iter()
        .map(|p| {
            let bytes = image_io::encode_png(&photo_rgb(&p.pixels, w, h)).map_err(|source| {
                WriteError::Encode {
                    id: p.id.clone(),
                    source,
                }
            })?;
            let path = images.join(format!("{}.png", p.id));
            fs::write(&path, &bytes).map_err(io_err(&path))?;
            Ok(bytes.len() as u64)
        })
        .try_reduce(|| 0, |a, b| Ok(a + b))?;
    Ok(WriteSummary {
        images: catalog.photos.len(),
        image_bytes,
        pairs: catalog.pairs.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use std::io::Write;

    const SIDE: usize = 28;

    fn idx_bytes(magic: [u8; 4], dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut out = magic.to_vec();
        for d in dims {
            out.extend_from_slice(&d.to_be_bytes());
        }
        out.extend_from_slice(data);
        out
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    /// A stored image (garment bright on black, as the data set keeps it) of a 20x20 body whose
    /// photo grey is `grey`, horizontal stripes of `stripe` rows when given.
    fn stored(grey: u8, stripe: Option<usize>) -> Vec<u8> {
        let mut img = vec![0u8; SIDE * SIDE];
        for y in 4..24 {
            for x in 4..24 {
                let g = match stripe {
                    Some(w) if (y / w) % 2 == 1 => grey.saturating_add(150),
                    _ => grey,
                };
                img[y * SIDE + x] = 255 - g;
            }
        }
        img
    }

    /// Images and labels of `n` products with every kind, tone and pattern, as IDX files.
    fn source_files(dir: &Path, stem: &str, n: usize) -> Vec<(u8, Vec<u8>)> {
        let items: Vec<(u8, Vec<u8>)> = (0..n)
            .map(|i| {
                let grey = [30u8, 120, 210][(i / 10) % 3];
                let stripe = if (i / 30) % 2 == 1 { Some(2) } else { None };
                let grey = if stripe.is_some() { grey.min(60) } else { grey };
                ((i % 10) as u8, stored(grey, stripe))
            })
            .collect();
        let pixels: Vec<u8> = items.iter().flat_map(|(_, p)| p.clone()).collect();
        let labels: Vec<u8> = items.iter().map(|(l, _)| *l).collect();
        let images = idx_bytes([0, 0, 8, 3], &[n as u32, SIDE as u32, SIDE as u32], &pixels);
        let labels = idx_bytes([0, 0, 8, 1], &[n as u32], &labels);
        fs::write(
            dir.join(format!("{stem}-images-idx3-ubyte.gz")),
            gzip(&images),
        )
        .unwrap();
        fs::write(
            dir.join(format!("{stem}-labels-idx1-ubyte.gz")),
            gzip(&labels),
        )
        .unwrap();
        items
    }

    #[test]
    fn reads_gzipped_and_plain_idx() {
        let dir = tempfile::tempdir().unwrap();
        let items = source_files(dir.path(), "train", 25);
        let s = read_source(dir.path(), "train").unwrap();
        assert_eq!((s.images.count, s.images.rows, s.images.cols), (25, 28, 28));
        assert_eq!(s.images.image(7), items[7].1.as_slice());
        assert_eq!(s.labels[7], 7);
        // Without .gz, read as is.
        let plain = idx_bytes([0, 0, 8, 1], &[3], &[1, 2, 3]);
        fs::write(dir.path().join("l.idx"), &plain).unwrap();
        assert_eq!(
            read_idx_labels(&dir.path().join("l.idx")).unwrap(),
            [1, 2, 3]
        );
    }

    fn idx_err(bytes: &[u8], images: bool) -> String {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.gz");
        fs::write(&p, bytes).unwrap();
        let err = if images {
            read_idx_images(&p).unwrap_err()
        } else {
            read_idx_labels(&p).map(|_| ()).unwrap_err()
        };
        assert!(matches!(err, PhotoError::Idx { .. }), "{err}");
        err.to_string()
    }

    #[test]
    fn corrupt_headers_are_errors_not_allocations() {
        // 4 billion images of 28x28 in a header: refused before reading any data.
        let e = idx_err(
            &gzip(&idx_bytes([0, 0, 8, 3], &[u32::MAX, 28, 28], &[])),
            true,
        );
        assert!(e.contains("item count 4294967295"), "{e}");
        let e = idx_err(
            &gzip(&idx_bytes([0, 0, 8, 3], &[10, 28, 100_000], &[])),
            true,
        );
        assert!(e.contains("image side 100000"), "{e}");
        let e = idx_err(&gzip(&idx_bytes([0, 0, 8, 3], &[0, 28, 28], &[])), true);
        assert!(e.contains("item count 0"), "{e}");
        // Within every bound but the product.
        let e = idx_err(&idx_bytes([0, 0, 8, 3], &[1_000_000, 256, 256], &[]), true);
        assert!(e.contains("more than"), "{e}");
        // A label file where images are expected, and a signed type.
        let e = idx_err(&gzip(&idx_bytes([0, 0, 8, 1], &[3], &[1, 2, 3])), true);
        assert!(e.contains("0x00000801") && e.contains("0x00000803"), "{e}");
        let e = idx_err(&gzip(&idx_bytes([0, 0, 9, 1], &[3], &[1, 2, 3])), false);
        assert!(e.contains("magic"), "{e}");
        // Truncated data, data past the end, a header cut short, a damaged stream.
        let e = idx_err(&gzip(&idx_bytes([0, 0, 8, 1], &[5], &[1, 2, 3])), false);
        assert!(e.contains("truncated: 3"), "{e}");
        let e = idx_err(&gzip(&idx_bytes([0, 0, 8, 1], &[2], &[1, 2, 3])), false);
        assert!(e.contains("more data"), "{e}");
        let e = idx_err(&gzip(&[0, 0, 8, 3, 0, 0]), true);
        assert!(e.contains("header"), "{e}");
        let mut damaged = gzip(&idx_bytes([0, 0, 8, 1], &[200], &[7; 200]));
        let n = damaged.len();
        damaged[n / 2] ^= 0xff;
        damaged[n / 2 + 1] ^= 0xff;
        idx_err(&damaged, false);
        let e = idx_err(&[], false);
        assert!(e.contains("header"), "{e}");
    }

    #[test]
    fn labels_must_match_images() {
        let dir = tempfile::tempdir().unwrap();
        source_files(dir.path(), "t10k", 4);
        let labels = idx_bytes([0, 0, 8, 1], &[3], &[0, 1, 2]);
        fs::write(dir.path().join("t10k-labels-idx1-ubyte.gz"), gzip(&labels)).unwrap();
        let err = read_source(dir.path(), "t10k").unwrap_err();
        assert!(matches!(
            err,
            PhotoError::CountMismatch {
                image_count: 4,
                label_count: 3,
                ..
            }
        ));
        let labels = idx_bytes([0, 0, 8, 1], &[4], &[0, 1, 10, 2]);
        fs::write(dir.path().join("t10k-labels-idx1-ubyte.gz"), gzip(&labels)).unwrap();
        let err = read_source(dir.path(), "t10k").unwrap_err();
        assert!(
            matches!(
                err,
                PhotoError::Label {
                    index: 2,
                    label: 10,
                    ..
                }
            ),
            "{err}"
        );
        let err = read_source(&dir.path().join("nowhere"), "t10k").unwrap_err();
        assert!(err.to_string().contains("dataset-fashion-mnist"), "{err}");
    }

    fn tags_of(stored_img: &[u8]) -> Tags {
        tags(Kind::Coat, &to_photo(stored_img), SIDE, SIDE)
    }

    #[test]
    fn tone_reads_the_garment_not_the_background() {
        assert_eq!(tags_of(&stored(20, None)).tone, Tone::Dark);
        assert_eq!(tags_of(&stored(128, None)).tone, Tone::Grey);
        assert_eq!(tags_of(&stored(220, None)).tone, Tone::Light);
        // A light outline (anti-aliasing) around a dark garment leaves it dark.
        let mut img = stored(20, None);
        for i in 4..24 {
            for (x, y) in [(i, 4), (i, 23), (4, i), (23, i)] {
                img[y * SIDE + x] = 255 - 240;
            }
        }
        assert_eq!(tags_of(&img).tone, Tone::Dark);
        // An empty photo is light and plain.
        let empty = tags_of(&[0u8; SIDE * SIDE]);
        assert_eq!((empty.tone, empty.pattern), (Tone::Light, Pattern::Plain));
    }

    #[test]
    fn pattern_tells_stripes_from_prints_and_plain() {
        assert_eq!(tags_of(&stored(60, None)).pattern, Pattern::Plain);
        for w in [1, 2, 3] {
            let m = measure(&to_photo(&stored(40, Some(w))), SIDE, SIDE);
            assert_eq!(
                m.pattern(),
                Pattern::Striped,
                "stripes {w} rows wide: {m:?}"
            );
        }
        // Stripes of 4 rows repeat every 8: they need a taller garment to repeat on.
        let mut tall = vec![0u8; SIDE * SIDE];
        for y in 1..27 {
            for x in 4..24 {
                tall[y * SIDE + x] = 255 - if (y / 4) % 2 == 1 { 190 } else { 40 };
            }
        }
        let m = measure(&to_photo(&tall), SIDE, SIDE);
        assert_eq!(m.pattern(), Pattern::Striped, "{m:?}");
        // A check pattern changes as much across as down: patterned, not striped.
        let mut checks = stored(40, None);
        let mut vertical = stored(40, None);
        for y in 4..24 {
            for x in 4..24 {
                if (x / 2 + y / 2) % 2 == 1 {
                    checks[y * SIDE + x] = 255 - 200;
                }
                if (x / 2) % 2 == 1 {
                    vertical[y * SIDE + x] = 255 - 200;
                }
            }
        }
        assert_eq!(tags_of(&checks).pattern, Pattern::Patterned);
        // Vertical bands are the garment's construction in these photos, not stripes.
        assert_eq!(tags_of(&vertical).pattern, Pattern::Patterned);
        // Gentle shading from top to bottom is plain.
        let mut shaded = stored(40, None);
        for y in 4..24 {
            for x in 4..24 {
                shaded[y * SIDE + x] = 255 - (40 + 6 * (y - 4)) as u8;
            }
        }
        assert_eq!(tags_of(&shaded).pattern, Pattern::Plain);
        // Thin straps have no surface to print on.
        let mut straps = vec![0u8; SIDE * SIDE];
        for y in (4..24).step_by(4) {
            for x in 2..26 {
                straps[y * SIDE + x] = 255;
                straps[(y + 1) * SIDE + x] = 255;
            }
        }
        assert_eq!(tags_of(&straps).pattern, Pattern::Plain);
    }

    /// Words a caption may use for the new value of a change.
    fn names(column: &str, after: &str) -> &'static [&'static str] {
        match (column, after) {
            ("tone", "dark") => &["dark", "black"],
            ("tone", "grey") => &["grey"],
            ("tone", "light") => &["light", "white", "pale"],
            ("pattern", "plain") => &["plain", "solid", "no pattern", "without"],
            ("pattern", "striped") => &["stripe"],
            ("pattern", "patterned") => &["pattern", "print"],
            _ => &[],
        }
    }

    #[test]
    fn captions_name_the_changed_values() {
        let mut index = 0;
        let mut comparisons = 0;
        for kind in Kind::ALL {
            for tone in Tone::ALL {
                for pattern in Pattern::ALL {
                    let before = Tags {
                        kind,
                        tone,
                        pattern,
                    };
                    for other in Kind::ALL
                        .into_iter()
                        .filter(|k| k.category() == kind.category())
                    {
                        for t in Tone::ALL {
                            for p in Pattern::ALL {
                                let after = Tags {
                                    kind: other,
                                    tone: t,
                                    pattern: p,
                                };
                                let changed = usize::from(kind != other)
                                    + usize::from(tone != t)
                                    + usize::from(pattern != p);
                                if !(1..=2).contains(&changed) {
                                    continue;
                                }
                                index += 1;
                                let [first, second] = captions(before, after, 5, index);
                                assert_ne!(first, second);
                                assert_eq!(captions(before, after, 5, index)[0], first);
                                for caption in [&first, &second] {
                                    if other != kind {
                                        assert!(caption.contains(other.name()), "{caption}");
                                    }
                                    if p != pattern {
                                        let w = names("pattern", p.name());
                                        assert!(
                                            w.iter().any(|w| caption.contains(w)),
                                            "{caption} for {pattern:?} -> {p:?}"
                                        );
                                    }
                                }
                                if t != tone {
                                    let w = names("tone", t.name());
                                    assert!(w.iter().any(|w| first.contains(w)), "{first}");
                                    let compared =
                                        second.contains("darker") || second.contains("lighter");
                                    assert!(
                                        compared || w.iter().any(|w| second.contains(w)),
                                        "{second}"
                                    );
                                    if compared {
                                        comparisons += 1;
                                        let darker = t < tone;
                                        assert_eq!(second.contains("darker"), darker, "{second}");
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        assert!(comparisons > 0);
        let before = Tags {
            kind: Kind::TShirt,
            tone: Tone::Light,
            pattern: Pattern::Plain,
        };
        let after = Tags {
            kind: Kind::Pullover,
            ..before
        };
        let all: Vec<String> = (0..100)
            .flat_map(|i| captions(before, after, 1, i))
            .collect();
        assert!(all.iter().any(|c| c == "a pullover instead"), "{all:?}");
        assert!(all.iter().any(|c| c == "a pullover instead of a t-shirt"));
        let boots = Tags {
            kind: Kind::AnkleBoots,
            ..before
        };
        let sneakers = Tags {
            kind: Kind::Sneakers,
            ..before
        };
        let all: Vec<String> = (0..100)
            .flat_map(|i| captions(sneakers, boots, 1, i))
            .collect();
        assert!(all.iter().any(|c| c == "make them ankle boots"), "{all:?}");
        assert!(all.iter().all(|c| !c.contains("a ankle")));
    }

    fn small_catalog(dir: &Path, config: &PhotoConfig) -> PhotoCatalog {
        source_files(dir, "train", 300);
        source_files(dir, "t10k", 120);
        load(dir, config).unwrap()
    }

    #[test]
    fn builds_splits_samples_and_pairs() {
        let dir = tempfile::tempdir().unwrap();
        let config = PhotoConfig {
            seed: 3,
            val_share: 0.2,
            ..PhotoConfig::default()
        };
        let all = small_catalog(dir.path(), &config);
        let counts = all.split_counts();
        assert_eq!(counts[&Split::Test], 120);
        assert_eq!(counts[&Split::Train] + counts[&Split::Val], 300);
        assert!((30..=90).contains(&counts[&Split::Val]), "{counts:?}");
        // Every tag value is there (the sources cycle through them).
        let tags = all.tag_counts();
        for t in Tone::ALL {
            assert!(
                tags.contains_key(&(Split::Train, "tone", t.name())),
                "{t:?}"
            );
        }
        for p in [Pattern::Plain, Pattern::Striped] {
            assert!(
                tags.contains_key(&(Split::Train, "pattern", p.name())),
                "{p:?}"
            );
        }
        assert!(!all.pairs.is_empty());
        let by_id: BTreeMap<&str, &Photo> = all.photos.iter().map(|p| (p.id.as_str(), p)).collect();
        for pair in &all.pairs {
            let (c, t) = (by_id[pair.candidate.as_str()], by_id[pair.target.as_str()]);
            assert_eq!((c.split, t.split), (pair.split, pair.split));
            assert_eq!((c.category(), t.category()), (pair.category, pair.category));
            let differ: Vec<&str> = COLUMNS
                .iter()
                .zip(c.tags.names().iter().zip(t.tags.names()))
                .filter(|(_, (a, b))| *a != b)
                .map(|(col, _)| *col)
                .collect();
            assert_eq!(differ, pair.changed);
            assert!((1..=2).contains(&differ.len()));
        }
        assert!(all.pairs.len() <= 2 * all.photos.len());
        // Deterministic; another seed another split.
        assert_eq!(all, small_catalog(dir.path(), &config));
        let other = load(
            dir.path(),
            &PhotoConfig {
                seed: 4,
                ..config.clone()
            },
        )
        .unwrap();
        assert_ne!(
            all.photos.iter().map(|p| p.split).collect::<Vec<_>>(),
            other.photos.iter().map(|p| p.split).collect::<Vec<_>>()
        );
        // At most N per split; a larger N keeps a smaller N's products.
        let sample = |n| {
            load(
                dir.path(),
                &PhotoConfig {
                    products: Some(n),
                    ..config.clone()
                },
            )
            .unwrap()
        };
        let (small, large) = (sample(20), sample(50));
        for (split, n) in small.split_counts() {
            assert_eq!(n, 20, "{split}");
        }
        let large_ids: std::collections::HashSet<&str> =
            large.photos.iter().map(|p| p.id.as_str()).collect();
        assert!(
            small
                .photos
                .iter()
                .all(|p| large_ids.contains(p.id.as_str()))
        );
        assert!(
            small.report().contains("test: 20 products"),
            "{}",
            small.report()
        );
    }

    #[test]
    fn writes_what_the_fashioniq_reader_reads() {
        let dir = tempfile::tempdir().unwrap();
        let cat = small_catalog(dir.path(), &PhotoConfig::default());
        let out = dir.path().join("out");
        let summary = write(&cat, &out).unwrap();
        assert_eq!(
            (summary.images, summary.pairs),
            (cat.photos.len(), cat.pairs.len())
        );
        let read = crate::fashioniq::read(&out).unwrap();
        assert_eq!(read.triplets.len(), cat.pairs.len());
        assert_eq!(read.images.len(), cat.photos.len());
        let columns = read.columns.as_ref().expect("columns.json");
        assert_eq!(columns, &cat.column_table());
        assert_eq!(columns.columns, COLUMNS);
        for p in &cat.photos {
            assert_eq!(columns.row(&p.id).unwrap(), p.tags.row().as_slice());
            assert!(read.splits[&(p.category().to_string(), p.split)].contains(&p.id));
        }
        let pairs: std::collections::HashSet<(&str, &str, Split)> = cat
            .pairs
            .iter()
            .map(|p| (p.candidate.as_str(), p.target.as_str(), p.split))
            .collect();
        for t in &read.triplets {
            assert!(pairs.contains(&(t.candidate.as_str(), t.target.as_str(), t.split)));
            assert_eq!(t.captions.len(), 2);
            assert_eq!(
                t.category,
                cat.photos
                    .iter()
                    .find(|p| p.id == t.candidate)
                    .unwrap()
                    .category()
            );
        }
        // The photo is RGB grey on white, the garment as the tags read it.
        let p = &cat.photos[0];
        let img = read
            .load_image(&p.id, &image_io::DecodeLimits::default())
            .unwrap();
        assert_eq!(img.dimensions(), (28, 28));
        assert_eq!(img.get_pixel(0, 0).0, [255, 255, 255]);
        let grey: Vec<u8> = img.pixels().map(|px| px.0[1]).collect();
        assert_eq!(grey, p.pixels);
        assert_eq!(tags(p.tags.kind, &grey, 28, 28), p.tags);

        // A row of the wrong length, a column named twice: errors naming columns.json.
        let path = out.join(COLUMNS_FILE);
        let mut table = cat.column_table();
        table.values.get_mut(&p.id).unwrap().pop();
        fs::write(&path, serde_json::to_vec(&table).unwrap()).unwrap();
        let err = crate::fashioniq::read(&out).unwrap_err();
        assert!(
            matches!(err, crate::fashioniq::FiqError::BadColumns { .. })
                && err.to_string().contains("2 values for 3 columns"),
            "{err}"
        );
        let mut table = cat.column_table();
        table.columns[2] = "kind".into();
        fs::write(&path, serde_json::to_vec(&table).unwrap()).unwrap();
        let err = crate::fashioniq::read(&out).unwrap_err();
        assert!(err.to_string().contains("named twice"), "{err}");
    }

    /// The tags' shares on the real data, when Debian's package is installed.
    #[test]
    fn real_photos_have_every_tag_value() {
        let dir = Path::new(SOURCE_DIR);
        if !dir.join("t10k-images-idx3-ubyte.gz").exists() {
            eprintln!("skipped: {SOURCE_DIR} is missing (apt-get install dataset-fashion-mnist)");
            return;
        }
        let cat = load(
            dir,
            &PhotoConfig {
                products: Some(1500),
                ..PhotoConfig::default()
            },
        )
        .unwrap();
        eprintln!("{}", cat.report());
        let counts = cat.tag_counts();
        for split in Split::ALL {
            let share = |c: &str, v: &str| {
                counts.get(&(*split, c, v)).copied().unwrap_or(0) as f64 / 1500.0
            };
            for t in Tone::ALL {
                assert!(share("tone", t.name()) >= 0.02, "{split} {t:?}");
            }
            assert!(share("pattern", "plain") >= 0.3);
            assert!(share("pattern", "patterned") >= 0.05);
            assert!(share("pattern", "striped") > 0.0);
            assert!(counts.contains_key(&(*split, "kind", "ankle boots")));
        }
    }
}
