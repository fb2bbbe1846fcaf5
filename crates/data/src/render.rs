//! Rasterizes a product: a garment silhouette from convex pieces, filled with colour, pattern and
//! material texture, on a light background.
//!
//! Two [`Variation`]s: `Clean` drawings (centred, one shape per attribute value, a little jitter)
//! and `Photo` ones, which vary framing, silhouette, backdrop, light, shadow, blur and noise per
//! product as product photos do, while every attribute stays readable.
//!
//! Geometry lives in garment coordinates (x right, y down, the garment roughly within [-0.4, 0.45]),
//! so an image renders the same picture at any size. Each piece gives a signed distance (positive
//! inside); the union is their maximum, which yields one-sample antialiasing and an outline for free.

use image::{Rgb, RgbImage};

use crate::attributes::{Category, Hem, Material, Neckline, Pattern, Sleeve, UnknownName};
use crate::catalog::Product;
use crate::rng::{Rng, mix};

/// How a catalog's products are drawn.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Variation {
    /// Clean drawings: the garment centred on a near-white background, one silhouette per
    /// attribute value, a little jitter. Bit-for-bit what the catalog always drew.
    #[default]
    Clean,
    /// Like product photos: per product (from its seed) the framing (scale, rotation, off-centre,
    /// sometimes cut at an edge), the silhouette within its attribute values, the backdrop, the
    /// light, a soft shadow, blur and sensor noise vary. Colour, pattern, material, sleeve,
    /// neckline, hem and category stay readable.
    Photo,
}

impl Variation {
    pub const ALL: &'static [Variation] = &[Variation::Clean, Variation::Photo];

    pub fn name(self) -> &'static str {
        match self {
            Variation::Clean => "clean",
            Variation::Photo => "photo",
        }
    }
}

impl std::fmt::Display for Variation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Variation {
    type Err = UnknownName;

    /// "clean" or "photo".
    fn from_str(text: &str) -> Result<Self, UnknownName> {
        Variation::ALL
            .iter()
            .copied()
            .find(|v| v.name() == text)
            .ok_or_else(|| UnknownName {
                kind: "variation",
                name: text.to_string(),
            })
    }
}

/// Convex polygon as inward half-planes: distance = min over edges of n·p - c.
#[derive(Clone, Copy)]
struct Convex<const N: usize> {
    planes: [(f32, f32, f32); N],
    bbox: [f32; 4],
}

impl<const N: usize> Convex<N> {
    /// Points in clockwise order on screen (y down), i.e. counter-clockwise in math coordinates.
    fn new(points: [(f32, f32); N]) -> Self {
        // Orientation decides which side is inside; compute it so callers need not care.
        let mut area = 0.0;
        for i in 0..N {
            let (x0, y0) = points[i];
            let (x1, y1) = points[(i + 1) % N];
            area += x0 * y1 - x1 * y0;
        }
        let sign = if area >= 0.0 { 1.0 } else { -1.0 };
        let mut planes = [(0.0, 0.0, 0.0); N];
        let mut bbox = [f32::MAX, f32::MAX, f32::MIN, f32::MIN];
        for i in 0..N {
            let (x0, y0) = points[i];
            let (x1, y1) = points[(i + 1) % N];
            let (ex, ey) = (x1 - x0, y1 - y0);
            let len = (ex * ex + ey * ey).sqrt().max(1e-9);
            let (nx, ny) = (-ey * sign / len, ex * sign / len);
            planes[i] = (nx, ny, nx * x0 + ny * y0);
            bbox = [
                bbox[0].min(x0),
                bbox[1].min(y0),
                bbox[2].max(x0),
                bbox[3].max(y0),
            ];
        }
        Convex { planes, bbox }
    }

    #[inline]
    fn dist(&self, x: f32, y: f32, margin: f32) -> f32 {
        let b = self.bbox;
        if x < b[0] - margin || x > b[2] + margin || y < b[1] - margin || y > b[3] + margin {
            return -1.0;
        }
        let mut d = f32::MAX;
        for &(nx, ny, c) in &self.planes {
            d = d.min(nx * x + ny * y - c);
        }
        d
    }
}

#[inline]
fn circle(x: f32, y: f32, cx: f32, cy: f32, r: f32) -> f32 {
    r - ((x - cx) * (x - cx) + (y - cy) * (y - cy)).sqrt()
}

/// What varies in a silhouette within one set of attribute values. [`Shape::CLEAN`] is the
/// catalog's one shape per value; [`Shape::photo`] draws another, keeping every value recognisable
/// (a long sleeve stays long, a mini dress stays short).
#[derive(Clone, Copy, Debug)]
struct Shape {
    /// Factor on the body's width at the shoulders.
    shoulders: f32,
    /// Factor on a dress's waist width; moves the waist up or down by `waist_y`.
    waist: f32,
    waist_y: f32,
    /// Factor on the width at the hem (a top's bottom, a skirt's flare).
    hem_width: f32,
    /// Added to the hem's height: within the hem value's band, which is 0.15 from the next.
    length: f32,
    /// How far the shoulder seam drops below the neck, in garment units.
    slope: f32,
    /// Factors on the sleeves' width (armhole and cuff) and length.
    sleeve_width: f32,
    sleeve_length: f32,
    /// Direction the sleeves hang in, (sin, cos) of the angle from vertical.
    sleeve_dir: (f32, f32),
    /// Factor on the neck opening and the collar.
    neck: f32,
    /// How much narrower the shoulders are when straps stand in for sleeves.
    straps: f32,
}

impl Shape {
    const CLEAN: Shape = Shape {
        shoulders: 1.0,
        waist: 1.0,
        waist_y: 0.0,
        hem_width: 1.0,
        length: 0.0,
        slope: 0.0,
        sleeve_width: 1.0,
        sleeve_length: 1.0,
        sleeve_dir: (0.5, 0.866),
        neck: 1.0,
        straps: 0.035,
    };

