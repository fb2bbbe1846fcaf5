//! Wishes from attribute values, for catalogs that have attribute columns instead of hand-written
//! relative captions: phrasings of "make it <value>" for each attribute, relative captions for
//! pairs of products that differ in one or two attributes, the pairs themselves, and the fixed
//! set of headline wishes the evaluation asks.
//!
//! Attributes are named by their columns. The six the generated catalog has (colour, pattern,
//! sleeve, neckline, hem, material; "color" and a few other spellings too) get the phrasings
//! shoppers use for them; any other column gets generic ones ("is <value>", "has <value> <name>").

use std::collections::HashMap;

use crate::attributes::{
    AttributeKind, Category, Colour, Hem, Material, Neckline, Pattern, Sleeve,
};
use crate::captions::{
    colour_options, hem_options, join, material_noun, material_options, neckline_options,
    pattern_options, pick, sleeve_options,
};
use crate::rng::Rng;

/// The attribute a column name stands for, when it is one of the catalog's.
pub fn kind_of(column: &str) -> Option<AttributeKind> {
    match column
        .trim()
        .to_lowercase()
        .replace(['-', ' '], "_")
        .as_str()
    {
        "colour" | "color" => Some(AttributeKind::Colour),
        "pattern" | "print" => Some(AttributeKind::Pattern),
        "sleeve" | "sleeves" | "sleeve_length" => Some(AttributeKind::Sleeve),
        "neckline" | "neck" => Some(AttributeKind::Neckline),
        "hem" | "hem_length" | "length" => Some(AttributeKind::Hem),
        "material" | "fabric" => Some(AttributeKind::Material),
        _ => None,
    }
}

fn category_of(category: &str) -> Category {
    // Hem words differ for dresses; every other category reads like a top.
    Category::parse(category.trim()).unwrap_or(Category::Toptee)
}

/// Ways to ask that attribute `column` become `after` (for a product of `category` whose value
/// was `before`, when known). Every phrasing names the new value or its synonym; none is a bare
/// comparison ("is darker"), so a wish always says what it wants.
pub fn phrasings(column: &str, category: &str, before: Option<&str>, after: &str) -> Vec<String> {
    let typed = |v: Option<&str>| v.map(|s| s.trim().to_lowercase());
    let (before_l, after_l) = (typed(before), after.trim().to_lowercase());
    let b = before_l.as_deref();
    let out = match kind_of(column) {
        Some(AttributeKind::Colour) => Colour::parse(&after_l)
            .ok()
            .map(|a| colour_options(b.and_then(|b| Colour::parse(b).ok()), a, false)),
        Some(AttributeKind::Material) => Material::parse(&after_l)
            .ok()
            .map(|a| material_options(b.and_then(|b| Material::parse(b).ok()), a)),
        Some(AttributeKind::Pattern) => Pattern::parse(&after_l).ok().map(pattern_options),
        Some(AttributeKind::Sleeve) => Sleeve::parse(&after_l)
            .ok()
            .map(|a| sleeve_options(b.and_then(|b| Sleeve::parse(b).ok()), a)),
        Some(AttributeKind::Neckline) => Neckline::parse(&after_l).ok().map(neckline_options),
        Some(AttributeKind::Hem) => Hem::parse(&after_l)
            .ok()
            .map(|a| hem_options(category_of(category), b.and_then(|b| Hem::parse(b).ok()), a)),
        None => None,
    };
    out.unwrap_or_else(|| {
        let name = column.trim().replace('_', " ");
        let v = after.trim();
        vec![
            format!("is {v}"),
            format!("in {v}"),
            format!("has {v} {name}"),
        ]
    })
}

/// One attribute a wish changes: its column, the old value (when known) and the new one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Change<'a> {
    pub column: &'a str,
    pub before: Option<&'a str>,
    pub after: &'a str,
}

