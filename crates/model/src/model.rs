//! The model as the database uses it: load from bytes, encode images, compose and generate.

use std::sync::Mutex;

use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use crate::checkpoint::{self, EncoderMeta, GeneratorMeta, Header, TrainerMeta};
use crate::config::{EncoderConfig, EncoderKind, GeneratorConfig};
use crate::error::{ModelError, Result};
use crate::nets::{
    CnnEncoder, Composer, Critic, Generator, ImageEncoder, ScriptEncoder, TextBatch, TextEncoder,
    condition,
};
use crate::rng::SplitMix64;
use crate::text::{WordVectors, checked_words};

/// A checkpoint's model, header and trainer state (optimizer moments by name).
pub(crate) type Loaded = (
    Model,
    Header,
    Option<std::collections::HashMap<String, Tensor>>,
);

/// What a query starts from.
#[derive(Clone, Copy, Debug)]
pub enum Reference<'a> {
    /// Text only.
    None,
    /// An image, CHW floats in [-1,1] at the model's `image_size`.
    Image(&'a [f32]),
    /// A stored embedding from this model's encoder.
    Embedding(&'a [f32]),
}

/// One end of a walk ([`Model::walk`]): a reference (or none) and a wish.
#[derive(Clone, Copy, Debug)]
pub struct WalkEnd<'a> {
    pub reference: Reference<'a>,
    pub text: &'a str,
}

/// The most points a walk may have.
pub const MAX_WALK_POINTS: usize = 64;

/// A synthesized query: the image the generator drew and its embedding.
#[derive(Clone, Debug, PartialEq)]
pub struct Generated {
    /// CHW floats in [-1,1], `3 * image_size * image_size`.
    pub image: Vec<f32>,
    pub embedding: Vec<f32>,
}

/// How to build a fresh, untrained model.
#[derive(Clone, Debug, Default)]
pub struct ModelInit {
    pub encoder: EncoderConfig,
    pub generator: GeneratorConfig,
    /// fastText word vectors to add to the hashed subwords (kept in the checkpoint).
    pub word_vectors: Option<WordVectors>,
    /// TorchScript image encoder bytes (used when `encoder.kind` is `TorchScript`).
    pub script: Option<Vec<u8>>,
}

/// Image encoder, text encoder, composition head, generator and critic.
///
/// Two var stores keep the two versions apart: `enc_vs` (paths `enc/`, `text/`, `compose/`) is
/// the embedding space that stored embeddings depend on; `gen_vs` (`gen/`, `critic/`) can be
/// retrained without touching it.
#[derive(Debug)]
pub struct Model {
    pub(crate) device: Device,
    pub(crate) enc_cfg: EncoderConfig,
    pub(crate) gen_cfg: GeneratorConfig,
    pub(crate) enc_vs: VarStore,
    pub(crate) gen_vs: VarStore,
    pub(crate) image: ImageEncoder,
    pub(crate) text: TextEncoder,
    pub(crate) composer: Composer,
    pub(crate) generator: Generator,
    pub(crate) critic: Critic,
    pub(crate) vectors: Option<WordVectors>,
    pub(crate) gan_steps: u64,
    versions: Mutex<Option<(String, String)>>,
}

impl Model {
    /// A fresh model with random weights (seed libtorch with `tch::manual_seed` first).
    pub fn new(init: ModelInit, device: Device) -> Result<Model> {
        let mut enc_cfg = init.encoder.clone();
        if let Some(v) = &init.word_vectors {
            enc_cfg.text.pretrained_dim = Some(v.dim as i64);
        }
        enc_cfg.validate()?;
        init.generator.validate()?;
        let script = match &enc_cfg.kind {
            EncoderKind::TorchScript { imagenet_norm } => {
                let bytes = init.script.clone().ok_or_else(|| {
                    ModelError::Config("a TorchScript encoder needs the module's bytes".into())
                })?;
                let enc = ScriptEncoder::load(bytes, *imagenet_norm, device)?;
                // The module decides the embedding size: probe it.
                let s = enc_cfg.image_size;
                let probe = tch::no_grad(|| {
                    enc.forward(&Tensor::zeros([1, 3, s, s], (Kind::Float, device)))
                })
                .map_err(|e| {
                    ModelError::Mismatch(format!(
                        "the TorchScript encoder fails on a [1, 3, {s}, {s}] image: {e}"
                    ))
                })?;
                enc_cfg.embed_dim = probe.size()[1];
                enc_cfg.validate()?;
                Some(enc)
            }
            EncoderKind::Cnn { .. } => None,
        };
        Self::build(
            enc_cfg,
            init.generator,
            init.word_vectors,
            script,
            0,
            device,
        )
    }

