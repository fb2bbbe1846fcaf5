//! An independent judge of images: a small CNN classifier with one head per readable attribute
//! column and one for the category, trained only on real catalog images the caller names.
//!
//! It answers "does this synthesized image show the asked values?" without asking the model
//! under test: its weights live in their own [`VarStore`], its architecture shares nothing with
//! the model's encoder, and it is never a loss of the model. Train it on held-out images (a
//! validation split), never on the images the model trained on, and print its own accuracy on
//! real images ([`Judge::accuracy`]) beside its reading of synthesized ones ([`Judge::read`]):
//! a reading is only as good as the judge.

use std::sync::Mutex;

use tch::nn::{self, Module, ModuleT, OptimizerConfig, VarStore};
use tch::{Device, Kind, Reduction, Tensor};

use crate::dataset::{Dataset, UNKNOWN};
use crate::error::{ModelError, Result};
use crate::rng::SplitMix64;

/// Images per forward pass when reading.
const READ_BATCH: usize = 256;

/// The label cross-entropy skips.
const IGNORE: i64 = -100;

/// libtorch's generator is global: seed it and initialize the weights under one lock, so two
/// judges trained at once each get their seed's weights.
static INIT: Mutex<()> = Mutex::new(());

/// How a [`Judge`] trains.
#[derive(Clone, Debug, PartialEq)]
pub struct JudgeConfig {
    /// Optimizer steps.
    pub steps: usize,
    /// Images per step, drawn uniformly (with replacement) from the training images.
    pub batch: usize,
    /// Adam's learning rate.
    pub lr: f64,
    /// Seeds the weights (`tch::manual_seed`) and the batch and augmentation draws.
    pub seed: u64,
    /// Channels of the first convolution block (then 2x, then 4x).
    pub width: i64,
    /// Largest random translation in pixels, each way (0: none).
    pub shift: i64,
    /// Random horizontal flips (turn off where left and right differ in meaning).
    pub flip: bool,
}

impl Default for JudgeConfig {
    fn default() -> Self {
        JudgeConfig {
            steps: 600,
            batch: 64,
            lr: 2e-3,
            seed: 17,
            width: 16,
            shift: 2,
            flip: true,
        }
    }
}

impl JudgeConfig {
    fn validate(&self, image_size: usize) -> Result<()> {
        let bad = |m: String| Err(ModelError::Config(m));
        if self.steps == 0 {
            return bad("the judge needs at least one step".into());
        }
        if self.batch == 0 {
            return bad("the judge's batch must hold at least one image".into());
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad(format!(
                "the judge's learning rate {} is not positive",
                self.lr
            ));
        }
        if !(1..=512).contains(&self.width) {
            return bad(format!(
                "the judge's width {} is not in 1..=512",
                self.width
            ));
        }
        if self.shift < 0 || self.shift as usize * 2 >= image_size.max(1) {
            return bad(format!(
                "the judge's shift {} does not fit {image_size}x{image_size} images",
                self.shift
            ));
        }
        Ok(())
    }
}

/// One thing the judge reads.
#[derive(Clone, Debug, PartialEq)]
pub struct JudgeHead {
    /// The attribute column's name, or "category".
    pub name: String,
    /// The attribute column, or `None` for the category.
    pub column: Option<usize>,
    /// How many classes the head tells apart: every value of the column (so a read code is an
    /// index into [`crate::AttributeTable::values`] of that column), or every category code.
    pub classes: usize,
    /// The name of each class, by code.
    pub labels: Vec<String>,
}

/// The judge's own network: convolution blocks (3x3 convolution, batch norm, ReLU, 2x2 max
/// pooling down to 4x4), global average and max pools side by side (the max keeps small
/// details such as a neckline or dots that an average washes out), and one linear head per
/// [`JudgeHead`].
#[derive(Debug)]
struct Net {
    blocks: Vec<(nn::Conv2D, nn::BatchNorm)>,
    pools: usize,
    heads: Vec<nn::Linear>,
}

