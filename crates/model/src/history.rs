//! Evaluations during training and their curves.
//!
//! Training evaluates the model every so many steps on a fixed sample of the validation pairs
//! (and the headline wishes, where the data has attribute values). Each evaluation is kept as an
//! [`EvalPoint`]: its step, its stage, what it cost, the losses of that moment and the figures, in
//! the same JSON the worker writes to `synth_jobs.recall`. [`curves_svg`] draws them: Recall@10
//! and wish precision@10 against steps, and each loss against steps, as one self-contained SVG.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::dataset::Dataset;
use crate::error::Result;
use synthsearch_data::Split;

use crate::eval::{
    EvalReport, JudgeReading, KS, Method, WishEvalConfig, WishGroup, WishReport, evaluate,
    evaluate_wishes, held_out_judge,
};
use crate::judge::JudgeConfig;
use crate::model::Model;
use crate::train::DirectHead;

fn round4(v: f64) -> f64 {
    (v * 1e4).round() / 1e4
}

fn method_key(m: Method) -> String {
    serde_json::to_value(m)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| "?".to_string())
}

impl EvalReport {
    /// `{"step", "queries", "gallery", "recall": {method: {K: recall}}}`, for the K that the
    /// gallery allows (the form of `synth_jobs.recall`).
    pub fn to_json(&self, step: u64) -> serde_json::Value {
        let mut methods = serde_json::Map::new();
        for m in &self.methods {
            let ks: serde_json::Map<String, serde_json::Value> = m
                .recall
                .iter()
                .filter(|(k, _)| (*k as f64) < self.mean_gallery)
                .map(|(k, r)| (k.to_string(), serde_json::json!(round4(*r))))
                .collect();
            if !ks.is_empty() {
                methods.insert(method_key(m.method), ks.into());
            }
        }
        serde_json::json!({
            "step": step,
            "split": self.split.name(),
            "queries": self.queries,
            "gallery": (self.mean_gallery * 10.0).round() / 10.0,
            "recall": methods,
        })
    }
}

fn group_json(g: &WishGroup) -> serde_json::Value {
    let precision: serde_json::Map<String, serde_json::Value> = g
        .precision
        .iter()
        .map(|(m, p)| (method_key(*m), serde_json::json!(round4(*p))))
        .collect();
    serde_json::json!({
        "queries": g.queries_with_image + g.queries_text_only,
        "precision_at_10": precision,
        "ceiling_at_10": {
            "with_image": round4(g.ceiling_with_image),
            "text_only": round4(g.ceiling_text_only),
        },
    })
}

impl WishReport {
    /// `{"split", "gallery", "queries", "precision_at_10": {method: p}, "ceiling_at_10":
    /// {"with_image", "text_only"}, "seen_words": {..}, "unseen_words": {..}, "left_out",
    /// "fidelity": {"with_image", "text_only", "kept_category", "by_attribute": {name: {"read",
    /// "judge_accuracy"}}}}`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut out = group_json(&self.all);
        out["split"] = self.split.name().into();
        out["gallery"] = self.gallery.into();
        out["left_out"] = self.left_out.into();
        out["seen_words"] = group_json(&self.seen_words);
        out["unseen_words"] = group_json(&self.unseen_words);
        if let Some(f) = &self.fidelity {
            let by: serde_json::Map<String, serde_json::Value> = f
                .by_attribute
                .iter()
                .map(|(n, read, acc)| {
                    (
                        n.clone(),
                        serde_json::json!({
                            "read": read.map(round4),
                            "judge_accuracy": acc.is_finite().then(|| round4(*acc)),
                        }),
                    )
                })
                .collect();
            out["fidelity"] = serde_json::json!({
                "with_image": round4(f.with_image),
                "text_only": round4(f.text_only),
                "kept_category": f.kept_category.map(round4),
                "by_attribute": by,
            });
        }
        out
    }
}