    fn build(
        enc_cfg: EncoderConfig,
        gen_cfg: GeneratorConfig,
        vectors: Option<WordVectors>,
        script: Option<ScriptEncoder>,
        gan_steps: u64,
        device: Device,
    ) -> Result<Model> {
        if enc_cfg.text.pretrained_dim.is_some() != vectors.is_some() {
            return Err(ModelError::Mismatch(
                "word vectors and the text config disagree".into(),
            ));
        }
        let enc_vs = VarStore::new(device);
        let gen_vs = VarStore::new(device);
        let root = enc_vs.root();
        let image = match (&enc_cfg.kind, script) {
            (EncoderKind::Cnn { width }, _) => ImageEncoder::Cnn(CnnEncoder::new(
                &(&root / "enc"),
                *width,
                enc_cfg.image_size,
                enc_cfg.embed_dim,
            )),
            (EncoderKind::TorchScript { .. }, Some(s)) => ImageEncoder::Script(s),
            (EncoderKind::TorchScript { .. }, None) => {
                return Err(ModelError::Mismatch(
                    "the checkpoint lacks its TorchScript encoder".into(),
                ));
            }
        };
        let text = TextEncoder::new(&(&root / "text"), &enc_cfg.text, vectors.as_ref());
        let composer = Composer::new(
            &(&root / "compose"),
            enc_cfg.embed_dim,
            enc_cfg.text.dim,
            enc_cfg.compose_hidden,
        );
        let groot = gen_vs.root();
        let generator = Generator::new(&(&groot / "gen"), &gen_cfg, &enc_cfg);
        let critic = Critic::new(&(&groot / "critic"), &gen_cfg, &enc_cfg);
        Ok(Model {
            device,
            enc_cfg,
            gen_cfg,
            enc_vs,
            gen_vs,
            image,
            text,
            composer,
            generator,
            critic,
            vectors,
            gan_steps,
            versions: Mutex::new(None),
        })
    }

    pub fn device(&self) -> Device {
        self.device
    }
    pub fn image_size(&self) -> usize {
        self.enc_cfg.image_size as usize
    }
    pub fn embed_dim(&self) -> usize {
        self.enc_cfg.embed_dim as usize
    }
    pub fn encoder_config(&self) -> &EncoderConfig {
        &self.enc_cfg
    }
    pub fn generator_config(&self) -> &GeneratorConfig {
        &self.gen_cfg
    }
    /// GAN steps this generator was trained for.
    pub fn gan_steps(&self) -> u64 {
        self.gan_steps
    }

