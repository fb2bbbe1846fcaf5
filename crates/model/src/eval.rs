//! Evaluation as in the seed: embed the validation gallery, rank it by distance to each query's
//! embedding, and report Recall@K beside the baselines.
//!
//! The protocol is inductive: training looks at images of the training split only (every loss
//! that looks beyond a batch's pairs draws from [`Dataset::training_images`]), and every figure
//! here ranks held-out images only, of the validation split (what tuning may read) or the test
//! split (read by the reported figure alone). Recall@K: per category, the gallery is that
//! category's images of the split without the query's own source image; a query hits at K when
//! its target ranks among the K nearest. Wish precision ([`evaluate_wishes`]) is printed beside
//! its ceiling, apart for queries in words no training caption uses, and the synthesized
//! images are read by an independent judge trained on held-out real images.

use serde::Serialize;
use synthsearch_data::Split;
use tch::{Device, Kind, Tensor};

use crate::dataset::{Dataset, PairRef};
use crate::error::Result;
use crate::model::Model;
use crate::train::DirectHead;

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
    /// The ablation: a head without an image, trained in stage 2 with the GAN's losses on the
    /// embedding ([`crate::train::DirectHead`]), from a reference image and text.
    Head,
    /// The same head, text only.
    HeadTextOnly,
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
            Method::Head => "head without an image (ablation)",
            Method::HeadTextOnly => "head without an image, text only",
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
    pub split: Split,
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
    head: Option<&DirectHead>,
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
            Method::Composition
                | Method::Gan
                | Method::GanImage
                | Method::GanFromEmbedding
                | Method::Head
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
                Method::Head | Method::HeadTextOnly => match head {
                    Some(h) => h.embed(model, &es, &has, &texts),
                    None => {
                        return Err(crate::error::ModelError::Data(
                            "no ablation head to rank by".into(),
                        ));
                    }
                },
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

