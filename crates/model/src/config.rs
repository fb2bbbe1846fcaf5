//! Architecture and training configuration. The architecture part is stored in every checkpoint
//! as JSON, so a checkpoint describes itself.

use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};

/// Smallest and largest image side the built-in networks accept (powers of two).
pub const MIN_IMAGE_SIZE: i64 = 16;
pub const MAX_IMAGE_SIZE: i64 = 256;
pub const MAX_EMBED_DIM: i64 = 16000;
/// Most floats the text encoder's hashed n-gram table may hold (1 GiB): buckets x dim within
/// their own ranges could otherwise ask for 256 GiB at once.
pub const MAX_TEXT_TABLE: i64 = 1 << 28;
/// The colour loss is zero once this share of the pixels that show the wanted colour in the
/// wanted image show it in the generated one (patterns may sit elsewhere).
pub const COLOUR_SHARE: f64 = 0.75;

/// Which image encoder produces the stored embeddings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EncoderKind {
    /// The small CNN trained here (`enc/...` parameters).
    Cnn { width: i64 },
    /// A TorchScript module the user brings; it maps `[B,3,S,S]` images to `[B,D]` (or `[B,D,1,1]`).
    /// `imagenet_norm` re-normalizes the `[-1,1]` input with ImageNet's mean and std first.
    TorchScript { imagenet_norm: bool },
}

/// The embedding space: image encoder, text encoder and the composition head trained with them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EncoderConfig {
    pub kind: EncoderKind,
    /// Side of the square RGB input, in pixels.
    pub image_size: i64,
    /// Embedding dimensions (what the database stores).
    pub embed_dim: i64,
    pub text: TextConfig,
    /// Hidden width of the image+text composition head.
    pub compose_hidden: i64,
}

/// fastText-style subword hashing (Bojanowski et al. 2017): words and character n-grams hashed
/// into `buckets` trainable vectors, averaged. Optional pretrained `.vec` word vectors are added
/// through a learned projection.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TextConfig {
    pub buckets: i64,
    pub dim: i64,
    pub min_n: usize,
    pub max_n: usize,
    /// Also hash word bigrams ("short sleeves" is more than "short" and "sleeves").
    pub word_bigrams: bool,
    /// Dimensions of the pretrained word vectors, when a `.vec` file was loaded.
    pub pretrained_dim: Option<i64>,
}

/// The conditional generator and critic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GeneratorConfig {
    pub noise_dim: i64,
    /// Base channel count; the widest layer has 4x this.
    pub width: i64,
    /// Width of the conditioning vector fed to FiLM layers and the critic's projection.
    pub cond_dim: i64,
    pub critic_width: i64,
    /// Also condition on the composition head's output (the image+text embedding the encoder
    /// stage learned for the wanted product), so the generator decodes a point of the embedding
    /// space instead of rediscovering the edit from raw text. Checkpoints written before this
    /// switch existed read as `false`; `false` is not written, so their versions (hashes of the
    /// serialized config and the weights) stay what they were.
    #[serde(default, skip_serializing_if = "is_false")]
    pub compose_condition: bool,
    /// How many of the U-Net's skip connections from the source pixels the generator has,
    /// coarsest first: the 4x4 level, then each finer level, and last the source pixels
    /// themselves beside the output layer. `None` (the default, and every checkpoint written
    /// before this field existed; not written, so their versions stay what they were) is all of
    /// them. Fewer keep the source's layout but leave its fine detail, which the text may ask
    /// to change, to the condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pixel_skips: Option<u32>,
    /// Synthetic query expansion: the search embedding of a query is the synthesized image's
    /// embedding plus this weight times the composed query embedding (both unit vectors),
    /// normalized. The synthesized image carries what the shopper asked for to the whole page;
    /// the composition keeps the exact product the pair points at. `None` (every checkpoint
    /// written before this field existed; not written, so their versions stay what they were)
    /// is 0: the synthesized image's embedding alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_expansion: Option<f64>,
}

impl Default for TextConfig {
    fn default() -> Self {
        TextConfig {
            buckets: 1 << 15,
            dim: 64,
            min_n: 3,
            max_n: 5,
            word_bigrams: true,
            pretrained_dim: None,
        }
    }
}

impl Default for EncoderConfig {
    fn default() -> Self {
        EncoderConfig {
            kind: EncoderKind::Cnn { width: 16 },
            image_size: 32,
            embed_dim: 64,
            text: TextConfig::default(),
            compose_hidden: 128,
        }
    }
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        GeneratorConfig {
            noise_dim: 16,
            width: 12,
            cond_dim: 128,
            critic_width: 8,
            compose_condition: true,
            pixel_skips: None,
            query_expansion: Some(1.0),
        }
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn check(ok: bool, what: impl FnOnce() -> String) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(ModelError::Config(what()))
    }
}