    /// Forgets cached versions (the trainer calls this after changing weights).
    pub(crate) fn weights_changed(&self) {
        *self.versions.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    fn versions(&self) -> Result<(String, String)> {
        let mut cache = self.versions.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = cache.as_ref() {
            return Ok(v.clone());
        }
        let cfg = serde_json::to_vec(&self.enc_cfg).unwrap_or_default();
        let mut h = crate::rng::fnv1a64(&cfg);
        if let ImageEncoder::Script(s) = &self.image {
            h = crate::rng::fnv1a64_extend(h, &s.bytes);
        }
        let h = checkpoint::weights_hash(h, &checkpoint::variables(&self.enc_vs))?;
        let enc = format!("enc-{h:016x}");
        let gcfg = serde_json::to_vec(&self.gen_cfg).unwrap_or_default();
        let g = crate::rng::fnv1a64_extend(crate::rng::fnv1a64(enc.as_bytes()), &gcfg);
        let g = checkpoint::weights_hash(g, &checkpoint::variables(&self.gen_vs))?;
        let v = (enc, format!("gen-{g:016x}"));
        *cache = Some(v.clone());
        Ok(v)
    }

    /// Identity of the embedding space: embeddings from models with equal encoder versions are
    /// comparable. Retraining only the GAN keeps it.
    pub fn encoder_version(&self) -> Result<String> {
        Ok(self.versions()?.0)
    }

    /// Identity of the generator (changes with every GAN retraining).
    pub fn generator_version(&self) -> Result<String> {
        Ok(self.versions()?.1)
    }

    // ---- checkpoints ----------------------------------------------------------------------

    /// The model as self-describing checkpoint bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        self.to_bytes_with(None, Vec::new())
    }

    pub(crate) fn to_bytes_with(
        &self,
        trainer: Option<TrainerMeta>,
        trainer_tensors: Vec<(String, Tensor)>,
    ) -> Result<Vec<u8>> {
        let (enc_v, gen_v) = self.versions()?;
        let header = Header {
            format: checkpoint::FORMAT_VERSION,
            encoder: EncoderMeta {
                version: enc_v.clone(),
                config: self.enc_cfg.clone(),
            },
            generator: GeneratorMeta {
                version: gen_v,
                encoder_version: enc_v,
                config: self.gen_cfg.clone(),
                steps: self.gan_steps,
            },
            trainer,
            sections: Vec::new(),
        };
        let mut sections: Vec<(&str, Vec<u8>)> = vec![
            (
                "encoder",
                checkpoint::tensors_to_bytes(&checkpoint::variables(&self.enc_vs))?,
            ),
            (
                "generator",
                checkpoint::tensors_to_bytes(&checkpoint::variables(&self.gen_vs))?,
            ),
        ];
        if let ImageEncoder::Script(s) = &self.image {
            sections.push(("encoder_script", s.bytes.clone()));
        }
        if let Some(v) = &self.vectors {
            sections.push(("word_vectors", v.words_blob()));
        }
        if !trainer_tensors.is_empty() {
            sections.push(("trainer", checkpoint::tensors_to_bytes(&trainer_tensors)?));
        }
        checkpoint::write(header, &sections)
    }

    /// Loads a checkpoint; fails with `Corrupt`, `UnsupportedFormat` or `Mismatch` on bad bytes.
    pub fn from_bytes(bytes: &[u8], device: Device) -> Result<Model> {
        Ok(Self::from_bytes_full(bytes, device)?.0)
    }

