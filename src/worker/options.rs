//! The options of `synth_train`: what a user may leave out gets its default here, and the job row
//! stores the resolved whole, so a resumed job repeats the same recipe.

use crate::model::registry::merge;
use serde::{Deserialize, Serialize};
use synthsearch_model::{EncoderConfig, GeneratorConfig, TrainConfig};

/// Everything a training job needs besides its two tables.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainOptions {
    /// Registry name of the model the job stores (a new version of it).
    pub name: String,
    /// Make the new model the active one (needs a model manager; it always is when no model is
    /// active yet and a model manager trains it).
    pub activate: bool,
    /// With `activate`: activate even over another encoder version than the active model's.
    pub force: bool,
    /// Retrain only the GAN of this registered model, keeping its encoder (and every stored
    /// embedding and index) valid.
    pub base_model: Option<i64>,
    pub id_column: String,
    pub image_column: String,
    pub source_column: String,
    pub target_column: String,
    pub caption_column: String,
    /// Attribute columns of the images table (colour, material, pattern, sleeve, ...). With no
    /// pairs table, training pairs are formed from them: products of one category that differ in
    /// one or two of these columns, with captions written from templates. With a pairs table,
    /// they let training pull each wish toward every product that has what it asks for, and let
    /// the evaluation measure wish precision.
    pub attributes: Vec<String>,
    /// With no pairs table: at most this many pairs are formed.
    pub max_pairs: usize,
    /// Where the images table has no split column: the share of the products held out for
    /// validation (what the evaluations during training read), and of the pairs where a pairs
    /// table has no split column either.
    pub val_fraction: f64,
    /// The same for the test split, read by the final evaluation alone.
    pub test_fraction: f64,
    /// Write progress (and look for a cancel) after this many steps, or two seconds.
    pub progress_every: u64,
    /// Save a checkpoint after this many steps, once `checkpoint_seconds` have passed since the
    /// previous one (or the start).
    pub checkpoint_every: u64,
    /// The least time between two periodic checkpoints (0: every `checkpoint_every` steps). A
    /// checkpoint is the whole trainer, weights and optimiser state (tens of MB), written to the
    /// WAL in full each time: time, not steps, bounds the WAL a job writes, however fast its
    /// device steps, and what a crash can lose. A shutdown saves one regardless.
    pub checkpoint_seconds: u64,
    /// Evaluate every this many steps as well as at the end (0: only at the end): Recall@K on
    /// the first `eval_sample` validation pairs and wish precision on a sample of the headline
    /// wishes, kept with the step and the losses in `synth_job_evals`.
    pub eval_every: u64,
    /// Validation pairs of the evaluations during training (the same ones each time).
    pub eval_sample: usize,
    /// Pairs of each held-out split in the final evaluation (0: all).
    pub eval_queries: usize,
    /// Steps of the final evaluation's judge, a classifier trained on held-out real images that
    /// reads the synthesized ones (0: no judge).
    pub judge_steps: usize,
    /// Train at most this many seconds (0: no limit): stage 1 ends early once it has used its share
    /// (its share of the planned steps), the GAN stage once the whole has been used; the job then
    /// evaluates and stores the model as usual. Keeps a demo within its time on a slow CPU.
    pub max_seconds: u64,
    /// libtorch threads and device of the worker (default: the caller's settings).
    pub threads: i32,
    pub device: String,
    pub encoder: EncoderConfig,
    pub generator: GeneratorConfig,
    pub train: TrainConfig,
}

/// Shorthands a user writes; `encoder`, `generator` and `train` objects may set anything else.
pub const SHORTHANDS: &[&str] = &[
    "image_size",
    "embed_dim",
    "encoder_width",
    "generator_width",
    "batch",
    "steps",
    "encoder_steps",
    "gan_steps",
    "seed",
];

/// Options stored by an older version lack the newer fields: they take these defaults.
impl Default for TrainOptions {
    fn default() -> Self {
        Self::defaults(1, "auto")
    }
}

/// Most bytes one training batch's images may take as floats (256 MB: a batch of 1,024 images of
/// 128x128, or 256 of 256x256).
pub const MAX_BATCH_BYTES: u64 = 256 << 20;

impl TrainOptions {
    pub fn defaults(threads: i32, device: &str) -> TrainOptions {
        TrainOptions {
            name: "default".into(),
            activate: false,
            force: false,
            base_model: None,
            id_column: "id".into(),
            image_column: "img".into(),
            source_column: "source".into(),
            target_column: "target".into(),
            caption_column: "caption".into(),
            attributes: Vec::new(),
            max_pairs: synthsearch_data::wishes::PairPlan::default().max_pairs,
            val_fraction: 0.1,
            test_fraction: 0.1,
            progress_every: 10,
            checkpoint_every: 100,
            checkpoint_seconds: 300,
            eval_every: 500,
            eval_sample: 200,
            eval_queries: 500,
            judge_steps: synthsearch_model::JudgeConfig::default().steps,
            max_seconds: 0,
            threads,
            device: device.into(),
            encoder: EncoderConfig::default(),
            generator: GeneratorConfig::default(),
            train: TrainConfig::default(),
        }
    }