    fn photo(rng: &mut Rng) -> Shape {
        let angle = rng.range(22.0f32, 40.0).to_radians();
        Shape {
            shoulders: rng.range(0.88, 1.12),
            waist: rng.range(0.88, 1.12),
            waist_y: rng.range(-0.025, 0.025),
            hem_width: rng.range(0.85, 1.2),
            // Hem values are 0.15 to 0.16 apart; ±0.03 leaves a clear gap between them.
            length: rng.range(-0.03, 0.03),
            slope: rng.range(0.0, 0.045),
            sleeve_width: rng.range(0.8, 1.2),
            // Short sleeves 0.11 to 0.15 long, long ones 0.34 to 0.46: never confused.
            sleeve_length: rng.range(0.85, 1.15),
            sleeve_dir: (angle.sin(), angle.cos()),
            neck: rng.range(0.88, 1.15),
            straps: rng.range(0.025, 0.05),
        }
    }
}

struct Garment {
    body: Convex<4>,
    /// Fills the sloping shoulders between the neck and the shoulder seam (Photo only).
    yoke: Option<Convex<4>>,
    skirt: Option<Convex<4>>,
    sleeves: Option<[Convex<4>; 2]>,
    neck: Neck,
    collar: Option<[Convex<3>; 2]>,
    placket: bool,
}

enum Neck {
    Round { cy: f32, r: f32 },
    V(Convex<3>),
}

impl Garment {
    /// Bounds of every piece, so background pixels skip the distance tests.
    fn bbox(&self) -> [f32; 4] {
        let mut b = self.body.bbox;
        let mut grow = |o: [f32; 4]| {
            b = [
                b[0].min(o[0]),
                b[1].min(o[1]),
                b[2].max(o[2]),
                b[3].max(o[3]),
            ];
        };
        if let Some(skirt) = &self.skirt {
            grow(skirt.bbox);
        }
        if let Some(yoke) = &self.yoke {
            grow(yoke.bbox);
        }
        if let Some([l, r]) = &self.sleeves {
            grow(l.bbox);
            grow(r.bbox);
        }
        if let Some([l, r]) = &self.collar {
            grow(l.bbox);
            grow(r.bbox);
        }
        b
    }

    fn new(
        category: Category,
        sleeve: Sleeve,
        neckline: Neckline,
        hem: Hem,
        shape: &Shape,
    ) -> Self {
        let top = -0.36;
        // Straps instead of shoulders when there are no sleeves.
        let narrow = if sleeve == Sleeve::Sleeveless {
            shape.straps
        } else {
            0.0
        };
        // The shoulder seam: `top` at the neck, lower at the shoulder when the shoulders slope.
        let seam = top + shape.slope;
        let (shoulder, top_w, body, skirt, placket) = match category {
            Category::Dress => {
                let w = 0.15 * shape.shoulders - narrow;
                let (ww, wy) = (0.11 * shape.waist, -0.08 + shape.waist_y);
                let body = Convex::new([(-w, seam), (w, seam), (ww, wy), (-ww, wy)]);
                let (hy, hw) = match hem {
                    Hem::Short => (0.12, 0.2),
                    Hem::Medium => (0.27, 0.25),
                    Hem::Long => (0.43, 0.29),
                };
                let (hy, hw) = (hy + shape.length, hw * shape.hem_width);
                let sy = -0.09 + shape.waist_y;
                let skirt = Convex::new([(-ww, sy), (ww, sy), (hw, hy), (-hw, hy)]);
                (0.15 * shape.shoulders, w, body, Some(skirt), false)
            }
            Category::Shirt | Category::Toptee => {
                let (w, bottom) = if category == Category::Shirt {
                    (0.18, 0.17)
                } else {
                    (0.16, 0.14)
                };
                let (w, bottom) = (w * shape.shoulders, bottom * shape.hem_width);
                let hy = match hem {
                    Hem::Short => 0.02,
                    Hem::Medium => 0.18,
                    Hem::Long => 0.34,
                } + shape.length;
                let body = Convex::new([
                    (-(w - narrow), seam),
                    (w - narrow, seam),
                    (bottom, hy),
                    (-bottom, hy),
                ]);
                (w, w - narrow, body, None, category == Category::Shirt)
            }
        };
        // Sloping shoulders: the body starts at the seam, the yoke rises from it to the neck.
        let yoke = (shape.slope > 0.0).then(|| {
            let inner = (0.085 * shape.neck).min(top_w - 0.01);
            Convex::new([(-inner, top), (inner, top), (top_w, seam), (-top_w, seam)])
        });
        let sleeves = match sleeve {
            Sleeve::Sleeveless => None,
            Sleeve::Short | Sleeve::Long => {
                let len = if sleeve == Sleeve::Short { 0.13 } else { 0.40 } * shape.sleeve_length;
                let (dx, dy) = shape.sleeve_dir;
                let sw = shape.sleeve_width;
                let make = |s: f32| {
                    let a = (s * (shoulder - 0.02), top - 0.005 + shape.slope);
                    let b = (s * (shoulder - 0.03), top + 0.15 * sw + shape.slope);
                    // Sleeves taper toward the cuff.
                    let c = (b.0 + s * dx * len, b.1 + dy * len);
                    let d = (
                        a.0 + s * dx * len + s * 0.06 * sw,
                        a.1 + dy * len + 0.02 * sw,
                    );
                    if s > 0.0 {
                        Convex::new([a, d, c, b])
                    } else {
                        Convex::new([a, b, c, d])
                    }
                };
                Some([make(-1.0), make(1.0)])
            }
        };
        let k = shape.neck;
        let neck = match neckline {
            Neckline::Crew => Neck::Round {
                cy: top - 0.02,
                r: 0.075 * k,
            },
            Neckline::Collar => Neck::Round {
                cy: top - 0.02,
                r: 0.065 * k,
            },
            Neckline::VNeck => Neck::V(Convex::new([
                (-0.085 * k, top - 0.05),
                (0.085 * k, top - 0.05),
                (0.0, top + 0.15 * k),
            ])),
        };
        let collar = (neckline == Neckline::Collar).then(|| {
            let l = Convex::new([
                (-0.08 * k, top - 0.005),
                (-0.005, top + 0.055 * k),
                (-0.11 * k, top + 0.09 * k),
            ]);
            let r = Convex::new([
                (0.08 * k, top - 0.005),
                (0.11 * k, top + 0.09 * k),
                (0.005, top + 0.055 * k),
            ]);
            [l, r]
        });
        Garment {
            body,
            yoke,
            skirt,
            sleeves,
            neck,
            collar,
            placket,
        }
    }
}