    pub(crate) fn from_bytes_full(bytes: &[u8], device: Device) -> Result<Loaded> {
        let (header, sections) = checkpoint::read(bytes)?;
        header.encoder.config.validate()?;
        header.generator.config.validate()?;
        if header.generator.encoder_version != header.encoder.version {
            return Err(ModelError::Mismatch(format!(
                "generator {} was trained against encoder {}, not {}",
                header.generator.version, header.generator.encoder_version, header.encoder.version
            )));
        }
        let section = |name: &str| {
            sections
                .get(name)
                .copied()
                .ok_or_else(|| ModelError::Corrupt(format!("section {name:?} is missing")))
        };
        let enc_cfg = header.encoder.config.clone();
        let script = match &enc_cfg.kind {
            EncoderKind::TorchScript { imagenet_norm } => Some(ScriptEncoder::load(
                section("encoder_script")?.to_vec(),
                *imagenet_norm,
                device,
            )?),
            EncoderKind::Cnn { .. } => None,
        };
        let enc_tensors = checkpoint::tensors_from_bytes(section("encoder")?, device, "encoder")?;
        let vectors = match enc_cfg.text.pretrained_dim {
            Some(dim) => {
                let words: Vec<String> = std::str::from_utf8(section("word_vectors")?)
                    .map_err(|_| ModelError::Corrupt("word list is not UTF-8".into()))?
                    .split('\n')
                    .map(str::to_string)
                    .collect();
                let table = enc_tensors.get("text.pretrained").ok_or_else(|| {
                    ModelError::Mismatch("section \"encoder\" lacks text.pretrained".into())
                })?;
                if table.size() != [words.len() as i64 + 1, dim] {
                    return Err(ModelError::Mismatch(format!(
                        "{} words but a word vector table of shape {:?}",
                        words.len(),
                        table.size()
                    )));
                }
                let values = Vec::<f32>::try_from(
                    &table
                        .to_device(Device::Cpu)
                        .narrow(0, 1, words.len() as i64)
                        .flatten(0, -1),
                )?;
                Some(WordVectors::new(dim as usize, words, values)?)
            }
            None => None,
        };
        let model = Self::build(
            enc_cfg,
            header.generator.config.clone(),
            vectors,
            script,
            header.generator.steps,
            device,
        )?;
        checkpoint::load_into(&model.enc_vs, enc_tensors, "encoder")?;
        let gen_tensors =
            checkpoint::tensors_from_bytes(section("generator")?, device, "generator")?;
        checkpoint::load_into(&model.gen_vs, gen_tensors, "generator")?;
        let trainer = match sections.get("trainer") {
            Some(b) => Some(checkpoint::tensors_from_bytes(b, device, "trainer")?),
            None => None,
        };
        let (enc_v, gen_v) = model.versions()?;
        if enc_v != header.encoder.version || gen_v != header.generator.version {
            return Err(ModelError::Corrupt(format!(
                "weights hash to {enc_v}/{gen_v}, the header says {}/{}",
                header.encoder.version, header.generator.version
            )));
        }
        Ok((model, header, trainer))
    }

    /// Takes the generator of `other` (a GAN retrained on this encoder). Refuses a generator
    /// trained against another encoder.
    pub fn replace_generator(&mut self, other: Model) -> Result<()> {
        let (mine, theirs) = (self.encoder_version()?, other.encoder_version()?);
        if mine != theirs {
            return Err(ModelError::Mismatch(format!(
                "the generator was trained against encoder {theirs}, this model has {mine}"
            )));
        }
        self.gen_cfg = other.gen_cfg;
        self.gen_vs = other.gen_vs;
        self.generator = other.generator;
        self.critic = other.critic;
        self.gan_steps = other.gan_steps;
        self.weights_changed();
        Ok(())
    }

    /// A fresh, untrained generator and critic (for retraining the GAN on this encoder).
    pub fn reset_generator(&mut self, cfg: GeneratorConfig) -> Result<()> {
        cfg.validate()?;
        let gen_vs = VarStore::new(self.device);
        let groot = gen_vs.root();
        self.generator = Generator::new(&(&groot / "gen"), &cfg, &self.enc_cfg);
        self.critic = Critic::new(&(&groot / "critic"), &cfg, &self.enc_cfg);
        self.gen_vs = gen_vs;
        self.gen_cfg = cfg;
        self.gan_steps = 0;
        self.weights_changed();
        Ok(())
    }

    // ---- inference --------------------------------------------------------------------------

    fn check_values(what: &'static str, v: &[f32]) -> Result<()> {
        match v.iter().position(|x| !x.is_finite()) {
            Some(index) => Err(ModelError::NonFinite { what, index }),
            None => Ok(()),
        }
    }

    /// `[B,3,S,S]` images in [-1,1] -> `[B,D]` unit embeddings (gradients flow when enabled).
    pub fn encode_tensor(&self, images: &Tensor) -> Result<Tensor> {
        let s = self.enc_cfg.image_size;
        let size = images.size();
        if size.len() != 4 || size[1] != 3 || size[2] != s || size[3] != s {
            return Err(ModelError::Config(format!(
                "images must have shape [batch, 3, {s}, {s}], not {size:?}"
            )));
        }
        self.image.forward(images)
    }

