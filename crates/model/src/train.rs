//! Training in steps that a caller drives (the database's background worker, or `synth train`).
//!
//! Stage 1 (`encoder_steps`): image encoder, text encoder and composition head learn the
//! embedding space from pairs alone, with an in-batch contrastive loss between
//! compose(E(source), text) and E(target). Stage 2 (`gan_steps`): that space is frozen and the
//! conditional generator and critic train against it: WGAN-GP (or the non-saturating loss with
//! label smoothing), two-time-scale learning rates, the triplet loss (anchor E(G(source, text)),
//! positive E(target), negative E(source)) and an optional pixel L1 to the target.

use std::sync::Arc;

use serde::Serialize;
use tch::{Device, Kind, Reduction, Tensor};

use crate::checkpoint::TrainerMeta;
use crate::config::{COLOUR_SHARE, GanLoss, GeneratorConfig, TrainConfig};
use crate::dataset::{Dataset, PairRef, UNKNOWN};
use crate::error::{ModelError, Result};
use crate::model::Model;
use crate::optim::Adam;
use crate::rng::SplitMix64;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Encoder,
    Gan,
    Done,
}

/// What one step did: its number (1-based, after the step) and its losses by name.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StepReport {
    pub step: u64,
    pub stage: Stage,
    pub losses: Vec<(&'static str, f64)>,
}

impl StepReport {
    pub fn loss(&self, name: &str) -> Option<f64> {
        self.losses
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }
}

pub struct Trainer {
    model: Model,
    data: Arc<Dataset>,
    cfg: TrainConfig,
    step: u64,
    opt_enc: Adam,
    opt_gen: Adam,
    opt_critic: Adam,
    /// The dataset's images on the training device.
    images: Tensor,
    /// Stage 2: the pool's embeddings under the frozen encoder (row `pool_pos[i]` for image
    /// `i`): the pairs' images, and what the catalog-wide losses rank.
    catalog: Option<Tensor>,
    /// The images a loss may look at beyond a batch's pairs: the training split's
    /// ([`Dataset::training_images`]). Held-out images, and their labels, never shape the model.
    pool: Vec<usize>,
    /// Each image's position in `pool`, or `usize::MAX` for a held-out image.
    pool_pos: Vec<usize>,
    /// Stage 1: the pool's embeddings, without gradients, refreshed every `wish_bank_every`
    /// steps (the wish loss's keys beyond the batch).
    bank: Option<Tensor>,
    /// Stage 1: the attribute probes, when the data has attributes and `attribute_weight` > 0.
    probes: Option<Probes>,
    /// The wish loss's positives over the pool (as positions in it), by (wish, reference's
    /// category).
    honouring: std::cell::RefCell<HonouringCache>,
    /// The wish loss's near misses over the pool (positions), by the same key.
    near_misses: std::cell::RefCell<HonouringCache>,
    /// Stage 2: the colour loss's prototypes, when the data has a colour column.
    colours: Option<ColourPrior>,
    /// Stage 2 with `ablation_head`: the head without an image, made at the first GAN step.
    head: Option<DirectHead>,
}

/// The ablation's head: the generator's condition (source embedding, text, composed query)
/// through a two-layer MLP straight to a unit embedding, trained in stage 2 beside the
/// generator with the same losses on the embedding as E(G) (triplet, contrastive, wish,
/// distillation, probes) and no image. Ranking by it beside the GAN says what the synthesized
/// image adds over a head that had the same training signal. A training aid: never saved in
/// the model or a checkpoint (a resumed run starts it afresh).
pub struct DirectHead {
    vs: tch::nn::VarStore,
    hidden: tch::nn::Linear,
    out: tch::nn::Linear,
    opt: Adam,
}

impl DirectHead {
    fn new(cond_dim: i64, embed_dim: i64, lr: f64, device: Device) -> DirectHead {
        let vs = tch::nn::VarStore::new(device);
        let root = vs.root();
        let width = (2 * cond_dim).max(128);
        let hidden = tch::nn::linear(&root / "hidden", cond_dim, width, Default::default());
        let out = tch::nn::linear(&root / "out", width, embed_dim, Default::default());
        let opt = Adam::new(named_trainables(&vs), lr, 0.9, 0.999);
        DirectHead {
            vs,
            hidden,
            out,
            opt,
        }
    }

    fn forward(&self, cond: &Tensor) -> Tensor {
        use tch::nn::Module;
        crate::nets::l2_normalize(&self.out.forward(&self.hidden.forward(cond).relu()))
    }

    /// The search embedding of queries (source embeddings `es`, image-condition mask `has`,
    /// words `texts`), expanded by the composed query as the GAN's is.
    pub fn embed(&self, model: &Model, es: &Tensor, has: &Tensor, texts: &[Vec<String>]) -> Tensor {
        tch::no_grad(|| {
            let t = model.text_features(texts);
            let h = self.forward(&model.generator_condition(es, has, &t));
            model.expand(h, || model.composer.forward(es, has, &t))
        })
    }

    /// Its parameters' count.
    pub fn parameters(&self) -> usize {
        self.vs
            .trainable_variables()
            .iter()
            .map(|t| t.numel())
            .sum()
    }
}

/// The colour loss reads a pixel as a softmax over minus its squared distance to each prototype
/// over this (in the [-1, 1] scale: a spread of about 0.15, 19 levels of 255).
const COLOUR_TEMPERATURE: f64 = 0.045;

/// The colour loss's reading of pixels: the RGB of every value of the data's colour column that
/// names a colour the project knows, and each image's value as an index into them.
struct ColourPrior {
    /// The attribute column read.
    column: usize,
    /// `[K, 3]` prototypes in the images' [-1, 1] scale.
    protos: Tensor,
    /// Per image: its colour's prototype, or -1 (unknown value, or not a known colour name).
    index: Vec<i64>,
}