impl Net {
    fn new(p: &nn::Path, width: i64, image_size: usize, classes: &[usize]) -> Net {
        // Halve the side while it stays even and at least 4, at most four times.
        let mut side = image_size;
        let mut pools = 0;
        while pools < 4 && side.is_multiple_of(2) && side / 2 >= 4 {
            side /= 2;
            pools += 1;
        }
        let n_blocks = (pools + 1).max(3);
        let mut blocks = Vec::with_capacity(n_blocks);
        let mut c = 3;
        for i in 0..n_blocks {
            let out = width << i.min(2);
            let conv = nn::conv2d(
                p / format!("c{}", i + 1),
                c,
                out,
                3,
                nn::ConvConfig {
                    padding: 1,
                    bias: false,
                    ..Default::default()
                },
            );
            let bn = nn::batch_norm2d(p / format!("n{}", i + 1), out, Default::default());
            blocks.push((conv, bn));
            c = out;
        }
        let heads = classes
            .iter()
            .enumerate()
            .map(|(h, &k)| {
                nn::linear(
                    p / format!("h{}", h + 1),
                    2 * c,
                    k as i64,
                    Default::default(),
                )
            })
            .collect();
        Net {
            blocks,
            pools,
            heads,
        }
    }

    /// Logits per head, `[B, classes]` each.
    fn forward_t(&self, x: &Tensor, train: bool) -> Vec<Tensor> {
        let mut h = x.shallow_clone();
        for (i, (conv, bn)) in self.blocks.iter().enumerate() {
            h = bn.forward_t(&conv.forward(&h), train).relu();
            if i < self.pools {
                h = h.max_pool2d_default(2);
            }
        }
        let f = Tensor::cat(
            &[
                h.mean_dim([2i64, 3].as_slice(), false, Kind::Float),
                h.amax([2i64, 3].as_slice(), false),
            ],
            1,
        );
        self.heads.iter().map(|l| l.forward(&f)).collect()
    }
}

/// A classifier of real images that reads synthesized ones. See the module documentation.
#[derive(Debug)]
pub struct Judge {
    vs: VarStore,
    net: Net,
    heads: Vec<JudgeHead>,
    image_size: usize,
    device: Device,
}

/// Checks that `images` index `data` and are not empty.
fn check_indices(data: &Dataset, images: &[usize], what: &str) -> Result<()> {
    if images.is_empty() {
        return Err(ModelError::Data(format!("no images to {what}")));
    }
    if let Some(&i) = images.iter().find(|&&i| i >= data.len()) {
        return Err(ModelError::Data(format!(
            "image index {i} is out of range: the data has {} images",
            data.len()
        )));
    }
    Ok(())
}

/// The label of image `i` for `head`, [`UNKNOWN`] where it is not known.
fn label(data: &Dataset, head: &JudgeHead, i: usize) -> u32 {
    match (head.column, &data.attributes) {
        (Some(c), Some(t)) => t.code(i, c),
        (Some(_), None) => UNKNOWN,
        (None, _) => data.category_codes[i],
    }
}

/// Horizontal flips and translations (replicated borders), drawn per image from `rng`.
fn augment(x: &Tensor, cfg: &JudgeConfig, rng: &mut SplitMix64) -> Tensor {
    if cfg.shift == 0 && !cfg.flip {
        return x.shallow_clone();
    }
    let size = x.size();
    let (b, s) = (size[0], size[3]);
    let k = cfg.shift;
    let padded = if k > 0 {
        x.replication_pad2d([k, k, k, k])
    } else {
        x.shallow_clone()
    };
    let span = (2 * k + 1) as usize;
    let rows: Vec<Tensor> = (0..b)
        .map(|i| {
            let dy = rng.below(span) as i64;
            let dx = rng.below(span) as i64;
            let img = padded.get(i).narrow(1, dy, s).narrow(2, dx, s);
            if cfg.flip && rng.below(2) == 1 {
                img.flip([2i64])
            } else {
                img
            }
        })
        .collect();
    Tensor::stack(&rows, 0)
}