/// The mean of each loss over the steps since the means were last taken: what a progress report
/// or an evaluation shows as "the losses of that moment".
#[derive(Clone, Debug, Default)]
pub struct LossMeans(BTreeMap<&'static str, (f64, u32)>);

impl LossMeans {
    /// Adds one step's losses.
    pub fn add(&mut self, losses: &[(&'static str, f64)]) {
        for (name, value) in losses {
            let e = self.0.entry(name).or_insert((0.0, 0));
            e.0 += value;
            e.1 += 1;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The means, starting over.
    pub fn take(&mut self) -> BTreeMap<String, f64> {
        let out = self
            .0
            .iter()
            .map(|(k, (s, n))| (k.to_string(), s / f64::from(*n)))
            .collect();
        self.0.clear();
        out
    }
}

/// One evaluation during training.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EvalPoint {
    pub step: u64,
    /// "encoder" or "gan".
    pub stage: String,
    /// Seconds the evaluation took.
    pub seconds: f64,
    /// Mean of each loss over the steps since the previous evaluation.
    pub losses: BTreeMap<String, f64>,
    /// [`EvalReport::to_json`], with `"wishes"`: [`WishReport::to_json`] where measured.
    pub recall: serde_json::Value,
}

impl EvalPoint {
    /// Recall@10 by method key ("gan", "composition", ...).
    pub fn recall_at_10(&self) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        if let Some(methods) = self.recall.get("recall").and_then(|r| r.as_object()) {
            for (m, ks) in methods {
                if let Some(r) = ks.get(KS[0].to_string()).and_then(|v| v.as_f64()) {
                    out.insert(m.clone(), r);
                }
            }
        }
        out
    }

    /// Wish precision@10 by method key, where the headline wishes were measured.
    pub fn precision_at_10(&self) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        if let Some(p) = self
            .recall
            .pointer("/wishes/precision_at_10")
            .and_then(|r| r.as_object())
        {
            for (m, v) in p {
                if let Some(v) = v.as_f64() {
                    out.insert(m.clone(), v);
                }
            }
        }
        out
    }

    /// Share of synthesized images (with a reference) in which the independent judge reads
    /// every asked value, where measured.
    pub fn fidelity(&self) -> Option<f64> {
        self.recall
            .pointer("/wishes/fidelity/with_image")
            .and_then(|v| v.as_f64())
    }
}

/// How an evaluation samples: the first `queries` pairs of `split` (the same ones every time)
/// and the headline wishes drawn as `wishes` says (None: Recall@K only), over that split's
/// held-out images.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalSample {
    pub split: Split,
    pub queries: usize,
    pub wishes: Option<WishEvalConfig>,
}

impl Default for EvalSample {
    /// Cheap enough to run every few hundred steps: 200 pairs, two references per category and
    /// one phrasing of each headline wish.
    fn default() -> Self {
        EvalSample {
            split: Split::Val,
            queries: 200,
            wishes: Some(WishEvalConfig {
                references_per_category: 2,
                phrasings: 1,
                split: Split::Val,
            }),
        }
    }
}

/// Evaluates `model` as `sample` says and times it: the [`EvalPoint`] of this moment of
/// training, with the losses given.
pub fn evaluate_point(
    model: &Model,
    data: &Dataset,
    sample: &EvalSample,
    step: u64,
    stage: &str,
    losses: BTreeMap<String, f64>,
) -> Result<EvalPoint> {
    let started = std::time::Instant::now();
    let recall = split_figures(model, data, sample, None, None)?.to_json(step);
    Ok(EvalPoint {
        step,
        stage: stage.to_string(),
        seconds: (started.elapsed().as_secs_f64() * 1e3).round() / 1e3,
        losses,
        recall,
    })
}

/// One held-out split's figures: Recall@K and, where the sample asks and the data has attribute
/// values, the headline wishes.
pub struct SplitFigures {
    pub recall: EvalReport,
    pub wishes: Option<WishReport>,
}

impl SplitFigures {
    /// [`EvalReport::to_json`] with `"wishes"`: [`WishReport::to_json`].
    pub fn to_json(&self, step: u64) -> serde_json::Value {
        let mut out = self.recall.to_json(step);
        if let Some(w) = &self.wishes {
            out["wishes"] = w.to_json();
        }
        out
    }

    /// The same without a step: a final figure.
    pub fn final_json(&self) -> serde_json::Value {
        let mut out = self.to_json(0);
        if let Some(o) = out.as_object_mut() {
            o.remove("step");
        }
        out
    }
}

/// Recall@K on `sample.split` and, where `sample` asks, the headline wishes over the same split
/// (read by `judge` where given; with the ablation's `head`, its rows too).
pub fn split_figures(
    model: &Model,
    data: &Dataset,
    sample: &EvalSample,
    judge: Option<&JudgeReading>,
    head: Option<&DirectHead>,
) -> Result<SplitFigures> {
    let recall = evaluate(model, data, sample.split, sample.queries, head)?;
    let wishes = match &sample.wishes {
        Some(cfg) => {
            let cfg = WishEvalConfig {
                split: sample.split,
                ..cfg.clone()
            };
            evaluate_wishes(model, data, &cfg, judge, head)?
        }
        None => None,
    };
    Ok(SplitFigures { recall, wishes })
}

/// The figures reported for a trained model, the same in `synth eval` and in the database's
/// `synth_jobs.recall`: Recall@K on up to `queries` validation pairs and every headline wish
/// over the validation split's images, then the same on the test split under `"test"` (a split
/// no decision of training or tuning reads), the synthesized images read by a judge trained on
/// held-out real images (`"judge"`: how many it trained and was measured on); with the
/// ablation's `head`, its rows beside the GAN's.
pub fn final_evaluation(
    model: &Model,
    data: &Dataset,
    queries: usize,
    judge: Option<&JudgeConfig>,
    head: Option<&DirectHead>,
) -> Result<serde_json::Value> {
    let reading = match judge {
        Some(cfg) => held_out_judge(data, cfg, model.device())?,
        None => None,
    };
    let sample = |split| EvalSample {
        split,
        queries,
        wishes: Some(WishEvalConfig::default()),
    };
    let mut out =
        split_figures(model, data, &sample(Split::Val), reading.as_ref(), head)?.final_json();
    if !data.test.is_empty() || !data.images_in(Split::Test).is_empty() {
        out["test"] =
            split_figures(model, data, &sample(Split::Test), reading.as_ref(), head)?.final_json();
    }
    if let Some(r) = &reading {
        out["judge"] = serde_json::json!({
            "trained_on": r.trained_on,
            "measured_on": r.measured_on,
        });
    }
    Ok(out)
}

/// One line of a chart.
struct Series {
    name: String,
    colour: &'static str,
    dashed: bool,
    points: Vec<(f64, f64)>,
}

const PALETTE: [&str; 10] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
    "#7f7f7f", "#bcbd22",
];