impl ColourPrior {
    fn new(data: &Dataset, device: Device) -> Option<ColourPrior> {
        let table = data.attributes.as_ref()?;
        let column = table
            .columns
            .iter()
            .position(|c| c.eq_ignore_ascii_case("colour") || c.eq_ignore_ascii_case("color"))?;
        let mut rgb: Vec<f32> = Vec::new();
        let mut proto_of = vec![-1i64; table.values[column].len()];
        for (code, v) in table.values[column].iter().enumerate() {
            if let Ok(c) = synthsearch_data::Colour::parse(v) {
                proto_of[code] = (rgb.len() / 3) as i64;
                rgb.extend(c.rgb().map(|u| f32::from(u) / 127.5 - 1.0));
            }
        }
        if rgb.len() < 6 {
            return None; // fewer than two known colours: nothing to tell apart
        }
        // Only training images carry their colour: a held-out image's label is never read.
        let index = (0..data.len())
            .map(|i| match table.code(i, column) {
                _ if data.splits[i] != synthsearch_data::Split::Train => -1,
                UNKNOWN => -1,
                code => proto_of[code as usize],
            })
            .collect();
        let k = (rgb.len() / 3) as i64;
        Some(ColourPrior {
            column,
            protos: Tensor::from_slice(&rgb).view([k, 3]).to_device(device),
            index,
        })
    }

    /// `[B, K, H, W]` squared distance of every pixel to every prototype.
    fn distances(&self, images: &Tensor) -> Tensor {
        // |x|^2 - 2 x.p + |p|^2, the dot products as a 1x1 convolution.
        let k = self.protos.size()[0];
        let xx = images
            .square()
            .sum_dim_intlist([1i64].as_slice(), true, Kind::Float);
        let xp = images.conv2d(
            &self.protos.view([k, 3, 1, 1]),
            None::<Tensor>,
            [1],
            [0],
            [1],
            1,
        );
        let pp = self
            .protos
            .square()
            .sum_dim_intlist([1i64].as_slice(), false, Kind::Float)
            .view([1, k, 1, 1]);
        (xx - xp * 2.0 + pp).clamp_min(0.0)
    }

    /// The colour loss of generated images against their wanted images. Row `b` counts when the
    /// wanted image's colour is known and the generator could know it: the sample has a
    /// reference, or its wish asks for a colour. `None` when no row counts.
    fn loss(
        &self,
        fake: &Tensor,
        real: &Tensor,
        pairs: &[PairRef],
        has: &[f32],
        temperature: f64,
    ) -> Option<Tensor> {
        let dev = fake.device();
        let (mut want, mut rows) = (Vec::new(), Vec::new());
        for (b, p) in pairs.iter().enumerate() {
            let c = self.index[p.target];
            let asks = p.wish.iter().any(|(col, _)| *col == self.column);
            if c >= 0 && (has[b] > 0.0 || asks) {
                want.push(c);
                rows.push(b as i64);
            }
        }
        if rows.is_empty() {
            return None;
        }
        let n = rows.len() as i64;
        let rows = Tensor::from_slice(&rows).to_device(dev);
        let want = Tensor::from_slice(&want).to_device(dev);
        let (fake, real) = (fake.index_select(0, &rows), real.index_select(0, &rows));
        let (h, w) = (real.size()[2], real.size()[3]);
        // Where the wanted image shows its colour.
        let nearest = tch::no_grad(|| self.distances(&real).argmin(1, false));
        let mask = nearest
            .eq_tensor(&want.view([n, 1, 1]).expand([n, h, w], false))
            .to_kind(Kind::Float);
        let logp = (self.distances(&fake) / -temperature).log_softmax(1, Kind::Float);
        let p = logp
            .gather(
                1,
                &want.view([n, 1, 1, 1]).expand([n, 1, h, w], false),
                false,
            )
            .squeeze_dim(1)
            .exp();
        let area = mask.sum_dim_intlist([1i64, 2].as_slice(), false, Kind::Float);
        let share = (p * &mask).sum_dim_intlist([1i64, 2].as_slice(), false, Kind::Float)
            / area.clamp_min(1.0);
        let counted = area.ge(4.0).to_kind(Kind::Float);
        let per_row = ((share + 1e-6).log() * -1.0 + COLOUR_SHARE.ln()).relu() * &counted;
        Some(per_row.sum(Kind::Float) / counted.sum(Kind::Float).clamp_min(1.0))
    }
}

type HonouringCache = std::collections::HashMap<(Vec<(usize, u32)>, Option<u32>), Vec<usize>>;

/// Linear probes from the embedding to each attribute column's values, with their optimizer and
/// every image's value codes (-100 where unknown). Training aids, not part of the model.
struct Probes {
    vs: tch::nn::VarStore,
    layers: Vec<tch::nn::Linear>,
    opt: Adam,
    /// `[N, A]` codes.
    codes: Tensor,
}

impl Probes {
    fn new(data: &Dataset, embed_dim: i64, lr: f64, device: Device) -> Option<Probes> {
        let table = data.attributes.as_ref()?;
        let vs = tch::nn::VarStore::new(device);
        let root = vs.root();
        let layers = table
            .values
            .iter()
            .enumerate()
            .map(|(a, v)| {
                tch::nn::linear(
                    &root / format!("probe{a}"),
                    embed_dim,
                    v.len().max(1) as i64,
                    Default::default(),
                )
            })
            .collect();
        // Labels of training images only: a held-out image's values are never a target.
        let a = table.columns.len().max(1);
        let codes: Vec<i64> = table
            .codes
            .iter()
            .enumerate()
            .map(|(k, &c)| {
                if c == UNKNOWN || data.splits[k / a] != synthsearch_data::Split::Train {
                    -100
                } else {
                    c as i64
                }
            })
            .collect();
        let codes = Tensor::from_slice(&codes)
            .view([table.rows() as i64, table.columns.len() as i64])
            .to_device(device);
        let opt = Adam::new(named_trainables(&vs), lr, 0.9, 0.999);
        Some(Probes {
            vs,
            layers,
            opt,
            codes,
        })
    }

    /// Mean cross-entropy of every probe on `emb` against `labels` (`[B, A]`, -100 ignored).
    fn loss(&self, emb: &Tensor, labels: &Tensor) -> Result<Tensor> {
        let mut parts = Vec::with_capacity(self.layers.len());
        for (a, layer) in self.layers.iter().enumerate() {
            let y = labels.select(1, a as i64);
            if y.ne(-100).any().int64_value(&[]) == 0 {
                continue;
            }
            let logits = tch::nn::Module::forward(layer, emb);
            parts.push(
                logits
                    .f_log_softmax(-1, Kind::Float)?
                    .f_nll_loss::<Tensor>(&y, None, Reduction::Mean, -100)?,
            );
        }
        Ok(if parts.is_empty() {
            Tensor::zeros([], (Kind::Float, emb.device()))
        } else {
            Tensor::stack(&parts, 0).mean(Kind::Float)
        })
    }
}

