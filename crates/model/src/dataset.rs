//! Training and evaluation data as tensors: every image once, pairs as indices, captions as words.
//! Fashion-IQ gives images, (candidate, target) pairs and their captions; a generated catalog or a
//! shop's attribute columns also give each image's attribute values, from which pairs can be formed
//! and against which a wish can be checked.

use std::collections::HashMap;

use synthsearch_data::image_io::DecodeLimits;
use synthsearch_data::image_io::to_chw;
use synthsearch_data::wishes::{self, PairPlan};
use synthsearch_data::{Catalog, Split, fashioniq};
use tch::{Kind, Tensor};

use crate::error::{ModelError, Result};
use crate::text::words;

/// A pair by image index, with the words of its two captions.
#[derive(Clone, Debug, PartialEq)]
pub struct PairRef {
    pub candidate: usize,
    pub target: usize,
    pub captions: [Vec<String>; 2],
    /// What the wish asks for, as (attribute column, value code): the target's values where they
    /// differ from the candidate's. Empty when the data has no attributes.
    pub wish: Vec<(usize, u32)>,
}

impl PairRef {
    /// Both captions joined, as Fashion-IQ evaluation does ("c1 and c2").
    pub fn joined(&self) -> Vec<String> {
        let mut w = self.captions[0].clone();
        w.push("and".into());
        w.extend(self.captions[1].iter().cloned());
        w
    }
}

/// A value that is not known.
pub const UNKNOWN: u32 = u32::MAX;

/// Attribute values of every image, by column: a generated catalog's six, or a shop's columns.
#[derive(Clone, Debug, PartialEq)]
pub struct AttributeTable {
    pub columns: Vec<String>,
    /// Each column's values; codes index into these.
    pub values: Vec<Vec<String>>,
    /// `images * columns` codes, row-major; [`UNKNOWN`] where a value is NULL.
    pub codes: Vec<u32>,
}

impl AttributeTable {
    /// Codes the rows' values; values are compared as given (trimmed).
    pub fn from_rows(columns: Vec<String>, rows: &[Vec<Option<String>>]) -> AttributeTable {
        let a = columns.len();
        let mut values: Vec<Vec<String>> = vec![Vec::new(); a];
        let mut index: Vec<HashMap<String, u32>> = vec![HashMap::new(); a];
        let mut codes = Vec::with_capacity(rows.len() * a);
        for row in rows {
            for c in 0..a {
                let code = match row.get(c).and_then(|v| v.as_deref()) {
                    Some(v) => {
                        let v = v.trim();
                        *index[c].entry(v.to_string()).or_insert_with(|| {
                            values[c].push(v.to_string());
                            (values[c].len() - 1) as u32
                        })
                    }
                    None => UNKNOWN,
                };
                codes.push(code);
            }
        }
        AttributeTable {
            columns,
            values,
            codes,
        }
    }

    pub fn rows(&self) -> usize {
        self.codes.len() / self.columns.len().max(1)
    }

    pub fn code(&self, image: usize, column: usize) -> u32 {
        self.codes[image * self.columns.len() + column]
    }

    pub fn value(&self, image: usize, column: usize) -> Option<&str> {
        let code = self.code(image, column);
        self.values[column].get(code as usize).map(String::as_str)
    }

    pub fn code_of(&self, column: usize, value: &str) -> Option<u32> {
        self.values
            .get(column)?
            .iter()
            .position(|v| v == value)
            .map(|i| i as u32)
    }

    /// Whether the image has every asked value.
    pub fn honours(&self, image: usize, asked: &[(usize, u32)]) -> bool {
        asked.iter().all(|&(c, v)| self.code(image, c) == v)
    }

    /// Values as strings, one row an image (what pair forming reads).
    pub fn string_rows(&self) -> Vec<Vec<Option<String>>> {
        (0..self.rows())
            .map(|i| {
                (0..self.columns.len())
                    .map(|c| self.value(i, c).map(str::to_string))
                    .collect()
            })
            .collect()
    }
}

