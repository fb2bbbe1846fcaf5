//! Rasterizes a product: a garment silhouette from convex pieces, filled with colour, pattern and
//! material texture, on a light background.
//!
//! Geometry lives in garment coordinates (x right, y down, the garment roughly within [-0.4, 0.45]),
//! so an image renders the same picture at any size. Each piece gives a signed distance (positive
//! inside); the union is their maximum, which yields one-sample antialiasing and an outline for free.

use image::{Rgb, RgbImage};

use crate::attributes::{Category, Hem, Material, Neckline, Pattern, Sleeve};
use crate::catalog::Product;
use crate::rng::Rng;

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

struct Garment {
    body: Convex<4>,
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

    fn new(category: Category, sleeve: Sleeve, neckline: Neckline, hem: Hem) -> Self {
        let top = -0.36;
        // Straps instead of shoulders when there are no sleeves.
        let narrow = if sleeve == Sleeve::Sleeveless {
            0.035
        } else {
            0.0
        };
        let (shoulder, body, skirt, placket) = match category {
            Category::Dress => {
                let w = 0.15 - narrow;
                let body = Convex::new([(-w, top), (w, top), (0.11, -0.08), (-0.11, -0.08)]);
                let (hy, hw) = match hem {
                    Hem::Short => (0.12, 0.2),
                    Hem::Medium => (0.27, 0.25),
                    Hem::Long => (0.43, 0.29),
                };
                let skirt = Convex::new([(-0.11, -0.09), (0.11, -0.09), (hw, hy), (-hw, hy)]);
                (0.15, body, Some(skirt), false)
            }
            Category::Shirt | Category::Toptee => {
                let (w, bottom) = if category == Category::Shirt {
                    (0.18, 0.17)
                } else {
                    (0.16, 0.14)
                };
                let hy = match hem {
                    Hem::Short => 0.02,
                    Hem::Medium => 0.18,
                    Hem::Long => 0.34,
                };
                let body = Convex::new([
                    (-(w - narrow), top),
                    (w - narrow, top),
                    (bottom, hy),
                    (-bottom, hy),
                ]);
                (w, body, None, category == Category::Shirt)
            }
        };
        let sleeves = match sleeve {
            Sleeve::Sleeveless => None,
            Sleeve::Short | Sleeve::Long => {
                let len = if sleeve == Sleeve::Short { 0.13 } else { 0.40 };
                let (dx, dy) = (0.5f32, 0.866f32);
                let make = |s: f32| {
                    let a = (s * (shoulder - 0.02), top - 0.005);
                    let b = (s * (shoulder - 0.03), top + 0.15);
                    // Sleeves taper toward the cuff.
                    let c = (b.0 + s * dx * len, b.1 + dy * len);
                    let d = (a.0 + s * dx * len + s * 0.06, a.1 + dy * len + 0.02);
                    if s > 0.0 {
                        Convex::new([a, d, c, b])
                    } else {
                        Convex::new([a, b, c, d])
                    }
                };
                Some([make(-1.0), make(1.0)])
            }
        };
        let neck = match neckline {
            Neckline::Crew => Neck::Round {
                cy: top - 0.02,
                r: 0.075,
            },
            Neckline::Collar => Neck::Round {
                cy: top - 0.02,
                r: 0.065,
            },
            Neckline::VNeck => Neck::V(Convex::new([
                (-0.085, top - 0.05),
                (0.085, top - 0.05),
                (0.0, top + 0.15),
            ])),
        };
        let collar = (neckline == Neckline::Collar).then(|| {
            let l = Convex::new([
                (-0.08, top - 0.005),
                (-0.005, top + 0.055),
                (-0.11, top + 0.09),
            ]);
            let r = Convex::new([
                (0.08, top - 0.005),
                (0.11, top + 0.09),
                (0.005, top + 0.055),
            ]);
            [l, r]
        });
        Garment {
            body,
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

/// Draws the product at `size`×`size`. Deterministic: the same product gives the same bytes.
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
    let g = Garment::new(product.category, a.sleeve, a.neckline, a.hem);

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
    let body = g.body.dist(x, y, px);
    let mut d = body;
    if let Some(skirt) = &g.skirt {
        d = d.max(skirt.dist(x, y, px));
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
        return bg;
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
    lerp(bg, c, coverage)
}