/// How a method is named on a chart.
fn label(key: &str) -> String {
    match key {
        "gan" => "GAN".into(),
        "composition" => "composition".into(),
        "image_only" => "image only".into(),
        "text_only" => "text only".into(),
        "gan_from_embedding" => "GAN from embedding".into(),
        "gan_text_only" => "GAN text only".into(),
        "gan_image" => "GAN image alone".into(),
        other => other.replace('_', " "),
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A number for an axis: few digits.
fn tick(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if a >= 10_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Round steps for the axis: multiples of 1, 2 or 5 times a power of ten, four to eight of them.
fn step_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let span = (hi - lo).max(1.0);
    let raw = span / 5.0;
    let pow = 10f64.powf(raw.log10().floor());
    let unit = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * pow)
        .find(|u| span / u <= 8.0)
        .unwrap_or(10.0 * pow)
        .max(1.0);
    let mut out = Vec::new();
    let mut t = (lo / unit).ceil() * unit;
    while t <= hi + 1e-9 {
        out.push(t);
        t += unit;
    }
    out
}

/// Panel geometry: the plot area inside the panel at (x0, y0).
struct Panel {
    x0: f64,
    y0: f64,
    w: f64,
    h: f64,
    steps: (f64, f64),
}

impl Panel {
    fn x(&self, step: f64) -> f64 {
        let (a, b) = self.steps;
        self.x0 + (step - a) / (b - a).max(1.0) * self.w
    }
    fn y(&self, v: f64) -> f64 {
        self.y0 + (1.0 - v.clamp(0.0, 1.0)) * self.h
    }
}

/// Draws one panel: frame, step axis, the 0..1 value axis with `y_labels`, a stage line, the
/// series and their legend to the right.
fn panel(
    svg: &mut String,
    p: &Panel,
    title: &str,
    y_labels: &[(f64, String)],
    gan_from: Option<f64>,
    series: &[Series],
) {
    let _ = writeln!(
        svg,
        r##"<text x="{:.1}" y="{:.1}" font-size="13" font-weight="bold">{}</text>"##,
        p.x0,
        p.y0 - 8.0,
        escape(title)
    );
    let _ = writeln!(
        svg,
        r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="#fff" stroke="#999"/>"##,
        p.x0, p.y0, p.w, p.h
    );
    for (v, text) in y_labels {
        let y = p.y(*v);
        let _ = writeln!(
            svg,
            r##"<line x1="{:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#eee"/><text x="{:.1}" y="{:.1}" font-size="10" text-anchor="end">{}</text>"##,
            p.x0,
            p.x0 + p.w,
            p.x0 - 4.0,
            y + 3.0,
            escape(text)
        );
    }
    for s in step_ticks(p.steps.0, p.steps.1) {
        let x = p.x(s);
        let _ = writeln!(
            svg,
            r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="#999"/><text x="{x:.1}" y="{:.1}" font-size="10" text-anchor="middle">{}</text>"##,
            p.y0 + p.h,
            p.y0 + p.h + 3.0,
            p.y0 + p.h + 13.0,
            tick(s)
        );
    }
    let _ = writeln!(
        svg,
        r##"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="middle">training step</text>"##,
        p.x0 + p.w / 2.0,
        p.y0 + p.h + 26.0
    );
    if let Some(g) = gan_from {
        let x = p.x(g);
        let _ = writeln!(
            svg,
            r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="#888" stroke-dasharray="3,3"/><text x="{:.1}" y="{:.1}" font-size="10" fill="#666">GAN stage</text>"##,
            p.y0,
            p.y0 + p.h,
            x + 3.0,
            p.y0 + 11.0
        );
    }
    for (i, s) in series.iter().enumerate() {
        let dash = if s.dashed {
            r#" stroke-dasharray="6,3""#
        } else {
            ""
        };
        if s.points.len() > 1 {
            let path: Vec<String> = s
                .points
                .iter()
                .map(|&(x, v)| format!("{:.1},{:.1}", p.x(x), p.y(v)))
                .collect();
            let _ = writeln!(
                svg,
                r##"<polyline fill="none" stroke="{}" stroke-width="1.8"{dash} points="{}"/>"##,
                s.colour,
                path.join(" ")
            );
        }
        for &(x, v) in &s.points {
            let _ = writeln!(
                svg,
                r##"<circle cx="{:.1}" cy="{:.1}" r="2.2" fill="{}"/>"##,
                p.x(x),
                p.y(v),
                s.colour
            );
        }
        let ly = p.y0 + 12.0 + 15.0 * i as f64;
        let lx = p.x0 + p.w + 12.0;
        let _ = writeln!(
            svg,
            r##"<line x1="{lx:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{}" stroke-width="2"{dash}/><text x="{:.1}" y="{:.1}" font-size="11">{}</text>"##,
            ly - 4.0,
            lx + 18.0,
            ly - 4.0,
            s.colour,
            lx + 23.0,
            ly,
            escape(&s.name)
        );
    }
}

/// The curves of one training run as an SVG document: Recall@10 on the validation sample by
/// method and wish precision@10 (dashed) against steps, and below it each loss against steps,
/// each scaled to its own range (the range is in its legend: losses differ in scale and sign).
/// Points in any order; an empty history gives a chart that says so.
pub fn curves_svg(points: &[EvalPoint], title: &str) -> String {
    let mut points: Vec<&EvalPoint> = points.iter().collect();
    points.sort_by_key(|p| p.step);
    let width = 820.0;
    let height = 600.0;
    let mut svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif">
<rect width="100%" height="100%" fill="#fafafa"/>
<text x="20" y="24" font-size="15" font-weight="bold">{}</text>
"##,
        escape(title)
    );
    if points.is_empty() {
        svg.push_str(
            r##"<text x="20" y="60" font-size="13">No evaluations yet: training records one every eval_every steps.</text>
</svg>
"##,
        );
        return svg;
    }
    let first = points[0].step as f64;
    let last = points[points.len() - 1].step as f64;
    let steps = (first.min(0.0), last.max(first + 1.0));
    // The GAN stage begins after the last evaluation of the encoder stage (each evaluation is
    // labelled with the stage of the step it follows), or at the first GAN one.
    let gan_from = points.iter().position(|p| p.stage == "gan").map(|i| {
        if i > 0 && points[i - 1].stage == "encoder" {
            points[i - 1].step as f64
        } else {
            points[i].step as f64
        }
    });

    // Recall and precision.
    let mut series = Vec::new();
    let mut methods: Vec<String> = Vec::new();
    for p in &points {
        for m in p.recall_at_10().keys().chain(p.precision_at_10().keys()) {
            if !methods.contains(m) {
                methods.push(m.clone());
            }
        }
    }
    // A fixed order: the GAN first, then the baselines.
    let order = [
        "gan",
        "composition",
        "gan_image",
        "gan_text_only",
        "text_only",
        "image_only",
        "gan_from_embedding",
    ];
    methods.sort_by_key(|m| order.iter().position(|o| o == m).unwrap_or(order.len()));
    for (i, m) in methods.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        let recall: Vec<(f64, f64)> = points
            .iter()
            .filter_map(|p| p.recall_at_10().get(m).map(|&r| (p.step as f64, r)))
            .collect();
        if !recall.is_empty() {
            series.push(Series {
                name: format!("R@10 {}", label(m)),
                colour,
                dashed: false,
                points: recall,
            });
        }
        let precision: Vec<(f64, f64)> = points
            .iter()
            .filter_map(|p| p.precision_at_10().get(m).map(|&r| (p.step as f64, r)))
            .collect();
        if !precision.is_empty() {
            series.push(Series {
                name: format!("wish P@10 {}", label(m)),
                colour,
                dashed: true,
                points: precision,
            });
        }
    }
    let fidelity: Vec<(f64, f64)> = points
        .iter()
        .filter_map(|p| p.fidelity().map(|f| (p.step as f64, f)))
        .collect();
    if !fidelity.is_empty() {
        series.push(Series {
            name: "judge reads the wish (GAN images)".into(),
            colour: "#000",
            dashed: true,
            points: fidelity,
        });
    }
    let top = Panel {
        x0: 60.0,
        y0: 60.0,
        w: 520.0,
        h: 220.0,
        steps,
    };
    let fractions: Vec<(f64, String)> = [0.0, 0.25, 0.5, 0.75, 1.0]
        .iter()
        .map(|&v| (v, format!("{v:.2}")))
        .collect();
    panel(
        &mut svg,
        &top,
        "Recall@10 on held-out pairs; wish precision@10 (dashed)",
        &fractions,
        gan_from,
        &series,
    );

    // Losses, each scaled to its own range.
    let mut names: Vec<&String> = points.iter().flat_map(|p| p.losses.keys()).collect();
    names.sort();
    names.dedup();
    let mut losses = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let raw: Vec<(f64, f64)> = points
            .iter()
            .filter_map(|p| {
                p.losses
                    .get(*name)
                    .filter(|v| v.is_finite())
                    .map(|&v| (p.step as f64, v))
            })
            .collect();
        if raw.is_empty() {
            continue;
        }
        let lo = raw.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
        let hi = raw.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
        let span = (hi - lo).max(1e-12);
        losses.push(Series {
            name: format!("{} {}..{}", name, tick(lo), tick(hi)),
            colour: PALETTE[i % PALETTE.len()],
            dashed: false,
            points: raw
                .iter()
                .map(|&(s, v)| (s, if hi > lo { (v - lo) / span } else { 0.5 }))
                .collect(),
        });
    }
    let bottom = Panel {
        x0: 60.0,
        y0: 340.0,
        w: 520.0,
        h: 200.0,
        steps,
    };
    panel(
        &mut svg,
        &bottom,
        "Losses (each scaled to its own range, min..max in the legend)",
        &[(0.0, "min".into()), (1.0, "max".into())],
        gan_from,
        &losses,
    );
    let cost: f64 = points.iter().map(|p| p.seconds).sum();
    let _ = writeln!(
        svg,
        r##"<text x="20" y="{:.1}" font-size="11" fill="#555">{} evaluation{}, steps {}..{}, {:.1} s spent evaluating</text>"##,
        height - 16.0,
        points.len(),
        if points.len() == 1 { "" } else { "s" },
        points[0].step,
        points[points.len() - 1].step,
        cost
    );
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(step: u64, stage: &str, gan: f64, loss: f64) -> EvalPoint {
        EvalPoint {
            step,
            stage: stage.into(),
            seconds: 0.5,
            losses: BTreeMap::from([("l1".to_string(), loss)]),
            recall: serde_json::json!({
                "step": step,
                "recall": {"gan": {"10": gan, "50": 1.0}, "composition": {"10": 0.5}},
                "wishes": {"precision_at_10": {"gan": gan / 2.0}, "fidelity": {"with_image": 0.9}},
            }),
        }
    }

    #[test]
    fn loss_means_average_since_last_taken() {
        let mut m = LossMeans::default();
        assert!(m.is_empty());
        m.add(&[("l1", 1.0), ("gp", 4.0)]);
        m.add(&[("l1", 3.0)]);
        assert_eq!(
            m.take(),
            BTreeMap::from([("gp".to_string(), 4.0), ("l1".to_string(), 2.0)])
        );
        assert!(m.is_empty());
        m.add(&[("l1", 5.0)]);
        assert_eq!(m.take(), BTreeMap::from([("l1".to_string(), 5.0)]));
    }

    #[test]
    fn points_read_their_figures() {
        let p = point(100, "gan", 0.75, 1.0);
        assert_eq!(p.recall_at_10()["gan"], 0.75);
        assert_eq!(p.recall_at_10()["composition"], 0.5);
        assert_eq!(p.precision_at_10()["gan"], 0.375);
        assert_eq!(p.fidelity(), Some(0.9));
        let empty = EvalPoint::default();
        assert!(empty.recall_at_10().is_empty() && empty.fidelity().is_none());
    }

    #[test]
    fn the_chart_draws_every_series_in_step_order() {
        // Given out of order: the chart sorts by step.
        let pts = [
            point(300, "gan", 0.9, 0.5),
            point(100, "encoder", 0.2, 2.0),
            point(200, "gan", 0.6, 1.0),
        ];
        let svg = curves_svg(&pts, "job <7>");
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("job &lt;7&gt;"), "the title is escaped");
        for name in [
            "R@10 GAN",
            "R@10 composition",
            "wish P@10 GAN",
            "judge reads the wish",
            "l1 0.50..2.0",
            "GAN stage",
        ] {
            assert!(svg.contains(name), "{name} missing");
        }
        // The GAN's recall line: three points, x increasing with step, y falling as recall rises
        // (SVG's y grows downward).
        let line = svg
            .lines()
            .find(|l| l.starts_with("<polyline") && l.contains(PALETTE[0]))
            .unwrap();
        let pts: Vec<(f64, f64)> = line
            .split("points=\"")
            .nth(1)
            .unwrap()
            .trim_end_matches("\"/>")
            .split(' ')
            .map(|xy| {
                let (x, y) = xy.split_once(',').unwrap();
                (x.parse().unwrap(), y.parse().unwrap())
            })
            .collect();
        assert_eq!(pts.len(), 3);
        assert!(pts[0].0 < pts[1].0 && pts[1].0 < pts[2].0);
        assert!(pts[0].1 > pts[1].1 && pts[1].1 > pts[2].1);
        assert!(svg.contains("3 evaluations, steps 100..300, 1.5 s"));
    }

    #[test]
    fn step_ticks_are_round() {
        assert_eq!(
            step_ticks(0.0, 8377.0),
            vec![0.0, 2000.0, 4000.0, 6000.0, 8000.0]
        );
        assert_eq!(
            step_ticks(0.0, 30.0),
            vec![0.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0]
        );
        assert_eq!(step_ticks(0.0, 3.0), vec![0.0, 1.0, 2.0, 3.0]);
    }

    #[test]
    fn an_empty_history_says_so() {
        let svg = curves_svg(&[], "job 1");
        assert!(svg.contains("No evaluations yet"));
        assert!(svg.trim_end().ends_with("</svg>"));
    }
}
