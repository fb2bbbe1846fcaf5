//! Training and evaluation data as tensors: every image once, pairs as indices, captions as words.
//! Only what Fashion-IQ gives is used: images, (candidate, target) pairs and their captions.

use std::collections::HashMap;

use synthsearch_data::image_io::DecodeLimits;
use synthsearch_data::image_io::to_chw;
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
}

impl Dataset {
    /// Renders a generated catalog at `image_size`.
    pub fn from_catalog(catalog: &Catalog, image_size: usize) -> Result<Dataset> {
        let s = image_size as u32;
        let per = 3 * image_size * image_size;
        let mut flat = vec![0f32; catalog.products.len() * per];
        // Rendering is the slow part: split it over the cores.
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(8);
        let chunk = catalog.products.len().div_ceil(threads).max(1);
        std::thread::scope(|scope| {
            for (products, out) in catalog
                .products
                .chunks(chunk)
                .zip(flat.chunks_mut(chunk * per))
            {
                scope.spawn(move || {
                    for (p, o) in products.iter().zip(out.chunks_mut(per)) {
                        o.copy_from_slice(&to_chw(&p.render(s), s));
                    }
                });
            }
        });
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
        Self::assemble(image_size, records, flat, &pairs)
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
        Self::assemble(image_size, records, flat, &pairs)
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
            };
            match split {
                Split::Train => train.push(p),
                Split::Val => val.push(p),
                Split::Test => {}
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
        let (categories, splits) = rest.into_iter().unzip();
        Ok(Dataset {
            image_size,
            ids,
            categories,
            splits,
            images,
            train,
            val,
        })
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