impl EncoderConfig {
    pub fn validate(&self) -> Result<()> {
        let s = self.image_size;
        check(
            (MIN_IMAGE_SIZE..=MAX_IMAGE_SIZE).contains(&s) && (s as u64).is_power_of_two(),
            || {
                format!(
                    "image_size must be a power of two in {MIN_IMAGE_SIZE}..={MAX_IMAGE_SIZE}, not {s}"
                )
            },
        )?;
        check((1..=MAX_EMBED_DIM).contains(&self.embed_dim), || {
            format!(
                "embed_dim must be in 1..={MAX_EMBED_DIM}, not {}",
                self.embed_dim
            )
        })?;
        if let EncoderKind::Cnn { width } = self.kind {
            check((1..=512).contains(&width), || {
                format!("encoder width must be in 1..=512, not {width}")
            })?;
        }
        check((1..=4096).contains(&self.compose_hidden), || {
            format!(
                "compose_hidden must be in 1..=4096, not {}",
                self.compose_hidden
            )
        })?;
        self.text.validate()
    }
}

impl TextConfig {
    pub fn validate(&self) -> Result<()> {
        check((16..=(1 << 24)).contains(&self.buckets), || {
            format!(
                "text buckets must be in 16..=16777216, not {}",
                self.buckets
            )
        })?;
        check((1..=4096).contains(&self.dim), || {
            format!("text dim must be in 1..=4096, not {}", self.dim)
        })?;
        check(self.buckets * self.dim <= MAX_TEXT_TABLE, || {
            format!(
                "text buckets x dim must be at most {MAX_TEXT_TABLE} (1 GiB of weights), not {} x {}",
                self.buckets, self.dim
            )
        })?;
        check(
            self.min_n >= 1 && self.min_n <= self.max_n && self.max_n <= 16,
            || {
                format!(
                    "character n-gram range {}..={} is invalid",
                    self.min_n, self.max_n
                )
            },
        )?;
        if let Some(d) = self.pretrained_dim {
            check((1..=4096).contains(&d), || {
                format!("pretrained vector dim must be in 1..=4096, not {d}")
            })?;
        }
        Ok(())
    }
}

impl GeneratorConfig {
    /// The weight of the composed query in the search embedding (see `query_expansion`).
    pub fn expansion(&self) -> f64 {
        self.query_expansion.unwrap_or(0.0)
    }

    pub fn validate(&self) -> Result<()> {
        if let Some(w) = self.query_expansion {
            check(w.is_finite() && (0.0..=100.0).contains(&w), || {
                format!("query_expansion must be in 0..=100, not {w}")
            })?;
        }
        check((1..=1024).contains(&self.noise_dim), || {
            format!("noise_dim must be in 1..=1024, not {}", self.noise_dim)
        })?;
        check((1..=512).contains(&self.width), || {
            format!("generator width must be in 1..=512, not {}", self.width)
        })?;
        check((1..=512).contains(&self.critic_width), || {
            format!("critic width must be in 1..=512, not {}", self.critic_width)
        })?;
        check((1..=4096).contains(&self.cond_dim), || {
            format!("cond_dim must be in 1..=4096, not {}", self.cond_dim)
        })?;
        // A skip a level from 4x4 up, plus the pixels: 7 for the largest image. A value above
        // a smaller model's own count means all of its skips.
        let most = (MAX_IMAGE_SIZE / 4).trailing_zeros() + 1;
        check(self.pixel_skips.is_none_or(|k| k <= most), || {
            format!(
                "pixel_skips must be at most {most} (the skips of a {MAX_IMAGE_SIZE}x{MAX_IMAGE_SIZE} image), not {:?}",
                self.pixel_skips
            )
        })
    }
}

/// The adversarial objective.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GanLoss {
    /// Wasserstein loss with gradient penalty (Gulrajani et al. 2017).
    WassersteinGp,
    /// The non-saturating logistic loss with one-sided label smoothing (Salimans et al. 2016).
    NonSaturating,
}