impl Judge {
    /// Trains on `images` (indices into `data`) one head for every attribute column with at
    /// least two known values among them, plus the category when they have at least two.
    /// Unknown values are skipped (ignore index -100). Errors when `images` is empty or out of
    /// range, or when nothing among them can be told apart.
    pub fn train(
        data: &Dataset,
        images: &[usize],
        cfg: &JudgeConfig,
        device: Device,
    ) -> Result<Judge> {
        check_indices(data, images, "train the judge on")?;
        cfg.validate(data.image_size)?;
        let mut heads = Vec::new();
        if let Some(t) = &data.attributes {
            for (c, name) in t.columns.iter().enumerate() {
                let mut seen: Vec<u32> = images
                    .iter()
                    .map(|&i| t.code(i, c))
                    .filter(|&v| v != UNKNOWN)
                    .collect();
                seen.sort_unstable();
                seen.dedup();
                if seen.len() >= 2 {
                    heads.push(JudgeHead {
                        name: name.clone(),
                        column: Some(c),
                        classes: t.values[c].len(),
                        labels: t.values[c].clone(),
                    });
                }
            }
        }
        let first_cat = data.category_codes[images[0]];
        if images.iter().any(|&i| data.category_codes[i] != first_cat) {
            let classes = data
                .category_codes
                .iter()
                .max()
                .map_or(0, |&m| m as usize + 1);
            let mut labels = vec![String::new(); classes];
            for (&code, name) in data.category_codes.iter().zip(&data.categories) {
                labels[code as usize].clone_from(name);
            }
            heads.push(JudgeHead {
                name: "category".into(),
                column: None,
                classes,
                labels,
            });
        }
        if heads.is_empty() {
            return Err(ModelError::Data(format!(
                "no readable attribute: among the {} judge images no attribute column and not \
                 the category has two known values",
                images.len()
            )));
        }

        let classes: Vec<usize> = heads.iter().map(|h| h.classes).collect();
        let (mut vs, net) = {
            let _guard = INIT.lock().unwrap_or_else(|e| e.into_inner());
            tch::manual_seed(cfg.seed as i64);
            let vs = VarStore::new(device);
            let net = Net::new(&(vs.root() / "judge"), cfg.width, data.image_size, &classes);
            (vs, net)
        };
        let mut opt = nn::Adam::default().build(&vs, cfg.lr)?;
        // Labels as a table, image by head, so a batch's labels are a lookup.
        let labels: Vec<Vec<i64>> = images
            .iter()
            .map(|&i| {
                heads
                    .iter()
                    .map(|h| match label(data, h, i) {
                        UNKNOWN => IGNORE,
                        v if (v as usize) < h.classes => v as i64,
                        _ => IGNORE,
                    })
                    .collect()
            })
            .collect();
        for step in 0..cfg.steps {
            let mut rng = SplitMix64::for_step(cfg.seed, step as u64);
            let picks: Vec<usize> = (0..cfg.batch).map(|_| rng.below(images.len())).collect();
            let chosen: Vec<usize> = picks.iter().map(|&p| images[p]).collect();
            let x = augment(&data.batch(&chosen), cfg, &mut rng).to_device(device);
            let logits = net.forward_t(&x, true);
            let mut loss: Option<Tensor> = None;
            for (h, l) in logits.iter().enumerate() {
                let target: Vec<i64> = picks.iter().map(|&p| labels[p][h]).collect();
                if target.iter().all(|&t| t == IGNORE) {
                    // The mean over no labels is NaN: this head sits the step out.
                    continue;
                }
                let target = Tensor::from_slice(&target).to_device(device);
                let term =
                    l.f_cross_entropy_loss::<Tensor>(&target, None, Reduction::Mean, IGNORE, 0.0)?;
                loss = Some(match loss {
                    Some(sum) => sum + term,
                    None => term,
                });
            }
            if let Some(loss) = loss {
                opt.backward_step(&loss);
            }
        }
        vs.freeze();
        Ok(Judge {
            vs,
            net,
            heads,
            image_size: data.image_size,
            device,
        })
    }

    /// What it reads, in the order of [`Judge::read`]'s columns: attribute columns, then the
    /// category.
    pub fn heads(&self) -> &[JudgeHead] {
        &self.heads
    }

    /// The side of the images it reads.
    pub fn image_size(&self) -> usize {
        self.image_size
    }

    /// The number of trained weights (for reports).
    pub fn parameters(&self) -> usize {
        self.vs
            .trainable_variables()
            .iter()
            .map(Tensor::numel)
            .sum()
    }

