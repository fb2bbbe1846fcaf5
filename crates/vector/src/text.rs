//! The text form of an embedding: `[1,2.5,-3]`, whitespace tolerated around brackets and values.

use crate::{MAX_DIMS, ValueError, check_values};
use std::fmt::Write;

/// Why a text was not an embedding. The extension maps each kind to a SQLSTATE.
#[derive(Debug, Clone, PartialEq)]
pub enum ParseError {
    /// Not the `[v,v,...]` shape, or a value that is not a number (22P02).
    Malformed(String),
    /// A number too large for float4 (22003).
    OutOfRange(String),
    /// NaN, infinity, no values or too many (22000 / 54000).
    Value(ValueError),
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParseError::Malformed(m) => f.write_str(m),
            ParseError::OutOfRange(v) => write!(f, "\"{v}\" is out of range for type real"),
            ParseError::Value(e) => e.fmt(f),
        }
    }
}

fn malformed(input: &str, detail: &str) -> ParseError {
    ParseError::Malformed(format!(
        "invalid input syntax for type embedding: \"{input}\" ({detail})"
    ))
}

/// Parses `[1,2.5,-3]`. Values are checked as [`check_values`] does.
pub fn parse(input: &str) -> Result<Vec<f32>, ParseError> {
    let s = input.trim();
    let inner = s
        .strip_prefix('[')
        .ok_or_else(|| malformed(input, "must start with \"[\""))?
        .strip_suffix(']')
        .ok_or_else(|| malformed(input, "must end with \"]\""))?;
    if inner.trim().is_empty() {
        return Err(ParseError::Value(ValueError::Empty));
    }
    let mut values = Vec::with_capacity(inner.len() / 2 + 1);
    for item in inner.split(',') {
        let item = item.trim();
        if item.is_empty() {
            return Err(malformed(input, "empty value between commas"));
        }
        if values.len() == MAX_DIMS {
            let n = inner.split(',').count();
            return Err(ParseError::Value(ValueError::TooManyDims(n)));
        }
        let value = parse_real(item)
            .ok_or_else(|| malformed(input, &format!("\"{item}\" is not a number")))?;
        if value.is_infinite() && !item.to_ascii_lowercase().contains("inf") {
            return Err(ParseError::OutOfRange(item.to_string()));
        }
        values.push(value);
    }
    check_values(&values).map_err(ParseError::Value)?;
    Ok(values)
}

/// A float4 the way PostgreSQL's float4in reads one; rejects Rust-only spellings it would not take.
fn parse_real(item: &str) -> Option<f32> {
    let first = item.as_bytes()[0];
    if !(first.is_ascii_digit() || matches!(first, b'+' | b'-' | b'.' | b'i' | b'I' | b'n' | b'N'))
    {
        return None;
    }
    item.parse::<f32>().ok()
}

/// Formats values as `[1,2.5,-3]` with the shortest text that reads back to the same float4.
pub fn format(values: &[f32]) -> String {
    let mut out = String::with_capacity(values.len() * 10 + 2);
    out.push('[');
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_real(&mut out, *v);
    }
    out.push(']');
    out
}

/// Shortest text that reads back to the same float4, with PostgreSQL's float4out choice between
/// plain and exponent form (exponent below -4 or from 15 on: `1e-05`, `3.4028235e+38`).
fn write_real(out: &mut String, v: f32) {
    // The input never accepts them, but a damaged stored value may hold them: written as float4out
    // writes them, so output (and pg_dump) never fails.
    if !v.is_finite() {
        out.push_str(if v.is_nan() {
            "NaN"
        } else if v > 0.0 {
            "Infinity"
        } else {
            "-Infinity"
        });
        return;
    }
    let a = v.abs();
    if a != 0.0 && !(1e-4..1e15).contains(&a) {
        let e = format!("{v:e}");
        let (mantissa, exp) = e.split_once('e').expect("LowerExp writes an exponent");
        let exp: i32 = exp.parse().expect("LowerExp writes an integer exponent");
        let sign = if exp < 0 { '-' } else { '+' };
        write!(out, "{mantissa}e{sign}{:02}", exp.abs()).expect("writing to a String cannot fail");
    } else {
        // Display for f32 is the shortest round-trip decimal.
        write!(out, "{v}").expect("writing to a String cannot fail");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_non_finite_values_as_float4out() {
        assert_eq!(
            format(&[1.0, f32::NAN, f32::INFINITY, f32::NEG_INFINITY]),
            "[1,NaN,Infinity,-Infinity]"
        );
    }

    #[test]
    fn parses_and_formats() {
        assert_eq!(parse("[1,2.5,-3]").unwrap(), vec![1.0, 2.5, -3.0]);
        assert_eq!(
            parse("  [ 1 , 2.5 ,\t-3 ]  ").unwrap(),
            vec![1.0, 2.5, -3.0]
        );
        assert_eq!(parse("[1e3]").unwrap(), vec![1000.0]);
        assert_eq!(format(&[1.0, 2.5, -3.0]), "[1,2.5,-3]");
        assert_eq!(
            format(&[1e-5, 3.4028235e38, -1.5e20, 0.0001, 1e14]),
            "[1e-05,3.4028235e+38,-1.5e+20,0.0001,100000000000000]"
        );
        let v = [0.1f32, 1e-30, 3.4e38, -7.25];
        assert_eq!(parse(&format(&v)).unwrap(), v);
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "1,2", "[1,2", "1,2]", "[1,,2]", "[1,2,]", "[,1]", "[a]", "[1 2]", "[0x10]", "[[1]]",
            "",
        ] {
            assert!(
                matches!(parse(bad), Err(ParseError::Malformed(_))),
                "{bad:?} -> {:?}",
                parse(bad)
            );
        }
        assert_eq!(parse("[]"), Err(ParseError::Value(ValueError::Empty)));
        assert_eq!(parse("[ ]"), Err(ParseError::Value(ValueError::Empty)));
    }

    #[test]
    fn rejects_bad_values() {
        assert!(matches!(parse("[1e39]"), Err(ParseError::OutOfRange(_))));
        assert!(matches!(parse("[-1e39]"), Err(ParseError::OutOfRange(_))));
        assert!(matches!(
            parse("[NaN]"),
            Err(ParseError::Value(ValueError::NotFinite { .. }))
        ));
        assert!(matches!(
            parse("[1,-Infinity]"),
            Err(ParseError::Value(ValueError::NotFinite { index: 1, .. }))
        ));
        let many = format(&vec![1.0; MAX_DIMS + 1]);
        assert_eq!(
            parse(&many),
            Err(ParseError::Value(ValueError::TooManyDims(MAX_DIMS + 1)))
        );
        assert_eq!(
            parse(&format(&vec![1.0; MAX_DIMS])).unwrap().len(),
            MAX_DIMS
        );
    }
}
