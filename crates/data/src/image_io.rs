//! Decoding under limits, resizing, and conversion to and from the models' CHW float layout.
//!
//! Image bytes come from users, so a truncated file, a corrupt header or a header that claims
//! a gigantic image is an error here, never a crash or a huge allocation.

use std::fmt;
use std::io::Cursor;

use image::imageops::{self, FilterType};
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits, Rgb, RgbImage};

pub const DEFAULT_MAX_BYTES: usize = 32 << 20;
pub const DEFAULT_MAX_SIDE: u32 = 8192;
pub const DEFAULT_MAX_PIXELS: u64 = 40_000_000;

/// What a decoder may be given and may produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeLimits {
    pub max_bytes: usize,
    pub max_width: u32,
    pub max_height: u32,
    pub max_pixels: u64,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            max_bytes: DEFAULT_MAX_BYTES,
            max_width: DEFAULT_MAX_SIDE,
            max_height: DEFAULT_MAX_SIDE,
            max_pixels: DEFAULT_MAX_PIXELS,
        }
    }
}

/// The formats we accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    Png,
    Jpeg,
    WebP,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Png => "png",
            Format::Jpeg => "jpeg",
            Format::WebP => "webp",
        }
    }

    pub fn image_format(self) -> ImageFormat {
        match self {
            Format::Png => ImageFormat::Png,
            Format::Jpeg => ImageFormat::Jpeg,
            Format::WebP => ImageFormat::WebP,
        }
    }
}

#[derive(Debug)]
pub enum ImageError {
    Empty,
    TooManyBytes {
        bytes: usize,
        max: usize,
    },
    /// The first bytes match none of PNG, JPEG and WebP.
    UnknownFormat {
        head: Vec<u8>,
    },
    TooLarge {
        width: u32,
        height: u32,
        limits: DecodeLimits,
    },
    Decode {
        format: Format,
        message: String,
    },
    Encode {
        message: String,
    },
    /// A composed image (a strip) whose canvas would pass the limit, counted before it is made.
    CanvasTooLarge {
        width: u64,
        height: u64,
        max_pixels: u64,
    },
    /// A CHW buffer whose length does not fit the size.
    BadLength {
        expected: usize,
        actual: usize,
    },
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageError::Empty => write!(f, "image is empty (0 bytes)"),
            ImageError::TooManyBytes { bytes, max } => {
                write!(f, "image is {bytes} bytes, more than the limit of {max}")
            }
            ImageError::UnknownFormat { head } => {
                write!(f, "unknown image format (first bytes ")?;
                for b in head {
                    write!(f, "{b:02x}")?;
                }
                write!(f, "); expected png, jpeg or webp")
            }
            ImageError::TooLarge {
                width,
                height,
                limits,
            } => write!(
                f,
                "image of {width}x{height} pixels exceeds the limit of {}x{} and {} pixels",
                limits.max_width, limits.max_height, limits.max_pixels
            ),
            ImageError::Decode { format, message } => {
                write!(f, "invalid {} image: {message}", format.name())
            }
            ImageError::Encode { message } => write!(f, "could not encode image: {message}"),
            ImageError::CanvasTooLarge {
                width,
                height,
                max_pixels,
            } => write!(
                f,
                "the strip would be {width}x{height} pixels, more than the limit of {max_pixels} pixels"
            ),
            ImageError::BadLength { expected, actual } => {
                write!(f, "expected {expected} floats, not {actual}")
            }
        }
    }
}

impl std::error::Error for ImageError {}

/// The format, from magic bytes only (file names and declared types lie).
pub fn guess_format(bytes: &[u8]) -> Result<Format, ImageError> {
    if bytes.is_empty() {
        return Err(ImageError::Empty);
    }
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Ok(Format::Png)
    } else if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        Ok(Format::Jpeg)
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Ok(Format::WebP)
    } else {
        Err(ImageError::UnknownFormat {
            head: bytes[..bytes.len().min(8)].to_vec(),
        })
    }
}

