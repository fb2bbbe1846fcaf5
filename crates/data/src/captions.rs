//! Relative captions from attribute differences, several phrasings per change, as shoppers
//! wrote them in Fashion-IQ ("is darker and sleeveless", "in black leather").

use crate::attributes::{Attributes, Category, Colour, Hem, Material, Neckline, Pattern, Sleeve};
use crate::rng::Rng;

/// Two captions for one change from `before` to `after`. The first always names every new value;
/// the second may use a comparison ("is darker") instead of the colour's name.
pub(crate) fn captions(
    category: Category,
    before: &Attributes,
    after: &Attributes,
    rng: &mut Rng,
) -> [String; 2] {
    let first = caption(category, before, after, rng, false);
    let mut second = caption(category, before, after, rng, true);
    // Two phrasings of the same thing; every change has at least two, so retrying makes an
    // equal pair vanishingly rare (below 2^-32).
    for _ in 0..32 {
        if second != first {
            break;
        }
        second = caption(category, before, after, rng, true);
    }
    [first, second]
}

fn caption(
    category: Category,
    before: &Attributes,
    after: &Attributes,
    rng: &mut Rng,
    loose: bool,
) -> String {
    let mut phrases: Vec<String> = Vec::new();
    let colour_changed = before.colour != after.colour;
    let material_changed = before.material != after.material;
    if colour_changed && material_changed && after.material != Material::Plain && rng.unit() < 0.6 {
        // "in black leather"
        phrases.push(format!(
            "in {} {}",
            after.colour,
            material_noun(after.material)
        ));
    } else {
        if colour_changed {
            phrases.push(pick(
                rng,
                &colour_options(Some(before.colour), after.colour, loose),
            ));
        }
        if material_changed {
            phrases.push(pick(
                rng,
                &material_options(Some(before.material), after.material),
            ));
        }
    }
    if before.pattern != after.pattern {
        phrases.push(pick(rng, &pattern_options(after.pattern)));
    }
    if before.sleeve != after.sleeve {
        phrases.push(pick(
            rng,
            &sleeve_options(Some(before.sleeve), after.sleeve),
        ));
    }
    if before.neckline != after.neckline {
        phrases.push(pick(rng, &neckline_options(after.neckline)));
    }
    if before.hem != after.hem {
        phrases.push(pick(
            rng,
            &hem_options(category, Some(before.hem), after.hem),
        ));
    }
    if phrases.len() > 1 && rng.unit() < 0.5 {
        phrases.swap(0, 1);
    }
    join(&phrases)
}

/// "is red" + "is sleeveless" reads "is red and sleeveless", as people write it.
pub(crate) fn join(phrases: &[String]) -> String {
    let mut out = String::new();
    for (i, p) in phrases.iter().enumerate() {
        if i == 0 {
            out.push_str(p);
            continue;
        }
        out.push_str(" and ");
        let drop_is = phrases[0].starts_with("is ") && p.starts_with("is ");
        out.push_str(if drop_is { &p[3..] } else { p });
    }
    out
}

pub(crate) fn pick(rng: &mut Rng, options: &[String]) -> String {
    rng.pick(options).clone()
}

/// Ways to ask for colour `after`. With `before` known, also "instead of" and comparisons; `loose`
/// adds bare comparisons that do not name the colour.
pub(crate) fn colour_options(before: Option<Colour>, after: Colour, loose: bool) -> Vec<String> {
    let c = after.name();
    let Some(before) = before else {
        return vec![
            format!("is {c}"),
            format!("in {c}"),
            format!("has a {c} color"),
            format!("is {c} colored"),
        ];
    };
    let mut options = vec![
        format!("is {c}"),
        format!("in {c}"),
        format!("is {c} instead of {before}"),
        format!("has a {c} color"),
        format!("is {c} colored"),
    ];
    let darker = after.luminance() + 0.12 < before.luminance();
    let lighter = after.luminance() > before.luminance() + 0.12;
    let colorful = after.saturation() > before.saturation() + 0.3;
    if darker {
        options.push(format!("is darker and {c}"));
    }
    if lighter {
        options.push(format!("is lighter and {c}"));
    }
    if colorful {
        options.push(format!("is more colorful and {c}"));
    }
    if loose {
        // Bare comparisons, which real shoppers write too.
        if darker {
            options.push("is darker".into());
        }
        if lighter {
            options.push("is lighter".into());
        }
        if colorful {
            options.push("is more colorful".into());
        }
    }
    options
}

pub(crate) fn material_noun(m: Material) -> &'static str {
    match m {
        Material::Plain => "cotton",
        Material::Leather => "leather",
        Material::Denim => "denim",
        Material::Knit => "knit",
    }
}

pub(crate) fn material_options(before: Option<Material>, after: Material) -> Vec<String> {
    match after {
        Material::Plain => vec![
            match before {
                Some(b) if b != Material::Plain => format!("is not {}", material_noun(b)),
                _ => "is cotton".into(),
            },
            "is plain cotton".into(),
            "in plain fabric".into(),
        ],
        Material::Leather => vec![
            "is leather".into(),
            "in leather".into(),
            "is made of leather".into(),
            "has a leather look".into(),
        ],
        Material::Denim => vec![
            "is denim".into(),
            "in denim".into(),
            "is made of denim".into(),
        ],
        Material::Knit => vec![
            "is knitted".into(),
            "is a knit".into(),
            "in knit fabric".into(),
        ],
    }
}