struct Look {
    base: [f32; 3],
    second: [f32; 3],
    pattern: Pattern,
    material: Material,
    /// Phase of the texture so two identical products are not pixel-identical.
    phase: (f32, f32),
}

impl Look {
    /// How far toward the second colour the pattern is at this point, in [0, 1].
    #[inline]
    fn pattern(&self, x: f32, y: f32) -> f32 {
        let (px, py) = (x + self.phase.0, y + self.phase.1);
        match self.pattern {
            Pattern::Solid => 0.0,
            Pattern::Stripes => f32::from(fract(py / 0.08) < 0.42),
            Pattern::Dots => {
                let row = (py / 0.08).floor();
                let shift = if row as i64 % 2 == 0 { 0.0 } else { 0.04 };
                let cx = ((px + shift) / 0.08).floor() * 0.08 + 0.04 - shift;
                let cy = row * 0.08 + 0.04;
                f32::from(circle(px, py, cx, cy, 0.024) > 0.0)
            }
            Pattern::Checks => {
                let a = f32::from(fract(px / 0.1) < 0.5);
                let b = f32::from(fract(py / 0.1) < 0.5);
                0.45 * (a + b)
            }
            Pattern::Zebra => {
                let w =
                    (py * 45.0 + 3.0 * (px * 13.0).sin() + px * 12.0 + self.phase.0 * 40.0).sin();
                f32::from(w > 0.25)
            }
            Pattern::Logo => {
                // One emblem on the chest: a ring around a dot.
                let d = circle(x, y, 0.0, -0.2, 0.055);
                let ring = d > 0.0 && d < 0.022;
                let dot = circle(x, y, 0.0, -0.2, 0.018) > 0.0;
                f32::from(ring || dot)
            }
        }
    }

    /// Brightness factor and highlight (mix toward white) for the material.
    #[inline]
    fn material(&self, x: f32, y: f32, noise: f32) -> (f32, f32) {
        match self.material {
            Material::Plain => (1.0 - 0.12 * (y + 0.4), 0.0),
            Material::Leather => {
                // Glossy: darker overall with two bright diagonal streaks.
                let t = x * 0.9 + y * 0.45 + self.phase.0;
                let band = |c: f32| (-(t - c) * (t - c) / 0.0012).exp();
                (0.8, 0.6 * (band(-0.1) + 0.6 * band(0.12)))
            }
            Material::Denim => {
                // Diagonal twill plus speckle.
                let twill = f32::from(fract((x + y) / 0.045) < 0.5);
                (0.8 + 0.16 * twill + 0.12 * (noise - 0.5), 0.05)
            }
            Material::Knit => {
                // Rows of V stitches.
                let col = (fract(x / 0.05) - 0.5).abs();
                let v = fract(y / 0.05 + col * 1.2);
                (0.78 + 0.3 * f32::from(v < 0.5) * (1.0 - col), 0.0)
            }
        }
    }
}

#[inline]
fn fract(v: f32) -> f32 {
    v - v.floor()
}

#[inline]
fn lerp(a: [f32; 3], b: [f32; 3], t: f32) -> [f32; 3] {
    [
        a[0] + (b[0] - a[0]) * t,
        a[1] + (b[1] - a[1]) * t,
        a[2] + (b[2] - a[2]) * t,
    ]
}

/// Draws the product at `size`×`size` as `variation` says. Deterministic: the same product, size
/// and variation give the same bytes.
pub fn render_as(product: &Product, size: u32, variation: Variation) -> RgbImage {
    match variation {
        Variation::Clean => render(product, size),
        Variation::Photo => render_photo(product, size),
    }
}