/// Decodes PNG, JPEG or WebP to 8-bit RGB; transparent pixels are composited over white.
pub fn decode(bytes: &[u8], limits: &DecodeLimits) -> Result<RgbImage, ImageError> {
    if bytes.len() > limits.max_bytes {
        return Err(ImageError::TooManyBytes {
            bytes: bytes.len(),
            max: limits.max_bytes,
        });
    }
    let format = guess_format(bytes)?;
    // The header's claim first, read by us for every format: a decoder's own limits error carries
    // no dimensions, and some decoders misread a header that passes their bounds.
    if let Some((width, height)) = header_dimensions(bytes, format)
        && over(width, height, limits)
    {
        return Err(ImageError::TooLarge {
            width,
            height,
            limits: *limits,
        });
    }
    let fail = |e: image::ImageError| ImageError::Decode {
        format,
        message: e.to_string(),
    };
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format.image_format());
    let mut lim = Limits::default();
    lim.max_image_width = Some(limits.max_width);
    lim.max_image_height = Some(limits.max_height);
    // Room for the decoded image at 16 bits per channel with alpha, plus decoder buffers.
    lim.max_alloc = Some(limits.max_pixels.saturating_mul(8).saturating_add(64 << 20));
    reader.limits(lim);
    let decoder = reader.into_decoder().map_err(|e| match e {
        image::ImageError::Limits(_) => too_large_from_header(bytes, format, limits),
        e => fail(e),
    })?;
    // Check the header's claim before allocating anything for pixels.
    let (width, height) = decoder.dimensions();
    if over(width, height, limits) {
        return Err(ImageError::TooLarge {
            width,
            height,
            limits: *limits,
        });
    }
    if width == 0 || height == 0 {
        return Err(ImageError::Decode {
            format,
            message: format!("{width}x{height} pixels"),
        });
    }
    let image = DynamicImage::from_decoder(decoder).map_err(fail)?;
    Ok(flatten(image))
}

fn over(width: u32, height: u32, limits: &DecodeLimits) -> bool {
    width > limits.max_width
        || height > limits.max_height
        || u64::from(width) * u64::from(height) > limits.max_pixels
}

/// Limits errors carry no dimensions: read them from the header where we can; a decoder's limits
/// error is over a limit (54000) either way.
fn too_large_from_header(bytes: &[u8], format: Format, limits: &DecodeLimits) -> ImageError {
    let (width, height) = header_dimensions(bytes, format).unwrap_or((u32::MAX, u32::MAX));
    ImageError::TooLarge {
        width,
        height,
        limits: *limits,
    }
}