/// A relative caption for `changes`, as a shopper writes it: one phrase a change, joined with
/// "and" ("is red and has short sleeves"); a colour with a material may read "in black leather".
pub(crate) fn caption(category: &str, changes: &[Change<'_>], rng: &mut Rng) -> String {
    let find = |k: AttributeKind| changes.iter().position(|c| kind_of(c.column) == Some(k));
    let mut phrases = Vec::new();
    let mut done = vec![false; changes.len()];
    if let (Some(ci), Some(mi)) = (find(AttributeKind::Colour), find(AttributeKind::Material)) {
        let colour = Colour::parse(&changes[ci].after.trim().to_lowercase());
        let material = Material::parse(&changes[mi].after.trim().to_lowercase());
        if let (Ok(c), Ok(m)) = (colour, material)
            && m != Material::Plain
            && rng.unit() < 0.6
        {
            phrases.push(format!("in {c} {}", material_noun(m)));
            done[ci] = true;
            done[mi] = true;
        }
    }
    for (c, d) in changes.iter().zip(&done) {
        if !d {
            phrases.push(pick(rng, &phrasings(c.column, category, c.before, c.after)));
        }
    }
    if phrases.len() > 1 && rng.unit() < 0.5 {
        phrases.swap(0, 1);
    }
    join(&phrases)
}

/// Two different captions for the same changes (one draw of the pair's stream).
pub fn captions(category: &str, changes: &[Change<'_>], seed: u64, index: u64) -> [String; 2] {
    let mut rng = Rng::for_item(seed, STREAM_WISH_CAPTION, index);
    let first = caption(category, changes, &mut rng);
    let mut second = caption(category, changes, &mut rng);
    for _ in 0..16 {
        if second != first {
            break;
        }
        second = caption(category, changes, &mut rng);
    }
    [first, second]
}

const STREAM_WISH_CAPTION: u64 = 11;
const STREAM_WISH_PAIRS: u64 = 12;

/// How pairs are formed from attribute columns.
#[derive(Clone, Debug, PartialEq)]
pub struct PairPlan {
    pub seed: u64,
    /// At most this many pairs in all.
    pub max_pairs: usize,
    /// Per product and per set of changed attributes, at most this many partners.
    pub partners: usize,
    /// Also pairs that differ in two attributes (else only in one).
    pub two_changes: bool,
}

impl Default for PairPlan {
    fn default() -> Self {
        PairPlan {
            seed: 42,
            max_pairs: 200_000,
            partners: 6,
            two_changes: true,
        }
    }
}

/// A pair formed from attribute values: `target` is `candidate` with the attributes `changed`
/// (indices into the columns) set to the target's values, and every other column equal.
#[derive(Clone, Debug, PartialEq)]
pub struct FormedPair {
    pub candidate: usize,
    pub target: usize,
    pub changed: Vec<usize>,
    pub captions: [String; 2],
}

/// Forms (candidate, target) pairs of products of one category that differ in exactly one or two
/// of the attribute columns and agree on all the others, and writes two captions each. `values`
/// holds one row per product, one entry per column; a product with an unknown (`None`) value is
/// in no pair, as what it differs in is not known. Deterministic in `plan.seed`; pairs come out shuffled, at most `plan.max_pairs` of them.
pub fn form_pairs(
    columns: &[String],
    categories: &[String],
    values: &[Vec<Option<String>>],
    plan: &PairPlan,
) -> Vec<FormedPair> {
    let n = values.len().min(categories.len());
    let a = columns.len();
    let mut sets: Vec<Vec<usize>> = (0..a).map(|i| vec![i]).collect();
    if plan.two_changes {
        for i in 0..a {
            for j in i + 1..a {
                sets.push(vec![i, j]);
            }
        }
    }
    let mut rng = Rng::for_item(plan.seed, STREAM_WISH_PAIRS, 0);
    let mut found: Vec<(usize, usize, usize)> = Vec::new(); // (candidate, target, set)
    for (s, set) in sets.iter().enumerate() {
        // Products that agree on every other column share a bucket.
        let mut buckets: HashMap<(&str, Vec<&str>), Vec<usize>> = HashMap::new();
        'product: for p in 0..n {
            let row = &values[p];
            let mut key = Vec::with_capacity(a);
            for (c, v) in row.iter().enumerate().take(a) {
                match v {
                    Some(v) if !set.contains(&c) => key.push(v.as_str()),
                    Some(_) => {}
                    None => continue 'product,
                }
            }
            buckets
                .entry((categories[p].as_str(), key))
                .or_default()
                .push(p);
        }
        let mut keys: Vec<_> = buckets.keys().cloned().collect();
        keys.sort();
        for key in keys {
            let members = &buckets[&key];
            if members.len() < 2 {
                continue;
            }
            for &p in members {
                // Partners from a random starting point, so a large bucket is sampled evenly.
                let start = rng.below(members.len());
                let mut taken = 0;
                for k in 0..members.len().min(plan.partners * 8 + 1) {
                    let q = members[(start + k) % members.len()];
                    let differs = set.iter().all(|&c| values[p][c] != values[q][c]);
                    if q != p && differs {
                        found.push((p, q, s));
                        taken += 1;
                        if taken == plan.partners {
                            break;
                        }
                    }
                }
            }
        }
    }
    for k in (1..found.len()).rev() {
        found.swap(k, rng.below(k + 1));
    }
    found.truncate(plan.max_pairs);
    found
        .into_iter()
        .enumerate()
        .map(|(i, (p, q, s))| {
            let changes: Vec<Change<'_>> = sets[s]
                .iter()
                .map(|&c| Change {
                    column: &columns[c],
                    before: values[p][c].as_deref(),
                    after: values[q][c].as_deref().unwrap_or_default(),
                })
                .collect();
            FormedPair {
                candidate: p,
                target: q,
                changed: sets[s].clone(),
                captions: captions(&categories[p], &changes, plan.seed, i as u64),
            }
        })
        .collect()
}

/// A wish of the evaluation's fixed set: the values it asks for (column index, value) and its
/// phrasings.
#[derive(Clone, Debug, PartialEq)]
pub struct HeadlineWish {
    pub asked: Vec<(usize, String)>,
    pub texts: Vec<String>,
}

/// The fixed headline wishes for a catalog with these columns and values: every value of the
/// colour, material and pattern columns and of every column of no kind the project knows (a
/// shop's "tone", "kind"; sleeve, neckline and hem only in two-attribute wishes), and
/// two-attribute wishes of a colour with a material ("in black leather") and with a sleeve
/// length ("is red and has short sleeves"). Each in up to `phrasings` phrasings.
pub fn headline_wishes(
    columns: &[String],
    values: &[Vec<String>],
    phrasings_each: usize,
) -> Vec<HeadlineWish> {
    let col = |k: AttributeKind| columns.iter().position(|c| kind_of(c) == Some(k));
    let singles: Vec<usize> = {
        let mut chosen: Vec<usize> = [
            AttributeKind::Colour,
            AttributeKind::Material,
            AttributeKind::Pattern,
        ]
        .into_iter()
        .filter_map(col)
        .collect();
        chosen.extend((0..columns.len()).filter(|&c| kind_of(&columns[c]).is_none()));
        if chosen.is_empty() {
            (0..columns.len()).collect()
        } else {
            chosen
        }
    };
    let take = |v: Vec<String>| -> Vec<String> {
        // Spread over the list: the first phrasing and the later, looser ones.
        let n = v.len();
        let k = phrasings_each.clamp(1, n.max(1));
        (0..k).map(|i| v[i * n / k].clone()).collect()
    };
    let mut out = Vec::new();
    for &c in &singles {
        for v in &values[c] {
            // A wish for the plain material says nothing a shopper would ask for.
            if kind_of(&columns[c]) == Some(AttributeKind::Material)
                && Material::parse(v) == Ok(Material::Plain)
            {
                continue;
            }
            out.push(HeadlineWish {
                asked: vec![(c, v.clone())],
                texts: take(phrasings(&columns[c], "", None, v)),
            });
        }
    }
    let doubles: &[(AttributeKind, &str, AttributeKind, &str)] = &[
        (
            AttributeKind::Colour,
            "black",
            AttributeKind::Material,
            "leather",
        ),
        (
            AttributeKind::Colour,
            "blue",
            AttributeKind::Material,
            "denim",
        ),
        (AttributeKind::Colour, "red", AttributeKind::Sleeve, "short"),
        (
            AttributeKind::Colour,
            "navy",
            AttributeKind::Sleeve,
            "sleeveless",
        ),
        (
            AttributeKind::Colour,
            "white",
            AttributeKind::Pattern,
            "stripes",
        ),
    ];
    for &(ka, va, kb, vb) in doubles {
        let (Some(ca), Some(cb)) = (col(ka), col(kb)) else {
            continue;
        };
        if !values[ca].iter().any(|v| v == va) || !values[cb].iter().any(|v| v == vb) {
            continue;
        }
        let changes = [
            Change {
                column: &columns[ca],
                before: None,
                after: va,
            },
            Change {
                column: &columns[cb],
                before: None,
                after: vb,
            },
        ];
        let mut texts = Vec::new();
        let mut rng = Rng::for_item(7, STREAM_WISH_CAPTION, out.len() as u64);
        for _ in 0..64 {
            let t = caption("", &changes, &mut rng);
            if !texts.contains(&t) {
                texts.push(t);
            }
            if texts.len() == phrasings_each.max(1) {
                break;
            }
        }
        out.push(HeadlineWish {
            asked: vec![(ca, va.to_string()), (cb, vb.to_string())],
            texts,
        });
    }
    out
}

/// Words a shopper uses for `value` of `column` that the caption templates ([`phrasings`],
/// [`captions`]) never use: near colours ("crimson" for red, "charcoal" for grey), other names
/// of a pattern or a material. Empty where none is known (any column but the generated
/// catalog's six). For evaluation only, never for a training caption: a query in these words
/// asks whether the model understands a shopper, not only its own captions.
pub fn shopper_words(column: &str, value: &str) -> &'static [&'static str] {
    let v = value.trim().to_lowercase();
    match kind_of(column) {
        Some(AttributeKind::Colour) => match Colour::parse(&v) {
            Ok(Colour::Black) => &["jet", "ebony"],
            Ok(Colour::White) => &["ivory", "snowy"],
            Ok(Colour::Grey) => &["charcoal", "gray"],
            Ok(Colour::Red) => &["crimson", "scarlet"],
            Ok(Colour::Pink) => &["rose", "blush"],
            Ok(Colour::Orange) => &["tangerine", "apricot"],
            Ok(Colour::Yellow) => &["mustard", "lemon"],
            Ok(Colour::Green) => &["olive", "emerald"],
            Ok(Colour::Blue) => &["cobalt", "azure"],
            Ok(Colour::Navy) => &["midnight", "marine"],
            Ok(Colour::Purple) => &["violet", "lilac"],
            Ok(Colour::Brown) => &["chocolate", "camel"],
            Ok(Colour::Beige) => &["tan", "sand"],
            Err(_) => &[],
        },
        Some(AttributeKind::Pattern) => match Pattern::parse(&v) {
            Ok(Pattern::Solid) => &["unpatterned", "plain-coloured"],
            Ok(Pattern::Stripes) => &["pinstriped", "banded"],
            Ok(Pattern::Dots) => &["spotted", "dotty"],
            Ok(Pattern::Checks) => &["plaid", "tartan"],
            Ok(Pattern::Zebra) => &["tigerish", "animal-print"],
            Ok(Pattern::Logo) => &["branded", "monogrammed"],
            Err(_) => &[],
        },
        Some(AttributeKind::Material) => match Material::parse(&v) {
            Ok(Material::Leather) => &["suede", "hide"],
            Ok(Material::Denim) => &["jean", "chambray"],
            Ok(Material::Knit) => &["woollen", "crocheted"],
            _ => &[],
        },
        Some(AttributeKind::Sleeve) => match Sleeve::parse(&v) {
            Ok(Sleeve::Sleeveless) => &["tank", "strappy"],
            Ok(Sleeve::Short) => &["cap-sleeved", "elbow-length"],
            Ok(Sleeve::Long) => &["full-sleeved", "wrist-length"],
            Err(_) => &[],
        },
        Some(_) => &[],
        // A shop's own columns: the words a shopper uses for common values, whatever the column
        // is called (tones, kinds of garment, patterns of real product photos).
        None => match v.as_str() {
            "dark" => &["charcoal", "inky"],
            "grey" | "gray" => &["ashen", "slate"],
            "light" => &["ivory", "bleached"],
            "t-shirt" | "tshirt" => &["tee", "tank-top"],
            "trousers" => &["slacks", "pants"],
            "pullover" => &["jumper", "sweater"],
            "dress" => &["frock", "gown"],
            "coat" => &["overcoat", "parka"],
            "sandals" => &["flip-flops", "slides"],
            "shirt" => &["blouse", "button-down"],
            "sneakers" => &["trainers", "kicks"],
            "bag" => &["handbag", "purse"],
            "ankle boots" => &["booties", "chelsea-boots"],
            "plain" => &["unpatterned", "plain-coloured"],
            "striped" => &["pinstriped", "banded"],
            "patterned" => &["ornate", "decorated"],
            _ => &[],
        },
    }
}

