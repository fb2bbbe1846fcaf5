//! Text side: fastText-style subword hashing and the loader for fastText `.vec` word vectors.

use std::collections::HashMap;
use std::io::BufRead;

use crate::config::TextConfig;
use crate::error::{ModelError, Result};

/// Longest wish accepted, in bytes.
pub const MAX_TEXT_BYTES: usize = 4096;
/// At most this many hashed ids a text (longer texts are cut: the tail adds little).
pub const MAX_IDS: usize = 512;
/// Limits of a `.vec` file: words and dimensions.
pub const MAX_VEC_WORDS: usize = 4_000_000;
pub const MAX_VEC_DIM: usize = 4096;

/// Lowercased words of `text`: runs of letters and digits.
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.to_lowercase())
        .collect()
}

/// fastText's string hash (FNV-1a, 32 bits, over the UTF-8 bytes).
fn hash32(bytes: &[u8]) -> u32 {
    let mut h: u32 = 2_166_136_261;
    for &b in bytes {
        h ^= b as u32;
        h = h.wrapping_mul(16_777_619);
    }
    h
}

/// Checks the length limits and that the text has a word; returns its words.
pub fn checked_words(text: &str) -> Result<Vec<String>> {
    if text.len() > MAX_TEXT_BYTES {
        return Err(ModelError::TextTooLong {
            len: text.len(),
            max: MAX_TEXT_BYTES,
        });
    }
    let w = words(text);
    if w.is_empty() {
        return Err(ModelError::EmptyText(text.to_string()));
    }
    Ok(w)
}

/// Hashed ids of a text, each in `1..=buckets` (0 is padding): every word `<w>`, its character
/// n-grams of `min_n..=max_n`, and word bigrams.
pub fn subword_ids(cfg: &TextConfig, words: &[String]) -> Vec<i64> {
    let b = cfg.buckets as u64;
    let id = |s: &[u8]| (hash32(s) as u64 % b) as i64 + 1;
    let mut out = Vec::new();
    for (i, w) in words.iter().enumerate() {
        let marked: Vec<char> = std::iter::once('<')
            .chain(w.chars())
            .chain(std::iter::once('>'))
            .collect();
        let whole: String = marked.iter().collect();
        out.push(id(whole.as_bytes()));
        for n in cfg.min_n..=cfg.max_n {
            if n >= marked.len() {
                break;
            }
            for start in 0..=marked.len() - n {
                let g: String = marked[start..start + n].iter().collect();
                out.push(id(g.as_bytes()));
            }
        }
        if cfg.word_bigrams && i + 1 < words.len() {
            let bigram = format!("{w} {}", words[i + 1]);
            out.push(id(bigram.as_bytes()));
        }
    }
    out.truncate(MAX_IDS);
    out
}

/// fastText `.vec` word vectors: a header line `count dim`, then `word v1 .. vdim` a line.
#[derive(Clone, Debug, PartialEq)]
pub struct WordVectors {
    pub dim: usize,
    pub words: Vec<String>,
    /// Row-major, `words.len() * dim`.
    pub values: Vec<f32>,
    index: HashMap<String, usize>,
}

impl WordVectors {
    /// Builds from parts (used when loading a checkpoint).
    pub fn new(dim: usize, words: Vec<String>, values: Vec<f32>) -> Result<Self> {
        if dim == 0 || values.len() != words.len() * dim {
            return Err(ModelError::WordVectors {
                line: 0,
                message: format!(
                    "{} values do not fill {} words of {dim}",
                    values.len(),
                    words.len()
                ),
            });
        }
        let index = words
            .iter()
            .enumerate()
            .map(|(i, w)| (w.clone(), i))
            .collect();
        Ok(WordVectors {
            dim,
            words,
            values,
            index,
        })
    }