/// The width and height a header claims, without decoding: PNG's IHDR, a JPEG's first start of
/// frame, WebP's VP8, VP8L or VP8X header. None when the bytes do not hold that much.
pub fn header_dimensions(bytes: &[u8], format: Format) -> Option<(u32, u32)> {
    let be16 = |i: usize| {
        Some(u32::from(u16::from_be_bytes(
            bytes.get(i..i + 2)?.try_into().ok()?,
        )))
    };
    let le16 = |i: usize| {
        Some(u32::from(u16::from_le_bytes(
            bytes.get(i..i + 2)?.try_into().ok()?,
        )))
    };
    let le24 = |i: usize| {
        let b = bytes.get(i..i + 3)?;
        Some(u32::from(b[0]) | u32::from(b[1]) << 8 | u32::from(b[2]) << 16)
    };
    match format {
        Format::Png => {
            let b = bytes.get(16..24)?;
            Some((
                u32::from_be_bytes(b[0..4].try_into().ok()?),
                u32::from_be_bytes(b[4..8].try_into().ok()?),
            ))
        }
        Format::Jpeg => {
            // Markers after SOI: each segment is FF, a marker byte and a big-endian length.
            let mut i = 2;
            while i + 4 <= bytes.len() {
                if bytes[i] != 0xFF {
                    return None;
                }
                let marker = bytes[i + 1];
                if marker == 0xFF {
                    i += 1;
                    continue;
                }
                let sof = (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
                if sof {
                    return Some((be16(i + 7)?, be16(i + 5)?));
                }
                if matches!(marker, 0xD0..=0xD9 | 0x01) {
                    i += 2;
                    continue;
                }
                i += 2 + be16(i + 2)? as usize;
            }
            None
        }
        Format::WebP => match bytes.get(12..16)? {
            b"VP8 " => {
                if bytes.get(23..26)? != [0x9d, 0x01, 0x2a] {
                    return None;
                }
                Some((le16(26)? & 0x3fff, le16(28)? & 0x3fff))
            }
            b"VP8L" => {
                let b = bytes.get(21..25)?;
                let bits = u32::from_le_bytes(b.try_into().ok()?);
                Some(((bits & 0x3fff) + 1, ((bits >> 14) & 0x3fff) + 1))
            }
            b"VP8X" => Some((le24(24)? + 1, le24(27)? + 1)),
            _ => None,
        },
    }
}

fn flatten(image: DynamicImage) -> RgbImage {
    if !image.color().has_alpha() {
        return image.into_rgb8();
    }
    let rgba = image.into_rgba8();
    let (w, h) = rgba.dimensions();
    RgbImage::from_fn(w, h, |x, y| {
        let p = rgba.get_pixel(x, y).0;
        let a = u32::from(p[3]);
        Rgb([0, 1, 2].map(|c| ((u32::from(p[c]) * a + 255 * (255 - a) + 127) / 255) as u8))
    })
}

/// Scales the shorter side to `size` and crops the centre to a square, so products keep their
/// proportions.
pub fn resize_square(image: &RgbImage, size: u32) -> RgbImage {
    let size = size.max(1);
    let (w, h) = image.dimensions();
    if w == size && h == size {
        return image.clone();
    }
    let side = w.min(h);
    let cropped = imageops::crop_imm(image, (w - side) / 2, (h - side) / 2, side, side).to_image();
    imageops::resize(&cropped, size, size, FilterType::Triangle)
}

/// The image as planar RGB floats in [-1, 1], `3 * size * size` long, resized if needed.
pub fn to_chw(image: &RgbImage, size: u32) -> Vec<f32> {
    let image = resize_square(image, size);
    let plane = (size.max(1) * size.max(1)) as usize;
    let mut out = vec![0.0f32; 3 * plane];
    for (i, p) in image.pixels().enumerate() {
        for c in 0..3 {
            out[c * plane + i] = f32::from(p.0[c]) / 127.5 - 1.0;
        }
    }
    out
}

/// The inverse of [`to_chw`]: values are clamped to [-1, 1]; NaN becomes mid-grey.
pub fn from_chw(chw: &[f32], size: u32) -> Result<RgbImage, ImageError> {
    let plane = size as usize * size as usize;
    if chw.len() != 3 * plane || plane == 0 {
        return Err(ImageError::BadLength {
            expected: 3 * plane,
            actual: chw.len(),
        });
    }
    let to_byte = |v: f32| {
        let v = if v.is_nan() { 0.0 } else { v.clamp(-1.0, 1.0) };
        ((v + 1.0) * 127.5).round() as u8
    };
    Ok(RgbImage::from_fn(size, size, |x, y| {
        let i = (y * size + x) as usize;
        Rgb([
            to_byte(chw[i]),
            to_byte(chw[plane + i]),
            to_byte(chw[2 * plane + i]),
        ])
    }))
}

/// Encodes in the given format; JPEG at quality 90, WebP lossless.
pub fn encode(image: &RgbImage, format: ImageFormat) -> Result<Vec<u8>, ImageError> {
    let mut out = Cursor::new(Vec::new());
    let result = match format {
        ImageFormat::Jpeg => {
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90).encode_image(image)
        }
        _ => image.write_to(&mut out, format),
    };
    result.map_err(|e| ImageError::Encode {
        message: e.to_string(),
    })?;
    Ok(out.into_inner())
}

pub fn encode_png(image: &RgbImage) -> Result<Vec<u8>, ImageError> {
    encode(image, ImageFormat::Png)
}