/// A headline wish asked in a shopper's words ([`shopper_words`]) where every asked value has
/// some: up to `count` phrasings ("something crimson", "crimson suede, please").
pub fn shopper_phrasings(
    columns: &[String],
    asked: &[(usize, String)],
    count: usize,
) -> Vec<String> {
    let words: Vec<&[&str]> = asked
        .iter()
        .map(|(c, v)| shopper_words(&columns[*c], v))
        .collect();
    if words.is_empty() || words.iter().any(|w| w.is_empty()) {
        return Vec::new();
    }
    let forms = ["something {}", "I would like it {}", "{}, please"];
    (0..count)
        .map(|i| {
            let said: Vec<&str> = words.iter().map(|w| w[i % w.len()]).collect();
            forms[i % forms.len()].replace("{}", &said.join(" "))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols() -> Vec<String> {
        ["colour", "material", "pattern", "sleeve"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    fn row(v: [&str; 4]) -> Vec<Option<String>> {
        v.iter().map(|s| Some(s.to_string())).collect()
    }

    #[test]
    fn phrasings_name_the_value() {
        for c in Colour::ALL {
            for p in phrasings("color", "dress", Some("white"), c.name()) {
                assert!(p.contains(c.name()), "{p}");
            }
        }
        assert!(phrasings("material", "shirt", None, "leather").contains(&"in leather".into()));
        assert_eq!(
            phrasings("fit", "shirt", None, "slim"),
            vec!["is slim", "in slim", "has slim fit"]
        );
        // A value the typed attribute does not know falls back to the generic phrasings.
        assert_eq!(phrasings("colour", "shirt", None, "teal")[0], "is teal");
    }

    #[test]
    fn pairs_differ_in_exactly_the_changed_columns() {
        let values = vec![
            row(["white", "plain", "checks", "long"]),
            row(["black", "leather", "checks", "long"]),
            row(["black", "plain", "checks", "long"]),
            row(["red", "plain", "solid", "short"]),
            row(["white", "plain", "checks", "long"]),
        ];
        let cats: Vec<String> = ["dress", "dress", "dress", "dress", "shirt"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let pairs = form_pairs(&cols(), &cats, &values, &PairPlan::default());
        assert!(!pairs.is_empty());
        for p in &pairs {
            assert_eq!(
                cats[p.candidate], cats[p.target],
                "pairs stay in a category"
            );
            for (c, (a, b)) in values[p.candidate]
                .iter()
                .zip(&values[p.target])
                .enumerate()
            {
                assert_eq!(a == b, !p.changed.contains(&c), "{p:?}");
            }
            assert_ne!(p.captions[0], p.captions[1]);
        }
        // white plain -> black leather: a two-attribute wish that names both values.
        let p = pairs
            .iter()
            .find(|p| p.candidate == 0 && p.target == 1)
            .expect("the pair of products 0 and 1");
        assert_eq!(p.changed, vec![0, 1]);
        for c in &p.captions {
            assert!(c.contains("black") && c.contains("leather"), "{c}");
        }
        // Products 3 (three changes away) and 4 (another category) pair with nobody in dress.
        assert!(pairs.iter().all(|p| p.candidate != 3 && p.target != 3));
        assert!(pairs.iter().all(|p| p.candidate != 4 && p.target != 4));
        assert_eq!(
            pairs,
            form_pairs(&cols(), &cats, &values, &PairPlan::default())
        );
    }

    #[test]
    fn headline_wishes_cover_every_value() {
        let values: Vec<Vec<String>> = vec![
            Colour::ALL.iter().map(|c| c.name().to_string()).collect(),
            Material::ALL.iter().map(|c| c.name().to_string()).collect(),
            Pattern::ALL.iter().map(|c| c.name().to_string()).collect(),
            Sleeve::ALL.iter().map(|c| c.name().to_string()).collect(),
        ];
        let w = headline_wishes(&cols(), &values, 2);
        let singles = w.iter().filter(|w| w.asked.len() == 1).count();
        assert_eq!(
            singles,
            Colour::ALL.len() + Material::ALL.len() - 1 + Pattern::ALL.len()
        );
        let bl = w
            .iter()
            .find(|w| w.asked == vec![(0, "black".into()), (1, "leather".into())])
            .expect("in black leather");
        assert_eq!(bl.texts.len(), 2);
        assert!(w.iter().all(|w| !w.texts.is_empty()));
        assert!(
            w.iter()
                .any(|w| w.asked == vec![(0, "red".into()), (3, "short".into())])
        );
    }

    #[test]
    fn a_shops_own_columns_are_headline_wishes_and_have_shopper_words() {
        let columns: Vec<String> = ["kind", "tone", "pattern"].map(String::from).to_vec();
        let values: Vec<Vec<String>> = vec![
            vec!["t-shirt".into(), "sneakers".into()],
            vec!["dark".into(), "light".into()],
            vec!["plain".into(), "striped".into()],
        ];
        let w = headline_wishes(&columns, &values, 2);
        assert_eq!(w.iter().filter(|w| w.asked.len() == 1).count(), 6);
        // A shopper's words are never the caption templates' words for the value.
        let tee = shopper_phrasings(&columns, &[(0, "t-shirt".into())], 2);
        assert_eq!(tee.len(), 2);
        assert!(tee[0].contains("tee") && !tee.iter().any(|t| t.contains("t-shirt")));
        let both = shopper_phrasings(&columns, &[(1, "dark".into()), (0, "sneakers".into())], 1);
        assert_eq!(both, ["something charcoal trainers"]);
        for c in Colour::ALL {
            let words = shopper_words("colour", c.name());
            assert!(!words.is_empty(), "{c:?}");
            for p in phrasings("colour", "dress", None, c.name()) {
                assert!(!words.iter().any(|w| p.split(' ').any(|x| x == *w)), "{p}");
            }
        }
        // Unknown values have none, and then the wish has no shopper phrasing.
        assert!(shopper_phrasings(&columns, &[(1, "mauve".into())], 2).is_empty());
    }
}
