//! The synthetic catalog: products with known attributes, (candidate, target) pairs that differ in
//! one or two attributes, and relative captions in the style of Fashion-IQ.

use std::collections::HashMap;

use image::RgbImage;

use crate::attributes::{
    AttributeKind, Attributes, Category, Colour, Hem, Material, Neckline, Pattern, Sleeve, Split,
};
use crate::captions::captions;
use crate::rng::Rng;

pub use crate::render::Variation;

pub const DEFAULT_IMAGE_SIZE: u32 = 64;
pub const MIN_IMAGE_SIZE: u32 = 8;
pub const MAX_IMAGE_SIZE: u32 = 1024;

/// What to generate. Everything follows from `seed`.
#[derive(Clone, Debug, PartialEq)]
pub struct CatalogConfig {
    pub seed: u64,
    pub products: usize,
    /// Pairs per product; each pair takes a target no other pair uses, so at most about 1.
    pub pairs_per_product: f32,
    /// Side of the square images, in pixels.
    pub image_size: u32,
    pub categories: Vec<Category>,
    /// Shares of train, val and test; need not sum to 1.
    pub split_shares: [f32; 3],
    /// How the images are drawn: clean drawings, or varied as product photos are.
    pub variation: Variation,
}

impl Default for CatalogConfig {
    fn default() -> Self {
        CatalogConfig {
            seed: 42,
            products: 1000,
            pairs_per_product: 0.5,
            image_size: DEFAULT_IMAGE_SIZE,
            categories: Category::ALL.to_vec(),
            split_shares: [0.8, 0.1, 0.1],
            variation: Variation::Clean,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Product {
    /// Unique, and usable as a file name: "dress-0000042".
    pub id: String,
    pub category: Category,
    pub attrs: Attributes,
    pub split: Split,
    /// Seeds the image's jitter.
    pub seed: u64,
}

impl Product {
    /// Draws the product's clean image ([`Variation::Clean`]); see [`crate::render`].
    pub fn render(&self, size: u32) -> RgbImage {
        crate::render::render(self, size)
    }

    /// Draws the product's image as `variation` says.
    pub fn render_as(&self, size: u32, variation: Variation) -> RgbImage {
        crate::render::render_as(self, size, variation)
    }
}

/// A relative caption pair: `target` is `candidate` changed as the captions say.
#[derive(Clone, Debug, PartialEq)]
pub struct Pair {
    pub candidate: String,
    pub target: String,
    pub captions: [String; 2],
    pub category: Category,
    pub split: Split,
    /// The attributes that differ, in [`AttributeKind::ALL`] order.
    pub changed: Vec<AttributeKind>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Catalog {
    pub products: Vec<Product>,
    pub pairs: Vec<Pair>,
    pub image_size: u32,
    /// How the catalog's images are drawn.
    pub variation: Variation,
}

impl Catalog {
    /// The product with this id.
    pub fn get(&self, id: &str) -> Option<&Product> {
        // Ids end in the product's index; check it is really that product.
        let index: usize = id.rsplit('-').next()?.parse().ok()?;
        self.products.get(index).filter(|p| p.id == id)
    }

    /// The image of the product with this id, at the catalog's size and in its variation.
    pub fn render(&self, id: &str) -> Option<RgbImage> {
        self.get(id).map(|p| self.image(p))
    }

    /// The image of a product of this catalog, at the catalog's size and in its variation.
    pub fn image(&self, product: &Product) -> RgbImage {
        product.render_as(self.image_size, self.variation)
    }
}

const STREAM_PRODUCT: u64 = 1;
const STREAM_PAIR: u64 = 2;
const STREAM_CAPTION: u64 = 3;

fn random_attributes(rng: &mut Rng) -> Attributes {
    Attributes {
        colour: *rng.pick(Colour::ALL),
        pattern: *rng.pick(Pattern::ALL),
        sleeve: *rng.pick(Sleeve::ALL),
        neckline: *rng.pick(Neckline::ALL),
        hem: *rng.pick(Hem::ALL),
        material: *rng.pick(Material::ALL),
    }
}

/// Changes one attribute to a different value.
fn change(attrs: &mut Attributes, kind: AttributeKind, rng: &mut Rng) {
    fn other<T: Copy + PartialEq>(all: &[T], now: T, rng: &mut Rng) -> T {
        let rest: Vec<T> = all.iter().copied().filter(|&v| v != now).collect();
        *rng.pick(&rest)
    }
    match kind {
        AttributeKind::Colour => attrs.colour = other(Colour::ALL, attrs.colour, rng),
        AttributeKind::Pattern => attrs.pattern = other(Pattern::ALL, attrs.pattern, rng),
        AttributeKind::Sleeve => attrs.sleeve = other(Sleeve::ALL, attrs.sleeve, rng),
        AttributeKind::Neckline => attrs.neckline = other(Neckline::ALL, attrs.neckline, rng),
        AttributeKind::Hem => attrs.hem = other(Hem::ALL, attrs.hem, rng),
        AttributeKind::Material => attrs.material = other(Material::ALL, attrs.material, rng),
    }
}

/// Colour changes are what shoppers ask for most, so they are drawn more often.
const CHANGE_WEIGHTS: [(AttributeKind, u32); 6] = [
    (AttributeKind::Colour, 4),
    (AttributeKind::Pattern, 2),
    (AttributeKind::Sleeve, 2),
    (AttributeKind::Neckline, 1),
    (AttributeKind::Hem, 1),
    (AttributeKind::Material, 2),
];

fn pick_change(rng: &mut Rng, except: Option<AttributeKind>) -> AttributeKind {
    let weights: Vec<(AttributeKind, u32)> = CHANGE_WEIGHTS
        .iter()
        .copied()
        .filter(|&(k, _)| Some(k) != except)
        .collect();
    let total: u32 = weights.iter().map(|w| w.1).sum();
    let mut r = rng.below(total as usize) as u32;
    for (k, w) in weights {
        if r < w {
            return k;
        }
        r -= w;
    }
    unreachable!("weights cover the range")
}

fn pick_split(rng: &mut Rng, shares: [f32; 3]) -> Split {
    let shares = shares.map(|s| if s.is_finite() { s.max(0.0) } else { 0.0 });
    let total: f32 = shares.iter().sum();
    if total <= 0.0 {
        return Split::Train;
    }
    let r = rng.unit() * total;
    if r < shares[0] {
        Split::Train
    } else if r < shares[0] + shares[1] {
        Split::Val
    } else {
        Split::Test
    }
}

/// Generates a catalog. Deterministic: the same config gives the same catalog. Images are not
/// drawn here; render them with [`Product::render`] when needed.
pub fn generate(cfg: &CatalogConfig) -> Catalog {
    let categories = if cfg.categories.is_empty() {
        Category::ALL.to_vec()
    } else {
        cfg.categories.clone()
    };
    let mut products: Vec<Product> = (0..cfg.products)
        .map(|i| {
            let mut rng = Rng::for_item(cfg.seed, STREAM_PRODUCT, i as u64);
            let category = *rng.pick(&categories);
            let split = pick_split(&mut rng, cfg.split_shares);
            let attrs = random_attributes(&mut rng);
            let seed = rng.next_u64();
            Product {
                id: format!("{}-{i:07}", category.name()),
                category,
                attrs,
                split,
                seed,
            }
        })
        .collect();

    // Pairs stay within a category and a split, as in Fashion-IQ.
    let mut groups: HashMap<(Category, Split), Vec<usize>> = HashMap::new();
    for (i, p) in products.iter().enumerate() {
        groups.entry((p.category, p.split)).or_default().push(i);
    }
    let mut keys: Vec<_> = groups.keys().copied().collect();
    keys.sort();

    let wanted = (cfg.products as f64 * cfg.pairs_per_product.max(0.0) as f64).round() as usize;
    let mut rng = Rng::for_item(cfg.seed, STREAM_PAIR, 0);
    // A target's attributes are rewritten from its candidate's, so a product that is already in
    // a pair must not become a target again.
    let mut used = vec![false; products.len()];
    let mut free: HashMap<(Category, Split), Vec<usize>> = HashMap::new();
    for key in &keys {
        let mut members = groups[key].clone();
        for k in (1..members.len()).rev() {
            members.swap(k, rng.below(k + 1));
        }
        free.insert(*key, members);
    }
    // Spread pairs over groups in proportion to their size.
    let mut plan: Vec<(Category, Split)> = Vec::new();
    for key in &keys {
        let share = groups[key].len() as f64 / cfg.products.max(1) as f64;
        plan.extend(std::iter::repeat_n(
            *key,
            (share * wanted as f64).round() as usize,
        ));
    }
    let mut in_pairs: HashMap<(Category, Split), Vec<usize>> = HashMap::new();
    let mut pairs = Vec::new();
    for (n, key) in plan.into_iter().enumerate() {
        let members = &groups[&key];
        if members.len() < 2 {
            continue;
        }
        let pool = free.get_mut(&key).expect("every group has a pool");
        let target = loop {
            match pool.pop() {
                Some(t) if used[t] => continue,
                other => break other,
            }
        };
        let Some(target) = target else { continue };
        let reused = in_pairs.entry(key).or_default();
        let candidate = loop {
            // Half the time reuse a product that is already in a pair, as Fashion-IQ does; it
            // also leaves more free products to become targets.
            let c = if !reused.is_empty() && rng.unit() < 0.5 {
                reused[rng.below(reused.len())]
            } else {
                members[rng.below(members.len())]
            };
            if c != target {
                break c;
            }
        };
        for i in [candidate, target] {
            if !used[i] {
                used[i] = true;
                reused.push(i);
            }
        }

        let first = pick_change(&mut rng, None);
        let mut attrs = products[candidate].attrs;
        change(&mut attrs, first, &mut rng);
        if rng.unit() < 0.4 {
            // Colour with material ("in black leather") is the commonest double wish.
            let second = match first {
                AttributeKind::Colour if rng.unit() < 0.5 => AttributeKind::Material,
                AttributeKind::Material if rng.unit() < 0.5 => AttributeKind::Colour,
                _ => pick_change(&mut rng, Some(first)),
            };
            change(&mut attrs, second, &mut rng);
        }
        products[target].attrs = attrs;
        let before = products[candidate].attrs;
        let mut caption_rng = Rng::for_item(cfg.seed, STREAM_CAPTION, n as u64);
        pairs.push(Pair {
            candidate: products[candidate].id.clone(),
            target: products[target].id.clone(),
            captions: captions(key.0, &before, &attrs, &mut caption_rng),
            category: key.0,
            split: key.1,
            changed: before.diff(&attrs),
        });
    }
    Catalog {
        products,
        pairs,
        image_size: cfg.image_size.clamp(MIN_IMAGE_SIZE, MAX_IMAGE_SIZE),
        variation: cfg.variation,
    }
}