/// A generated image (CHW floats in [-1, 1]) as PNG bytes, for showing what the model made.
pub fn chw_to_png(chw: &[f32], size: u32) -> Result<Vec<u8>, ImageError> {
    encode_png(&from_chw(chw, size)?)
}

/// Tiles images into rows of `columns`, `gap` pixels apart on white; cells take the largest size.
pub fn grid(images: &[RgbImage], columns: usize, gap: u32) -> RgbImage {
    let columns = columns.clamp(1, images.len().max(1));
    let rows = images.len().div_ceil(columns).max(1);
    let cw = images.iter().map(|i| i.width()).max().unwrap_or(1);
    let ch = images.iter().map(|i| i.height()).max().unwrap_or(1);
    let width = columns as u32 * cw + (columns as u32 + 1) * gap;
    let height = rows as u32 * ch + (rows as u32 + 1) * gap;
    let mut out = RgbImage::from_pixel(width, height, Rgb([255, 255, 255]));
    for (k, image) in images.iter().enumerate() {
        let x = gap + (k % columns) as u32 * (cw + gap);
        let y = gap + (k / columns) as u32 * (ch + gap);
        imageops::replace(&mut out, image, i64::from(x), i64::from(y));
    }
    out
}

/// The most pixels a [`strip`]'s canvas may have: a decoded image's limit and room for the gaps
/// (192 MB of RGB).
pub const MAX_STRIP_PIXELS: u64 = 64_000_000;

/// The images side by side in one row, each at its own size, top-aligned, `gap` pixels apart on
/// white. The canvas is counted before it is made: more than `max_pixels` is an error, never an
/// allocation (cells of the widest image's size, as [`grid`] makes, would let one wide image and
/// many narrow ones ask for gigabytes).
pub fn strip(images: &[RgbImage], gap: u32, max_pixels: u64) -> Result<RgbImage, ImageError> {
    let gap64 = u64::from(gap);
    let n = images.len() as u64;
    let width = images.iter().map(|i| u64::from(i.width())).sum::<u64>() + (n + 1) * gap64;
    let height = images
        .iter()
        .map(|i| u64::from(i.height()))
        .max()
        .unwrap_or(1)
        + 2 * gap64;
    if width.saturating_mul(height) > max_pixels
        || width > u64::from(u32::MAX)
        || height > u64::from(u32::MAX)
    {
        return Err(ImageError::CanvasTooLarge {
            width,
            height,
            max_pixels,
        });
    }
    let mut out = RgbImage::from_pixel(width as u32, height as u32, Rgb([255, 255, 255]));
    let mut x = gap64;
    for image in images {
        imageops::replace(&mut out, image, x as i64, gap64 as i64);
        x += u64::from(image.width()) + gap64;
    }
    Ok(out)
}

/// [`grid`] as PNG bytes, for training previews.
/// The whole-number factor (at least 1) by which `image` grows, nearest neighbour, to come closest
/// to `height` without passing it: a model's 32x32 image beside a 64x64 catalog photo shows at
/// the photo's size, with its pixels kept sharp.
pub fn upscale_factor(image: &RgbImage, height: u32) -> u32 {
    (height / image.height().max(1)).max(1)
}

/// Every image grown by its [`upscale_factor`] toward the tallest one.
pub fn match_heights(images: &[RgbImage]) -> Vec<RgbImage> {
    let tallest = images.iter().map(RgbImage::height).max().unwrap_or(1);
    images
        .iter()
        .map(|i| match upscale_factor(i, tallest) {
            1 => i.clone(),
            k => imageops::resize(
                i,
                i.width() * k,
                i.height() * k,
                imageops::FilterType::Nearest,
            ),
        })
        .collect()
}