/// Draws the product at `size`×`size`, clean ([`Variation::Clean`]). Deterministic: the same
/// product gives the same bytes.
pub fn render(product: &Product, size: u32) -> RgbImage {
    let size = size.max(1);
    let a = &product.attrs;
    let mut rng = Rng::new(product.seed);
    // Per-image jitter, so identical attributes do not give identical images.
    let dx = rng.range(-0.035, 0.035);
    let dy = rng.range(-0.03, 0.03);
    let scale = rng.range(0.9, 1.05);
    let shade = rng.range(0.9, 1.06);
    let bg_level = rng.range(232.0, 250.0);
    let bg = [
        bg_level + rng.range(-4.0, 4.0),
        bg_level,
        bg_level + rng.range(-4.0, 4.0),
    ];
    let phase = (rng.range(0.0, 0.1), rng.range(0.0, 0.1));

    let rgb = a.colour.rgb();
    let base = rgb.map(|c| (c as f32 * shade).min(255.0));
    let second = if a.colour.luminance() > 0.45 {
        [35.0, 35.0, 40.0]
    } else {
        [238.0, 236.0, 230.0]
    };
    let look = Look {
        base,
        second,
        pattern: a.pattern,
        material: a.material,
        phase,
    };
    let g = Garment::new(product.category, a.sleeve, a.neckline, a.hem, &Shape::CLEAN);

    let inv = 1.0 / (size as f32 * scale);
    let px = inv; // one pixel in garment units
    let mut img = RgbImage::new(size, size);
    let mut noise = Rng::new(product.seed ^ 0x5eed);
    let bb = g.bbox();
    for (j, row) in img.rows_mut().enumerate() {
        // Slightly below centre: garments hang from the shoulders.
        let y = ((j as f32 + 0.5) / size as f32 - 0.52 - dy) / scale;
        for (i, pixel) in row.enumerate() {
            let x = ((i as f32 + 0.5) / size as f32 - 0.5 - dx) / scale;
            let n = if look.material == Material::Denim {
                noise.unit()
            } else {
                0.5
            };
            if x < bb[0] - px || x > bb[2] + px || y < bb[1] - px || y > bb[3] + px {
                *pixel = Rgb(bg.map(|v| v.clamp(0.0, 255.0) as u8));
                continue;
            }
            *pixel =
                Rgb(shade_pixel(&g, &look, x, y, px, n, bg).map(|v| v.clamp(0.0, 255.0) as u8));
        }
    }
    img
}

/// Salts of the Photo drawing's random streams, apart from the Clean jitter's.
const PHOTO_STREAM: u64 = 0x7068_6f74_6f00_0001;
const PHOTO_NOISE: u64 = 0x7068_6f74_6f00_0002;
const PHOTO_GRAIN: u64 = 0x7068_6f74_6f00_0003;

/// The background behind a Photo drawing.
enum Backdrop {
    /// One flat colour: off-white, or a light grey.
    Plain,
    /// Faint linen: a weave of `cycles` threads per frame and soft blotches on a 6x6 grid.
    Texture {
        cycles: f32,
        weave: f32,
        blotch: f32,
        grid: [f32; 36],
    },
    /// A wall above a floor of colour `floor`, split at `horizon` (a fraction of the height).
    Split { horizon: f32, floor: [f32; 3] },
    /// A darker studio grey, lit brighter behind the garment by `glow`.
    Studio { glow: f32 },
}

impl Backdrop {
    /// The backdrop and its base colour.
    fn draw(rng: &mut Rng) -> (Backdrop, [f32; 3]) {
        // `warm` tints toward cream (positive) or a cool grey (negative).
        let colour = |level: f32, warm: f32| [level + warm, level + 0.3 * warm, level - warm];
        let r = rng.unit();
        if r < 0.3 {
            let c = colour(rng.range(232.0, 252.0), rng.range(-3.0, 7.0));
            (Backdrop::Plain, c)
        } else if r < 0.5 {
            let c = colour(rng.range(195.0, 228.0), rng.range(-3.0, 3.0));
            (Backdrop::Plain, c)
        } else if r < 0.66 {
            let c = colour(rng.range(212.0, 246.0), rng.range(-2.0, 6.0));
            let mut grid = [0.0; 36];
            for g in &mut grid {
                *g = rng.range(-1.0, 1.0);
            }
            let texture = Backdrop::Texture {
                cycles: rng.range(10.0, 20.0),
                weave: rng.range(2.0, 5.0),
                blotch: rng.range(3.0, 8.0),
                grid,
            };
            (texture, c)
        } else if r < 0.86 {
            let c = colour(rng.range(215.0, 248.0), rng.range(-3.0, 5.0));
            let k = rng.range(0.8, 0.93);
            let warm = rng.range(2.0, 10.0);
            let floor = [c[0] * k + warm, c[1] * k + 0.3 * warm, c[2] * k - warm];
            let split = Backdrop::Split {
                horizon: rng.range(0.58, 0.85),
                floor,
            };
            (split, c)
        } else {
            let c = colour(rng.range(105.0, 150.0), rng.range(-2.0, 2.0));
            let studio = Backdrop::Studio {
                glow: rng.range(0.1, 0.3),
            };
            (studio, c)
        }
    }

    /// The backdrop over the whole frame, row by row.
    fn fill(&self, base: [f32; 3], size: usize) -> Vec<[f32; 3]> {
        let s = size as f32;
        let at = |i: usize| (i as f32 + 0.5) / s;
        let mut out = vec![base; size * size];
        match self {
            Backdrop::Plain => {}
            Backdrop::Texture {
                cycles,
                weave,
                blotch,
                grid,
            } => {
                let wave: Vec<f32> = (0..size)
                    .map(|i| (at(i) * cycles * std::f32::consts::TAU).sin())
                    .collect();
                // Bilinear blotches over the frame's 6x6 grid.
                let cell = |i: usize| {
                    let t = at(i) * 5.0;
                    let k = (t.floor() as usize).min(4);
                    (k, t - k as f32)
                };
                for (j, row) in out.chunks_mut(size).enumerate() {
                    let (gy, ty) = cell(j);
                    for (i, p) in row.iter_mut().enumerate() {
                        let (gx, tx) = cell(i);
                        let g = |y: usize, x: usize| grid[y * 6 + x];
                        let top = g(gy, gx) + (g(gy, gx + 1) - g(gy, gx)) * tx;
                        let bottom = g(gy + 1, gx) + (g(gy + 1, gx + 1) - g(gy + 1, gx)) * tx;
                        let v = weave * 0.5 * (wave[i] + wave[j])
                            + blotch * (top + (bottom - top) * ty);
                        *p = p.map(|c| c + v);
                    }
                }
            }
            Backdrop::Split { horizon, floor } => {
                for (j, row) in out.chunks_mut(size).enumerate() {
                    // Soft over about a pixel and a half.
                    let t = ((at(j) - horizon) * s / 1.5 + 0.5).clamp(0.0, 1.0);
                    row.fill(lerp(base, *floor, t));
                }
            }
            Backdrop::Studio { glow } => {
                for (j, row) in out.chunks_mut(size).enumerate() {
                    let dy = at(j) - 0.45;
                    for (i, p) in row.iter_mut().enumerate() {
                        let dx = at(i) - 0.5;
                        let k = 1.0 + glow * (1.0 - 2.2 * (dx * dx + dy * dy));
                        *p = p.map(|c| c * k);
                    }
                }
            }
        }
        out
    }
}