/// All images of a catalog at one size, and its pairs by split.
#[derive(Debug)]
pub struct Dataset {
    pub image_size: usize,
    pub ids: Vec<String>,
    /// Category name per image ("dress", "shirt", "toptee" in Fashion-IQ).
    pub categories: Vec<String>,
    pub splits: Vec<Split>,
    /// `[N,3,S,S]` on the CPU, in [-1,1].
    pub images: Tensor,
    pub train: Vec<PairRef>,
    pub val: Vec<PairRef>,
    /// Pairs of the test split: read by the final, reported evaluation only, never by a decision
    /// taken while training or tuning.
    pub test: Vec<PairRef>,
    /// Each image's attribute values, when the data has them.
    pub attributes: Option<AttributeTable>,
    /// The category of each image as a small number (for masks).
    pub category_codes: Vec<u32>,
    /// Pairs the data named but left out because an image of theirs is of another split than
    /// theirs (set by whoever built the pairs; [`Dataset::assemble`] refuses such pairs).
    pub dropped_pairs: usize,
}

/// The generator's attribute columns, in the order [`attribute_row`] gives them.
const GENERATED_COLUMNS: [&str; 6] = ["colour", "pattern", "sleeve", "neckline", "hem", "material"];

/// One product's generated attributes as a row of [`GENERATED_COLUMNS`].
fn attribute_row(a: &synthsearch_data::Attributes) -> Vec<Option<String>> {
    [
        a.colour.name(),
        a.pattern.name(),
        a.sleeve.name(),
        a.neckline.name(),
        a.hem.name(),
        a.material.name(),
    ]
    .map(|v| Some(v.to_string()))
    .to_vec()
}

/// Rows of [`attribute_row`] as a table of [`GENERATED_COLUMNS`].
fn generated_table(rows: impl Iterator<Item = Vec<Option<String>>>) -> AttributeTable {
    let rows: Vec<Vec<Option<String>>> = rows.collect();
    AttributeTable::from_rows(GENERATED_COLUMNS.map(String::from).to_vec(), &rows)
}

/// The generated catalog's attributes as columns.
fn catalog_attributes(catalog: &Catalog) -> AttributeTable {
    generated_table(catalog.products.iter().map(|p| attribute_row(&p.attrs)))
}

fn render_catalog(catalog: &Catalog, image_size: usize) -> Vec<f32> {
    let s = image_size as u32;
    let per = 3 * image_size * image_size;
    let mut flat = vec![0f32; catalog.products.len() * per];
    // Rendering is the slow part: split it over the cores.
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    let chunk = catalog.products.len().div_ceil(threads).max(1);
    let variation = catalog.variation;
    std::thread::scope(|scope| {
        for (products, out) in catalog
            .products
            .chunks(chunk)
            .zip(flat.chunks_mut(chunk * per))
        {
            scope.spawn(move || {
                for (p, o) in products.iter().zip(out.chunks_mut(per)) {
                    o.copy_from_slice(&to_chw(&p.render_as(s, variation), s));
                }
            });
        }
    });
    flat
}

/// Pairs formed from attribute values (see [`wishes::form_pairs`]), within each split: a
/// product pairs only with products of its own split, so held-out pairs stay held out.
pub fn pairs_from_attributes(
    ids: &[String],
    categories: &[String],
    splits: &[Split],
    table: &AttributeTable,
    plan: &PairPlan,
) -> Vec<(String, String, [String; 2], Split)> {
    let rows = table.string_rows();
    let mut out = Vec::new();
    for split in Split::ALL {
        let members: Vec<usize> = (0..ids.len()).filter(|&i| splits[i] == *split).collect();
        if members.len() < 2 {
            continue;
        }
        let cats: Vec<String> = members.iter().map(|&i| categories[i].clone()).collect();
        let vals: Vec<Vec<Option<String>>> = members.iter().map(|&i| rows[i].clone()).collect();
        let plan = PairPlan {
            seed: plan.seed ^ (*split as u64) << 32,
            ..plan.clone()
        };
        for p in wishes::form_pairs(&table.columns, &cats, &vals, &plan) {
            out.push((
                ids[members[p.candidate]].clone(),
                ids[members[p.target]].clone(),
                p.captions,
                *split,
            ));
        }
    }
    out
}