pub fn grid_png(images: &[RgbImage], columns: usize, gap: u32) -> Result<Vec<u8>, ImageError> {
    encode_png(&grid(images, columns, gap))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_over_the_limits_are_too_large_in_every_format() {
        let limits = DecodeLimits::default();
        // A baseline JPEG's SOI, then SOF0 claiming 65535x65535.
        let jpeg = [
            0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x11, 0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0x03, 0, 0, 0, 0,
        ];
        // WebP VP8X with a 2^24 x 2^24 canvas, and VP8L claiming 16384x16384.
        let mut vp8x = b"RIFF\x00\x00\x00\x00WEBPVP8X\x0a\x00\x00\x00\x00\x00\x00\x00".to_vec();
        vp8x.extend_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]);
        let mut vp8l = b"RIFF\x00\x00\x00\x00WEBPVP8L\x05\x00\x00\x00\x2f".to_vec();
        vp8l.extend_from_slice(&(0x3fffu32 | 0x3fff << 14).to_le_bytes());
        for (bytes, want) in [
            (&jpeg[..], (65535, 65535)),
            (&vp8x[..], (1 << 24, 1 << 24)),
            (&vp8l[..], (16384, 16384)),
        ] {
            match decode(bytes, &limits) {
                Err(ImageError::TooLarge { width, height, .. }) => {
                    assert_eq!((width, height), want)
                }
                other => panic!("expected TooLarge {want:?}, got {other:?}"),
            }
        }
    }

    #[test]
    fn strip_lays_tiles_at_their_own_widths() {
        let red = RgbImage::from_pixel(3, 4, Rgb([255, 0, 0]));
        let blue = RgbImage::from_pixel(5, 2, Rgb([0, 0, 255]));
        let s = strip(&[red, blue], 2, 1000).unwrap();
        assert_eq!(s.dimensions(), (2 + 3 + 2 + 5 + 2, 4 + 4));
        assert_eq!(s.get_pixel(2, 2), &Rgb([255, 0, 0]));
        assert_eq!(s.get_pixel(7, 2), &Rgb([0, 0, 255]));
        assert_eq!(s.get_pixel(7, 5), &Rgb([255, 255, 255]));
    }

    #[test]
    fn strip_counts_its_canvas_before_making_it() {
        // One wide image and many narrow tall ones: cells of the largest size would be
        // 256 x 8192 x 8192; the strip's own canvas is counted and refused without allocating.
        let wide = RgbImage::new(8192, 1);
        let tall = RgbImage::new(1, 8192);
        let mut images = vec![wide];
        images.extend(std::iter::repeat_n(tall, 3));
        match strip(&images, 2, 1_000_000) {
            Err(ImageError::CanvasTooLarge {
                width,
                height,
                max_pixels,
            }) => {
                assert_eq!(
                    (width, height, max_pixels),
                    (8192 + 3 + 5 * 2, 8192 + 4, 1_000_000)
                );
            }
            other => panic!("expected CanvasTooLarge, got {other:?}"),
        }
    }

    fn sample(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            Rgb([(x * 7) as u8, (y * 5) as u8, ((x + y) * 3) as u8])
        })
    }

    fn png_bytes(w: u32, h: u32) -> Vec<u8> {
        encode_png(&sample(w, h)).unwrap()
    }

    #[test]
    fn smaller_images_grow_by_whole_factors_toward_the_tallest() {
        let images = [
            sample(64, 64),
            sample(32, 32),
            sample(20, 30),
            sample(80, 70),
        ];
        let grown = match_heights(&images);
        let sizes: Vec<(u32, u32)> = grown.iter().map(|i| i.dimensions()).collect();
        // 70 / 64 -> 1, 70 / 32 -> 2, 70 / 30 -> 2; the tallest stays.
        assert_eq!(sizes, vec![(64, 64), (64, 64), (40, 60), (80, 70)]);
        // Nearest neighbour: each source pixel becomes a k x k block of itself.
        let (small, big) = (&images[1], &grown[1]);
        for (x, y) in [(0, 0), (5, 9), (31, 31)] {
            let p = small.get_pixel(x, y);
            for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                assert_eq!(big.get_pixel(2 * x + dx, 2 * y + dy), p);
            }
        }
        assert!(match_heights(&[]).is_empty());
    }

    #[test]
    fn decodes_all_three_formats() {
        let img = sample(20, 12);
        for format in [ImageFormat::Png, ImageFormat::Jpeg, ImageFormat::WebP] {
            let bytes = encode(&img, format).unwrap();
            let back = decode(&bytes, &DecodeLimits::default()).unwrap();
            assert_eq!(back.dimensions(), (20, 12), "{format:?}");
            if format != ImageFormat::Jpeg {
                assert_eq!(back, img, "{format:?} is lossless");
            }
        }
    }

    #[test]
    fn zero_bytes_is_an_error() {
        let err = decode(&[], &DecodeLimits::default()).unwrap_err();
        assert!(matches!(err, ImageError::Empty));
        assert_eq!(err.to_string(), "image is empty (0 bytes)");
    }

    #[test]
    fn unknown_magic_is_an_error() {
        let err = decode(b"GIF89a\x01\x00", &DecodeLimits::default()).unwrap_err();
        assert!(matches!(err, ImageError::UnknownFormat { .. }));
        assert!(err.to_string().contains("4749463839"), "{err}");
    }

    #[test]
    fn truncated_png_is_an_error() {
        let bytes = png_bytes(40, 40);
        for cut in [9, 20, 33, bytes.len() / 2, bytes.len() - 13] {
            let err = decode(&bytes[..cut], &DecodeLimits::default()).unwrap_err();
            assert!(
                matches!(
                    err,
                    ImageError::Decode {
                        format: Format::Png,
                        ..
                    }
                ),
                "cut {cut}: {err}"
            );
        }
    }

    #[test]
    fn truncated_jpeg_and_webp_are_errors() {
        for format in [ImageFormat::Jpeg, ImageFormat::WebP] {
            let bytes = encode(&sample(40, 40), format).unwrap();
            let err = decode(&bytes[..bytes.len() / 2], &DecodeLimits::default());
            // Some JPEG decoders fill a cut image with grey; what matters is no crash and no
            // image of the wrong size.
            if let Ok(img) = err {
                assert_eq!(img.dimensions(), (40, 40), "{format:?}");
            }
        }
    }

    #[test]
    fn corrupt_header_is_an_error() {
        let mut bytes = png_bytes(16, 16);
        // Break the IHDR chunk's data, so its CRC no longer matches.
        bytes[18] ^= 0x55;
        let err = decode(&bytes, &DecodeLimits::default()).unwrap_err();
        assert!(
            matches!(err, ImageError::Decode { .. } | ImageError::TooLarge { .. }),
            "{err}"
        );
        let mut jpeg = encode(&sample(16, 16), ImageFormat::Jpeg).unwrap();
        jpeg.truncate(3);
        assert!(decode(&jpeg, &DecodeLimits::default()).is_err());
    }

    /// A valid PNG signature and IHDR (with a correct CRC) that claims `w`×`h`, and nothing else.
    fn bomb_header(w: u32, h: u32) -> Vec<u8> {
        let mut chunk = b"IHDR".to_vec();
        chunk.extend_from_slice(&w.to_be_bytes());
        chunk.extend_from_slice(&h.to_be_bytes());
        chunk.extend_from_slice(&[8, 2, 0, 0, 0]);
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        out.extend_from_slice(&13u32.to_be_bytes());
        out.extend_from_slice(&chunk);
        out.extend_from_slice(&crc32(&chunk).to_be_bytes());
        out
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[test]
    fn decompression_bomb_is_refused_before_allocating() {
        let err = decode(&bomb_header(100_000, 100_000), &DecodeLimits::default()).unwrap_err();
        match &err {
            ImageError::TooLarge { width, height, .. } => {
                assert_eq!((*width, *height), (100_000, 100_000))
            }
            other => panic!("expected TooLarge, got {other}"),
        }
        assert!(err.to_string().contains("100000x100000"), "{err}");
        // Within each side's limit but too many pixels in all.
        let limits = DecodeLimits {
            max_pixels: 1000,
            ..DecodeLimits::default()
        };
        let err = decode(&png_bytes(40, 40), &limits).unwrap_err();
        assert!(
            matches!(
                err,
                ImageError::TooLarge {
                    width: 40,
                    height: 40,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn too_many_bytes_is_refused() {
        let limits = DecodeLimits {
            max_bytes: 10,
            ..DecodeLimits::default()
        };
        let err = decode(&png_bytes(4, 4), &limits).unwrap_err();
        assert!(
            matches!(err, ImageError::TooManyBytes { max: 10, .. }),
            "{err}"
        );
    }

    #[test]
    fn transparent_pixels_become_white() {
        let rgba = image::RgbaImage::from_fn(2, 1, |x, _| {
            image::Rgba([0, 0, 0, if x == 0 { 0 } else { 255 }])
        });
        let mut bytes = Cursor::new(Vec::new());
        rgba.write_to(&mut bytes, ImageFormat::Png).unwrap();
        let img = decode(bytes.get_ref(), &DecodeLimits::default()).unwrap();
        assert_eq!(img.get_pixel(0, 0).0, [255, 255, 255]);
        assert_eq!(img.get_pixel(1, 0).0, [0, 0, 0]);
    }

    #[test]
    fn chw_round_trips_and_is_planar() {
        let img = sample(8, 8);
        let chw = to_chw(&img, 8);
        assert_eq!(chw.len(), 3 * 64);
        assert!(chw.iter().all(|v| (-1.0..=1.0).contains(v)));
        // Pixel (1, 0): red is 7, so the red plane's second value is 7/127.5 - 1.
        assert!((chw[1] - (7.0 / 127.5 - 1.0)).abs() < 1e-6);
        assert!(
            (chw[64 + 8] - (5.0 / 127.5 - 1.0)).abs() < 1e-6,
            "green plane, pixel (0, 1)"
        );
        assert_eq!(from_chw(&chw, 8).unwrap(), img);
        let png = chw_to_png(&chw, 8).unwrap();
        assert_eq!(decode(&png, &DecodeLimits::default()).unwrap(), img);
    }

    #[test]
    fn from_chw_checks_length_and_clamps() {
        let err = from_chw(&[0.0; 10], 4).unwrap_err();
        assert_eq!(err.to_string(), "expected 48 floats, not 10");
        let mut chw = vec![5.0f32; 48];
        chw[0] = f32::NAN;
        chw[1] = -9.0;
        let img = from_chw(&chw, 4).unwrap();
        assert_eq!(img.get_pixel(0, 0).0[0], 128);
        assert_eq!(img.get_pixel(1, 0).0, [0, 255, 255]);
    }

    #[test]
    fn resize_crops_to_the_centre() {
        // Left third red, middle green, right third blue: a centre crop keeps only green.
        let img = RgbImage::from_fn(90, 30, |x, _| match x / 30 {
            0 => Rgb([255, 0, 0]),
            1 => Rgb([0, 255, 0]),
            _ => Rgb([0, 0, 255]),
        });
        let small = resize_square(&img, 10);
        assert_eq!(small.dimensions(), (10, 10));
        assert!(small.pixels().all(|p| p.0 == [0, 255, 0]));
        assert_eq!(to_chw(&img, 16).len(), 3 * 256);
    }

    #[test]
    fn grid_places_tiles_with_gaps() {
        let red = RgbImage::from_pixel(4, 4, Rgb([255, 0, 0]));
        let blue = RgbImage::from_pixel(4, 4, Rgb([0, 0, 255]));
        let g = grid(&[red.clone(), blue, red], 2, 2);
        assert_eq!(g.dimensions(), (2 * 4 + 3 * 2, 2 * 4 + 3 * 2));
        assert_eq!(g.get_pixel(0, 0).0, [255, 255, 255]);
        assert_eq!(g.get_pixel(2, 2).0, [255, 0, 0]);
        assert_eq!(g.get_pixel(8, 2).0, [0, 0, 255]);
        assert_eq!(g.get_pixel(2, 8).0, [255, 0, 0]);
        assert_eq!(g.get_pixel(8, 8).0, [255, 255, 255], "empty cell");
        let png = grid_png(std::slice::from_ref(&g), 1, 0).unwrap();
        assert_eq!(decode(&png, &DecodeLimits::default()).unwrap(), g);
    }
}