    /// Encodes `n` CHW images laid end to end; returns `n * embed_dim` floats.
    pub fn encode_images(&self, chw: &[f32], n: usize) -> Result<Vec<f32>> {
        let s = self.image_size();
        let per = 3 * s * s;
        if chw.len() != n * per {
            return Err(ModelError::Dimension {
                what: "image values",
                expected: n * per,
                found: chw.len(),
            });
        }
        Self::check_values("image", chw)?;
        if n == 0 {
            return Ok(Vec::new());
        }
        let x = Tensor::from_slice(chw)
            .view([n as i64, 3, s as i64, s as i64])
            .to_device(self.device);
        let e = tch::no_grad(|| self.encode_tensor(&x))?;
        Ok(Vec::<f32>::try_from(
            &e.to_device(Device::Cpu).flatten(0, -1),
        )?)
    }

    /// Text features for a batch of word lists.
    pub(crate) fn text_features(&self, texts: &[Vec<String>]) -> Tensor {
        let batch = TextBatch::new(
            &self.enc_cfg.text,
            self.vectors.as_ref(),
            texts,
            self.device,
        );
        self.text.forward(&batch)
    }

    /// Source pixels `[1,3,S,S]` of an image reference, zeros otherwise.
    fn reference_pixels(&self, reference: Reference<'_>) -> Tensor {
        let s = self.enc_cfg.image_size;
        match reference {
            Reference::Image(chw) => Tensor::from_slice(chw)
                .view([1, 3, s, s])
                .to_device(self.device),
            _ => Tensor::zeros([1, 3, s, s], (Kind::Float, self.device)),
        }
    }

    fn reference_embedding(&self, reference: Reference<'_>) -> Result<(Tensor, Tensor)> {
        let d = self.enc_cfg.embed_dim;
        let (e, has) = match reference {
            Reference::None => (Tensor::zeros([1, d], (Kind::Float, self.device)), 0.0f32),
            Reference::Image(chw) => {
                let v = self.encode_images(chw, 1)?;
                (
                    Tensor::from_slice(&v).view([1, d]).to_device(self.device),
                    1.0,
                )
            }
            Reference::Embedding(v) => {
                if v.len() != d as usize {
                    return Err(ModelError::Dimension {
                        what: "dimensions",
                        expected: d as usize,
                        found: v.len(),
                    });
                }
                Self::check_values("reference embedding", v)?;
                let t = Tensor::from_slice(v).view([1, d]).to_device(self.device);
                (crate::nets::l2_normalize(&t), 1.0)
            }
        };
        Ok((
            e,
            Tensor::from_slice(&[has])
                .view([1, 1])
                .to_device(self.device),
        ))
    }

    /// The composition baseline: an embedding for (reference, text) without the GAN.
    pub fn compose(&self, reference: Reference<'_>, text: &str) -> Result<Vec<f32>> {
        let words = checked_words(text)?;
        let (e, has) = self.reference_embedding(reference)?;
        let q = tch::no_grad(|| {
            let t = self.text_features(&[words]);
            self.composer.forward(&e, &has, &t)
        });
        Ok(Vec::<f32>::try_from(
            &q.to_device(Device::Cpu).flatten(0, -1),
        )?)
    }

    /// Synthesizes the image the shopper means and embeds it. `seed` draws the noise; `None`
    /// uses zero noise (the generator's typical output, deterministic).
    pub fn generate(
        &self,
        reference: Reference<'_>,
        text: &str,
        seed: Option<u64>,
    ) -> Result<Generated> {
        let words = checked_words(text)?;
        let (e, has) = self.reference_embedding(reference)?;
        let px = self.reference_pixels(reference);
        let z = self.noise(1, seed);
        let (img, emb) = tch::no_grad(|| -> Result<(Tensor, Tensor)> {
            let t = self.text_features(&[words]);
            let img = self
                .generator
                .forward(&z, &self.generator_condition(&e, &has, &t), &px);
            let emb = self.expand(self.image.forward(&img)?, || {
                self.composer.forward(&e, &has, &t)
            });
            Ok((img, emb))
        })?;
        Ok(Generated {
            image: Vec::<f32>::try_from(&img.to_device(Device::Cpu).flatten(0, -1))?,
            embedding: Vec::<f32>::try_from(&emb.to_device(Device::Cpu).flatten(0, -1))?,
        })
    }