/// Framing treats a garment smaller than this (in garment units) as this large, so a cropped top
/// is not blown up to the size of a maxi dress and its length stays readable.
const MIN_EXTENT: f32 = 0.7;

/// Draws the product as a photo might show it ([`Variation::Photo`]).
fn render_photo(product: &Product, size: u32) -> RgbImage {
    let n = size.max(1) as usize;
    let s = n as f32;
    let a = &product.attrs;
    let mut rng = Rng::new(mix(product.seed ^ PHOTO_STREAM));

    let shape = Shape::photo(&mut rng);
    let g = Garment::new(product.category, a.sleeve, a.neckline, a.hem, &shape);
    let bb = g.bbox();

    // Framing: turned a few degrees, most often a little; the garment (its turned bounds) 60-100%
    // of the frame, most often more; a little off-centre; sometimes closer, cut at the bottom or
    // the sides, never at the neck.
    let turn = (1.0 + 14.0 * rng.unit().powf(1.5)).to_radians();
    let turn = if rng.unit() < 0.5 { -turn } else { turn };
    let (sin, cos) = turn.sin_cos();
    let (w, h) = (bb[2] - bb[0], bb[3] - bb[1]);
    let (w, h) = (cos.abs() * w + sin.abs() * h, sin.abs() * w + cos.abs() * h);
    let mut scale = (1.0 - 0.4 * rng.unit().powi(2)) / w.max(h).max(MIN_EXTENT);
    let room = |extent: f32, most: f32| ((1.0 - extent * scale) / 2.0).clamp(0.0, most);
    let mut target = (
        0.5 + rng.range(-1.0, 1.0) * room(w, 0.06),
        0.5 + rng.range(-1.0, 1.0) * room(h, 0.05),
    );
    if rng.unit() < 0.15 {
        scale *= rng.range(1.08, 1.25);
        // Keep the top in view.
        target.1 = target.1.max(0.03 + h * scale / 2.0);
    }
    let centre = ((bb[0] + bb[2]) / 2.0, (bb[1] + bb[3]) / 2.0);
    let shade = rng.range(0.94, 1.04);
    let phase = (rng.range(0.0, 0.1), rng.range(0.0, 0.1));
    let (backdrop, bg) = Backdrop::draw(&mut rng);

    // Shadow: the garment's silhouette, blurred, cast down and to one side.
    let shadow = (rng.unit() < 0.85).then(|| {
        let shift = (
            (rng.range(-0.05, 0.05) * s).round() as isize,
            (rng.range(0.01, 0.06) * s).round() as isize,
        );
        let radius = ((rng.range(0.02, 0.05) * s).round() as usize).max(1);
        (shift, radius, rng.range(0.15, 0.35))
    });

    // Light: exposure, contrast, white balance and a gradient across the frame, all moderate so
    // a colour stays itself.
    let brightness = rng.range(0.9, 1.1);
    let contrast = rng.range(0.88, 1.1);
    let balance = [rng.range(0.97, 1.03), 1.0, rng.range(0.97, 1.03)];
    let (gsin, gcos) = rng.range(0.0, std::f32::consts::TAU).sin_cos();
    let gradient = rng.range(0.04, 0.22);
    // Sensor: a mild blur half the time, always a little noise.
    let blur = if rng.unit() < 0.55 {
        rng.range(0.2, 0.7)
    } else {
        0.0
    };
    let sigma = rng.range(0.6, 3.5);

    let rgb = a.colour.rgb();
    let look = Look {
        base: rgb.map(|c| (c as f32 * shade).min(255.0)),
        second: if a.colour.luminance() > 0.45 {
            [35.0, 35.0, 40.0]
        } else {
            [238.0, 236.0, 230.0]
        },
        pattern: a.pattern,
        material: a.material,
        phase,
    };

    // The garment: its colour and how much of each pixel it covers.
    let px = 1.0 / (s * scale);
    let mut fg = vec![[0.0f32; 3]; n * n];
    let mut cover = vec![0.0f32; n * n];
    let mut noise = Rng::new(product.seed ^ PHOTO_NOISE);
    for j in 0..n {
        let fy = (j as f32 + 0.5) / s - target.1;
        for i in 0..n {
            let fx = (i as f32 + 0.5) / s - target.0;
            // Frame to garment: undo the offset, the turn and the scale.
            let x = centre.0 + (cos * fx + sin * fy) / scale;
            let y = centre.1 + (cos * fy - sin * fx) / scale;
            if x < bb[0] - px || x > bb[2] + px || y < bb[1] - px || y > bb[3] + px {
                continue;
            }
            let grain = if look.material == Material::Denim {
                noise.unit()
            } else {
                0.5
            };
            if let Some((c, k)) = garment_pixel(&g, &look, x, y, px, grain) {
                fg[j * n + i] = c;
                cover[j * n + i] = k;
            }
        }
    }

    let mut img = backdrop.fill(bg, n);
    if let Some(((sx, sy), radius, strength)) = shadow {
        let mut cast = vec![0.0f32; n * n];
        for j in 0..n {
            let Some(from_j) = j.checked_add_signed(-sy).filter(|&v| v < n) else {
                continue;
            };
            for i in 0..n {
                if let Some(from_i) = i.checked_add_signed(-sx).filter(|&v| v < n) {
                    cast[j * n + i] = cover[from_j * n + from_i];
                }
            }
        }
        for _ in 0..2 {
            box_blur(&mut cast, n, radius);
        }
        for (p, c) in img.iter_mut().zip(&cast) {
            *p = p.map(|v| v * (1.0 - strength * c));
        }
    }
    for ((p, c), &k) in img.iter_mut().zip(&fg).zip(&cover) {
        if k > 0.0 {
            *p = lerp(*p, *c, k);
        }
    }

    // Light over everything, as the camera sees it.
    for (j, row) in img.chunks_mut(n).enumerate() {
        let fy = (j as f32 + 0.5) / s - 0.5;
        for (i, p) in row.iter_mut().enumerate() {
            let fx = (i as f32 + 0.5) / s - 0.5;
            let light = brightness * (1.0 + 2.0 * gradient * (gcos * fx + gsin * fy));
            for (v, w) in p.iter_mut().zip(balance) {
                *v = (*v * light * w - 128.0) * contrast + 128.0;
            }
        }
    }
    if blur > 0.0 {
        // A binomial blur per 64 pixels of size, so it looks the same at any size.
        // Below 64 pixels one pass is already wider; mix in less of it.
        let passes = ((s / 64.0).round() as usize).max(1);
        let blur = blur * (s / 64.0).min(1.0);
        let mut soft = img.clone();
        for _ in 0..passes {
            binomial_blur(&mut soft, n);
        }
        for (p, q) in img.iter_mut().zip(&soft) {
            *p = lerp(*p, *q, blur);
        }
    }

    let mut grain = Rng::new(mix(product.seed ^ PHOTO_GRAIN));
    let mut out = RgbImage::new(n as u32, n as u32);
    for (o, p) in out.pixels_mut().zip(&img) {
        // Six 10-bit uniforms; two to a channel give a triangular noise of deviation `sigma`.
        let r = grain.next_u64();
        let u = |k: u32| ((r >> (10 * k)) & 0x3ff) as f32 / 1024.0;
        let k = sigma * 2.45;
        *o = Rgb([
            (p[0] + k * (u(0) + u(1) - 1.0)).clamp(0.0, 255.0) as u8,
            (p[1] + k * (u(2) + u(3) - 1.0)).clamp(0.0, 255.0) as u8,
            (p[2] + k * (u(4) + u(5) - 1.0)).clamp(0.0, 255.0) as u8,
        ]);
    }
    out
}

