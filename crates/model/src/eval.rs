//! Evaluation as in the seed: embed the validation gallery, rank it by distance to each query's
//! embedding, and report Recall@K beside the baselines.
//!
//! Protocol: per Fashion-IQ category, the gallery is that category's validation images without
//! the query's own source image; a query hits at K when its target ranks among the K nearest.

use serde::Serialize;
use synthsearch_data::Split;
use tch::{Device, Kind, Tensor};

use crate::dataset::{Dataset, PairRef};
use crate::error::Result;
use crate::model::Model;

pub const KS: [usize; 4] = [10, 50, 100, 1000];

/// The ways a query embedding is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Baseline: the source image's embedding.
    ImageOnly,
    /// Baseline: the composition head on the text alone.
    TextOnly,
    /// Baseline: image+text composition without the GAN.
    Composition,
    /// SynthTriplet: the embedding of the image generated from the source image and text.
    Gan,
    /// The generator given only the source's stored embedding (no pixels).
    GanFromEmbedding,
    /// The generator without the image condition.
    GanTextOnly,
}

impl Method {
    pub const ALL: [Method; 6] = [
        Method::ImageOnly,
        Method::TextOnly,
        Method::Composition,
        Method::Gan,
        Method::GanFromEmbedding,
        Method::GanTextOnly,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Method::ImageOnly => "image only",
            Method::TextOnly => "text only",
            Method::Composition => "image+text composition (no GAN)",
            Method::Gan => "SynthTriplet GAN",
            Method::GanFromEmbedding => "GAN from the stored embedding",
            Method::GanTextOnly => "GAN, text only",
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct MethodRecall {
    pub method: Method,
    /// (K, Recall@K) for K in [`KS`].
    pub recall: Vec<(usize, f64)>,
}

#[derive(Clone, Debug, Serialize)]
pub struct EvalReport {
    pub queries: usize,
    /// Mean gallery size a query is ranked against.
    pub mean_gallery: f64,
    pub methods: Vec<MethodRecall>,
}

impl EvalReport {
    pub fn recall(&self, method: Method, k: usize) -> Option<f64> {
        self.methods
            .iter()
            .find(|m| m.method == method)?
            .recall
            .iter()
            .find(|(kk, _)| *kk == k)
            .map(|(_, r)| *r)
    }

    /// A Markdown table.
    pub fn table(&self) -> String {
        let mut s = String::from("| method |");
        for k in KS {
            s.push_str(&format!(" R@{k} |"));
        }
        s.push_str("\n| --- |");
        for _ in KS {
            s.push_str(" ---: |");
        }
        s.push('\n');
        for m in &self.methods {
            s.push_str(&format!("| {} |", m.method.name()));
            for (_, r) in &m.recall {
                s.push_str(&format!(" {:.3} |", r));
            }
            s.push('\n');
        }
        s
    }
}

fn to_rows(t: &Tensor) -> Result<Vec<Vec<f32>>> {
    let t = t.to_device(Device::Cpu).to_kind(Kind::Float);
    let d = t.size()[1] as usize;
    let flat = Vec::<f32>::try_from(&t.flatten(0, -1))?;
    Ok(flat.chunks(d.max(1)).map(<[f32]>::to_vec).collect())
}

/// Embeds `indices` of the dataset in batches.
fn embed(model: &Model, data: &Dataset, indices: &[usize]) -> Result<Vec<Vec<f32>>> {
    let mut out = Vec::with_capacity(indices.len());
    for chunk in indices.chunks(256) {
        let x = data.batch(chunk).to_device(model.device());
        out.extend(to_rows(&tch::no_grad(|| model.encode_tensor(&x))?)?);
    }
    Ok(out)
}

/// Query embeddings of one method for `pairs`.
fn queries(
    model: &Model,
    data: &Dataset,
    method: Method,
    pairs: &[PairRef],
    source_emb: &[Vec<f32>],
) -> Result<Vec<Vec<f32>>> {
    let d = model.embed_dim() as i64;
    let dev = model.device();
    let mut out = Vec::with_capacity(pairs.len());
    for (chunk, emb) in pairs.chunks(256).zip(source_emb.chunks(256)) {
        if method == Method::ImageOnly {
            out.extend(emb.iter().cloned());
            continue;
        }
        let b = chunk.len() as i64;
        let flat: Vec<f32> = emb.iter().flatten().copied().collect();
        let es = Tensor::from_slice(&flat).view([b, d]).to_device(dev);
        let with_image = matches!(
            method,
            Method::Composition | Method::Gan | Method::GanFromEmbedding
        );
        let has = Tensor::full(
            [b, 1],
            if with_image { 1.0 } else { 0.0 },
            (Kind::Float, dev),
        );
        let texts: Vec<Vec<String>> = chunk.iter().map(PairRef::joined).collect();
        let pixels = (method == Method::Gan).then(|| {
            let idx: Vec<usize> = chunk.iter().map(|p| p.candidate).collect();
            data.batch(&idx).to_device(dev)
        });
        let q = tch::no_grad(|| -> Result<Tensor> {
            Ok(match method {
                Method::TextOnly | Method::Composition => model.compose_tensor(&es, &has, &texts),
                _ => {
                    model
                        .generate_tensor(
                            &es,
                            &has,
                            pixels.as_ref(),
                            &texts,
                            &model.noise(chunk.len(), None),
                        )?
                        .1
                }
            })
        })?;
        out.extend(to_rows(&q)?);
    }
    Ok(out)
}

/// Recall@K of every method on up to `max_queries` validation pairs (0: all).
pub fn evaluate(model: &Model, data: &Dataset, max_queries: usize) -> Result<EvalReport> {
    let mut pairs: Vec<PairRef> = data.val.clone();
    if max_queries > 0 {
        pairs.truncate(max_queries);
    }
    let gallery = data.gallery(Split::Val);
    let mut gallery_emb = std::collections::HashMap::new();
    for (cat, idx) in &gallery {
        gallery_emb.insert(cat.clone(), (idx.clone(), embed(model, data, idx)?));
    }
    let sources: Vec<usize> = pairs.iter().map(|p| p.candidate).collect();
    let source_emb = embed(model, data, &sources)?;
    let mut methods = Vec::new();
    let mut gallery_total = 0usize;
    for method in Method::ALL {
        let q = queries(model, data, method, &pairs, &source_emb)?;
        let mut hits = [0usize; KS.len()];
        gallery_total = 0;
        for (p, qv) in pairs.iter().zip(&q) {
            let Some((idx, emb)) = gallery_emb.get(&data.categories[p.candidate]) else {
                continue;
            };
            let dist = |e: &[f32]| synthsearch_vector::distance::l2_distance(qv, e);
            let target = idx.iter().position(|&i| i == p.target);
            let Some(t) = target else { continue };
            let dt = dist(&emb[t]);
            let mut rank = 0usize;
            for (j, (&i, e)) in idx.iter().zip(emb).enumerate() {
                if j != t && i != p.candidate && dist(e) < dt {
                    rank += 1;
                }
            }
            gallery_total += idx.len() - usize::from(idx.contains(&p.candidate));
            for (h, k) in hits.iter_mut().zip(KS) {
                if rank < k {
                    *h += 1;
                }
            }
        }
        let n = pairs.len().max(1) as f64;
        methods.push(MethodRecall {
            method,
            recall: KS
                .iter()
                .zip(hits)
                .map(|(&k, h)| (k, h as f64 / n))
                .collect(),
        });
    }
    Ok(EvalReport {
        queries: pairs.len(),
        mean_gallery: gallery_total as f64 / pairs.len().max(1) as f64,
        methods,
    })
}