impl Dataset {
    /// Renders a generated catalog at `image_size`, with its own pairs and its attributes.
    pub fn from_catalog(catalog: &Catalog, image_size: usize) -> Result<Dataset> {
        let flat = render_catalog(catalog, image_size);
        let records = catalog
            .products
            .iter()
            .map(|p| (p.id.clone(), p.category.name().to_string(), p.split))
            .collect();
        let pairs = catalog
            .pairs
            .iter()
            .map(|p| {
                (
                    p.candidate.clone(),
                    p.target.clone(),
                    p.captions.clone(),
                    p.split,
                )
            })
            .collect::<Vec<_>>();
        Self::assemble(image_size, records, flat, &pairs)?
            .with_attributes(catalog_attributes(catalog))
    }

    /// Renders a generated catalog at `image_size` and trains on pairs formed from its
    /// attributes, as a shop without relative captions would ([`pairs_from_attributes`]).
    pub fn from_catalog_attributes(
        catalog: &Catalog,
        image_size: usize,
        plan: &PairPlan,
    ) -> Result<Dataset> {
        let flat = render_catalog(catalog, image_size);
        let table = catalog_attributes(catalog);
        let ids: Vec<String> = catalog.products.iter().map(|p| p.id.clone()).collect();
        let cats: Vec<String> = catalog
            .products
            .iter()
            .map(|p| p.category.name().to_string())
            .collect();
        let splits: Vec<Split> = catalog.products.iter().map(|p| p.split).collect();
        let pairs = pairs_from_attributes(&ids, &cats, &splits, &table, plan);
        let records = ids
            .into_iter()
            .zip(cats)
            .zip(splits)
            .map(|((i, c), s)| (i, c, s))
            .collect();
        Self::assemble(image_size, records, flat, &pairs)?.with_attributes(table)
    }

    /// Reads a data set in the Fashion-IQ layout (ours or the real one), decoding every image of
    /// every split under the default limits and resizing it to `image_size`.
    pub fn from_fashioniq(dir: &std::path::Path, image_size: usize) -> Result<Dataset> {
        let fiq = fashioniq::read(dir).map_err(|e| ModelError::Data(e.to_string()))?;
        let mut records = Vec::new();
        for ((category, split), ids) in &fiq.splits {
            for id in ids {
                records.push((id.clone(), category.clone(), *split));
            }
        }
        let per = 3 * image_size * image_size;
        let mut flat = vec![0f32; records.len() * per];
        let limits = DecodeLimits::default();
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(8);
        let chunk = records.len().div_ceil(threads).max(1);
        let s = image_size as u32;
        let errors: Vec<ModelError> = std::thread::scope(|scope| {
            let handles: Vec<_> = records
                .chunks(chunk)
                .zip(flat.chunks_mut(chunk * per))
                .map(|(recs, out)| {
                    let fiq = &fiq;
                    scope.spawn(move || -> Result<()> {
                        for (r, o) in recs.iter().zip(out.chunks_mut(per)) {
                            let img = fiq
                                .load_image(&r.0, &limits)
                                .map_err(|e| ModelError::Data(e.to_string()))?;
                            o.copy_from_slice(&to_chw(&img, s));
                        }
                        Ok(())
                    })
                })
                .collect();
            handles
                .into_iter()
                .filter_map(|h| h.join().ok().and_then(|r| r.err()))
                .collect()
        });
        if let Some(e) = errors.into_iter().next() {
            return Err(e);
        }
        let pairs: Vec<(String, String, [String; 2], Split)> = fiq
            .triplets
            .iter()
            .map(|t| {
                let first = t.captions.first().cloned().unwrap_or_default();
                let second = t.captions.get(1).cloned().unwrap_or_else(|| first.clone());
                (
                    t.candidate.clone(),
                    t.target.clone(),
                    [first, second],
                    t.split,
                )
            })
            .collect();
        // A folder our generator wrote has each image's attributes (attributes.json): with them
        // the pairs get their wishes and evaluation its wish precision, as from the catalog
        // itself. An image the file does not name has no values (never honours a wish). A shop's
        // columns of any names (columns.json, as `synth photos` writes the photos' kind, tone and
        // pattern) take precedence.
        let generic = fiq.columns.as_ref().map(|known| {
            let rows: Vec<Vec<Option<String>>> = records
                .iter()
                .map(|r| {
                    known
                        .row(&r.0)
                        .map_or_else(|| vec![None; known.columns.len()], <[_]>::to_vec)
                })
                .collect();
            AttributeTable::from_rows(known.columns.clone(), &rows)
        });
        let table = generic.or_else(|| {
            fiq.attributes.as_ref().map(|known| {
                generated_table(records.iter().map(|r| {
                    known.get(&r.0).map_or_else(
                        || vec![None; GENERATED_COLUMNS.len()],
                        |k| attribute_row(&k.attrs),
                    )
                }))
            })
        });
        let d = Self::assemble(image_size, records, flat, &pairs)?;
        match table {
            Some(t) => d.with_attributes(t),
            None => Ok(d),
        }
    }