/// Recall@K of every method on up to `max_queries` pairs of the held-out `split` (0: all),
/// each ranked over that split's images of its category: images no loss of training looked at.
/// With the ablation's `head`, its rows too.
pub fn evaluate(
    model: &Model,
    data: &Dataset,
    split: Split,
    max_queries: usize,
    head: Option<&DirectHead>,
) -> Result<EvalReport> {
    let mut pairs: Vec<PairRef> = data.pairs(split).to_vec();
    if max_queries > 0 {
        pairs.truncate(max_queries);
    }
    let gallery = data.gallery(split);
    let mut gallery_emb = std::collections::HashMap::new();
    for (cat, idx) in &gallery {
        gallery_emb.insert(cat.clone(), (idx.clone(), embed(model, data, idx)?));
    }
    let sources: Vec<usize> = pairs.iter().map(|p| p.candidate).collect();
    let source_emb = embed(model, data, &sources)?;
    let mut methods = Vec::new();
    let mut gallery_total = 0usize;
    let heads = [Method::Head, Method::HeadTextOnly];
    let methods_run = Method::ALL
        .iter()
        .chain(head.map_or(&[][..], |_| &heads[..]))
        .copied();
    for method in methods_run {
        let q = queries(model, data, method, &pairs, &source_emb, head)?;
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
        split,
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
    /// Reference products per category, from the evaluated split.
    pub references_per_category: usize,
    /// Phrasings of each headline wish in the caption templates' words, and as many again in a
    /// shopper's words ([`synthsearch_data::wishes::shopper_phrasings`]) where those are known.
    pub phrasings: usize,
    /// The held-out split whose images are the gallery and the references: validation while
    /// training (what a tuning decision may read), test for the reported figure.
    pub split: Split,
}

impl Default for WishEvalConfig {
    fn default() -> Self {
        WishEvalConfig {
            references_per_category: 4,
            phrasings: 2,
            split: Split::Val,
        }
    }
}

/// Wish precision of a group of queries, each method beside the ceiling: the mean of the best
/// page the gallery allows (`min(10, products that honour the query) / 10`).
#[derive(Clone, Debug, Default, Serialize)]
pub struct WishGroup {
    pub queries_with_image: usize,
    pub queries_text_only: usize,
    pub precision: Vec<(Method, f64)>,
    pub ceiling_with_image: f64,
    pub ceiling_text_only: f64,
}

impl WishGroup {
    pub fn precision(&self, method: Method) -> Option<f64> {
        self.precision
            .iter()
            .find(|(m, _)| *m == method)
            .map(|(_, p)| *p)
    }

    /// The ceiling of a method's queries (with a reference or text only).
    pub fn ceiling(&self, method: Method) -> f64 {
        if TEXT_METHODS.contains(&method) || method == Method::HeadTextOnly {
            self.ceiling_text_only
        } else {
            self.ceiling_with_image
        }
    }
}

/// What the independent judge ([`crate::judge::Judge`]) reads from the synthesized images.
#[derive(Clone, Debug, Serialize)]
pub struct Fidelity {
    /// Share of images (with a reference) in which the judge reads every asked value.
    pub with_image: f64,
    /// The same, text only.
    pub text_only: f64,
    /// Share of images (with a reference) whose category the judge reads as the reference's:
    /// the product kept its kind.
    pub kept_category: Option<f64>,
    /// Per attribute the judge reads: (name, share of synthesized images that show the asked
    /// value where it was asked, with a reference and text only together, the judge's own
    /// accuracy on held-out real images).
    pub by_attribute: Vec<(String, Option<f64>, f64)>,
}

/// One headline wish's figures.
#[derive(Clone, Debug, Serialize)]
pub struct WishRow {
    /// The values asked for, "colour=black, material=leather".
    pub asked: String,
    /// The first phrasing.
    pub text: String,
    /// Wish precision@10 of the GAN from a reference image, of the composition, and text only
    /// (the GAN without a reference), and the ceiling of the queries with a reference.
    pub gan: f64,
    pub composition: f64,
    pub text_only: f64,
    pub ceiling: f64,
    /// Share of the GAN's images (with a reference) in which the judge reads every asked value.
    pub fidelity: Option<f64>,
}

/// Search quality as a shopper judges it, on the fixed headline queries (every colour,
/// material and pattern, and two-attribute wishes) from held-out references of each category,
/// in the caption templates' words and in a shopper's, ranked over the held-out images of one
/// split: no image the model trained on is a reference or on a page, and no reference already
/// has what its wish asks.
#[derive(Clone, Debug, Serialize)]
pub struct WishReport {
    pub split: Split,
    pub gallery: usize,
    /// Every query.
    pub all: WishGroup,
    /// Queries whose every word the training captions use.
    pub seen_words: WishGroup,
    /// Queries with a word no training caption uses.
    pub unseen_words: WishGroup,
    /// Reference queries left out because the reference already has what the wish asks.
    pub left_out: usize,
    pub fidelity: Option<Fidelity>,
    pub wishes: Vec<WishRow>,
}

impl WishReport {
    /// Wish precision@10 of a method over every query.
    pub fn precision(&self, method: Method) -> Option<f64> {
        self.all.precision(method)
    }

    /// Markdown tables: the summary (every query, then by whether the training captions use
    /// the query's words), the judge's reading, then each wish.
    pub fn table(&self) -> String {
        let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
        let mut s = format!(
            "{} queries with a reference image, {} text only ({} in words no training caption \
             uses), ranked over the {} held-out products of the {} split; {} reference queries \
             left out (the reference already had the asked values)\n\n\
             | method | wish precision@{PAGE} | ceiling | share of ceiling | seen words | unseen words |\n\
             | --- | ---: | ---: | ---: | ---: | ---: |\n",
            self.all.queries_with_image,
            self.all.queries_text_only,
            self.unseen_words.queries_with_image + self.unseen_words.queries_text_only,
            self.gallery,
            self.split.name(),
            self.left_out
        );
        for (m, p) in &self.all.precision {
            let c = self.all.ceiling(*m);
            s.push_str(&format!(
                "| {} | {p:.3} | {c:.3} | {} | {} | {} |\n",
                m.name(),
                f((c > 0.0).then(|| p / c)),
                f(self.seen_words.precision(*m)),
                f(self.unseen_words.precision(*m)),
            ));
        }
        if let Some(j) = &self.fidelity {
            s.push_str(&format!(
                "\nthe independent judge reads every asked value in {} of the synthesized images \
                 with a reference, {} text only; the reference's category kept in {}\n\n\
                 | attribute | asked value read in synthesized images | judge's accuracy on held-out real images |\n\
                 | --- | ---: | ---: |\n",
                f(Some(j.with_image)),
                f(Some(j.text_only)),
                f(j.kept_category)
            ));
            for (name, read, acc) in &j.by_attribute {
                s.push_str(&format!("| {name} | {} | {acc:.3} |\n", f(*read)));
            }
        }
        s.push_str(
            "\n| wish | asks | GAN | composition | text only | ceiling (from a reference) | judge reads it |\n\
             | --- | --- | ---: | ---: | ---: | ---: | ---: |\n",
        );
        for w in &self.wishes {
            s.push_str(&format!(
                "| {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {} |\n",
                w.text,
                w.asked,
                w.gan,
                w.composition,
                w.text_only,
                w.ceiling,
                f(w.fidelity)
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
    /// A word of it that no training caption uses.
    unseen: bool,
    /// The best page the gallery allows, as a share of [`PAGE`].
    ceiling: f64,
}

/// Evenly spread reference products of each category among `pool`, in the order of their ids
/// (so the same products whatever order the data was read in: the database's worker and
/// `synth eval` measure a model on the same queries).
fn references(data: &Dataset, pool: &[usize], per_category: usize) -> Vec<usize> {
    let mut cats: Vec<&String> = pool.iter().map(|&i| &data.categories[i]).collect();
    cats.sort();
    cats.dedup();
    let mut out = Vec::new();
    for cat in cats {
        let mut of: Vec<usize> = pool
            .iter()
            .copied()
            .filter(|&i| &data.categories[i] == cat)
            .collect();
        of.sort_by(|&a, &b| data.ids[a].cmp(&data.ids[b]));
        let k = per_category.min(of.len());
        out.extend((0..k).map(|j| of[j * of.len() / k]));
    }
    out
}

/// Every word of the training pairs' captions.
pub fn training_vocabulary(data: &Dataset) -> std::collections::HashSet<String> {
    data.train
        .iter()
        .flat_map(|p| p.captions.iter().flatten().cloned())
        .collect()
}

const IMAGE_METHODS: [Method; 4] = [
    Method::ImageOnly,
    Method::Composition,
    Method::Gan,
    Method::GanImage,
];
const TEXT_METHODS: [Method; 2] = [Method::TextOnly, Method::GanTextOnly];

/// Sums of a [`WishGroup`] as queries come.
#[derive(Default)]
struct GroupSums {
    with_image: usize,
    text_only: usize,
    ceiling: [f64; 2],
    sums: Vec<(Method, f64, usize)>,
}

impl GroupSums {
    fn new() -> GroupSums {
        GroupSums {
            sums: IMAGE_METHODS
                .iter()
                .chain(&TEXT_METHODS)
                .chain(&[Method::Head, Method::HeadTextOnly])
                .map(|&m| (m, 0.0, 0))
                .collect(),
            ..Default::default()
        }
    }

    fn query(&mut self, q: &WishQuery) {
        if q.reference.is_some() {
            self.with_image += 1;
            self.ceiling[0] += q.ceiling;
        } else {
            self.text_only += 1;
            self.ceiling[1] += q.ceiling;
        }
    }

    fn add(&mut self, m: Method, p: f64) {
        if let Some(e) = self.sums.iter_mut().find(|e| e.0 == m) {
            e.1 += p;
            e.2 += 1;
        }
    }

    fn finish(self) -> WishGroup {
        let mean = |a: f64, n: usize| if n > 0 { a / n as f64 } else { 0.0 };
        WishGroup {
            queries_with_image: self.with_image,
            queries_text_only: self.text_only,
            precision: self
                .sums
                .into_iter()
                .filter(|(_, _, n)| *n > 0)
                .map(|(m, sum, n)| (m, sum / n as f64))
                .collect(),
            ceiling_with_image: mean(self.ceiling[0], self.with_image),
            ceiling_text_only: mean(self.ceiling[1], self.text_only),
        }
    }
}

/// Wish precision@10 beside its ceiling on the headline queries, over the held-out images of
/// `cfg.split`, and, given a judge trained on held-out real images ([`held_out_judge`]), what it
/// reads from the synthesized images. `None` when the data has no attribute values to check a
/// wish against or the split has no images.
pub fn evaluate_wishes(
    model: &Model,
    data: &Dataset,
    cfg: &WishEvalConfig,
    judge: Option<&JudgeReading>,
    head: Option<&DirectHead>,
) -> Result<Option<WishReport>> {
    let Some(table) = &data.attributes else {
        return Ok(None);
    };
    let pool = data.images_in(cfg.split);
    if pool.is_empty() {
        return Ok(None);
    }
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
    let vocabulary = training_vocabulary(data);
    let refs = references(data, &pool, cfg.references_per_category.max(1));
    // The gallery's products that honour a wish, by (wish, category or none).
    let mut honouring: std::collections::HashMap<(usize, Option<u32>), usize> = Default::default();
    let mut count = |w: usize, want: &[(usize, u32)], reference: Option<usize>| -> usize {
        let key = (w, reference.map(|r| data.category_codes[r]));
        *honouring.entry(key).or_insert_with(|| {
            pool.iter()
                .filter(|&&i| data.honours(i, want, reference))
                .count()
        })
    };
    let mut queries = Vec::new();
    let mut left_out = 0;
    for (w, wish) in wishes.iter().enumerate() {
        let Some(want) = &asked[w] else { continue };
        let shopper =
            synthsearch_data::wishes::shopper_phrasings(&table.columns, &wish.asked, cfg.phrasings);
        for text in wish.texts.iter().chain(&shopper) {
            let words = crate::text::words(text);
            let unseen = words.iter().any(|w| !vocabulary.contains(w));
            let ceiling = |n: usize| n.min(PAGE) as f64 / PAGE as f64;
            queries.push(WishQuery {
                wish: w,
                reference: None,
                words: words.clone(),
                unseen,
                ceiling: ceiling(count(w, want, None)),
            });
            for &r in &refs {
                if table.honours(r, want) {
                    left_out += 1;
                    continue;
                }
                // The reference itself is never on its page, and it does not honour the wish.
                queries.push(WishQuery {
                    wish: w,
                    reference: Some(r),
                    words: words.clone(),
                    unseen,
                    ceiling: ceiling(count(w, want, Some(r))),
                });
            }
        }
    }
    let dev = model.device();
    let gallery = embed(model, data, &pool)?;
    let d = model.embed_dim();
    let flat: Vec<f32> = gallery.iter().flatten().copied().collect();
    let g = Tensor::from_slice(&flat)
        .view([pool.len() as i64, d as i64])
        .to_device(dev);
    let position: std::collections::HashMap<usize, i64> = pool
        .iter()
        .enumerate()
        .map(|(j, &i)| (i, j as i64))
        .collect();
    let page = PAGE.min(pool.len()) as i64;

    let (mut all, mut seen, mut unseen) = (GroupSums::new(), GroupSums::new(), GroupSums::new());
    for q in &queries {
        all.query(q);
        if q.unseen {
            unseen.query(q);
        } else {
            seen.query(q);
        }
    }
    let mut per_wish = vec![[(0.0f64, 0usize); 3]; wishes.len()];
    let mut ceiling_wish = vec![(0.0f64, 0usize); wishes.len()];
    // Judge: per query whether every asked value is read, per head (read right, asked).
    let heads = judge.map_or(0, |j| j.judge.heads().len());
    let mut read_all = [(0usize, 0usize); 2];
    let mut read_wish = vec![(0usize, 0usize); wishes.len()];
    let mut read_head = vec![(0usize, 0usize); heads];
    let mut kept = (0usize, 0usize);
    for chunk in queries.chunks(128) {
        let b = chunk.len() as i64;
        let ref_idx: Vec<usize> = chunk
            .iter()
            .map(|q| q.reference.unwrap_or(pool[0]))
            .collect();
        let ref_rows: Vec<i64> = ref_idx.iter().map(|i| position[i]).collect();
        let es = g.index_select(0, &Tensor::from_slice(&ref_rows).to_device(dev));
        let hasv: Vec<f32> = chunk
            .iter()
            .map(|q| if q.reference.is_some() { 1.0 } else { 0.0 })
            .collect();
        let has = Tensor::from_slice(&hasv).view([b, 1]).to_device(dev);
        let es = &es * &has;
        let px = data.batch(&ref_idx).to_device(dev) * has.view([b, 1, 1, 1]);
        let texts: Vec<Vec<String>> = chunk.iter().map(|q| q.words.clone()).collect();
        let head_emb = head.map(|h| h.embed(model, &es, &has, &texts));
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
        let head_methods = [Method::Head, Method::HeadTextOnly];
        let extra = if head_emb.is_some() {
            &head_methods[..]
        } else {
            &[][..]
        };
        for m in IMAGE_METHODS.iter().chain(&TEXT_METHODS).chain(extra) {
            let q = match m {
                Method::ImageOnly => es.shallow_clone(),
                Method::Head | Method::HeadTextOnly => {
                    head_emb.as_ref().expect("with a head").shallow_clone()
                }
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
                        .get(position[&r])
                        .fill_(f64::NEG_INFINITY);
                }
            }
            let (_, top) = scores.topk(page, -1, true, true);
            let top = Vec::<i64>::try_from(&top.to_device(Device::Cpu).flatten(0, -1))?;
            let image_method = IMAGE_METHODS.contains(m) || *m == Method::Head;
            for (row, qq) in chunk.iter().enumerate() {
                if image_method != qq.reference.is_some() {
                    continue;
                }
                let want = asked[qq.wish].as_ref().expect("queries have asked codes");
                let honoured = top[row * page as usize..(row + 1) * page as usize]
                    .iter()
                    .filter(|&&j| data.honours(pool[j as usize], want, qq.reference))
                    .count();
                let p = honoured as f64 / PAGE as f64;
                all.add(*m, p);
                if qq.unseen {
                    unseen.add(*m, p);
                } else {
                    seen.add(*m, p);
                }
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
                if *m == Method::Gan {
                    ceiling_wish[qq.wish].0 += qq.ceiling;
                    ceiling_wish[qq.wish].1 += 1;
                }
            }
        }
        if let Some(j) = judge {
            let reads = j.judge.read(&gan_img)?;
            for (qq, read) in chunk.iter().zip(&reads) {
                let want = asked[qq.wish].as_ref().expect("queries have asked codes");
                let mut every = true;
                for (h, head) in j.judge.heads().iter().enumerate() {
                    match head.column {
                        Some(c) => {
                            if let Some(&(_, code)) = want.iter().find(|(col, _)| *col == c) {
                                let ok = read[h] == code;
                                read_head[h].0 += usize::from(ok);
                                read_head[h].1 += 1;
                                every &= ok;
                            }
                        }
                        None => {
                            if let Some(r) = qq.reference {
                                kept.0 += usize::from(read[h] == data.category_codes[r]);
                                kept.1 += 1;
                            }
                        }
                    }
                }
                // A wish asks values the judge may not read (a column with one value among the
                // held-out images): those count as not shown.
                every &= want
                    .iter()
                    .all(|(c, _)| j.judge.heads().iter().any(|h| h.column == Some(*c)));
                let slot = usize::from(qq.reference.is_none());
                read_all[slot].0 += usize::from(every);
                read_all[slot].1 += 1;
                if qq.reference.is_some() {
                    read_wish[qq.wish].0 += usize::from(every);
                    read_wish[qq.wish].1 += 1;
                }
            }
        }
    }
    let share = |(a, n): (usize, usize)| (n > 0).then(|| a as f64 / n as f64);
    let mean = |(a, n): (f64, usize)| if n > 0 { a / n as f64 } else { 0.0 };
    let fidelity = judge.map(|j| Fidelity {
        with_image: share(read_all[0]).unwrap_or(0.0),
        text_only: share(read_all[1]).unwrap_or(0.0),
        kept_category: share(kept),
        by_attribute: j
            .judge
            .heads()
            .iter()
            .enumerate()
            .map(|(h, head)| {
                let acc = j
                    .accuracy
                    .iter()
                    .find(|(n, _)| *n == head.name)
                    .map_or(f64::NAN, |(_, a)| *a);
                let read = if head.column.is_some() {
                    share(read_head[h])
                } else {
                    share(kept)
                };
                (head.name.clone(), read, acc)
            })
            .collect(),
    });
    let rows = wishes
        .iter()
        .enumerate()
        .filter(|(w, _)| asked[*w].is_some() && ceiling_wish[*w].1 > 0)
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
            ceiling: mean(ceiling_wish[w]),
            fidelity: judge.and_then(|_| share(read_wish[w])),
        })
        .collect();
    Ok(Some(WishReport {
        split: cfg.split,
        gallery: pool.len(),
        all: all.finish(),
        seen_words: seen.finish(),
        unseen_words: unseen.finish(),
        left_out,
        fidelity,
        wishes: rows,
    }))
}

/// An independent judge of synthesized images and its own accuracy on real ones.
pub struct JudgeReading {
    pub judge: crate::judge::Judge,
    /// Accuracy per head on held-out real images it did not train on.
    pub accuracy: Vec<(String, f64)>,
    /// Images it trained on and was measured on.
    pub trained_on: usize,
    pub measured_on: usize,
}

/// A judge trained on held-out real images only (validation and test, never a training
/// image of the model), every other one of them, and measured on the rest. `None` where the
/// data has no attributes or too few held-out images (fewer than 20).
pub fn held_out_judge(
    data: &Dataset,
    cfg: &crate::judge::JudgeConfig,
    device: Device,
) -> Result<Option<JudgeReading>> {
    if data.attributes.is_none() {
        return Ok(None);
    }
    let mut held: Vec<usize> = data.images_in(Split::Val);
    held.extend(data.images_in(Split::Test));
    // In the order of the ids: the same judge whatever order the data was read in.
    held.sort_by(|&a, &b| data.ids[a].cmp(&data.ids[b]));
    if held.len() < 20 {
        return Ok(None);
    }
    // Alternate by a hash of the id, so neither half leans to a category or a split.
    let (fit, measure): (Vec<usize>, Vec<usize>) = held
        .iter()
        .partition(|&&i| crate::rng::fnv1a64(data.ids[i].as_bytes()).is_multiple_of(2));
    if fit.is_empty() || measure.is_empty() {
        return Ok(None);
    }
    let judge = crate::judge::Judge::train(data, &fit, cfg, device)?;
    let accuracy = judge.accuracy(data, &measure)?;
    Ok(Some(JudgeReading {
        judge,
        accuracy,
        trained_on: fit.len(),
        measured_on: measure.len(),
    }))
}

fn to_image(chw: &[f32], size: usize) -> Result<image::RgbImage> {
    synthsearch_data::image_io::from_chw(chw, size as u32)
        .map_err(|e| crate::error::ModelError::Data(e.to_string()))
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
