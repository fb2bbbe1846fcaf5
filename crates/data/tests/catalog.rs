//! The generator: determinism, what the images show, and what the pairs and captions say.

use std::collections::HashSet;

use image::RgbImage;
use synthsearch_data::{
    AttributeKind, Attributes, Catalog, CatalogConfig, Category, Colour, Hem, Material, Neckline,
    Pattern, Product, Sleeve, Split, generate,
};

fn product(category: Category, attrs: Attributes, seed: u64) -> Product {
    Product {
        id: "t-0000000".into(),
        category,
        attrs,
        split: Split::Train,
        seed,
    }
}

fn plain(colour: Colour) -> Attributes {
    Attributes {
        colour,
        pattern: Pattern::Solid,
        sleeve: Sleeve::Long,
        neckline: Neckline::Crew,
        hem: Hem::Medium,
        material: Material::Plain,
    }
}

/// Pixels that are clearly not background (the background is light grey).
fn garment_pixels(img: &RgbImage) -> usize {
    img.pixels()
        .filter(|p| p.0.iter().map(|&v| u32::from(v)).sum::<u32>() < 3 * 200)
        .count()
}

#[test]
fn same_seed_same_catalog_and_bytes() {
    let cfg = CatalogConfig {
        products: 300,
        ..CatalogConfig::default()
    };
    let a = generate(&cfg);
    let b = generate(&cfg);
    assert_eq!(a, b);
    for p in a.products.iter().take(20) {
        assert_eq!(
            p.render(64).into_raw(),
            b.get(&p.id).unwrap().render(64).into_raw()
        );
    }
    let c = generate(&CatalogConfig {
        seed: cfg.seed + 1,
        ..cfg.clone()
    });
    assert_ne!(a.products, c.products);
}

#[test]
fn config_is_respected() {
    let cfg = CatalogConfig {
        products: 500,
        image_size: 32,
        categories: vec![Category::Dress],
        split_shares: [1.0, 1.0, 0.0],
        ..CatalogConfig::default()
    };
    let cat = generate(&cfg);
    assert_eq!(cat.products.len(), 500);
    assert!(
        cat.products
            .iter()
            .all(|p| p.category == Category::Dress && p.split != Split::Test)
    );
    let val = cat
        .products
        .iter()
        .filter(|p| p.split == Split::Val)
        .count();
    assert!((200..300).contains(&val), "about half in val, got {val}");
    assert_eq!(
        cat.render(&cat.products[7].id).unwrap().dimensions(),
        (32, 32)
    );
    let ids: HashSet<&str> = cat.products.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids.len(), 500, "ids are unique");
    assert!(cat.get("dress-9999999").is_none() && cat.get("nonsense").is_none());
}

#[test]
fn identical_attributes_still_give_different_images() {
    let a = product(Category::Shirt, plain(Colour::Red), 1).render(64);
    let b = product(Category::Shirt, plain(Colour::Red), 2).render(64);
    assert_ne!(a, b, "jitter in position, scale and shade");
}

/// Mean colour of a patch on the torso, which every category covers.
fn torso_colour(img: &RgbImage) -> [f32; 3] {
    let s = img.width() as f32;
    let (cx, cy) = ((0.5 + 0.06) * s, (0.52 - 0.15) * s);
    let mut sum = [0.0f32; 3];
    let mut n = 0.0;
    for y in (cy - 2.0) as u32..(cy + 2.0) as u32 {
        for x in (cx - 2.0) as u32..(cx + 2.0) as u32 {
            for (c, v) in sum.iter_mut().zip(img.get_pixel(x, y).0) {
                *c += f32::from(v);
            }
            n += 1.0;
        }
    }
    sum.map(|v| v / n)
}

fn nearest_colour(rgb: [f32; 3]) -> Colour {
    synthsearch_data::measure::nearest_colour(rgb, Colour::ALL).expect("a palette")
}

#[test]
fn garment_shows_its_named_colour() {
    for &category in Category::ALL {
        for &colour in Colour::ALL {
            for seed in 0..5 {
                let img = product(category, plain(colour), seed).render(64);
                let seen = torso_colour(&img);
                assert_eq!(
                    nearest_colour(seen),
                    colour,
                    "{category} seed {seed}: {seen:?}"
                );
            }
        }
    }
}

#[test]
fn sleeves_and_hems_change_the_silhouette() {
    let dark = plain(Colour::Navy);
    for &category in Category::ALL {
        let area = |sleeve| {
            garment_pixels(&product(category, Attributes { sleeve, ..dark }, 7).render(64))
        };
        let (none, short, long) = (
            area(Sleeve::Sleeveless),
            area(Sleeve::Short),
            area(Sleeve::Long),
        );
        assert!(
            none + 20 < short && short + 40 < long,
            "{category}: {none} {short} {long}"
        );
        let area =
            |hem| garment_pixels(&product(category, Attributes { hem, ..dark }, 7).render(64));
        let (s, m, l) = (area(Hem::Short), area(Hem::Medium), area(Hem::Long));
        assert!(s + 60 < m && m + 60 < l, "{category}: {s} {m} {l}");
    }
}