/// Box blur of radius `r` across rows then columns, zero outside the frame.
fn box_blur(v: &mut [f32], n: usize, r: usize) {
    let norm = 1.0 / (2 * r + 1) as f32;
    let mut line = vec![0.0f32; n];
    // One line of `n` values, `stride` apart from `start`.
    let mut pass = |v: &mut [f32], start: usize, stride: usize| {
        for (k, l) in line.iter_mut().enumerate() {
            *l = v[start + k * stride];
        }
        let mut sum: f32 = line.iter().take(r + 1).sum();
        for k in 0..n {
            v[start + k * stride] = sum * norm;
            if k + r + 1 < n {
                sum += line[k + r + 1];
            }
            if k >= r {
                sum -= line[k - r];
            }
        }
    };
    for j in 0..n {
        pass(v, j * n, 1);
    }
    for i in 0..n {
        pass(v, i, n);
    }
}

/// A 3x3 binomial blur ([1 2 1] / 4 each way), edges repeated.
fn binomial_blur(v: &mut [[f32; 3]], n: usize) {
    let mut tmp = v.to_vec();
    let mix3 = |a: [f32; 3], b: [f32; 3], c: [f32; 3]| {
        [0, 1, 2].map(|k| 0.25 * a[k] + 0.5 * b[k] + 0.25 * c[k])
    };
    for j in 0..n {
        for i in 0..n {
            let at = |x: usize| v[j * n + x];
            tmp[j * n + i] = mix3(at(i.saturating_sub(1)), at(i), at((i + 1).min(n - 1)));
        }
    }
    for j in 0..n {
        for i in 0..n {
            let at = |y: usize| tmp[y * n + i];
            v[j * n + i] = mix3(at(j.saturating_sub(1)), at(j), at((j + 1).min(n - 1)));
        }
    }
}

#[inline]
fn shade_pixel(
    g: &Garment,
    look: &Look,
    x: f32,
    y: f32,
    px: f32,
    noise: f32,
    bg: [f32; 3],
) -> [f32; 3] {
    match garment_pixel(g, look, x, y, px, noise) {
        Some((c, coverage)) => lerp(bg, c, coverage),
        None => bg,
    }
}