pub(crate) fn pattern_options(after: Pattern) -> Vec<String> {
    let options: &[&str] = match after {
        Pattern::Solid => &[
            "is solid",
            "has no pattern",
            "is a solid color",
            "is plain with no print",
        ],
        Pattern::Stripes => &["is striped", "has stripes", "has a striped pattern"],
        Pattern::Dots => &["has polka dots", "is dotted", "has dots"],
        Pattern::Checks => &["is checkered", "has a check pattern", "has checks"],
        Pattern::Zebra => &["has a zebra pattern", "has zebra print", "is zebra striped"],
        Pattern::Logo => &[
            "has a logo",
            "has a logo on the front",
            "has a graphic logo",
        ],
    };
    options.iter().map(|o| o.to_string()).collect()
}

pub(crate) fn sleeve_options(before: Option<Sleeve>, after: Sleeve) -> Vec<String> {
    let mut options: Vec<String> = match after {
        Sleeve::Sleeveless => vec!["is sleeveless".into(), "has no sleeves".into()],
        Sleeve::Short => vec!["has short sleeves".into(), "is short sleeved".into()],
        Sleeve::Long => vec!["has long sleeves".into(), "is long sleeved".into()],
    };
    match (before, after) {
        (Some(_), Sleeve::Long) => options.push("has longer sleeves".into()),
        (Some(Sleeve::Long), Sleeve::Short) => options.push("has shorter sleeves".into()),
        _ => {}
    }
    options
}

pub(crate) fn neckline_options(after: Neckline) -> Vec<String> {
    let options: &[&str] = match after {
        Neckline::Crew => &[
            "has a crew neck",
            "has a round neckline",
            "has a crew neckline",
        ],
        Neckline::VNeck => &["has a v-neck", "has a v neckline", "is v-neck"],
        Neckline::Collar => &["has a collar", "is collared", "has a pointed collar"],
    };
    options.iter().map(|o| o.to_string()).collect()
}

pub(crate) fn hem_options(category: Category, before: Option<Hem>, after: Hem) -> Vec<String> {
    let Some(before) = before else {
        return vec![format!(
            "is {}",
            crate::attributes::hem_words(category, after)
        )];
    };
    let word = if after.is_longer_than(before) {
        "longer"
    } else {
        "shorter"
    };
    match (category, after) {
        (Category::Dress, Hem::Short) => vec![
            "is a mini dress".into(),
            format!("is {word} and mini length"),
            "is short".into(),
        ],
        (Category::Dress, Hem::Medium) => {
            vec!["is knee length".into(), format!("is {word}, knee length")]
        }
        (Category::Dress, Hem::Long) => vec![
            "is a maxi dress".into(),
            "is floor length".into(),
            format!("is {word}, maxi length"),
        ],
        (_, Hem::Short) => vec![
            "is cropped".into(),
            "is a crop top".into(),
            format!("is {word} and cropped"),
        ],
        (_, Hem::Medium) => vec![
            "has a regular length".into(),
            format!("is {word}, regular length"),
        ],
        (_, Hem::Long) => vec![
            "is tunic length".into(),
            format!("is {word}, tunic length"),
            "is a long tunic".into(),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Attributes {
        Attributes {
            colour: Colour::White,
            pattern: Pattern::Solid,
            sleeve: Sleeve::Long,
            neckline: Neckline::Crew,
            hem: Hem::Medium,
            material: Material::Plain,
        }
    }

    #[test]
    fn joins_like_people_write() {
        assert_eq!(
            join(&["is darker".into(), "is sleeveless".into()]),
            "is darker and sleeveless"
        );
        assert_eq!(
            join(&["in red".into(), "has short sleeves".into()]),
            "in red and has short sleeves"
        );
    }

    #[test]
    fn black_leather_is_phrased_together_sometimes() {
        let after = Attributes {
            colour: Colour::Black,
            material: Material::Leather,
            ..base()
        };
        let mut rng = Rng::new(3);
        let all: Vec<String> = (0..200)
            .flat_map(|_| captions(Category::Shirt, &base(), &after, &mut rng))
            .collect();
        assert!(all.iter().any(|c| c == "in black leather"), "{all:?}");
        assert!(all.iter().all(|c| c.contains("leather")));
    }

    #[test]
    fn first_caption_names_the_colour() {
        let after = Attributes {
            colour: Colour::Navy,
            sleeve: Sleeve::Sleeveless,
            ..base()
        };
        let mut rng = Rng::new(9);
        let mut bare = 0;
        for _ in 0..200 {
            let [a, b] = captions(Category::Dress, &base(), &after, &mut rng);
            assert!(a.contains("navy"), "{a}");
            assert!(a.contains("sleeve"), "{a}");
            assert!(b.contains("sleeve"), "{b}");
            assert_ne!(a, b);
            bare += usize::from(!b.contains("navy"));
            assert!(
                b.contains("navy") || b.contains("darker") || b.contains("colorful"),
                "{b}"
            );
        }
        assert!(
            bare > 0,
            "the second caption sometimes says only \"darker\""
        );
    }
}
