//! What can be read back from the pixels of a garment picture (a catalog image or a synthesized
//! one): its colour. The evaluation uses it to check that a synthesized image shows the colour a
//! wish asked for.

use image::RgbImage;

use crate::attributes::Colour;

/// The named colour nearest to `rgb` among `palette` (Euclidean in sRGB).
pub fn nearest_colour(rgb: [f32; 3], palette: &[Colour]) -> Option<Colour> {
    let dist = |c: &Colour| {
        c.rgb()
            .iter()
            .zip(rgb)
            .map(|(&a, b)| (f32::from(a) - b).powi(2))
            .sum::<f32>()
    };
    palette
        .iter()
        .copied()
        .min_by(|a, b| dist(a).total_cmp(&dist(b)))
}

fn nearest_index(rgb: [f32; 3], palette: &[Colour]) -> usize {
    let c = nearest_colour(rgb, palette).expect("a palette");
    palette
        .iter()
        .position(|&q| q == c)
        .expect("from the palette")
}

/// The pattern colour the catalog draws on a garment of colour `c` (dark on light colours, light
/// on dark ones).
fn second_colour(c: Colour) -> [f32; 3] {
    if c.luminance() > 0.45 {
        [35.0, 35.0, 40.0]
    } else {
        [238.0, 236.0, 230.0]
    }
}

/// The garment's colour. Each pixel of two torso patches (left and right of the centre line,
/// below the neckline, where every category's body is and no outline, seam or placket runs)
/// votes for the named colour that explains it best: a colour explains a pixel when the pixel is
/// near that colour, or near its mix with the pattern colour drawn on it, under the shading the
/// materials give (darker leather, lighter knit rows). The most votes win. Pure pattern pixels
/// scatter their votes, so the garment colour wins whenever it covers a good part of the torso,
/// which it does in every pattern. `None` for an image too small to have patches.
pub fn garment_colour(img: &RgbImage, palette: &[Colour]) -> Option<Colour> {
    let s = img.width().min(img.height()) as f32;
    if s < 8.0 || palette.is_empty() {
        return None;
    }
    // Every (palette colour, shading, pattern mix) the pixels are compared with.
    // Pure pattern pixels (index `palette.len()`) abstain, unless nearly all pixels do: then the
    // garment is of the pattern colour itself (black, white), and they vote for it.
    let abstain = palette.len();
    let mut points: Vec<(usize, [f32; 3])> = Vec::new();
    for second in [[35.0f32, 35.0, 40.0], [238.0, 236.0, 230.0]] {
        for k in [0.8f32, 0.9, 1.0, 1.08] {
            points.push((abstain, second.map(|v| (v * k).min(255.0))));
        }
    }
    for (i, &c) in palette.iter().enumerate() {
        let (base, second) = (c.rgb().map(f32::from), second_colour(c));
        for k in [0.8f32, 0.9, 1.0, 1.08] {
            for t in [0.0f32, 0.45] {
                let p = [0, 1, 2].map(|j| ((base[j] + (second[j] - base[j]) * t) * k).min(255.0));
                points.push((i, p));
            }
        }
    }
    let span = |a: f32, b: f32| ((a * s).floor() as u32, ((b * s).ceil() as u32).max(1));
    let (y0, y1) = span(0.36, 0.56);
    let mut votes = vec![0usize; palette.len() + 1];
    let mut abstained = Vec::new();
    for (x0, x1) in [span(0.38, 0.46), span(0.54, 0.62)] {
        for y in y0..y1.min(img.height()) {
            for x in x0..x1.min(img.width()) {
                let px = img.get_pixel(x, y).0.map(f32::from);
                let d = |q: &[f32; 3]| (0..3).map(|j| (q[j] - px[j]).powi(2)).sum::<f32>();
                if let Some((i, _)) = points.iter().min_by(|a, b| d(&a.1).total_cmp(&d(&b.1))) {
                    votes[*i] += 1;
                    if *i == abstain {
                        abstained.push(px);
                    }
                }
            }
        }
    }
    let total: usize = votes.iter().sum();
    if votes[abstain] * 10 >= total * 8 {
        for px in abstained {
            votes[nearest_index(px, palette)] += 1;
        }
    }
    votes.truncate(palette.len());
    let (best, &n) = votes.iter().enumerate().max_by_key(|(_, n)| **n)?;
    (n > 0).then_some(palette[best])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CatalogConfig, generate};

    /// The measure read on the catalog's own images: how far it can be trusted on synthesized ones.
    #[test]
    fn reads_the_catalog_colours_back() {
        let cat = generate(&CatalogConfig {
            products: 1500,
            ..CatalogConfig::default()
        });
        for size in [32, 64] {
            let hits = cat
                .products
                .iter()
                .filter(|p| garment_colour(&p.render(size), Colour::ALL) == Some(p.attrs.colour))
                .count();
            let share = hits as f64 / cat.products.len() as f64;
            assert!(share > 0.9, "{size}x{size}: {share}");
        }
    }
}