    /// Parses a `.vec` stream. Words are lowercased (the first occurrence wins).
    pub fn read(reader: impl BufRead) -> Result<Self> {
        let mut lines = reader.lines();
        let bad = |line: usize, message: String| ModelError::WordVectors { line, message };
        let header = match lines.next() {
            Some(l) => l.map_err(|e| bad(1, e.to_string()))?,
            None => return Err(bad(1, "the file is empty".into())),
        };
        let parts: Vec<&str> = header.split_whitespace().collect();
        let (count, dim) = match parts.as_slice() {
            [c, d] => (
                c.parse::<usize>()
                    .map_err(|_| bad(1, format!("word count {c:?} is not a number")))?,
                d.parse::<usize>()
                    .map_err(|_| bad(1, format!("dimension {d:?} is not a number")))?,
            ),
            _ => {
                return Err(bad(
                    1,
                    format!("expected a header \"count dim\", not {header:?}"),
                ));
            }
        };
        if count > MAX_VEC_WORDS {
            return Err(bad(1, format!("{count} words, at most {MAX_VEC_WORDS}")));
        }
        if dim == 0 || dim > MAX_VEC_DIM {
            return Err(bad(
                1,
                format!("dimension {dim} is not in 1..={MAX_VEC_DIM}"),
            ));
        }
        let mut words = Vec::with_capacity(count);
        let mut values = Vec::with_capacity(count * dim);
        let mut seen = HashMap::new();
        for (i, line) in lines.enumerate() {
            let n = i + 2;
            let line = line.map_err(|e| bad(n, e.to_string()))?;
            if line.trim().is_empty() {
                continue;
            }
            if words.len() == count {
                return Err(bad(
                    n,
                    format!("more than the {count} words the header announces"),
                ));
            }
            let mut it = line.split_whitespace();
            let word = it.next().unwrap_or_default().to_lowercase();
            let start = values.len();
            for tok in it {
                let v: f32 = tok
                    .parse()
                    .map_err(|_| bad(n, format!("value {tok:?} is not a number")))?;
                if !v.is_finite() {
                    return Err(bad(n, format!("value {tok:?} is not finite")));
                }
                values.push(v);
            }
            if values.len() - start != dim {
                return Err(bad(
                    n,
                    format!(
                        "word {word:?} has {} values, expected {dim}",
                        values.len() - start
                    ),
                ));
            }
            if seen.contains_key(&word) {
                values.truncate(start);
                continue;
            }
            seen.insert(word.clone(), words.len());
            words.push(word);
        }
        if words.is_empty() {
            return Err(bad(2, "no word vectors".into()));
        }
        Ok(WordVectors {
            dim,
            words,
            values,
            index: seen,
        })
    }

    /// Reads a `.vec` file.
    pub fn read_file(path: impl AsRef<std::path::Path>) -> Result<Self> {
        let f = std::fs::File::open(path.as_ref()).map_err(|e| ModelError::io(path.as_ref(), e))?;
        Self::read(std::io::BufReader::new(f))
    }

    /// 1-based row of a word (0 = unknown), for the embedding table whose row 0 is zeros.
    pub fn row(&self, word: &str) -> i64 {
        self.index.get(word).map_or(0, |&i| i as i64 + 1)
    }

    /// The words as one newline-separated blob (checkpoint section).
    pub fn words_blob(&self) -> Vec<u8> {
        self.words.join("\n").into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_lowercase_and_split() {
        assert_eq!(
            words("In BLACK leather, please!"),
            ["in", "black", "leather", "please"]
        );
        assert!(checked_words("  ,. ").is_err());
        assert!(matches!(
            checked_words(&"a".repeat(MAX_TEXT_BYTES + 1)),
            Err(ModelError::TextTooLong { .. })
        ));
    }

    #[test]
    fn subword_ids_are_in_range_and_stable() {
        let cfg = TextConfig {
            buckets: 1000,
            ..TextConfig::default()
        };
        let w = words("is red and has short sleeves");
        let a = subword_ids(&cfg, &w);
        assert_eq!(a, subword_ids(&cfg, &w));
        assert!(a.iter().all(|&i| (1..=1000).contains(&i)));
        // "red" gives <red> plus 3 trigrams and 2 four-grams (the whole "<red>" once only).
        let r = subword_ids(&cfg, &words("red"));
        assert_eq!(r.len(), 1 + 3 + 2);
    }

    #[test]
    fn vec_reader_parses_and_rejects() {
        let ok = "2 3\nRed 1 0 0\nblack 0 1 0.5\n";
        let v = WordVectors::read(ok.as_bytes()).unwrap();
        assert_eq!(v.words, ["red", "black"]);
        assert_eq!(v.row("black"), 2);
        assert_eq!(v.row("blue"), 0);
        let e = WordVectors::read("2 3\nred 1 0\n".as_bytes()).unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
        let e = WordVectors::read("x 3\n".as_bytes()).unwrap_err();
        assert!(e.to_string().contains("not a number"), "{e}");
        let e = WordVectors::read("1 2\nred 1 nan\n".as_bytes()).unwrap_err();
        assert!(e.to_string().contains("not finite"), "{e}");
    }
}