    /// Predicted codes per image (rows) and head (columns, as [`Judge::heads`]) for `images`
    /// `[B,3,S,S]` in [-1,1] at the training data's size, on any device. A column head's code
    /// indexes the column's values, the category head's is a category code: each compares
    /// directly with an asked code. Evaluation mode, without gradients, 256 images at a time.
    pub fn read(&self, images: &Tensor) -> Result<Vec<Vec<u32>>> {
        let size = images.size();
        let s = self.image_size as i64;
        if size.len() != 4 {
            return Err(ModelError::Dimension {
                what: "image dimensions ([B,3,S,S])",
                expected: 4,
                found: size.len(),
            });
        }
        if size[1] != 3 {
            return Err(ModelError::Dimension {
                what: "image channels",
                expected: 3,
                found: size[1] as usize,
            });
        }
        if size[2] != s || size[3] != s {
            return Err(ModelError::Dimension {
                what: "pixels per image side",
                expected: self.image_size,
                found: if size[2] != s { size[2] } else { size[3] } as usize,
            });
        }
        let b = size[0];
        let mut out: Vec<Vec<u32>> = Vec::with_capacity(b as usize);
        let mut start = 0;
        while start < b {
            let len = (READ_BATCH as i64).min(b - start);
            let x = images
                .f_narrow(0, start, len)?
                .f_to_kind(Kind::Float)?
                .f_to_device(self.device)?;
            let preds = tch::no_grad(|| -> Result<Vec<Vec<i64>>> {
                self.net
                    .forward_t(&x, false)
                    .iter()
                    .map(|l| {
                        let am = l.f_argmax(1, false)?.f_to_device(Device::Cpu)?;
                        Ok(Vec::<i64>::try_from(&am)?)
                    })
                    .collect()
            })?;
            for r in 0..len as usize {
                out.push(preds.iter().map(|p| p[r] as u32).collect());
            }
            start += len;
        }
        Ok(out)
    }