    /// Checks one query as [`Model::generate`] would, without running the networks, so that a
    /// batch can set a bad query aside and answer the others.
    pub fn check_query(&self, reference: Reference<'_>, text: &str) -> Result<()> {
        checked_words(text)?;
        let s = self.image_size();
        let d = self.embed_dim();
        match reference {
            Reference::None => Ok(()),
            Reference::Image(chw) => {
                if chw.len() != 3 * s * s {
                    return Err(ModelError::Dimension {
                        what: "image values",
                        expected: 3 * s * s,
                        found: chw.len(),
                    });
                }
                Self::check_values("image", chw)
            }
            Reference::Embedding(v) => {
                if v.len() != d {
                    return Err(ModelError::Dimension {
                        what: "dimensions",
                        expected: d,
                        found: v.len(),
                    });
                }
                Self::check_values("reference embedding", v)
            }
        }
    }

    /// [`Model::generate`] (zero noise) for many queries in one forward pass of each network:
    /// what a server does with the queries of many connections that arrive together. The
    /// results equal one `generate` call per query up to float rounding.
    pub fn generate_batch(&self, queries: &[(Reference<'_>, &str)]) -> Result<Vec<Generated>> {
        if queries.is_empty() {
            return Ok(Vec::new());
        }
        for (reference, text) in queries {
            self.check_query(*reference, text)?;
        }
        let words = queries
            .iter()
            .map(|(_, text)| checked_words(text))
            .collect::<Result<Vec<_>>>()?;
        let s = self.enc_cfg.image_size;
        let d = self.enc_cfg.embed_dim;
        let b = queries.len() as i64;
        let per = (3 * s * s) as usize;
        // Source pixels of the image references (zeros for the others), encoded in one pass.
        let mut pixels = vec![0f32; queries.len() * per];
        let mut with_image = Vec::new();
        for (i, (reference, _)) in queries.iter().enumerate() {
            if let Reference::Image(chw) = reference {
                pixels[i * per..(i + 1) * per].copy_from_slice(chw);
                with_image.push(i as i64);
            }
        }
        let (img, emb) = tch::no_grad(|| -> Result<(Tensor, Tensor)> {
            let px = Tensor::from_slice(&pixels)
                .view([b, 3, s, s])
                .to_device(self.device);
            let mut e = Tensor::zeros([b, d], (Kind::Float, self.device));
            if !with_image.is_empty() {
                let index = Tensor::from_slice(&with_image).to_device(self.device);
                let encoded = self.encode_tensor(&px.index_select(0, &index))?;
                let _ = e.index_copy_(0, &index, &encoded);
            }
            let mut has = vec![0f32; queries.len()];
            for (i, (reference, _)) in queries.iter().enumerate() {
                match reference {
                    Reference::None => {}
                    Reference::Image(_) => has[i] = 1.0,
                    Reference::Embedding(v) => {
                        let t = Tensor::from_slice(v).view([1, d]).to_device(self.device);
                        e.get(i as i64)
                            .copy_(&crate::nets::l2_normalize(&t).view([d]));
                        has[i] = 1.0;
                    }
                }
            }
            let has = Tensor::from_slice(&has).view([b, 1]).to_device(self.device);
            let z = self.noise(queries.len(), None);
            let t = self.text_features(&words);
            let img = self
                .generator
                .forward(&z, &self.generator_condition(&e, &has, &t), &px);
            let emb = self.expand(self.image.forward(&img)?, || {
                self.composer.forward(&e, &has, &t)
            });
            Ok((img.to_device(Device::Cpu), emb.to_device(Device::Cpu)))
        })?;
        (0..b)
            .map(|i| {
                Ok(Generated {
                    image: Vec::<f32>::try_from(&img.get(i).flatten(0, -1))?,
                    embedding: Vec::<f32>::try_from(&emb.get(i).flatten(0, -1))?,
                })
            })
            .collect()
    }

    /// The walk between two queries: the images the generator makes at `points` evenly spaced
    /// positions (0 to 1) on the straight line between the two queries' generator conditions,
    /// with the same noise, the source pixels mixed in the same proportion. Two wishes on one
    /// reference show what the model learned of each; two references under one wish, how it
    /// carries the wish from one product to another. The ends are the two plain generations.
    pub fn walk(
        &self,
        from: WalkEnd<'_>,
        to: WalkEnd<'_>,
        points: usize,
        seed: Option<u64>,
    ) -> Result<Vec<(f64, Generated)>> {
        if !(2..=MAX_WALK_POINTS).contains(&points) {
            return Err(ModelError::Config(format!(
                "a walk has 2 to {MAX_WALK_POINTS} points, not {points}"
            )));
        }
        if self.gan_steps == 0 {
            return Err(ModelError::NoGenerator);
        }
        let ends = [from, to]
            .into_iter()
            .map(|end| -> Result<(Tensor, Tensor, Tensor)> {
                let words = checked_words(end.text)?;
                let (e, has) = self.reference_embedding(end.reference)?;
                let (cond, composed) = tch::no_grad(|| {
                    let t = self.text_features(&[words]);
                    (
                        self.generator_condition(&e, &has, &t),
                        self.composer.forward(&e, &has, &t),
                    )
                });
                Ok((cond, self.reference_pixels(end.reference), composed))
            })
            .collect::<Result<Vec<_>>>()?;
        let ((c0, p0, q0), (c1, p1, q1)) = (&ends[0], &ends[1]);
        let steps: Vec<f64> = (0..points)
            .map(|i| i as f64 / (points - 1) as f64)
            .collect();
        let t: Vec<f32> = steps.iter().map(|&t| t as f32).collect();
        let t = Tensor::from_slice(&t).to_device(self.device);
        let n = points as i64;
        let (img, emb) = tch::no_grad(|| -> Result<(Tensor, Tensor)> {
            let tc = t.view([n, 1]);
            let cond = c0 * (1.0 - &tc) + c1 * &tc;
            let tp = t.view([n, 1, 1, 1]);
            let px = p0 * (1.0 - &tp) + p1 * &tp;
            let z = self.noise(1, seed).expand([n, -1], false);
            let img = self.generator.forward(&z, &cond, &px);
            // The composed query moves along the walk as the condition does.
            let emb = self.expand(self.image.forward(&img)?, || {
                crate::nets::l2_normalize(&(q0 * (1.0 - &tc) + q1 * &tc))
            });
            Ok((img, emb))
        })?;
        let img = img.to_device(Device::Cpu);
        let emb = emb.to_device(Device::Cpu);
        steps
            .into_iter()
            .enumerate()
            .map(|(i, pos)| {
                let i = i as i64;
                Ok((
                    pos,
                    Generated {
                        image: Vec::<f32>::try_from(&img.get(i).flatten(0, -1))?,
                        embedding: Vec::<f32>::try_from(&emb.get(i).flatten(0, -1))?,
                    },
                ))
            })
            .collect()
    }

    /// Batched generation for evaluation and benchmarks: `e_src [B,D]`, `has [B,1]`, source
    /// pixels `[B,3,S,S]` (None: without pixels, from the embedding alone). Returns the images
    /// and their search embeddings (with the query expansion).
    pub fn generate_tensor(
        &self,
        e_src: &Tensor,
        has_image: &Tensor,
        pixels: Option<&Tensor>,
        texts: &[Vec<String>],
        z: &Tensor,
    ) -> Result<(Tensor, Tensor)> {
        // The text features serve both the generator and the expansion's composed query.
        let t = self.text_features(texts);
        let (img, image_emb) = self.generate_from_features(e_src, has_image, pixels, &t, z)?;
        let emb = self.expand(image_emb, || self.composer.forward(e_src, has_image, &t));
        Ok((img, emb))
    }

    /// [`Model::generate_tensor`] without the query expansion: the images and the embeddings of
    /// the images alone.
    pub fn generate_tensor_parts(
        &self,
        e_src: &Tensor,
        has_image: &Tensor,
        pixels: Option<&Tensor>,
        texts: &[Vec<String>],
        z: &Tensor,
    ) -> Result<(Tensor, Tensor)> {
        let t = self.text_features(texts);
        self.generate_from_features(e_src, has_image, pixels, &t, z)
    }

    /// The images and their embeddings, from text features already computed.
    fn generate_from_features(
        &self,
        e_src: &Tensor,
        has_image: &Tensor,
        pixels: Option<&Tensor>,
        t: &Tensor,
        z: &Tensor,
    ) -> Result<(Tensor, Tensor)> {
        let s = self.enc_cfg.image_size;
        let zeros;
        let px = match pixels {
            Some(p) => p,
            None => {
                zeros = Tensor::zeros([e_src.size()[0], 3, s, s], (Kind::Float, self.device));
                &zeros
            }
        };
        let img = self
            .generator
            .forward(z, &self.generator_condition(e_src, has_image, t), px);
        let emb = self.image.forward(&img)?;
        Ok((img, emb))
    }

    /// The search embedding of a query from its synthesized image's embedding: with
    /// synthetic query expansion (`GeneratorConfig::query_expansion`), that embedding plus the
    /// weighted composed query, normalized; without, the image's embedding itself.
    pub(crate) fn expand(&self, image_emb: Tensor, composed: impl FnOnce() -> Tensor) -> Tensor {
        let w = self.gen_cfg.expansion();
        if w > 0.0 {
            crate::nets::l2_normalize(&(image_emb + composed() * w))
        } else {
            image_emb
        }
    }

    /// The weight of the composed query in a query's search embedding (0: the synthesized
    /// image's embedding alone).
    pub fn query_expansion(&self) -> f64 {
        self.gen_cfg.expansion()
    }

    /// Sets the query expansion's weight (a new generator version: the search embeddings
    /// change).
    pub fn set_query_expansion(&mut self, weight: f64) -> Result<()> {
        let mut cfg = self.gen_cfg.clone();
        cfg.query_expansion = Some(weight);
        cfg.validate()?;
        self.gen_cfg = cfg;
        self.weights_changed();
        Ok(())
    }

    /// What the generator and the critic are conditioned on (text features already computed).
    pub(crate) fn generator_condition(
        &self,
        e_src: &Tensor,
        has: &Tensor,
        text: &Tensor,
    ) -> Tensor {
        let c = condition(e_src, has, text);
        if self.gen_cfg.compose_condition {
            let q = self.composer.forward(e_src, has, text);
            Tensor::cat(&[c, q], 1)
        } else {
            c
        }
    }

    /// Composition for a batch (evaluation).
    pub fn compose_tensor(
        &self,
        e_src: &Tensor,
        has_image: &Tensor,
        texts: &[Vec<String>],
    ) -> Tensor {
        let t = self.text_features(texts);
        self.composer.forward(e_src, has_image, &t)
    }

    /// Noise `[n, noise_dim]`: zeros without a seed, else standard normal from the seed.
    pub fn noise(&self, n: usize, seed: Option<u64>) -> Tensor {
        let nd = self.gen_cfg.noise_dim;
        match seed {
            None => Tensor::zeros([n as i64, nd], (Kind::Float, self.device)),
            Some(s) => {
                let mut r = SplitMix64::new(s);
                let v: Vec<f32> = (0..n * nd as usize)
                    .map(|_| {
                        // Box-Muller.
                        let u1 = r.unit().max(1e-12);
                        let u2 = r.unit();
                        ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
                    })
                    .collect();
                Tensor::from_slice(&v)
                    .view([n as i64, nd])
                    .to_device(self.device)
            }
        }
    }
}