/// Everything about a training run that is not architecture. Each part of the seed's recipe is a
/// switch so its effect can be measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub seed: u64,
    pub batch_size: usize,
    /// Steps of stage 1: image encoder + text encoder + composition head, contrastive on pairs.
    pub encoder_steps: u64,
    /// Steps of stage 2: conditional GAN in the frozen embedding space.
    pub gan_steps: u64,
    pub lr_encoder: f64,
    /// Two-time-scale update rule (Heusel et al. 2017): the critic learns faster than the generator.
    pub lr_generator: f64,
    pub lr_critic: f64,
    pub gan_loss: GanLoss,
    /// Gradient penalty weight (10 in the WGAN-GP paper).
    pub gp_weight: f64,
    /// The gradient penalty is computed every this many GAN steps, its weight multiplied by as
    /// much (lazy regularization); 1 is every step, what configurations written before it read as.
    #[serde(default = "one")]
    pub gp_every: u64,
    /// Real-label target is `1 - label_smoothing` (non-Wasserstein loss only).
    pub label_smoothing: f64,
    /// Critic updates per generator update.
    pub n_critic: usize,
    pub adv_weight: f64,
    /// Triplet loss: anchor E(G(source, text)), positive E(target), negative E(source).
    pub triplet_weight: f64,
    pub triplet_margin: f64,
    /// Pixel L1 between generated and target images (pix2pix-style); 0 turns it off.
    pub l1_weight: f64,
    /// Contrastive loss on E(G(source, text)) against every target of the batch or, with
    /// `contrastive_catalog`, the whole catalog (the triplet loss generalized to all negatives;
    /// not in the seed, 0 turns it off): it keeps the synthesized image on the exact target while
    /// the wish loss spreads it over the page. 0.3 by default; 2 with `gan_attribute_weight` 3 for
    /// catalogs of 20,000 products (BENCHMARKS.md).
    #[serde(default)]
    pub contrastive_weight: f64,
    /// The contrastive loss ranks E(G(source, text)) against every image of the catalog (its
    /// frozen embeddings), not only the batch's targets: what retrieval does. Off in
    /// configurations written before it existed.
    #[serde(default)]
    pub contrastive_catalog: bool,
    /// Stage 2: weight of ranking the catalog as the composition does: the KL divergence from
    /// the composed query's softmax over the catalog to E(G)'s (both at `temperature`). The
    /// composition finds the exact target more often than a young generator; this teaches E(G)
    /// its whole ranking, not only the target's place. 0 turns it off.
    #[serde(default)]
    pub distill_weight: f64,
    /// Stage 2: the catalog-ranking losses (contrastive, wish, distillation) see the search
    /// embedding a query is ranked by, E(G) expanded by the composed query
    /// (`GeneratorConfig::query_expansion`), instead of E(G) alone: the generator learns what the
    /// composition does not already give. Off by default (configurations written before read off).
    #[serde(default)]
    pub expanded_losses: bool,
    /// Stage 2, for the ablation: also train a head from the generator's condition straight to
    /// an embedding ([`crate::train::DirectHead`]) with the same losses on the embedding as
    /// E(G) and no image, so an evaluation can rank by it beside the GAN. Not part of the model.
    #[serde(default)]
    pub ablation_head: bool,
    /// Stage 2: weight of the perceptual loss, the L1 distance between the frozen CNN encoder's
    /// activation maps of the generated image and of the target (no effect with a TorchScript
    /// encoder).
    #[serde(default)]
    pub feature_weight: f64,
    /// Weight of the wish loss, when the data has attribute values: the query (the composition in
    /// stage 1, E(G) in stage 2) is pulled toward every product that has what the wish asks for
    /// (and the reference's category), not only toward the one target: a multi-positive
    /// contrastive loss (Khosla et al. 2020) over the batch's targets and `wish_keys` random
    /// images in stage 1, and over the whole frozen catalog in stage 2. 0 turns it off, and is
    /// what configurations written before it existed read as.
    #[serde(default)]
    pub wish_weight: f64,
    /// Each near miss of a wish (an image that meets every condition of the query but
    /// one: the wished values and the reference's category) counts as `1 +` this many negatives
    /// in the wish loss's softmax: the products that share the wished colour but not the
    /// category or the pattern are what crowd a page, and this pushes them down hardest (hard
    /// negatives weighted by importance, as in Robinson et al. 2021). 0 turns it off: the
    /// default, and what configurations written before it existed read as (measured in both
    /// stages and in stage 2 alone, it cost the demo's pages: BENCHMARKS.md).
    #[serde(default)]
    pub wish_near_miss_weight: f64,
    /// Stage 1: random catalog images added to the batch's targets as keys of the wish loss.
    #[serde(default)]
    pub wish_keys: usize,
    /// Stage 1: the wish loss also ranks against the whole catalog, embedded without gradients
    /// and embedded again every this many steps (0: only the batch's keys).
    #[serde(default)]
    pub wish_bank_every: u64,
    /// Stage 1, when the data has attribute values: weight of linear probes that read every
    /// attribute from an image's embedding, and the wanted product's attributes from the
    /// composed query, so the space keeps what shoppers ask for (materials and patterns as well
    /// as colours). The probes help training only and are not part of the model. 0 turns it off.
    #[serde(default)]
    pub attribute_weight: f64,
    /// Stage 2: weight of the same probes, frozen, reading the wanted product's attributes from
    /// E(G) (needs stage 1's probes: not with a retrained GAN alone). 0 turns it off, and is what
    /// configurations written before it existed read as (3 for large catalogs: BENCHMARKS.md).
    #[serde(default)]
    pub gan_attribute_weight: f64,
    /// Stage 2, when the data has a colour column (`colour` or `color`): weight of the colour
    /// loss on the generated pixels. Each value that names a colour the project knows has that
    /// colour's RGB as its prototype; a pixel is read as a softmax over minus its squared distance
    /// to the prototypes, and the loss asks that at least [`COLOUR_SHARE`] of the pixels where the
    /// wanted image shows its colour read as that colour in the generated image: patterns keep
    /// the rest. 0 turns it off.
    #[serde(default)]
    pub colour_weight: f64,
    /// Fraction of samples trained without the image condition (text-only mode).
    pub text_only_prob: f64,
    /// Fraction of the other samples trained without source pixels (embedding reference only).
    #[serde(default)]
    pub pixel_drop_prob: f64,
    /// Softmax temperature of the stage-1 contrastive loss.
    pub temperature: f64,
}