fn named_trainables(vs: &tch::nn::VarStore) -> Vec<(String, Tensor)> {
    let mut v: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .filter(|(_, t)| t.requires_grad())
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// Identity of the training data, so a resumed run refuses other data.
fn fingerprint(data: &Dataset) -> String {
    let mut h = crate::rng::fnv1a64(&(data.image_size as u64).to_le_bytes());
    for id in &data.ids {
        h = crate::rng::fnv1a64_extend(h, id.as_bytes());
    }
    for p in &data.train {
        h = crate::rng::fnv1a64_extend(h, &(p.candidate as u64).to_le_bytes());
        h = crate::rng::fnv1a64_extend(h, &(p.target as u64).to_le_bytes());
    }
    format!("{}-{}-{h:016x}", data.len(), data.train.len())
}

impl Trainer {
    /// Starts a run on a fresh or loaded model. With `encoder_steps == 0` the model's encoder is
    /// kept as it is (its version, and every stored embedding, stay valid).
    pub fn new(model: Model, cfg: TrainConfig, data: Arc<Dataset>) -> Result<Trainer> {
        cfg.validate()?;
        if data.image_size != model.image_size() {
            return Err(ModelError::Data(format!(
                "images are {0}x{0}, the model expects {1}x{1}",
                data.image_size,
                model.image_size()
            )));
        }
        if data.train.len() < cfg.batch_size {
            return Err(ModelError::Data(format!(
                "{} training pairs, fewer than a batch of {}",
                data.train.len(),
                cfg.batch_size
            )));
        }
        let pool = data.training_images();
        if pool.is_empty() {
            return Err(ModelError::Data(
                "no images of the training split: nothing to train on".into(),
            ));
        }
        let mut pool_pos = vec![usize::MAX; data.len()];
        for (j, &i) in pool.iter().enumerate() {
            pool_pos[i] = j;
        }
        let images = data.images.to_device(model.device());
        let probes = if cfg.attribute_weight > 0.0 && cfg.encoder_steps > 0 {
            Probes::new(
                &data,
                model.embed_dim() as i64,
                cfg.lr_encoder,
                model.device(),
            )
        } else {
            None
        };
        let colours = if cfg.colour_weight > 0.0 {
            ColourPrior::new(&data, model.device())
        } else {
            None
        };
        let opt_enc = Adam::new(named_trainables(&model.enc_vs), cfg.lr_encoder, 0.9, 0.999);
        let (generator, critic): (Vec<_>, Vec<_>) = named_trainables(&model.gen_vs)
            .into_iter()
            .partition(|(n, _)| n.starts_with("gen."));
        let opt_gen = Adam::new(generator, cfg.lr_generator, 0.5, 0.9);
        let opt_critic = Adam::new(critic, cfg.lr_critic, 0.5, 0.9);
        Ok(Trainer {
            model,
            data,
            cfg,
            step: 0,
            opt_enc,
            opt_gen,
            opt_critic,
            images,
            catalog: None,
            pool,
            pool_pos,
            bank: None,
            probes,
            honouring: Default::default(),
            near_misses: Default::default(),
            colours,
            head: None,
        })
    }

    /// Retrains only the GAN of a trained model: a fresh generator and critic, encoder untouched.
    pub fn retrain_gan(
        mut model: Model,
        generator: GeneratorConfig,
        mut cfg: TrainConfig,
        data: Arc<Dataset>,
    ) -> Result<Trainer> {
        model.reset_generator(generator)?;
        cfg.encoder_steps = 0;
        Self::new(model, cfg, data)
    }

    /// Continues a run saved with [`Trainer::save`].
    pub fn resume(bytes: &[u8], data: Arc<Dataset>, device: Device) -> Result<Trainer> {
        let (model, header, tensors) = Model::from_bytes_full(bytes, device)?;
        let meta = header
            .trainer
            .ok_or_else(|| ModelError::Mismatch("the checkpoint holds no trainer state".into()))?;
        let mut tensors = tensors.unwrap_or_default();
        let mut t = Self::new(model, meta.config.clone(), data)?;
        if meta.data != fingerprint(&t.data) {
            return Err(ModelError::Mismatch(format!(
                "the run trained on data {}, this is {}",
                meta.data,
                fingerprint(&t.data)
            )));
        }
        t.opt_enc
            .load_state(&mut tensors, "opt_enc", meta.adam_steps[0])?;
        t.opt_gen
            .load_state(&mut tensors, "opt_gen", meta.adam_steps[1])?;
        t.opt_critic
            .load_state(&mut tensors, "opt_critic", meta.adam_steps[2])?;
        t.step = meta.step;
        if t.step >= t.cfg.encoder_steps && t.cfg.gan_attribute_weight == 0.0 {
            t.probes = None;
        }
        // Stage 1's training aids, so the resumed run repeats the uninterrupted one.
        if let Some(p) = t.probes.as_mut() {
            for (name, var) in p.vs.variables() {
                let key = format!("probes/{name}");
                let src = tensors
                    .remove(&key)
                    .ok_or_else(|| ModelError::Mismatch(format!("trainer state lacks {key:?}")))?;
                tch::no_grad(|| var.shallow_clone().f_copy_(&src))?;
            }
            // The probes step with the encoder.
            p.opt
                .load_state(&mut tensors, "opt_probes", meta.adam_steps[0])?;
        }
        // A bank of another size (a checkpoint from before training looked at its own split
        // only) is computed afresh at the next step.
        t.bank = tensors
            .remove("wish_bank")
            .filter(|b| b.size().first() == Some(&(t.pool.len() as i64)));
        Ok(t)
    }

    /// The model and the trainer state as checkpoint bytes.
    pub fn save(&self) -> Result<Vec<u8>> {
        let meta = TrainerMeta {
            config: self.cfg.clone(),
            step: self.step,
            adam_steps: [
                self.opt_enc.steps,
                self.opt_gen.steps,
                self.opt_critic.steps,
            ],
            data: fingerprint(&self.data),
        };
        let mut state = self.opt_enc.state("opt_enc");
        state.extend(self.opt_gen.state("opt_gen"));
        state.extend(self.opt_critic.state("opt_critic"));
        if let Some(p) = &self.probes {
            state.extend(p.opt.state("opt_probes"));
            for (name, var) in p.vs.variables() {
                state.push((format!("probes/{name}"), var));
            }
        }
        if let Some(bank) = &self.bank {
            state.push(("wish_bank".into(), bank.shallow_clone()));
        }
        self.model.to_bytes_with(Some(meta), state)
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The ablation's head, once stage 2 has begun with `ablation_head` on.
    pub fn ablation_head(&self) -> Option<&DirectHead> {
        self.head.as_ref()
    }
    pub fn into_model(self) -> Model {
        self.model
    }
    pub fn config(&self) -> &TrainConfig {
        &self.cfg
    }
    pub fn data(&self) -> &Dataset {
        &self.data
    }
    /// Steps done so far.
    pub fn steps_done(&self) -> u64 {
        self.step
    }
    pub fn total_steps(&self) -> u64 {
        self.cfg.encoder_steps + self.cfg.gan_steps
    }
    /// Lets a caller extend (or shorten) the GAN stage, e.g. when resuming.
    pub fn set_gan_steps(&mut self, steps: u64) {
        self.cfg.gan_steps = steps;
    }

    /// Ends stage 1 at the steps done so far: the next step is the GAN stage's first (its
    /// embeddings of the catalog are computed then, from the encoder as it is). Nothing once
    /// stage 1 is over. For a caller with a time limit, so that a slow machine still trains the
    /// GAN instead of ending with an untrained generator.
    pub fn end_encoder_stage(&mut self) {
        if self.stage() == Stage::Encoder {
            self.cfg.encoder_steps = self.step;
        }
    }

    pub fn stage(&self) -> Stage {
        if self.step < self.cfg.encoder_steps {
            Stage::Encoder
        } else if self.step < self.total_steps() {
            Stage::Gan
        } else {
            Stage::Done
        }
    }

    pub fn is_done(&self) -> bool {
        self.stage() == Stage::Done
    }

    /// Runs one step and returns its losses.
    pub fn step(&mut self) -> Result<StepReport> {
        let stage = self.stage();
        // Every step draws from its own seed (never libtorch's global generator, which other
        // threads share), so a resumed run repeats an uninterrupted one.
        let mut rng = SplitMix64::for_step(self.cfg.seed, self.step);
        let losses = match stage {
            Stage::Encoder => self.encoder_step(&mut rng)?,
            Stage::Gan => self.gan_step(&mut rng)?,
            Stage::Done => {
                return Err(ModelError::Config(format!(
                    "training is finished after {} steps",
                    self.step
                )));
            }
        };
        self.step += 1;
        self.model.weights_changed();
        Ok(StepReport {
            step: self.step,
            stage,
            losses,
        })
    }

    /// Distinct training pairs, a caption variant each, and the image-condition mask (as a
    /// tensor and as values).
    fn sample(&self, rng: &mut SplitMix64) -> (Vec<PairRef>, Vec<Vec<String>>, Tensor, Vec<f32>) {
        let n = self.data.train.len();
        let b = self.cfg.batch_size;
        let mut chosen = Vec::with_capacity(b);
        let mut taken = std::collections::HashSet::with_capacity(b);
        while chosen.len() < b {
            let i = rng.below(n);
            if taken.insert(i) {
                chosen.push(self.data.train[i].clone());
            }
        }
        let texts = chosen
            .iter()
            .map(|p| match rng.below(3) {
                0 => p.captions[0].clone(),
                1 => p.captions[1].clone(),
                _ => p.joined(),
            })
            .collect();
        let (has, has_values) = self.keep_mask(rng, b, self.cfg.text_only_prob, &[b as i64, 1]);
        (chosen, texts, has, has_values)
    }

    /// `n` draws of 0 (with probability `drop_prob`) or 1, shaped for broadcasting, and as values.
    fn keep_mask(
        &self,
        rng: &mut SplitMix64,
        n: usize,
        drop_prob: f64,
        shape: &[i64],
    ) -> (Tensor, Vec<f32>) {
        let keep: Vec<f32> = (0..n)
            .map(|_| if rng.unit() < drop_prob { 0.0 } else { 1.0 })
            .collect();
        let t = Tensor::from_slice(&keep)
            .view(shape)
            .to_device(self.model.device());
        (t, keep)
    }

    /// Whether this run trains the wish loss: it is on and the data has attribute values.
    fn wish_loss_on(&self) -> bool {
        self.cfg.wish_weight > 0.0 && self.data.attributes.is_some()
    }

    /// `[B, K]` mask over `keys` followed, with `whole_catalog`, by every image of the pool:
    /// `fill` sets pair `b`'s row, given as its keys' part and its pool part (empty without).
    fn keyed_mask(
        &self,
        pairs: &[PairRef],
        keys: &[usize],
        whole_catalog: bool,
        mut fill: impl FnMut(usize, &PairRef, &mut [f32], &mut [f32]),
    ) -> Tensor {
        let width = keys.len() + if whole_catalog { self.pool.len() } else { 0 };
        let mut mask = vec![0f32; pairs.len() * width];
        for (b, p) in pairs.iter().enumerate() {
            let (batch, catalog) = mask[b * width..(b + 1) * width].split_at_mut(keys.len());
            fill(b, p, batch, catalog);
        }
        Tensor::from_slice(&mask)
            .view([pairs.len() as i64, width as i64])
            .to_device(self.model.device())
    }

    /// `[B, K]` mask of the wish loss's positives over `keys` followed, with `whole_catalog`, by
    /// every image: a key is one for pair `b` when it honours the pair's wish (in the candidate's
    /// category, unless the sample is text-only), and the pair's own target always is.
    fn wish_positives(
        &self,
        pairs: &[PairRef],
        has: &[f32],
        keys: &[usize],
        whole_catalog: bool,
    ) -> Tensor {
        let mut honouring = self.honouring.borrow_mut();
        self.keyed_mask(pairs, keys, whole_catalog, |b, p, batch, catalog| {
            let reference = (has[b] > 0.0).then_some(p.candidate);
            for (m, &k) in batch.iter_mut().zip(keys) {
                if k == p.target || (!p.wish.is_empty() && self.data.honours(k, &p.wish, reference))
                {
                    *m = 1.0;
                }
            }
            if !whole_catalog {
                return;
            }
            if let Some(t) = self.pool_pos.get(p.target).filter(|&&t| t != usize::MAX) {
                catalog[*t] = 1.0;
            }
            if p.wish.is_empty() {
                return;
            }
            // The images that honour a wish depend only on the wish and the category: found once
            // per distinct one, not once a step.
            let category = reference.map(|r| self.data.category_codes[r]);
            let found = honouring
                .entry((p.wish.clone(), category))
                .or_insert_with(|| {
                    (0..self.pool.len())
                        .filter(|&j| self.data.honours(self.pool[j], &p.wish, reference))
                        .collect()
                });
            for &i in found.iter() {
                catalog[i] = 1.0;
            }
        })
    }

    /// `[B, K]` mask of each pair's near misses ([`Dataset::near_misses`]) in the layout of
    /// [`Self::wish_positives`], the pair's own target never among them.
    fn wish_near_misses(
        &self,
        pairs: &[PairRef],
        has: &[f32],
        keys: &[usize],
        whole_catalog: bool,
    ) -> Tensor {
        let mut near = vec![0f32; self.pool.len()];
        let mut cache = self.near_misses.borrow_mut();
        self.keyed_mask(pairs, keys, whole_catalog, |b, p, batch, catalog| {
            if p.wish.is_empty() {
                return;
            }
            let reference = (has[b] > 0.0).then_some(p.candidate);
            let category = reference.map(|r| self.data.category_codes[r]);
            let found = cache.entry((p.wish.clone(), category)).or_insert_with(|| {
                self.data
                    .near_misses(&p.wish, reference)
                    .into_iter()
                    .filter_map(|i| Some(self.pool_pos[i]).filter(|&j| j != usize::MAX))
                    .collect()
            });
            near.fill(0.0);
            for &j in found.iter() {
                near[j] = 1.0;
            }
            // The pair's own target is a positive even where its values are not the wish's.
            let at = |i: usize| Some(self.pool_pos[i]).filter(|&j| j != usize::MAX);
            if let Some(t) = at(p.target) {
                near[t] = 0.0;
            }
            for (m, &k) in batch.iter_mut().zip(keys) {
                *m = if k == p.target {
                    0.0
                } else {
                    at(k).map_or(0.0, |j| near[j])
                };
            }
            if whole_catalog {
                catalog.copy_from_slice(&near);
            }
        })
    }

    /// Near misses count as `1 + wish_near_miss_weight` negatives each in the wish loss: their
    /// logits gain its log (they are never positives, so only the softmax's denominator changes).
    fn with_near_misses(
        &self,
        logits: Tensor,
        pairs: &[PairRef],
        has: &[f32],
        keys: &[usize],
        whole_catalog: bool,
    ) -> Tensor {
        let w = self.cfg.wish_near_miss_weight;
        if w <= 0.0 {
            return logits;
        }
        logits + self.wish_near_misses(pairs, has, keys, whole_catalog) * (1.0 + w).ln()
    }

    fn gather(&self, t: &Tensor, idx: impl Iterator<Item = usize>) -> Tensor {
        let idx: Vec<i64> = idx.map(|i| i as i64).collect();
        t.index_select(0, &Tensor::from_slice(&idx).to_device(t.device()))
    }

    fn encoder_step(&mut self, rng: &mut SplitMix64) -> Result<Vec<(&'static str, f64)>> {
        let (pairs, texts, has, has_values) = self.sample(rng);
        let src = self.gather(&self.images, pairs.iter().map(|p| p.candidate));
        // Keys: the batch's targets, then (for the wish loss) random catalog images.
        let mut keys: Vec<usize> = pairs.iter().map(|p| p.target).collect();
        let wish_on = self.wish_loss_on();
        if wish_on {
            let n = self.pool.len();
            keys.extend((0..self.cfg.wish_keys).map(|_| self.pool[rng.below(n)]));
        }
        let tgt = self.gather(&self.images, keys.iter().copied());
        let m = &self.model;
        let script = matches!(m.image, crate::nets::ImageEncoder::Script(_));
        let encode = |x: &Tensor| -> Result<Tensor> {
            if script {
                tch::no_grad(|| m.image.forward(x))
            } else {
                m.image.forward(x)
            }
        };
        let es = encode(&src)?;
        let et = encode(&tgt)?;
        let t = m.text_features(&texts);
        let q = m.composer.forward(&es, &has, &t);
        let logits = q.mm(&et.tr()) / self.cfg.temperature;
        let labels = Tensor::arange(pairs.len() as i64, (Kind::Int64, m.device()));
        let contrastive = logits
            .f_log_softmax(-1, Kind::Float)?
            .f_nll_loss::<Tensor>(&labels, None, Reduction::Mean, -100)?;
        let acc = logits.accuracy_for_logits(&labels).double_value(&[]);
        let mut losses = vec![("contrastive", contrastive.double_value(&[]))];
        let mut loss = contrastive;
        if wish_on {
            let mut all_logits = logits.shallow_clone();
            if let Some(bank) = &self.bank {
                // The pool as further keys (no gradient through them).
                all_logits = Tensor::cat(&[&logits, &(q.mm(&bank.tr()) / self.cfg.temperature)], 1);
            }
            let whole = self.bank.is_some();
            let all_logits = self.with_near_misses(all_logits, &pairs, &has_values, &keys, whole);
            let wish = multi_positive(
                &all_logits,
                &self.wish_positives(&pairs, &has_values, &keys, whole),
            )?;
            losses.push(("wish", wish.double_value(&[])));
            loss += wish * self.cfg.wish_weight;
        }
        if let Some(probes) = &self.probes {
            // Every image's own attributes from its embedding; the wanted product's from the
            // composed query (text only: just the asked values, the rest is free).
            let idx = |v: &[usize]| {
                Tensor::from_slice(&v.iter().map(|&i| i as i64).collect::<Vec<_>>())
                    .to_device(m.device())
            };
            let sources: Vec<usize> = pairs.iter().map(|p| p.candidate).collect();
            let images_emb = Tensor::cat(&[&es, &et], 0);
            let image_labels = probes
                .codes
                .index_select(0, &idx(&[sources, keys.clone()].concat()));
            let wanted = self.wanted_codes(&pairs, &has_values, probes.layers.len());
            let probe = probes.loss(&images_emb, &image_labels)? + probes.loss(&q, &wanted)?;
            losses.push(("attributes", probe.double_value(&[])));
            loss += probe * self.cfg.attribute_weight;
        }
        self.opt_enc.zero_grad();
        if let Some(p) = self.probes.as_mut() {
            p.opt.zero_grad();
        }
        loss.f_backward()?;
        self.opt_enc.step();
        if let Some(p) = self.probes.as_mut() {
            p.opt.step();
        }
        let every = self.cfg.wish_bank_every;
        if wish_on && every > 0 && (self.bank.is_none() || (self.step + 1).is_multiple_of(every)) {
            self.bank = Some(self.embed_pool()?);
        }
        losses.push(("batch_accuracy", acc));
        Ok(losses)
    }

    /// The probes' labels for what each pair's query should read as: the target's value of every
    /// attribute column, where the query has a reference or the wish asks for that column (text
    /// only, the rest is free); -100 where unknown or free. `[B, A]`.
    fn wanted_codes(&self, pairs: &[PairRef], has_values: &[f32], columns: usize) -> Tensor {
        let codes = self
            .data
            .attributes
            .as_ref()
            .expect("probes need attributes");
        let mut wanted: Vec<i64> = Vec::with_capacity(pairs.len() * columns);
        for (b, p) in pairs.iter().enumerate() {
            for a in 0..columns {
                let asked = p.wish.iter().any(|&(c, _)| c == a);
                let code = codes.code(p.target, a);
                wanted.push(if (has_values[b] > 0.0 || asked) && code != UNKNOWN {
                    code as i64
                } else {
                    -100
                });
            }
        }
        Tensor::from_slice(&wanted)
            .view([pairs.len() as i64, columns as i64])
            .to_device(self.model.device())
    }

    /// The pool's embeddings under the current encoder, without gradients, in pool order.
    fn embed_pool(&self) -> Result<Tensor> {
        let mut parts = Vec::new();
        for chunk in self.pool.chunks(512) {
            let x = self.gather(&self.images, chunk.iter().copied());
            parts.push(tch::no_grad(|| self.model.image.forward(&x))?);
        }
        Ok(Tensor::cat(&parts, 0))
    }

    /// Rows of the pool's embeddings for images `idx` (training images).
    fn pool_rows(&self, t: &Tensor, idx: impl Iterator<Item = usize>) -> Tensor {
        self.gather(t, idx.map(|i| self.pool_pos[i]))
    }

    fn ensure_embeddings(&mut self) -> Result<()> {
        if self.catalog.is_some() {
            return Ok(());
        }
        // Stage 2 never changes the embedding space, nor the probes that read it.
        self.model.enc_vs.freeze();
        self.bank = None;
        if self.cfg.gan_attribute_weight > 0.0 {
            if let Some(p) = self.probes.as_mut() {
                p.vs.freeze();
            }
        } else {
            self.probes = None;
        }
        self.catalog = Some(self.embed_pool()?);
        Ok(())
    }

    fn gan_step(&mut self, rng: &mut SplitMix64) -> Result<Vec<(&'static str, f64)>> {
        self.ensure_embeddings()?;
        let (pairs, texts, has, has_values) = self.sample(rng);
        let emb = self.catalog.as_ref().expect("computed above");
        let es = self.pool_rows(emb, pairs.iter().map(|p| p.candidate));
        let et = self.pool_rows(emb, pairs.iter().map(|p| p.target));
        let real = self.gather(&self.images, pairs.iter().map(|p| p.target));
        // Source pixels, dropped for text-only samples and for some others, so that generation
        // from a stored embedding (no pixels) works too.
        let n = pairs.len();
        let (keep, _) = self.keep_mask(rng, n, self.cfg.pixel_drop_prob, &[n as i64, 1, 1, 1]);
        let px = self.gather(&self.images, pairs.iter().map(|p| p.candidate))
            * keep
            * has.view([-1, 1, 1, 1]);
        let m = &self.model;
        let cfg = &self.cfg;
        let b = pairs.len() as i64;
        let dev = m.device();
        let text_features = tch::no_grad(|| m.text_features(&texts));
        let cond = tch::no_grad(|| m.generator_condition(&es, &has, &text_features));

        let mut critic_loss = 0.0;
        let mut gp_value = None;
        let mut w_dist = 0.0;
        // The gradient penalty is a regularizer: computed every `gp_every` steps with its weight
        // scaled to match (lazy regularization, Karras et al. 2020), it costs the double backward
        // through the critic on those steps only.
        let gp_every = cfg.gp_every.max(1);
        let gp_now = self.model.gan_steps.is_multiple_of(gp_every);
        // The last critic update sees the very images the generator step then learns from (one
        // generator forward a step instead of two); earlier ones draw their own.
        let mut shared = None;
        for i in 0..cfg.n_critic {
            let z = m.noise(pairs.len(), Some(rng.next_u64()));
            let fake = if i + 1 == cfg.n_critic {
                let f = m.generator.forward(&z, &cond, &px);
                let d = f.detach();
                shared = Some(f);
                d
            } else {
                tch::no_grad(|| m.generator.forward(&z, &cond, &px))
            };
            let d_real = m.critic.forward(&real, &cond);
            let d_fake = m.critic.forward(&fake, &cond);
            let loss = match cfg.gan_loss {
                GanLoss::WassersteinGp => {
                    let w = d_real.mean(Kind::Float) - d_fake.mean(Kind::Float);
                    w_dist = w.double_value(&[]);
                    if gp_now && cfg.gp_weight > 0.0 {
                        let alpha: Vec<f32> = (0..b).map(|_| rng.unit() as f32).collect();
                        let alpha = Tensor::from_slice(&alpha).view([b, 1, 1, 1]).to_device(dev);
                        let mix: Tensor = &alpha * &real + (1.0 - &alpha) * &fake;
                        let xhat = mix.set_requires_grad(true);
                        let d_hat = m.critic.forward(&xhat, &cond);
                        let grads = Tensor::f_run_backward(
                            &[d_hat.sum(Kind::Float)],
                            &[&xhat],
                            true,
                            true,
                        )?;
                        let norm = (grads[0].flatten(1, -1).square().sum_dim_intlist(
                            [1i64].as_slice(),
                            false,
                            Kind::Float,
                        ) + 1e-12)
                            .sqrt();
                        let gp = (norm - 1.0).square().mean(Kind::Float);
                        gp_value = Some(gp.double_value(&[]));
                        -w + gp * (cfg.gp_weight * gp_every as f64)
                    } else {
                        -w
                    }
                }
                GanLoss::NonSaturating => {
                    // One-sided label smoothing: real targets are 1 - s, fake targets stay 0.
                    let real_t = d_real.full_like(1.0 - cfg.label_smoothing);
                    w_dist =
                        (d_real.mean(Kind::Float) - d_fake.mean(Kind::Float)).double_value(&[]);
                    d_real.binary_cross_entropy_with_logits::<Tensor>(
                        &real_t,
                        None,
                        None,
                        Reduction::Mean,
                    ) + d_fake.binary_cross_entropy_with_logits::<Tensor>(
                        &d_fake.zeros_like(),
                        None,
                        None,
                        Reduction::Mean,
                    )
                }
            };
            critic_loss = loss.double_value(&[]);
            self.opt_critic.zero_grad();
            loss.f_backward()?;
            self.opt_critic.step();
        }

        let fake = shared.expect("n_critic is at least 1");
        let d_fake = m.critic.forward(&fake, &cond);
        let adv = match cfg.gan_loss {
            GanLoss::WassersteinGp => -d_fake.mean(Kind::Float),
            GanLoss::NonSaturating => d_fake.binary_cross_entropy_with_logits::<Tensor>(
                &d_fake.ones_like(),
                None,
                None,
                Reduction::Mean,
            ),
        };
        let (fake_maps, ea) = m.image.forward_features(&fake)?;
        let feature = if cfg.feature_weight > 0.0 && !fake_maps.is_empty() {
            let (real_maps, _) = tch::no_grad(|| m.image.forward_features(&real))?;
            let parts: Vec<Tensor> = fake_maps
                .iter()
                .zip(&real_maps)
                .map(|(f, r)| (f - r).abs().mean(Kind::Float))
                .collect();
            Tensor::stack(&parts, 0).mean(Kind::Float)
        } else {
            Tensor::zeros([], (Kind::Float, dev))
        };
        let l1 = (&fake - &real).abs().mean(Kind::Float);
        let mut loss = &adv * cfg.adv_weight;
        if cfg.l1_weight > 0.0 {
            loss = &loss + &l1 * cfg.l1_weight;
        }
        if cfg.feature_weight > 0.0 {
            loss = &loss + &feature * cfg.feature_weight;
        }
        let (on_embedding, parts) =
            self.embedding_losses(&ea, &es, &et, &has, &text_features, &pairs, &has_values)?;
        loss = &loss + on_embedding;
        let colour = match &self.colours {
            Some(prior) => prior.loss(&fake, &real, &pairs, &has_values, COLOUR_TEMPERATURE),
            None => None,
        };
        if let Some(c) = &colour {
            loss = &loss + c * cfg.colour_weight;
        }
        self.opt_gen.zero_grad();
        loss.f_backward()?;
        self.opt_gen.step();
        self.model.gan_steps += 1;
        // The ablation's head: the same losses on the embedding, from the same condition.
        let head = if self.cfg.ablation_head {
            if self.head.is_none() {
                self.head = Some(DirectHead::new(
                    cond.size()[1],
                    self.model.embed_dim() as i64,
                    self.cfg.lr_generator,
                    self.model.device(),
                ));
            }
            let h = self.head.as_ref().expect("made above").forward(&cond);
            let (l, _) =
                self.embedding_losses(&h, &es, &et, &has, &text_features, &pairs, &has_values)?;
            let head = self.head.as_mut().expect("made above");
            head.opt.zero_grad();
            l.f_backward()?;
            head.opt.step();
            Some(l.double_value(&[]))
        } else {
            None
        };
        let value = |name: &str| parts.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
        Ok(vec![
            ("critic", critic_loss),
            ("wasserstein", w_dist),
            ("adversarial", adv.double_value(&[])),
            ("triplet", value("triplet").unwrap_or(0.0)),
            ("l1", l1.double_value(&[])),
            ("contrastive", value("contrastive").unwrap_or(0.0)),
            ("feature", feature.double_value(&[])),
        ]
        .into_iter()
        // Only on the steps that computed it.
        .chain(gp_value.map(|g| ("gp", g)))
        .chain(value("wish").map(|w| ("wish", w)))
        .chain(value("attributes").map(|a| ("attributes", a)))
        .chain(colour.map(|c| ("colour", c.double_value(&[]))))
        .chain(value("distill").map(|d| ("distill", d)))
        .chain(head.map(|h| ("ablation_head", h)))
        .collect())
    }

    /// Stage 2's losses on an embedding of the wanted product `e` (E(G), or the ablation
    /// head's): the triplet (toward the target, away from the source), the contrastive over the
    /// pool or the batch, the wish loss and distillation over the pool, and the frozen probes'.
    /// The weighted sum, and each one's value by name.
    #[allow(clippy::too_many_arguments)]
    fn embedding_losses(
        &self,
        e: &Tensor,
        es: &Tensor,
        et: &Tensor,
        has: &Tensor,
        text_features: &Tensor,
        pairs: &[PairRef],
        has_values: &[f32],
    ) -> Result<(Tensor, Vec<(&'static str, f64)>)> {
        let m = &self.model;
        let cfg = &self.cfg;
        let dev = m.device();
        let b = pairs.len() as i64;
        let catalog = self
            .catalog
            .as_ref()
            .expect("stage 2 has the pool's embeddings");
        let mut parts = Vec::new();
        let sq = |a: &Tensor, b: &Tensor| {
            (a - b)
                .square()
                .sum_dim_intlist([1i64].as_slice(), false, Kind::Float)
        };
        // Without an image condition there is no source to push away from.
        let mask = has.squeeze_dim(1);
        let triplet = ((sq(e, et) - sq(e, es) + cfg.triplet_margin).relu() * &mask)
            .sum(Kind::Float)
            / mask.sum(Kind::Float).clamp_min(1.0);
        parts.push(("triplet", triplet.double_value(&[])));
        let mut loss = &triplet * cfg.triplet_weight;
        // What the catalog is ranked by: the embedding, or with `expanded_losses` the search
        // embedding a query gets (expanded by the frozen composition), so the generator learns
        // what the composition does not already give.
        let ranked = if cfg.expanded_losses {
            let composed = tch::no_grad(|| m.composer.forward(es, has, text_features));
            m.expand(e.shallow_clone(), || composed)
        } else {
            e.shallow_clone()
        };
        // Against the pool, each target at its own place; or against the batch's targets.
        let catalog_scores = ranked.mm(&catalog.tr()) / cfg.temperature;
        let contrastive = if cfg.contrastive_catalog {
            // Training pairs' targets are training images, so each has its place in the pool.
            let idx: Vec<i64> = pairs
                .iter()
                .map(|p| self.pool_pos[p.target] as i64)
                .collect();
            catalog_scores
                .log_softmax(-1, Kind::Float)
                .nll_loss(&Tensor::from_slice(&idx).to_device(dev))
        } else {
            (ranked.mm(&et.tr()) / cfg.temperature)
                .log_softmax(-1, Kind::Float)
                .nll_loss(&Tensor::arange(b, (Kind::Int64, dev)))
        };
        parts.push(("contrastive", contrastive.double_value(&[])));
        if cfg.contrastive_weight > 0.0 {
            loss = &loss + &contrastive * cfg.contrastive_weight;
        }
        // The wish loss against the pool: every product with what the wish asks for is a
        // positive.
        if self.wish_loss_on() {
            let mask = self.wish_positives(pairs, has_values, &[], true);
            let scores =
                self.with_near_misses(catalog_scores.shallow_clone(), pairs, has_values, &[], true);
            let w = multi_positive(&scores, &mask)?;
            parts.push(("wish", w.double_value(&[])));
            loss = &loss + &w * cfg.wish_weight;
        }
        if cfg.distill_weight > 0.0 {
            let teacher = tch::no_grad(|| {
                (m.composer.forward(es, has, text_features).mm(&catalog.tr()) / cfg.temperature)
                    .softmax(-1, Kind::Float)
            });
            let student = catalog_scores.log_softmax(-1, Kind::Float);
            let kl = (&teacher * ((&teacher + 1e-12).log() - student))
                .sum_dim_intlist([1i64].as_slice(), false, Kind::Float)
                .mean(Kind::Float);
            parts.push(("distill", kl.double_value(&[])));
            loss = &loss + &kl * cfg.distill_weight;
        }
        // The frozen probes read the wanted product's attributes from the embedding: every
        // asked value and, from a reference, the rest of the target's, all at once.
        if let Some(probes) = &self.probes
            && cfg.gan_attribute_weight > 0.0
        {
            let wanted = self.wanted_codes(pairs, has_values, probes.layers.len());
            let l = probes.loss(e, &wanted)?;
            parts.push(("attributes", l.double_value(&[])));
            loss = &loss + &l * cfg.gan_attribute_weight;
        }
        Ok((loss, parts))
    }
}

/// Multi-positive contrastive loss: minus the log of the softmax mass on each row's positives,
/// averaged over rows. Every row must have a positive.
fn multi_positive(logits: &Tensor, positives: &Tensor) -> Result<Tensor> {
    let logp = logits.f_log_softmax(-1, Kind::Float)?;
    let on_positives = logp.f_masked_fill(&positives.f_eq(0.0)?, f64::NEG_INFINITY)?;
    Ok(-on_positives
        .f_logsumexp([-1i64].as_slice(), false)?
        .f_mean(Kind::Float)?)
}

/// Runs `steps` steps (or to the end) and returns the reports (tests and small tools).
pub fn run(trainer: &mut Trainer, steps: u64) -> Result<Vec<StepReport>> {
    let mut out = Vec::new();
    for _ in 0..steps {
        if trainer.is_done() {
            break;
        }
        out.push(trainer.step()?);
    }
    Ok(out)
}

/// Mean of a named loss over reports.
pub fn mean_loss(reports: &[StepReport], name: &str) -> f64 {
    let v: Vec<f64> = reports.iter().filter_map(|r| r.loss(name)).collect();
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(target: usize) -> PairRef {
        PairRef {
            candidate: 0,
            target,
            captions: [vec![], vec![]],
            wish: vec![(0, 1)],
        }
    }

    /// `[1, 3, 8, 8]` image of one colour (0..=255 RGB), the left `left` columns of another.
    fn painted(rgb: [f32; 3], left: i64, other: [f32; 3]) -> Tensor {
        let img = Tensor::zeros([1, 3, 8, 8], (Kind::Float, Device::Cpu));
        for (c, (v, o)) in rgb.iter().zip(other).enumerate() {
            let c = c as i64;
            let _ = img.get(0).get(c).fill_(f64::from(*v) / 127.5 - 1.0);
            if left > 0 {
                let _ = img
                    .get(0)
                    .get(c)
                    .narrow(1, 0, left)
                    .fill_(f64::from(o) / 127.5 - 1.0);
            }
        }
        img
    }

    /// The colour loss is zero when the generated garment shows the wanted colour on at least
    /// the set share of the wanted colour's pixels, grows as it shows less, skips rows the
    /// generator could not know the colour of, and its gradient moves pixels toward the colour.
    #[test]
    fn colour_loss_reads_pixels_as_the_nearest_named_colours() {
        let (red, black, white) = ([200.0, 30.0, 35.0], [28.0, 28.0, 30.0], [250.0; 3]);
        let protos: Vec<f32> = [red, black, white]
            .concat()
            .iter()
            .map(|v| v / 127.5 - 1.0)
            .collect();
        let prior = ColourPrior {
            column: 0,
            protos: Tensor::from_slice(&protos).view([3, 3]),
            // image 0: red, image 1: of a colour the project does not know
            index: vec![0, -1],
        };
        let real = painted(red, 0, red);
        let loss = |fake: &Tensor, target: usize, has: f32| {
            prior
                .loss(fake, &real, &[pair(target)], &[has], COLOUR_TEMPERATURE)
                .map(|l| l.double_value(&[]))
        };
        let same = loss(&painted(red, 0, red), 0, 1.0).unwrap();
        assert!(same.abs() < 1e-6, "{same}");
        // A striped garment: three quarters red is enough, half red is not.
        assert!(loss(&painted(red, 2, white), 0, 1.0).unwrap() < 1e-3);
        let half = loss(&painted(red, 4, white), 0, 1.0).unwrap();
        assert!((half - (COLOUR_SHARE / 0.5).ln()).abs() < 0.02, "{half}");
        let wrong = loss(&painted(black, 0, black), 0, 1.0).unwrap();
        assert!(wrong > 5.0, "{wrong}");
        // Unknown colour, or text only with a wish that does not ask for a colour: no row counts.
        assert!(loss(&painted(black, 0, black), 1, 1.0).is_none());
        let mut p = pair(0);
        p.wish = vec![(1, 0)];
        assert!(
            prior
                .loss(
                    &painted(black, 0, black),
                    &real,
                    &[p],
                    &[0.0],
                    COLOUR_TEMPERATURE
                )
                .is_none()
        );
        // Its gradient moves a pixel between red and black (nearer black) toward red.
        let dark = painted([110.0, 29.0, 32.0], 0, red).set_requires_grad(true);
        let l = prior
            .loss(&dark, &real, &[pair(0)], &[1.0], COLOUR_TEMPERATURE)
            .unwrap();
        assert!(l.double_value(&[]) > 0.0);
        l.backward();
        let g = dark
            .grad()
            .get(0)
            .get(0)
            .mean(Kind::Float)
            .double_value(&[]);
        assert!(g < 0.0, "red channel gradient {g}: descent should raise it");
    }
}