    /// Builds from parts: `(id, category, split)` per image, CHW values for all images, and
    /// `(candidate, target, captions, split)` per pair.
    pub fn assemble(
        image_size: usize,
        records: Vec<(String, String, Split)>,
        chw: Vec<f32>,
        pairs: &[(String, String, [String; 2], Split)],
    ) -> Result<Dataset> {
        let n = records.len();
        let per = 3 * image_size * image_size;
        if chw.len() != n * per {
            return Err(ModelError::Data(format!(
                "{} image values for {n} images of {image_size}x{image_size}",
                chw.len()
            )));
        }
        let index: HashMap<&str, usize> = records
            .iter()
            .enumerate()
            .map(|(i, r)| (r.0.as_str(), i))
            .collect();
        let mut train = Vec::new();
        let mut val = Vec::new();
        let mut test = Vec::new();
        for (cand, tgt, caps, split) in pairs {
            let find = |id: &str| {
                index
                    .get(id)
                    .copied()
                    .ok_or_else(|| ModelError::Data(format!("pair names unknown image {id:?}")))
            };
            let p = PairRef {
                candidate: find(cand)?,
                target: find(tgt)?,
                captions: [words(&caps[0]), words(&caps[1])],
                wish: Vec::new(),
            };
            // Training sees training images only and evaluation ranks held-out images only: a
            // pair whose images are of another split than its own would break one or the other.
            for (role, i) in [("candidate", p.candidate), ("target", p.target)] {
                if records[i].2 != *split {
                    return Err(ModelError::Data(format!(
                        "a pair of the {} split has as its {role} image {:?} of the {} split: \
                         a pair's images must be in the pair's split",
                        split.name(),
                        records[i].0,
                        records[i].2.name()
                    )));
                }
            }
            match split {
                Split::Train => train.push(p),
                Split::Val => val.push(p),
                Split::Test => test.push(p),
            }
        }
        if train.is_empty() {
            return Err(ModelError::Data("no training pairs".into()));
        }
        let s = image_size as i64;
        let images = Tensor::from_slice(&chw)
            .view([n as i64, 3, s, s])
            .to_kind(Kind::Float);
        let (ids, rest): (Vec<String>, Vec<(String, Split)>) =
            records.into_iter().map(|(id, c, sp)| (id, (c, sp))).unzip();
        let (categories, splits): (Vec<String>, Vec<Split>) = rest.into_iter().unzip();
        let mut names: HashMap<&str, u32> = HashMap::new();
        let category_codes = categories
            .iter()
            .map(|c| {
                let next = names.len() as u32;
                *names.entry(c.as_str()).or_insert(next)
            })
            .collect();
        Ok(Dataset {
            image_size,
            ids,
            categories,
            splits,
            images,
            train,
            val,
            test,
            attributes: None,
            category_codes,
            dropped_pairs: 0,
        })
    }

    /// Adds each image's attribute values (one row an image, in image order). Every pair's wish
    /// becomes the target's values where they differ from the candidate's.
    pub fn with_attributes(mut self, table: AttributeTable) -> Result<Dataset> {
        if table.rows() != self.len() || table.columns.is_empty() {
            return Err(ModelError::Data(format!(
                "attribute rows for {} images and {} columns, the data has {} images",
                table.rows(),
                table.columns.len(),
                self.len()
            )));
        }
        for p in self
            .train
            .iter_mut()
            .chain(self.val.iter_mut())
            .chain(self.test.iter_mut())
        {
            p.wish = (0..table.columns.len())
                .filter_map(|c| {
                    let (a, b) = (table.code(p.candidate, c), table.code(p.target, c));
                    (a != b && b != UNKNOWN).then_some((c, b))
                })
                .collect();
        }
        self.attributes = Some(table);
        Ok(self)
    }