    /// The defaults with `given` merged over them. Errors name the option.
    pub fn resolve(
        given: &serde_json::Value,
        threads: i32,
        device: &str,
    ) -> Result<TrainOptions, String> {
        let given = given
            .as_object()
            .ok_or_else(|| format!("options must be a JSON object, not {given}"))?;
        let mut base =
            serde_json::to_value(Self::defaults(threads, device)).map_err(|e| e.to_string())?;
        let fields = base
            .as_object_mut()
            .expect("a struct serializes to an object");
        let mut shorthand = serde_json::Map::new();
        for (key, value) in given {
            if SHORTHANDS.contains(&key.as_str()) {
                shorthand.insert(key.clone(), value.clone());
            } else if let Some(slot) = fields.get_mut(key) {
                merge(slot, value);
            } else {
                return Err(format!(
                    "unknown option \"{key}\" (known: {}, {})",
                    fields.keys().cloned().collect::<Vec<_>>().join(", "),
                    SHORTHANDS.join(", ")
                ));
            }
        }
        let mut o: TrainOptions = serde_json::from_value(base).map_err(|e| e.to_string())?;
        for (key, value) in &shorthand {
            let int = || {
                value.as_i64().filter(|v| *v >= 0).ok_or_else(|| {
                    format!("option \"{key}\" must be a non-negative integer, not {value}")
                })
            };
            match key.as_str() {
                "image_size" => o.encoder.image_size = int()?,
                "embed_dim" => o.encoder.embed_dim = int()?,
                "encoder_width" => {
                    o.encoder.kind = synthsearch_model::EncoderKind::Cnn { width: int()? };
                }
                "generator_width" => {
                    let w = int()?;
                    o.generator.width = w;
                    o.generator.critic_width = w;
                }
                "batch" => o.train.batch_size = int()? as usize,
                // One third learns the embedding space, the rest the GAN.
                "steps" => {
                    let s = int()? as u64;
                    o.train.encoder_steps = s / 3;
                    o.train.gan_steps = s - s / 3;
                }
                "encoder_steps" => o.train.encoder_steps = int()? as u64,
                "gan_steps" => o.train.gan_steps = int()? as u64,
                "seed" => o.train.seed = int()? as u64,
                _ => unreachable!("listed in SHORTHANDS"),
            }
        }
        if o.base_model.is_some() {
            // Retraining the GAN leaves the encoder alone: every step is a GAN step.
            let explicit = shorthand.contains_key("encoder_steps")
                || given
                    .get("train")
                    .and_then(|t| t.get("encoder_steps"))
                    .is_some();
            if let Some(s) = shorthand.get("steps").and_then(|v| v.as_u64()) {
                o.train.gan_steps = s;
                o.train.encoder_steps = 0;
            } else if !explicit {
                o.train.encoder_steps = 0;
            }
        }
        o.validate()?;
        Ok(o)
    }

    /// What storing the job's model does about the active one.
    pub fn activation(&self) -> crate::model::registry::Activation {
        crate::model::registry::Activation::of(self.activate, self.force)
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.name.is_empty() || self.name.len() > 200 {
            return Err(format!(
                "option \"name\" must have 1 to 200 bytes, not {:?}",
                self.name
            ));
        }
        if self.force && !self.activate {
            return Err("option \"force\" only goes with \"activate\": true".into());
        }
        if self.attributes.len() > 32 {
            return Err(format!(
                "option \"attributes\" names {} columns, at most 32",
                self.attributes.len()
            ));
        }
        if self.attributes.iter().any(|a| a.is_empty()) {
            return Err("option \"attributes\" has an empty column name".into());
        }
        if !(1..=10_000_000).contains(&self.max_pairs) {
            return Err(format!(
                "option \"max_pairs\" must be in 1..=10000000, not {}",
                self.max_pairs
            ));
        }
        for (name, v) in [
            ("val_fraction", self.val_fraction),
            ("test_fraction", self.test_fraction),
        ] {
            if !(0.0..0.9).contains(&v) {
                return Err(format!("option \"{name}\" must be in [0, 0.9), not {v}"));
            }
        }
        if self.val_fraction + self.test_fraction > 0.9 {
            return Err(format!(
                "options \"val_fraction\" and \"test_fraction\" together must be at most 0.9, not {}",
                self.val_fraction + self.test_fraction
            ));
        }
        if self.judge_steps > 100_000 {
            return Err(format!(
                "option \"judge_steps\" must be in 0..=100000, not {}",
                self.judge_steps
            ));
        }
        if self.progress_every == 0 || self.checkpoint_every == 0 {
            return Err(
                "options \"progress_every\" and \"checkpoint_every\" must be positive".into(),
            );
        }
        if !matches!(self.device.as_str(), "auto" | "cpu" | "cuda") {
            return Err(format!(
                "option \"device\" must be auto, cpu or cuda, not \"{}\"",
                self.device
            ));
        }
        if !(1..=256).contains(&self.threads) {
            return Err(format!(
                "option \"threads\" must be in 1..=256, not {}",
                self.threads
            ));
        }
        if self.train.encoder_steps + self.train.gan_steps == 0 {
            return Err("the job has no steps to train: set \"steps\"".into());
        }
        if self.base_model.is_some() && self.train.encoder_steps > 0 {
            return Err(
                "with \"base_model\" only the GAN is trained: set \"gan_steps\" (and leave \"encoder_steps\" at 0)"
                    .into(),
            );
        }
        self.encoder.validate().map_err(|e| e.to_string())?;
        self.generator.validate().map_err(|e| e.to_string())?;
        // One batch of images as floats, before any activation: its size is the caller's to set,
        // so it is bounded here rather than met as an allocation failure in the worker.
        let batch_bytes = (self.train.batch_size as u64)
            .saturating_mul(3 * (self.encoder.image_size as u64).pow(2) * 4);
        if batch_bytes > MAX_BATCH_BYTES {
            return Err(format!(
                "a batch of {} images of {}x{} takes {} MB, more than the limit of {} MB: use a smaller \"batch\" or \"image_size\"",
                self.train.batch_size,
                self.encoder.image_size,
                self.encoder.image_size,
                batch_bytes.div_ceil(1 << 20),
                MAX_BATCH_BYTES >> 20
            ));
        }
        self.train.validate().map_err(|e| e.to_string())
    }
}
