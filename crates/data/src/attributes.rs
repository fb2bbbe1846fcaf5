//! Product categories and attributes, each an enum with a stable lowercase name.

use serde::{Deserialize, Serialize};

macro_rules! named_enum {
    ($(#[$meta:meta])* $name:ident, $what:literal { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// The value with this name, or an error naming it.
            pub fn parse(text: &str) -> Result<Self, UnknownName> {
                match text {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownName { kind: $what, name: text.to_string() }),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownName;
            fn from_str(text: &str) -> Result<Self, UnknownName> {
                Self::parse(text)
            }
        }
    };
}

/// A name that is not one of an attribute's values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownName {
    pub kind: &'static str,
    pub name: String,
}

impl std::fmt::Display for UnknownName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unknown {} \"{}\"", self.kind, self.name)
    }
}

impl std::error::Error for UnknownName {}

named_enum!(
    /// The Fashion-IQ categories.
    Category, "category" {
        Dress => "dress",
        Shirt => "shirt",
        Toptee => "toptee",
    }
);

named_enum!(
    /// The Fashion-IQ splits.
    Split, "split" {
        Train => "train",
        Val => "val",
        Test => "test",
    }
);

named_enum!(
    Colour, "colour" {
        Black => "black",
        White => "white",
        Grey => "grey",
        Red => "red",
        Pink => "pink",
        Orange => "orange",
        Yellow => "yellow",
        Green => "green",
        Blue => "blue",
        Navy => "navy",
        Purple => "purple",
        Brown => "brown",
        Beige => "beige",
    }
);

named_enum!(
    Pattern, "pattern" {
        Solid => "solid",
        Stripes => "stripes",
        Dots => "dots",
        Checks => "checks",
        Zebra => "zebra",
        Logo => "logo",
    }
);

named_enum!(
    Sleeve, "sleeve length" {
        Sleeveless => "sleeveless",
        Short => "short",
        Long => "long",
    }
);

named_enum!(
    Neckline, "neckline" {
        Crew => "crew",
        VNeck => "v-neck",
        Collar => "collar",
    }
);

named_enum!(
    /// Hem length: a mini, knee or maxi dress; a cropped, regular or tunic-length top.
    Hem, "hem length" {
        Short => "short",
        Medium => "medium",
        Long => "long",
    }
);

named_enum!(
    /// How the fabric looks.
    Material, "material" {
        Plain => "plain",
        Leather => "leather",
        Denim => "denim",
        Knit => "knit",
    }
);

named_enum!(
    /// Which attribute a pair changes.
    AttributeKind, "attribute" {
        Colour => "colour",
        Pattern => "pattern",
        Sleeve => "sleeve",
        Neckline => "neckline",
        Hem => "hem",
        Material => "material",
    }
);

impl Colour {
    /// The colour as drawn, in sRGB.
    pub fn rgb(self) -> [u8; 3] {
        match self {
            Colour::Black => [28, 28, 30],
            Colour::White => [250, 250, 250],
            Colour::Grey => [128, 128, 130],
            Colour::Red => [200, 30, 35],
            Colour::Pink => [240, 140, 180],
            Colour::Orange => [245, 130, 20],
            Colour::Yellow => [245, 215, 40],
            Colour::Green => [40, 150, 60],
            Colour::Blue => [40, 100, 220],
            Colour::Navy => [25, 35, 90],
            Colour::Purple => [120, 50, 160],
            Colour::Brown => [110, 65, 30],
            Colour::Beige => [225, 205, 165],
        }
    }

    /// Relative luminance in [0, 1], for "darker" and "lighter".
    pub fn luminance(self) -> f32 {
        let [r, g, b] = self.rgb();
        (0.2126 * r as f32 + 0.7152 * g as f32 + 0.0722 * b as f32) / 255.0
    }

    /// Saturation in [0, 1] (HSV), for "more colorful".
    pub fn saturation(self) -> f32 {
        let [r, g, b] = self.rgb();
        let max = r.max(g).max(b) as f32;
        let min = r.min(g).min(b) as f32;
        if max == 0.0 { 0.0 } else { (max - min) / max }
    }
}

impl Sleeve {
    fn rank(self) -> u8 {
        self as u8
    }