#[test]
fn every_attribute_change_is_visible() {
    let base = plain(Colour::Blue);
    let changed = |kind: AttributeKind| -> Attributes {
        match kind {
            AttributeKind::Colour => Attributes {
                colour: Colour::Orange,
                ..base
            },
            AttributeKind::Pattern => Attributes {
                pattern: Pattern::Dots,
                ..base
            },
            AttributeKind::Sleeve => Attributes {
                sleeve: Sleeve::Short,
                ..base
            },
            AttributeKind::Neckline => Attributes {
                neckline: Neckline::VNeck,
                ..base
            },
            AttributeKind::Hem => Attributes {
                hem: Hem::Long,
                ..base
            },
            AttributeKind::Material => Attributes {
                material: Material::Leather,
                ..base
            },
        }
    };
    for &category in Category::ALL {
        let before = product(category, base, 3).render(64);
        for &kind in AttributeKind::ALL {
            let after = product(category, changed(kind), 3).render(64);
            let differing = before
                .pixels()
                .zip(after.pixels())
                .filter(|(a, b)| a.0.iter().zip(b.0).any(|(&x, y)| x.abs_diff(y) > 40))
                .count();
            assert!(
                differing >= 12,
                "{category} {kind}: only {differing} pixels differ"
            );
        }
    }
}

#[test]
fn every_pattern_and_material_differs_from_the_others() {
    let base = plain(Colour::Green);
    let mut seen: Vec<Vec<u8>> = Vec::new();
    for &pattern in Pattern::ALL {
        for &material in Material::ALL {
            let img = product(
                Category::Dress,
                Attributes {
                    pattern,
                    material,
                    ..base
                },
                11,
            )
            .render(64);
            seen.push(img.into_raw());
        }
    }
    for i in 0..seen.len() {
        for j in 0..i {
            assert_ne!(seen[i], seen[j], "looks {i} and {j} are identical");
        }
    }
}

fn mentions(kind: AttributeKind, caption: &str, after: &Attributes) -> bool {
    let words: Vec<&str> = match kind {
        AttributeKind::Colour => vec![after.colour.name(), "darker", "lighter", "colorful"],
        AttributeKind::Pattern => vec![
            "solid", "pattern", "print", "stripe", "striped", "dot", "check", "zebra", "logo",
        ],
        AttributeKind::Sleeve => vec!["sleeve"],
        AttributeKind::Neckline => vec!["neck", "collar"],
        AttributeKind::Hem => vec![
            "length", "mini", "maxi", "short", "crop", "tunic", "longer", "shorter",
        ],
        AttributeKind::Material => vec!["leather", "denim", "knit", "cotton", "fabric"],
    };
    words.iter().any(|w| caption.contains(w))
}

fn check_pairs(cat: &Catalog) {
    let mut targets = HashSet::new();
    for pair in &cat.pairs {
        let c = cat.get(&pair.candidate).unwrap();
        let t = cat.get(&pair.target).unwrap();
        assert_ne!(c.id, t.id);
        assert!(targets.insert(&t.id), "{} is a target twice", t.id);
        assert_eq!((c.category, c.split), (pair.category, pair.split));
        assert_eq!((t.category, t.split), (pair.category, pair.split));
        let diff = c.attrs.diff(&t.attrs);
        assert_eq!(diff, pair.changed);
        assert!((1..=2).contains(&diff.len()), "{diff:?}");
        assert_ne!(pair.captions[0], pair.captions[1]);
        for caption in &pair.captions {
            for &kind in &diff {
                assert!(
                    mentions(kind, caption, &t.attrs),
                    "{caption:?} does not mention {kind}"
                );
            }
        }
    }
}

#[test]
fn pairs_differ_in_one_or_two_attributes_and_captions_say_which() {
    let cat = generate(&CatalogConfig {
        products: 3000,
        seed: 9,
        ..CatalogConfig::default()
    });
    check_pairs(&cat);
    let wanted = 1500;
    assert!(
        cat.pairs.len() * 10 >= wanted * 9,
        "{} pairs of {wanted}",
        cat.pairs.len()
    );
    for &split in Split::ALL {
        assert!(cat.pairs.iter().any(|p| p.split == split));
    }
    let two = cat.pairs.iter().filter(|p| p.changed.len() == 2).count();
    assert!(
        two > cat.pairs.len() / 5,
        "some pairs change two attributes"
    );
    let captions: HashSet<&str> = cat
        .pairs
        .iter()
        .flat_map(|p| p.captions.iter().map(String::as_str))
        .collect();
    for expected in [
        "in black leather",
        "has a zebra pattern",
        "has long sleeves",
        "is sleeveless",
    ] {
        assert!(
            captions.iter().any(|c| c.contains(expected)),
            "no caption says {expected:?}"
        );
    }
}

#[test]
fn many_pairs_per_product_and_tiny_catalogs_work() {
    let cat = generate(&CatalogConfig {
        products: 400,
        pairs_per_product: 1.0,
        ..CatalogConfig::default()
    });
    check_pairs(&cat);
    assert!(cat.pairs.len() > 250, "{}", cat.pairs.len());
    for n in 0..4 {
        let cat = generate(&CatalogConfig {
            products: n,
            pairs_per_product: 2.0,
            ..CatalogConfig::default()
        });
        assert_eq!(cat.products.len(), n);
        check_pairs(&cat);
    }
}