fn one() -> u64 {
    1
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            seed: 42,
            batch_size: 64,
            encoder_steps: 4000,
            gan_steps: 10_000,
            lr_encoder: 2e-3,
            lr_generator: 5e-4,
            lr_critic: 1e-3,
            gan_loss: GanLoss::WassersteinGp,
            gp_weight: 10.0,
            gp_every: 4,
            label_smoothing: 0.1,
            n_critic: 1,
            adv_weight: 0.05,
            triplet_weight: 1.0,
            triplet_margin: 0.5,
            l1_weight: 5.0,
            contrastive_weight: 0.3,
            contrastive_catalog: true,
            distill_weight: 1.0,
            expanded_losses: false,
            ablation_head: false,
            feature_weight: 2.0,
            wish_weight: 5.0,
            wish_near_miss_weight: 0.0,
            wish_keys: 64,
            wish_bank_every: 100,
            attribute_weight: 6.0,
            gan_attribute_weight: 0.0,
            colour_weight: 2.0,
            text_only_prob: 0.1,
            pixel_drop_prob: 0.2,
            temperature: 0.1,
        }
    }
}

impl TrainConfig {
    pub fn validate(&self) -> Result<()> {
        check((2..=65536).contains(&self.batch_size), || {
            format!("batch_size must be in 2..=65536, not {}", self.batch_size)
        })?;
        for (name, v) in [
            ("lr_encoder", self.lr_encoder),
            ("lr_generator", self.lr_generator),
            ("lr_critic", self.lr_critic),
            ("temperature", self.temperature),
        ] {
            check(v.is_finite() && v > 0.0, || {
                format!("{name} must be positive, not {v}")
            })?;
        }
        for (name, v) in [
            ("gp_weight", self.gp_weight),
            ("adv_weight", self.adv_weight),
            ("triplet_weight", self.triplet_weight),
            ("triplet_margin", self.triplet_margin),
            ("l1_weight", self.l1_weight),
            ("contrastive_weight", self.contrastive_weight),
            ("feature_weight", self.feature_weight),
            ("wish_weight", self.wish_weight),
            ("wish_near_miss_weight", self.wish_near_miss_weight),
            ("attribute_weight", self.attribute_weight),
            ("gan_attribute_weight", self.gan_attribute_weight),
            ("colour_weight", self.colour_weight),
            ("distill_weight", self.distill_weight),
        ] {
            check(v.is_finite() && v >= 0.0, || {
                format!("{name} must be zero or positive, not {v}")
            })?;
        }
        for (name, v) in [
            ("label_smoothing", self.label_smoothing),
            ("text_only_prob", self.text_only_prob),
            ("pixel_drop_prob", self.pixel_drop_prob),
        ] {
            check((0.0..1.0).contains(&v), || {
                format!("{name} must be in [0, 1), not {v}")
            })?;
        }
        check(self.wish_keys <= 65536, || {
            format!("wish_keys must be at most 65536, not {}", self.wish_keys)
        })?;
        check((1..=64).contains(&self.gp_every), || {
            format!("gp_every must be in 1..=64, not {}", self.gp_every)
        })?;
        check((1..=100).contains(&self.n_critic), || {
            format!("n_critic must be in 1..=100, not {}", self.n_critic)
        })
    }
}