    /// The same images with pairs formed from their attribute values instead of the data's own
    /// ([`pairs_from_attributes`]: within each split), as a shop without relative captions
    /// trains. Errors without attribute values or when no training pair forms.
    pub fn with_pairs_from_attributes(mut self, plan: &PairPlan) -> Result<Dataset> {
        let Some(table) = self.attributes.take() else {
            return Err(ModelError::Data(
                "the data has no attribute values to form pairs from".into(),
            ));
        };
        let pairs = pairs_from_attributes(&self.ids, &self.categories, &self.splits, &table, plan);
        let index: HashMap<&str, usize> = self
            .ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.as_str(), i))
            .collect();
        let (mut train, mut val, mut test) = (Vec::new(), Vec::new(), Vec::new());
        for (c, t, caps, split) in &pairs {
            let p = PairRef {
                candidate: index[c.as_str()],
                target: index[t.as_str()],
                captions: [words(&caps[0]), words(&caps[1])],
                wish: Vec::new(),
            };
            match split {
                Split::Train => train.push(p),
                Split::Val => val.push(p),
                Split::Test => test.push(p),
            }
        }
        if train.is_empty() {
            return Err(ModelError::Data(
                "no two training products of one category differ in one or two attribute values"
                    .into(),
            ));
        }
        (self.train, self.val, self.test) = (train, val, test);
        self.with_attributes(table)
    }

    /// Whether `image` honours `wish`: it has every asked value, and the category of `reference`
    /// when there is one.
    pub fn honours(&self, image: usize, wish: &[(usize, u32)], reference: Option<usize>) -> bool {
        let Some(t) = &self.attributes else {
            return false;
        };
        reference.is_none_or(|r| self.category_codes[r] == self.category_codes[image])
            && t.honours(image, wish)
    }

    /// The images that meet every condition of a query but one, where the conditions are the
    /// wished values and, with a reference, its category: for "is solid red" on a striped shirt,
    /// the solid red dresses, the red dotted shirts and the solid shirts of other colours. A query
    /// with fewer than two conditions has none (every other image misses it by its one).
    pub fn near_misses(&self, wish: &[(usize, u32)], reference: Option<usize>) -> Vec<usize> {
        let Some(t) = &self.attributes else {
            return Vec::new();
        };
        let category = reference.map(|r| self.category_codes[r]);
        if wish.len() + usize::from(category.is_some()) < 2 {
            return Vec::new();
        }
        (0..self.len())
            .filter(|&i| {
                let wrong_category = category.is_some_and(|c| self.category_codes[i] != c);
                let missed = usize::from(wrong_category)
                    + wish.iter().filter(|&&cv| !t.honours(i, &[cv])).count();
                missed == 1
            })
            .collect()
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Images by index, `[B,3,S,S]` on the CPU.
    pub fn batch(&self, indices: &[usize]) -> Tensor {
        let idx: Vec<i64> = indices.iter().map(|&i| i as i64).collect();
        self.images.index_select(0, &Tensor::from_slice(&idx))
    }

    /// The pairs of `split`.
    pub fn pairs(&self, split: Split) -> &[PairRef] {
        match split {
            Split::Train => &self.train,
            Split::Val => &self.val,
            Split::Test => &self.test,
        }
    }

    /// The images of `split`, in order.
    pub fn images_in(&self, split: Split) -> Vec<usize> {
        (0..self.len())
            .filter(|&i| self.splits[i] == split)
            .collect()
    }

    /// The images training may look at: those of the training split. Every loss that looks at
    /// the catalog beyond a batch's pairs (wish keys, the bank, positives, near misses, the
    /// catalog contrastive and distillation) draws from these alone, so no held-out image and
    /// none of its labels ever shapes the model.
    pub fn training_images(&self) -> Vec<usize> {
        self.images_in(Split::Train)
    }

    /// The evaluation gallery: per category, the indices of the images in `split`.
    pub fn gallery(&self, split: Split) -> HashMap<String, Vec<usize>> {
        let mut g: HashMap<String, Vec<usize>> = HashMap::new();
        for i in 0..self.len() {
            if self.splits[i] == split {
                g.entry(self.categories[i].clone()).or_default().push(i);
            }
        }
        g
    }
}