    pub fn is_longer_than(self, other: Sleeve) -> bool {
        self.rank() > other.rank()
    }
}

impl Hem {
    pub fn is_longer_than(self, other: Hem) -> bool {
        (self as u8) > (other as u8)
    }
}

/// What a product looks like. Every category has every attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Attributes {
    pub colour: Colour,
    pub pattern: Pattern,
    pub sleeve: Sleeve,
    pub neckline: Neckline,
    pub hem: Hem,
    pub material: Material,
}

impl Attributes {
    /// The attributes in which `self` and `other` differ.
    pub fn diff(&self, other: &Attributes) -> Vec<AttributeKind> {
        let mut out = Vec::new();
        if self.colour != other.colour {
            out.push(AttributeKind::Colour);
        }
        if self.pattern != other.pattern {
            out.push(AttributeKind::Pattern);
        }
        if self.sleeve != other.sleeve {
            out.push(AttributeKind::Sleeve);
        }
        if self.neckline != other.neckline {
            out.push(AttributeKind::Neckline);
        }
        if self.hem != other.hem {
            out.push(AttributeKind::Hem);
        }
        if self.material != other.material {
            out.push(AttributeKind::Material);
        }
        out
    }

    /// A short description for people, e.g. "red striped leather dress, long sleeves, v-neck, knee length".
    pub fn describe(&self, category: Category) -> String {
        let pattern = match self.pattern {
            Pattern::Solid => "",
            Pattern::Stripes => "striped ",
            Pattern::Dots => "dotted ",
            Pattern::Checks => "checked ",
            Pattern::Zebra => "zebra-print ",
            Pattern::Logo => "logo ",
        };
        let material = match self.material {
            Material::Plain => "",
            Material::Leather => "leather ",
            Material::Denim => "denim ",
            Material::Knit => "knit ",
        };
        let sleeve = match self.sleeve {
            Sleeve::Sleeveless => "sleeveless",
            Sleeve::Short => "short sleeves",
            Sleeve::Long => "long sleeves",
        };
        format!(
            "{} {pattern}{material}{category}, {sleeve}, {}, {}",
            self.colour,
            match self.neckline {
                Neckline::Crew => "crew neck",
                Neckline::VNeck => "v-neck",
                Neckline::Collar => "collar",
            },
            hem_words(category, self.hem)
        )
    }
}

pub(crate) fn hem_words(category: Category, hem: Hem) -> &'static str {
    match (category, hem) {
        (Category::Dress, Hem::Short) => "mini length",
        (Category::Dress, Hem::Medium) => "knee length",
        (Category::Dress, Hem::Long) => "maxi length",
        (_, Hem::Short) => "cropped",
        (_, Hem::Medium) => "regular length",
        (_, Hem::Long) => "tunic length",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for &c in Colour::ALL {
            assert_eq!(Colour::parse(c.name()), Ok(c));
        }
        assert_eq!(Neckline::parse("v-neck"), Ok(Neckline::VNeck));
        let err = Pattern::parse("paisley").unwrap_err();
        assert_eq!(err.to_string(), "unknown pattern \"paisley\"");
        assert_eq!(
            serde_json::to_string(&Neckline::VNeck).unwrap(),
            "\"v-neck\""
        );
        assert!(Colour::ALL.len() >= 12);
    }

    #[test]
    fn diff_lists_changed_attributes() {
        let a = Attributes {
            colour: Colour::Red,
            pattern: Pattern::Solid,
            sleeve: Sleeve::Long,
            neckline: Neckline::Crew,
            hem: Hem::Medium,
            material: Material::Plain,
        };
        let b = Attributes {
            colour: Colour::Black,
            material: Material::Leather,
            ..a
        };
        assert_eq!(
            a.diff(&b),
            vec![AttributeKind::Colour, AttributeKind::Material]
        );
        assert!(a.diff(&a).is_empty());
        assert_eq!(
            b.describe(Category::Dress),
            "black leather dress, long sleeves, crew neck, knee length"
        );
    }

    #[test]
    fn luminance_orders_black_below_white() {
        assert!(Colour::Black.luminance() < Colour::Navy.luminance());
        assert!(Colour::Navy.luminance() < Colour::White.luminance());
        assert!(Colour::Grey.saturation() < 0.05 && Colour::Red.saturation() > 0.8);
    }
}
