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
    /// SynthTriplet: the search embedding of the image generated from the source image and
    /// text (with the model's synthetic query expansion, if it has one).
    Gan,
    /// The generated image's embedding alone, without the query expansion.
    GanImage,
    /// The generator given only the source's stored embedding (no pixels).
    GanFromEmbedding,
    /// The generator without the image condition.
    GanTextOnly,
}

impl Method {
    pub const ALL: [Method; 7] = [
        Method::ImageOnly,
        Method::TextOnly,
        Method::Composition,
        Method::Gan,
        Method::GanImage,
        Method::GanFromEmbedding,
        Method::GanTextOnly,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Method::ImageOnly => "image only",
            Method::TextOnly => "text only",
            Method::Composition => "image+text composition (no GAN)",
            Method::Gan => "SynthTriplet GAN",
            Method::GanImage => "GAN image alone (no query expansion)",
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
            Method::Composition | Method::Gan | Method::GanImage | Method::GanFromEmbedding
        );
        let has = Tensor::full(
            [b, 1],
            if with_image { 1.0 } else { 0.0 },
            (Kind::Float, dev),
        );
        let texts: Vec<Vec<String>> = chunk.iter().map(PairRef::joined).collect();
        let pixels = matches!(method, Method::Gan | Method::GanImage).then(|| {
            let idx: Vec<usize> = chunk.iter().map(|p| p.candidate).collect();
            data.batch(&idx).to_device(dev)
        });
        let q = tch::no_grad(|| -> Result<Tensor> {
            Ok(match method {
                Method::TextOnly | Method::Composition => model.compose_tensor(&es, &has, &texts),
                Method::GanImage => {
                    model
                        .generate_tensor_parts(
                            &es,
                            &has,
                            pixels.as_ref(),
                            &texts,
                            &model.noise(chunk.len(), None),
                        )?
                        .1
                }
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

// ---- search quality as a shopper sees it ----------------------------------------------------

/// Results a query's page shows, whose wish precision is measured.
pub const PAGE: usize = 10;

/// How the headline queries are drawn.
#[derive(Clone, Debug, PartialEq)]
pub struct WishEvalConfig {
    /// Reference products per category (validation images where the data has a split).
    pub references_per_category: usize,
    /// Phrasings of each headline wish.
    pub phrasings: usize,
}

impl Default for WishEvalConfig {
    fn default() -> Self {
        WishEvalConfig {
            references_per_category: 4,
            phrasings: 2,
        }
    }
}

/// One headline wish's figures.
#[derive(Clone, Debug, Serialize)]
pub struct WishRow {
    /// The values asked for, "colour=black, material=leather".
    pub asked: String,
    /// The first phrasing.
    pub text: String,
    /// Wish precision@10 of the GAN from a reference image, of the composition, and text only
    /// (the GAN without a reference).
    pub gan: f64,
    pub composition: f64,
    pub text_only: f64,
    /// Share of the GAN's images (with a reference) that show the asked colour; None when the
    /// wish asks no colour.
    pub colour_fidelity: Option<f64>,
}

/// Search quality as a shopper judges it, on the fixed headline queries: every colour, material
/// and pattern, and two-attribute wishes, from references of each category, in several
/// phrasings, ranked over the whole catalog.
#[derive(Clone, Debug, Serialize)]
pub struct WishReport {
    pub gallery: usize,
    pub queries_with_image: usize,
    pub queries_text_only: usize,
    /// Wish precision@10 by method: the mean share of a page that has every value the wish asks
    /// for and the reference's category (text only: every asked value).
    pub precision: Vec<(Method, f64)>,
    /// Share of synthesized images whose garment colour (read from the pixels) is the asked
    /// colour, with a reference and text only.
    pub colour_fidelity: Option<f64>,
    pub colour_fidelity_text_only: Option<f64>,
    /// The same colour reading on the catalog's own images: how far the reading can be trusted.
    pub colour_reading_on_catalog: Option<f64>,
    pub wishes: Vec<WishRow>,
}

impl WishReport {
    pub fn precision(&self, method: Method) -> Option<f64> {
        self.precision
            .iter()
            .find(|(m, _)| *m == method)
            .map(|(_, p)| *p)
    }

    /// Markdown tables: the summary, then each wish.
    pub fn table(&self) -> String {
        let mut s = format!(
            "{} queries with a reference image, {} text only, ranked over {} products\n\n\
             | method | wish precision@{PAGE} |\n| --- | ---: |\n",
            self.queries_with_image, self.queries_text_only, self.gallery
        );
        for (m, p) in &self.precision {
            s.push_str(&format!("| {} | {p:.3} |\n", m.name()));
        }
        let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
        s.push_str(&format!(
            "\ncolour fidelity of the synthesized images: {} with a reference, {} text only \
             (the same reading on the catalog's own images: {})\n\n",
            f(self.colour_fidelity),
            f(self.colour_fidelity_text_only),
            f(self.colour_reading_on_catalog)
        ));
        s.push_str(
            "| wish | asks | GAN | composition | text only | colour fidelity |\n\
             | --- | --- | ---: | ---: | ---: | ---: |\n",
        );
        for w in &self.wishes {
            s.push_str(&format!(
                "| {} | {} | {:.2} | {:.2} | {:.2} | {} |\n",
                w.text,
                w.asked,
                w.gan,
                w.composition,
                w.text_only,
                f(w.colour_fidelity)
            ));
        }
        s
    }
}

/// One query of the headline set.
struct WishQuery {
    wish: usize,
    reference: Option<usize>,
    words: Vec<String>,
}

/// Evenly spread reference products of each category (validation images where there are any).
fn references(data: &Dataset, per_category: usize) -> Vec<usize> {
    let mut cats: Vec<&String> = data.categories.iter().collect();
    cats.sort();
    cats.dedup();
    let mut out = Vec::new();
    for cat in cats {
        let of = |split: Option<Split>| -> Vec<usize> {
            (0..data.len())
                .filter(|&i| {
                    &data.categories[i] == cat && split.is_none_or(|s| data.splits[i] == s)
                })
                .collect()
        };
        let mut pool = of(Some(Split::Val));
        if pool.is_empty() {
            pool = of(None);
        }
        let k = per_category.min(pool.len());
        out.extend((0..k).map(|j| pool[j * pool.len() / k]));
    }
    out
}

fn to_image(chw: &[f32], size: usize) -> Result<image::RgbImage> {
    synthsearch_data::image_io::from_chw(chw, size as u32)
        .map_err(|e| crate::error::ModelError::Data(e.to_string()))
}

/// Wish precision@10 and image fidelity on the headline queries; `None` when the data has no
/// attribute values to check a wish against.
pub fn evaluate_wishes(
    model: &Model,
    data: &Dataset,
    cfg: &WishEvalConfig,
) -> Result<Option<WishReport>> {
    let Some(table) = &data.attributes else {
        return Ok(None);
    };
    let wishes =
        synthsearch_data::wishes::headline_wishes(&table.columns, &table.values, cfg.phrasings);
    // The asked values as codes; a wish whose value no product has is left out.
    let asked: Vec<Option<Vec<(usize, u32)>>> = wishes
        .iter()
        .map(|w| {
            w.asked
                .iter()
                .map(|(c, v)| table.code_of(*c, v).map(|code| (*c, code)))
                .collect()
        })
        .collect();
    let refs = references(data, cfg.references_per_category.max(1));
    let mut queries = Vec::new();
    for (w, wish) in wishes.iter().enumerate() {
        if asked[w].is_none() {
            continue;
        }
        for text in &wish.texts {
            let words = crate::text::words(text);
            queries.push(WishQuery {
                wish: w,
                reference: None,
                words: words.clone(),
            });
            for &r in &refs {
                queries.push(WishQuery {
                    wish: w,
                    reference: Some(r),
                    words: words.clone(),
                });
            }
        }
    }
    let dev = model.device();
    let all: Vec<usize> = (0..data.len()).collect();
    let gallery = embed(model, data, &all)?;
    let d = model.embed_dim();
    let flat: Vec<f32> = gallery.iter().flatten().copied().collect();
    let g = Tensor::from_slice(&flat)
        .view([data.len() as i64, d as i64])
        .to_device(dev);

    // The colour column and its named colours, for fidelity.
    let colour_col = table.columns.iter().position(|c| {
        synthsearch_data::wishes::kind_of(c) == Some(synthsearch_data::AttributeKind::Colour)
    });
    let palette: Vec<synthsearch_data::Colour> = colour_col
        .map(|c| {
            table.values[c]
                .iter()
                .filter_map(|v| synthsearch_data::Colour::parse(v).ok())
                .collect()
        })
        .unwrap_or_default();
    let asked_colour = |w: usize| -> Option<synthsearch_data::Colour> {
        let c = colour_col?;
        let (_, code) = asked[w].as_ref()?.iter().find(|(col, _)| *col == c)?;
        synthsearch_data::Colour::parse(&table.values[c][*code as usize]).ok()
    };

    let methods_image = [
        Method::ImageOnly,
        Method::Composition,
        Method::Gan,
        Method::GanImage,
    ];
    let methods_text = [Method::TextOnly, Method::GanTextOnly];
    // Per method: (sum of precision, count); per wish and method likewise; fidelity counts.
    let mut sums: Vec<(Method, f64, usize)> = methods_image
        .iter()
        .chain(&methods_text)
        .map(|&m| (m, 0.0, 0))
        .collect();
    let mut per_wish = vec![[(0.0f64, 0usize); 3]; wishes.len()];
    let mut fidelity = vec![(0usize, 0usize); wishes.len()];
    let mut fidelity_text = (0usize, 0usize);
    let s = model.image_size();
    for chunk in queries.chunks(128) {
        let b = chunk.len() as i64;
        let with_image: Vec<bool> = chunk.iter().map(|q| q.reference.is_some()).collect();
        let ref_idx: Vec<usize> = chunk.iter().map(|q| q.reference.unwrap_or(0)).collect();
        let es = g.index_select(
            0,
            &Tensor::from_slice(&ref_idx.iter().map(|&i| i as i64).collect::<Vec<_>>())
                .to_device(dev),
        );
        let hasv: Vec<f32> = with_image
            .iter()
            .map(|&h| if h { 1.0 } else { 0.0 })
            .collect();
        let has = Tensor::from_slice(&hasv).view([b, 1]).to_device(dev);
        let es = &es * &has;
        let px = data.batch(&ref_idx).to_device(dev) * has.view([b, 1, 1, 1]);
        let texts: Vec<Vec<String>> = chunk.iter().map(|q| q.words.clone()).collect();
        let (composed, gan_img, gan_emb, image_emb) =
            tch::no_grad(|| -> Result<(Tensor, Tensor, Tensor, Tensor)> {
                let c = model.compose_tensor(&es, &has, &texts);
                let (img, image_emb) = model.generate_tensor_parts(
                    &es,
                    &has,
                    Some(&px),
                    &texts,
                    &model.noise(chunk.len(), None),
                )?;
                let emb = model.expand(image_emb.shallow_clone(), || c.shallow_clone());
                Ok((c, img, emb, image_emb))
            })?;
        let images = Vec::<f32>::try_from(&gan_img.to_device(Device::Cpu).flatten(0, -1))?;
        for (m, sum, count) in sums.iter_mut() {
            let q = match m {
                Method::ImageOnly => es.shallow_clone(),
                Method::Composition | Method::TextOnly => composed.shallow_clone(),
                Method::GanImage => image_emb.shallow_clone(),
                _ => gan_emb.shallow_clone(),
            };
            let scores = q.mm(&g.tr());
            // A page never shows the reference itself.
            for (row, qq) in chunk.iter().enumerate() {
                if let Some(r) = qq.reference {
                    let _ = scores
                        .get(row as i64)
                        .get(r as i64)
                        .fill_(f64::NEG_INFINITY);
                }
            }
            let (_, top) = scores.topk(PAGE as i64, -1, true, true);
            let top = Vec::<i64>::try_from(&top.to_device(Device::Cpu).flatten(0, -1))?;
            for (row, qq) in chunk.iter().enumerate() {
                let image_method = methods_image.contains(m);
                if image_method != qq.reference.is_some() {
                    continue;
                }
                let Some(want) = &asked[qq.wish] else {
                    continue;
                };
                let honoured = top[row * PAGE..(row + 1) * PAGE]
                    .iter()
                    .filter(|&&i| data.honours(i as usize, want, qq.reference))
                    .count();
                let p = honoured as f64 / PAGE as f64;
                *sum += p;
                *count += 1;
                let slot = match m {
                    Method::Gan => Some(0),
                    Method::Composition => Some(1),
                    Method::GanTextOnly => Some(2),
                    _ => None,
                };
                if let Some(k) = slot {
                    per_wish[qq.wish][k].0 += p;
                    per_wish[qq.wish][k].1 += 1;
                }
            }
        }
        let per = 3 * s * s;
        for (row, qq) in chunk.iter().enumerate() {
            let Some(colour) = asked_colour(qq.wish) else {
                continue;
            };
            let img = to_image(&images[row * per..(row + 1) * per], s)?;
            let ok = synthsearch_data::measure::garment_colour(&img, &palette) == Some(colour);
            let slot = if qq.reference.is_some() {
                &mut fidelity[qq.wish]
            } else {
                &mut fidelity_text
            };
            slot.0 += usize::from(ok);
            slot.1 += 1;
        }
    }
    let share = |(a, n): (usize, usize)| (n > 0).then(|| a as f64 / n as f64);
    let total_fidelity = fidelity
        .iter()
        .fold((0, 0), |acc, f| (acc.0 + f.0, acc.1 + f.1));
    // The reading on up to 2,000 catalog images, evenly spread.
    let reading = match colour_col {
        Some(c) if !palette.is_empty() => {
            let step = data.len().div_ceil(2000).max(1);
            let mut hits = (0, 0);
            for i in (0..data.len()).step_by(step) {
                let Some(truth) = table
                    .value(i, c)
                    .and_then(|v| synthsearch_data::Colour::parse(v).ok())
                else {
                    continue;
                };
                let chw = Vec::<f32>::try_from(&data.batch(&[i]).flatten(0, -1))?;
                let seen = synthsearch_data::measure::garment_colour(&to_image(&chw, s)?, &palette);
                hits.0 += usize::from(seen == Some(truth));
                hits.1 += 1;
            }
            share(hits)
        }
        _ => None,
    };
    let mean = |(a, n): (f64, usize)| if n > 0 { a / n as f64 } else { 0.0 };
    let rows = wishes
        .iter()
        .enumerate()
        .filter(|(w, _)| asked[*w].is_some())
        .map(|(w, wish)| WishRow {
            asked: wish
                .asked
                .iter()
                .map(|(c, v)| format!("{}={v}", table.columns[*c]))
                .collect::<Vec<_>>()
                .join(", "),
            text: wish.texts.first().cloned().unwrap_or_default(),
            gan: mean(per_wish[w][0]),
            composition: mean(per_wish[w][1]),
            text_only: mean(per_wish[w][2]),
            colour_fidelity: share(fidelity[w]),
        })
        .collect();
    Ok(Some(WishReport {
        gallery: data.len(),
        queries_with_image: queries.iter().filter(|q| q.reference.is_some()).count(),
        queries_text_only: queries.iter().filter(|q| q.reference.is_none()).count(),
        precision: sums
            .into_iter()
            .map(|(m, sum, n)| (m, if n > 0 { sum / n as f64 } else { 0.0 }))
            .collect(),
        colour_fidelity: share(total_fidelity),
        colour_fidelity_text_only: share(fidelity_text),
        colour_reading_on_catalog: reading,
        wishes: rows,
    }))
}

// ---- a picture of what the generator does ---------------------------------------------------

/// A grid of (source | synthesized | synthesized from the text alone | target) rows, as PNG, and
/// each row's wish.
#[derive(Clone, Debug)]
pub struct Preview {
    pub png: Vec<u8>,
    /// Row by row: the wish of that row's pair.
    pub wishes: Vec<String>,
}

/// The columns of a [`Preview`].
pub const PREVIEW_COLUMNS: &str = "source | synthesized | synthesized from the text alone | target";

/// A [`Preview`] of the first `rows` validation pairs (then training pairs, where there are
/// fewer): the same pairs at every evaluation of a run, so the pictures can be compared. Tiles
/// are enlarged to at least `min_side` pixels a side (nearest neighbour, so every model pixel
/// stays visible as it is; 0: the model's size).
pub fn preview(model: &Model, data: &Dataset, rows: usize, min_side: u32) -> Result<Preview> {
    let pairs: Vec<PairRef> = data
        .val
        .iter()
        .chain(&data.train)
        .take(rows)
        .cloned()
        .collect();
    if pairs.is_empty() {
        return Err(crate::error::ModelError::Data(
            "no pairs to preview".to_string(),
        ));
    }
    let s = model.image_size();
    let idx_src: Vec<usize> = pairs.iter().map(|p| p.candidate).collect();
    let idx_tgt: Vec<usize> = pairs.iter().map(|p| p.target).collect();
    let texts: Vec<Vec<String>> = pairs.iter().map(PairRef::joined).collect();
    let b = pairs.len() as i64;
    let dev = model.device();
    let cols = tch::no_grad(|| -> Result<[Vec<f32>; 4]> {
        let src = data.batch(&idx_src).to_device(dev);
        let tgt = data.batch(&idx_tgt);
        let es = model.encode_tensor(&src)?;
        let one = Tensor::ones([b, 1], (Kind::Float, dev));
        let z = model.noise(pairs.len(), None);
        let g = model.generate_tensor(&es, &one, Some(&src), &texts, &z)?.0;
        let gt = model
            .generate_tensor(&es, &one.zeros_like(), None, &texts, &z)?
            .0;
        let flat = |t: &Tensor| -> Result<Vec<f32>> {
            Ok(Vec::<f32>::try_from(
                &t.to_device(Device::Cpu).flatten(0, -1),
            )?)
        };
        Ok([flat(&src)?, flat(&g)?, flat(&gt)?, flat(&tgt)?])
    })?;
    let per = 3 * s * s;
    let zoom = min_side.div_ceil(s as u32).max(1);
    let side = s as u32 * zoom;
    let mut images = Vec::with_capacity(4 * pairs.len());
    for r in 0..pairs.len() {
        for c in &cols {
            let tile = to_image(&c[r * per..(r + 1) * per], s)?;
            images.push(image::imageops::resize(
                &tile,
                side,
                side,
                image::imageops::FilterType::Nearest,
            ));
        }
    }
    let png = synthsearch_data::image_io::grid_png(&images, 4, 2)
        .map_err(|e| crate::error::ModelError::Data(e.to_string()))?;
    Ok(Preview {
        png,
        wishes: texts.iter().map(|t| t.join(" ")).collect(),
    })
}