    /// Accuracy per head on the real images `images` (indices into `data`) against their known
    /// values, unknown ones skipped: the judge's own accuracy, to print beside its reading of
    /// synthesized images. NaN for a head with no known value among them. `data` must have the
    /// training data's image size and attribute columns (the same data, or one like it).
    pub fn accuracy(&self, data: &Dataset, images: &[usize]) -> Result<Vec<(String, f64)>> {
        check_indices(data, images, "measure the judge on")?;
        if data.image_size != self.image_size {
            return Err(ModelError::Dimension {
                what: "pixels per image side",
                expected: self.image_size,
                found: data.image_size,
            });
        }
        for h in &self.heads {
            if let Some(c) = h.column {
                let same = data
                    .attributes
                    .as_ref()
                    .and_then(|t| t.columns.get(c))
                    .is_some_and(|n| *n == h.name);
                if !same {
                    return Err(ModelError::Data(format!(
                        "the judge reads column {c} as {:?}, which the data does not have there",
                        h.name
                    )));
                }
            }
        }
        let mut correct = vec![0usize; self.heads.len()];
        let mut known = vec![0usize; self.heads.len()];
        for chunk in images.chunks(READ_BATCH) {
            let read = self.read(&data.batch(chunk))?;
            for (&i, row) in chunk.iter().zip(&read) {
                for (h, head) in self.heads.iter().enumerate() {
                    let truth = label(data, head, i);
                    if truth != UNKNOWN {
                        known[h] += 1;
                        correct[h] += usize::from(row[h] == truth);
                    }
                }
            }
        }
        Ok(self
            .heads
            .iter()
            .zip(correct.iter().zip(&known))
            .map(|(h, (&c, &k))| {
                let acc = if k == 0 {
                    f64::NAN
                } else {
                    c as f64 / k as f64
                };
                (h.name.clone(), acc)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::AttributeTable;
    use synthsearch_data::Split;

    const S: usize = 16;

    /// `n` images of a square on a grey ground: colour red or blue, plain or striped, large
    /// ("dress") or small ("shirt"), at a random place; the material is always "cotton". Every
    /// seventh image's pattern is unknown.
    fn squares(n: usize, seed: u64) -> Dataset {
        let mut rng = SplitMix64::new(seed);
        let per = 3 * S * S;
        let mut chw = vec![0f32; n * per];
        let mut records = Vec::new();
        let mut rows = Vec::new();
        for i in 0..n {
            let red = rng.below(2) == 0;
            let striped = rng.below(2) == 0;
            let large = rng.below(2) == 0;
            let side = if large { 10 } else { 5 };
            let y0 = rng.below(S - side + 1);
            let x0 = rng.below(S - side + 1);
            let img = &mut chw[i * per..(i + 1) * per];
            for v in img.iter_mut() {
                *v = 0.1 * (rng.unit() as f32 - 0.5);
            }
            let colour = if red {
                [0.9f32, -0.8, -0.8]
            } else {
                [-0.8f32, -0.6, 0.9]
            };
            for y in y0..y0 + side {
                for x in x0..x0 + side {
                    let dark = striped && y % 2 == 0;
                    for (ch, &c) in colour.iter().enumerate() {
                        img[ch * S * S + y * S + x] = if dark { c * 0.2 - 0.7 } else { c };
                    }
                }
            }
            let category = if large { "dress" } else { "shirt" };
            records.push((format!("p{i}"), category.to_string(), Split::Train));
            let pattern = (i % 7 != 3).then_some(if striped { "stripes" } else { "solid" });
            rows.push(vec![
                Some(if red { "red" } else { "blue" }.to_string()),
                pattern.map(str::to_string),
                Some("cotton".to_string()),
            ]);
        }
        let pairs = vec![(
            "p0".to_string(),
            "p1".to_string(),
            ["is red".to_string(), "is red".to_string()],
            Split::Train,
        )];
        let table = AttributeTable::from_rows(
            vec!["colour".into(), "pattern".into(), "material".into()],
            &rows,
        );
        Dataset::assemble(S, records, chw, &pairs)
            .unwrap()
            .with_attributes(table)
            .unwrap()
    }

    fn quick() -> JudgeConfig {
        JudgeConfig {
            steps: 150,
            batch: 32,
            width: 8,
            ..JudgeConfig::default()
        }
    }

    #[test]
    fn judge_reads_held_out_squares() {
        let data = squares(160, 5);
        let train: Vec<usize> = (0..data.len()).step_by(2).collect();
        let test: Vec<usize> = (1..data.len()).step_by(2).collect();
        let judge = Judge::train(&data, &train, &quick(), Device::Cpu).unwrap();
        let names: Vec<&str> = judge.heads().iter().map(|h| h.name.as_str()).collect();
        // "material" has one value: no head for it.
        assert_eq!(names, ["colour", "pattern", "category"]);
        assert_eq!(judge.heads()[0].column, Some(0));
        assert_eq!(judge.heads()[1].column, Some(1));
        assert_eq!(judge.heads()[2].column, None);
        for (&code, name) in data.category_codes.iter().zip(&data.categories) {
            assert_eq!(&judge.heads()[2].labels[code as usize], name);
        }
        let acc = judge.accuracy(&data, &test).unwrap();
        for (name, a) in &acc {
            assert!(
                *a > 0.9,
                "{name}: accuracy {a} on held-out images ({acc:?})"
            );
        }
    }

    #[test]
    fn read_gives_codes_of_the_columns_values() {
        let data = squares(48, 9);
        let all: Vec<usize> = (0..data.len()).collect();
        let cfg = JudgeConfig {
            steps: 5,
            ..quick()
        };
        let judge = Judge::train(&data, &all, &cfg, Device::Cpu).unwrap();
        let t = data.attributes.as_ref().unwrap();
        let rows = judge.read(&data.batch(&[0, 1, 2, 3, 4])).unwrap();
        assert_eq!(rows.len(), 5);
        for row in &rows {
            assert_eq!(row.len(), judge.heads().len());
            for (code, head) in row.iter().zip(judge.heads()) {
                match head.column {
                    Some(c) => assert!((*code as usize) < t.values[c].len()),
                    None => assert!(data.category_codes.contains(code)),
                }
            }
        }
        // An empty batch reads as nothing; a batch of the wrong size is an error.
        assert!(
            judge
                .read(&Tensor::zeros([0, 3, 16, 16], (Kind::Float, Device::Cpu)))
                .unwrap()
                .is_empty()
        );
        assert!(
            judge
                .read(&Tensor::zeros([2, 3, 8, 8], (Kind::Float, Device::Cpu)))
                .is_err()
        );
        assert!(
            judge
                .read(&Tensor::zeros([3, 16, 16], (Kind::Float, Device::Cpu)))
                .is_err()
        );
    }

    #[test]
    fn caller_mistakes_are_errors() {
        let data = squares(24, 2);
        let cfg = JudgeConfig {
            steps: 2,
            ..quick()
        };
        assert!(matches!(
            Judge::train(&data, &[], &cfg, Device::Cpu),
            Err(ModelError::Data(_))
        ));
        assert!(Judge::train(&data, &[0, 99], &cfg, Device::Cpu).is_err());
        let bad = JudgeConfig {
            steps: 0,
            ..cfg.clone()
        };
        assert!(Judge::train(&data, &[0, 1, 2], &bad, Device::Cpu).is_err());
        // One image tells nothing apart.
        assert!(matches!(
            Judge::train(&data, &[0], &cfg, Device::Cpu),
            Err(ModelError::Data(_))
        ));
        let judge = Judge::train(&data, &(0..24).collect::<Vec<_>>(), &cfg, Device::Cpu).unwrap();
        assert!(judge.accuracy(&data, &[]).is_err());
        assert!(judge.accuracy(&data, &[24]).is_err());
    }

    /// The measurement on a generated catalog: trained on the val split, measured on the test
    /// split. `cargo test -p synthsearch-model --release judge::tests::catalog -- --ignored
    /// --nocapture`
    #[test]
    #[ignore]
    fn catalog_measurement() {
        use synthsearch_data::{CatalogConfig, generate};
        let products = std::env::var("JUDGE_PRODUCTS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(3000);
        let size = 32;
        let t = std::time::Instant::now();
        let cat = generate(&CatalogConfig {
            products,
            image_size: size as u32,
            ..CatalogConfig::default()
        });
        let data = Dataset::from_catalog(&cat, size).unwrap();
        println!(
            "catalog of {products} products at {size}x{size} in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        let of = |split: Split| -> Vec<usize> {
            (0..data.len())
                .filter(|&i| data.splits[i] == split)
                .collect()
        };
        let (val, test) = (of(Split::Val), of(Split::Test));
        let env = |k: &str| std::env::var(k).ok();
        let d = JudgeConfig::default();
        let cfg = JudgeConfig {
            steps: env("JUDGE_STEPS")
                .and_then(|v| v.parse().ok())
                .unwrap_or(d.steps),
            width: env("JUDGE_WIDTH")
                .and_then(|v| v.parse().ok())
                .unwrap_or(d.width),
            lr: env("JUDGE_LR").and_then(|v| v.parse().ok()).unwrap_or(d.lr),
            shift: env("JUDGE_SHIFT")
                .and_then(|v| v.parse().ok())
                .unwrap_or(d.shift),
            ..d
        };
        if let Some(n) = env("JUDGE_THREADS").and_then(|v| v.parse().ok()) {
            crate::set_threads(n);
        }
        // CPU seconds of this process (user + system, at 100 ticks a second), which the
        // other jobs on a shared machine disturb less than the wall clock.
        let cpu = || -> f64 {
            let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
            let after = stat.rsplit(')').next().unwrap_or("");
            let f: Vec<f64> = after
                .split_whitespace()
                .map(|v| v.parse().unwrap_or(0.0))
                .collect();
            f.get(11)
                .zip(f.get(12))
                .map_or(0.0, |(u, s)| (u + s) / 100.0)
        };
        let (t, c) = (std::time::Instant::now(), cpu());
        let judge = Judge::train(&data, &val, &cfg, Device::Cpu).unwrap();
        let secs = t.elapsed().as_secs_f64();
        let cpu_secs = cpu() - c;
        println!(
            "judge: {} weights, trained on {} val images, {} steps of {} in {secs:.1} s \
             ({cpu_secs:.1} CPU s, {} threads)",
            judge.parameters(),
            val.len(),
            cfg.steps,
            cfg.batch,
            tch::get_num_threads()
        );
        let on_test = judge.accuracy(&data, &test).unwrap();
        let on_val = judge.accuracy(&data, &val).unwrap();
        println!(
            "{:<10} {:>7} {:>9} {:>9} {:>8}",
            "head", "classes", "test acc", "val acc", "majority"
        );
        for (h, ((name, a), (_, v))) in judge.heads().iter().zip(on_test.iter().zip(&on_val)) {
            // The most frequent test value's share: what reading without looking would score.
            let mut counts = vec![0usize; h.classes];
            for &i in &test {
                let l = label(&data, h, i);
                if l != UNKNOWN {
                    counts[l as usize] += 1;
                }
            }
            let total: usize = counts.iter().sum();
            let major = *counts.iter().max().unwrap_or(&0) as f64 / total.max(1) as f64;
            println!("{name:<10} {:>7} {a:>9.3} {v:>9.3} {major:>8.3}", h.classes);
        }
    }
}