/// The garment's colour at a point and how much of the pixel it covers; `None` off the garment.
#[inline]
fn garment_pixel(
    g: &Garment,
    look: &Look,
    x: f32,
    y: f32,
    px: f32,
    noise: f32,
) -> Option<([f32; 3], f32)> {
    let body = g.body.dist(x, y, px);
    let mut d = body;
    if let Some(skirt) = &g.skirt {
        d = d.max(skirt.dist(x, y, px));
    }
    if let Some(yoke) = &g.yoke {
        d = d.max(yoke.dist(x, y, px));
    }
    let mut sleeve = -1.0f32;
    if let Some(sleeves) = &g.sleeves {
        sleeve = sleeves[0].dist(x, y, px).max(sleeves[1].dist(x, y, px));
        d = d.max(sleeve);
    }
    let neck = match &g.neck {
        Neck::Round { cy, r } => circle(x, y, 0.0, *cy, *r),
        Neck::V(v) => v.dist(x, y, px),
    };
    d = d.min(-neck);
    let mut collar = -1.0f32;
    if let Some(c) = &g.collar {
        collar = c[0].dist(x, y, px).max(c[1].dist(x, y, px));
        d = d.max(collar);
    }
    let coverage = (d / px + 0.5).clamp(0.0, 1.0);
    if coverage <= 0.0 {
        return None;
    }

    let mut c = lerp(look.base, look.second, look.pattern(x, y));
    let (k, gloss) = look.material(x, y, noise);
    c = lerp(c.map(|v| v * k), [255.0; 3], gloss.min(1.0));
    if collar > 0.0 {
        c = lerp(c, [255.0; 3], 0.25);
    }
    // Dark lines: the outline, the armhole seam, the collar edge and a shirt's button placket.
    let mut line = (1.2 - d / px).clamp(0.0, 1.0);
    if sleeve > 0.0 && body.abs() < px * 0.8 {
        line = line.max(0.6);
    }
    if collar > 0.0 && collar < px {
        line = line.max(0.8);
    }
    if g.placket && x.abs() < px * 0.6 && y > -0.28 && collar <= 0.0 {
        line = line.max(0.5);
    }
    c = c.map(|v| v * (1.0 - 0.55 * line));
    Some((c, coverage))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attributes::{Attributes, Colour, Split};
    use crate::measure::garment_colour;
    use crate::{CatalogConfig, generate};

    /// FNV-1a over the sizes and pixels of images.
    fn pixel_hash(images: impl Iterator<Item = RgbImage>) -> u64 {
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        for img in images {
            let size = img.width().to_le_bytes();
            for &b in size.iter().chain(img.as_raw()) {
                h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
            }
        }
        h
    }

    /// One product of every category and attribute combination, colours in turn.
    fn every_combination() -> Vec<Product> {
        let mut all = Vec::new();
        for &category in Category::ALL {
            for &sleeve in Sleeve::ALL {
                for &neckline in Neckline::ALL {
                    for &hem in Hem::ALL {
                        for &pattern in Pattern::ALL {
                            for &material in Material::ALL {
                                let n = all.len() as u64;
                                let colour = Colour::ALL[n as usize % Colour::ALL.len()];
                                all.push(Product {
                                    id: format!("t-{n:07}"),
                                    category,
                                    attrs: Attributes {
                                        colour,
                                        pattern,
                                        sleeve,
                                        neckline,
                                        hem,
                                        material,
                                    },
                                    split: Split::Train,
                                    seed: mix(n),
                                });
                            }
                        }
                    }
                }
            }
        }
        all
    }

    fn photo_catalog(products: usize) -> crate::Catalog {
        generate(&CatalogConfig {
            products,
            variation: Variation::Photo,
            ..CatalogConfig::default()
        })
    }

    /// Hashes taken with the renderer as it was before variations existed: Clean drawings must
    /// stay bit-for-bit the same, whichever way they are asked for.
    #[test]
    fn clean_drawings_are_unchanged() {
        let cat = generate(&CatalogConfig {
            products: 60,
            ..CatalogConfig::default()
        });
        assert_eq!(cat.variation, Variation::Clean);
        let sizes = [8u32, 32, 64, 100];
        let plain = sizes
            .into_iter()
            .flat_map(|s| cat.products.iter().map(move |p| render(p, s)));
        assert_eq!(pixel_hash(plain), 0xeff0_6f76_b8c1_1c4c);
        let chosen = sizes.into_iter().flat_map(|s| {
            cat.products
                .iter()
                .map(move |p| p.render_as(s, Variation::Clean))
        });
        assert_eq!(pixel_hash(chosen), 0xeff0_6f76_b8c1_1c4c);

        let all = every_combination();
        assert_eq!(all.len(), 1944);
        assert_eq!(
            pixel_hash(all.iter().map(|p| render(p, 24))),
            0x43cd_46b6_1605_c2fd
        );
        let cat = generate(&CatalogConfig {
            products: 60,
            image_size: 32,
            ..CatalogConfig::default()
        });
        let by_id = cat.products.iter().map(|p| cat.render(&p.id).unwrap());
        let direct = cat.products.iter().map(|p| p.render(32));
        assert_eq!(pixel_hash(by_id), pixel_hash(direct));
    }

    #[test]
    fn photo_differs_from_clean_and_is_deterministic() {
        let cat = photo_catalog(30);
        assert_eq!(cat.variation, Variation::Photo);
        for p in &cat.products {
            let photo = cat.image(p);
            assert_eq!(photo.dimensions(), (64, 64));
            assert_ne!(photo, p.render(64), "{}", p.id);
            assert_eq!(photo, p.render_as(64, Variation::Photo), "{}", p.id);
            assert_eq!(Some(&photo), cat.render(&p.id).as_ref());
        }
        // The whole catalog again, bytes included.
        let again = photo_catalog(30);
        assert_eq!(
            pixel_hash(cat.products.iter().map(|p| cat.image(p))),
            pixel_hash(again.products.iter().map(|p| again.image(p)))
        );
        // Another seed, another photo.
        let p = &cat.products[0];
        let other = Product {
            seed: p.seed ^ 1,
            ..p.clone()
        };
        assert_ne!(cat.image(p), other.render_as(64, Variation::Photo));
        // Every size renders, tiny ones included.
        for size in [1, 2, 8, 17, 256] {
            let img = p.render_as(size, Variation::Photo);
            assert_eq!(img.dimensions(), (size, size));
        }
    }

    #[test]
    fn photo_backgrounds_vary() {
        let cat = photo_catalog(60);
        // The top-left corner: background in nearly every framing.
        let corners: Vec<f32> = cat
            .products
            .iter()
            .map(|p| {
                let img = cat.image(p);
                let mut sum = 0.0;
                for y in 0..3 {
                    for x in 0..3 {
                        sum += img
                            .get_pixel(x, y)
                            .0
                            .iter()
                            .map(|&v| f32::from(v))
                            .sum::<f32>();
                    }
                }
                sum / 27.0
            })
            .collect();
        let lightest = corners.iter().copied().fold(f32::MIN, f32::max);
        let darkest = corners.iter().copied().fold(f32::MAX, f32::min);
        assert!(lightest > 225.0 && darkest < 170.0, "{corners:?}");
        let distinct: std::collections::HashSet<i32> =
            corners.iter().map(|&c| (c / 4.0) as i32).collect();
        assert!(distinct.len() >= 15, "{corners:?}");
    }

    /// The garment's colour survives the light, the backdrop and the framing: the evaluation's
    /// measure reads it back about as often as from Clean drawings.
    #[test]
    fn photo_colours_read_back() {
        let cat = photo_catalog(200);
        let hits = |variation| {
            cat.products
                .iter()
                .filter(|p| {
                    let img = p.render_as(64, variation);
                    garment_colour(&img, Colour::ALL) == Some(p.attrs.colour)
                })
                .count() as f64
                / cat.products.len() as f64
        };
        let (photo, clean) = (hits(Variation::Photo), hits(Variation::Clean));
        println!("colour read back: photo {photo:.3}, clean {clean:.3}");
        assert!(photo >= 0.9, "photo {photo}, clean {clean}");
    }

    /// Patterns still show: striped, checked and zebra garments have more contrast between
    /// neighbouring torso pixels than solid ones.
    #[test]
    fn photo_patterns_show() {
        let cat = photo_catalog(600);
        let mut energy: std::collections::HashMap<Pattern, (f64, usize)> = Default::default();
        for p in &cat.products {
            let img = cat.image(p);
            let luma = |x: u32, y: u32| {
                let [r, g, b] = img.get_pixel(x, y).0.map(f64::from);
                0.299 * r + 0.587 * g + 0.114 * b
            };
            // The torso, where measure.rs reads the colour: squared steps to the next pixel down
            // and to the right.
            let mut e = 0.0;
            for y in 24..36 {
                for x in 24..40 {
                    e += (luma(x, y + 1) - luma(x, y)).powi(2)
                        + (luma(x + 1, y) - luma(x, y)).powi(2);
                }
            }
            let slot = energy.entry(p.attrs.pattern).or_default();
            slot.0 += e / 192.0;
            slot.1 += 1;
        }
        let mean = |pattern| {
            let (sum, n) = energy[&pattern];
            sum / n as f64
        };
        let solid = mean(Pattern::Solid);
        for pattern in [
            Pattern::Stripes,
            Pattern::Checks,
            Pattern::Zebra,
            Pattern::Dots,
        ] {
            println!("{pattern}: {:.0} (solid {solid:.0})", mean(pattern));
            assert!(
                mean(pattern) > 2.0 * solid,
                "{pattern}: {} vs solid {solid}",
                mean(pattern)
            );
        }
    }

    /// Silhouettes vary within a value, and the values stay apart: every drawn hem of one length
    /// lies above every hem of the next, every short sleeve is shorter than every long one.
    #[test]
    fn photo_shapes_keep_values_apart() {
        let mut rng = Rng::new(7);
        let shapes: Vec<Shape> = (0..400).map(|_| Shape::photo(&mut rng)).collect();
        let range = |f: &dyn Fn(&Shape) -> f32| {
            shapes
                .iter()
                .map(f)
                .fold((f32::MAX, f32::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)))
        };
        for &category in Category::ALL {
            let hem = |hem| {
                range(&|s| {
                    Garment::new(category, Sleeve::Sleeveless, Neckline::Crew, hem, s).bbox()[3]
                })
            };
            let (short, medium, long) = (hem(Hem::Short), hem(Hem::Medium), hem(Hem::Long));
            assert!(
                short.1 + 0.05 < medium.0 && medium.1 + 0.05 < long.0,
                "{category}"
            );
            assert!(short.1 - short.0 > 0.04, "{category}: lengths vary");
            let width = range(&|s| {
                Garment::new(category, Sleeve::Short, Neckline::Crew, Hem::Medium, s)
                    .body
                    .bbox[2]
            });
            assert!(width.1 - width.0 > 0.03, "{category}: widths vary");
        }
        // A sleeve's length: from the shoulder seam to the farthest point of the cuff.
        let reach = |sleeve| {
            range(&|s| {
                let g = Garment::new(Category::Shirt, sleeve, Neckline::Crew, Hem::Medium, s);
                let [_, right] = g.sleeves.expect("sleeves");
                let b = right.bbox;
                ((b[2] - b[0]).powi(2) + (b[3] - b[1]).powi(2)).sqrt()
            })
        };
        let (short, long) = (reach(Sleeve::Short), reach(Sleeve::Long));
        assert!(short.1 + 0.1 < long.0, "short {short:?}, long {long:?}");
    }

    #[test]
    fn variation_names_round_trip() {
        assert_eq!(Variation::default(), Variation::Clean);
        for &v in Variation::ALL {
            assert_eq!(v.to_string().parse::<Variation>(), Ok(v));
        }
        assert_eq!("photo".parse::<Variation>(), Ok(Variation::Photo));
        let err = "film".parse::<Variation>().unwrap_err();
        assert_eq!(err.to_string(), "unknown variation \"film\"");
    }

    /// Writes 32 Photo products at 64x64 as a grid to the temp folder's varied.png.
    #[test]
    #[ignore = "writes a preview; run by hand"]
    fn photo_preview() {
        let cat = photo_catalog(32);
        let images: Vec<RgbImage> = cat.products.iter().map(|p| cat.image(p)).collect();
        let path = std::env::temp_dir().join("varied.png");
        std::fs::write(&path, crate::image_io::grid_png(&images, 8, 2).unwrap()).unwrap();
        println!("{}", path.display());
        for p in &cat.products {
            println!("{} {}", p.id, p.attrs.describe(p.category));
        }
    }
}
