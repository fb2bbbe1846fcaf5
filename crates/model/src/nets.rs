//! The networks. Parameter paths (`enc/d1`, `text/buckets`, `compose/gate`, `gen/up1`,
//! `critic/d1`) are part of the checkpoint format: renaming one breaks old checkpoints.

use tch::nn::{self, Module};
use tch::{CModule, Device, Kind, Tensor};

use crate::config::{EncoderConfig, GeneratorConfig, TextConfig};
use crate::error::{ModelError, Result};
use crate::text::{WordVectors, subword_ids};

/// Unit-length rows (the embedding space is compared by L2 on the sphere, i.e. cosine).
pub fn l2_normalize(x: &Tensor) -> Tensor {
    let n = x
        .square()
        .sum_dim_intlist([-1i64].as_slice(), true, Kind::Float)
        .sqrt()
        .clamp_min(1e-8);
    x / n
}

/// Leaky ReLU with slope 0.2. tch's `leaky_relu` fixes the slope at 0.01, so this is PReLU with
/// a constant weight: one fused kernel each way, where `maximum(x, 0.2 x)` costs three
/// (measured: a third of the generation time at batch 64 in the eager reference).
fn lrelu(x: &Tensor) -> Tensor {
    x.prelu(&Tensor::full([1], 0.2, (x.kind(), x.device())))
}

fn groups(channels: i64) -> i64 {
    [8, 4, 2]
        .into_iter()
        .find(|g| channels % g == 0)
        .unwrap_or(1)
}

fn down_levels(image_size: i64) -> usize {
    // Down to 4x4.
    (image_size / 4).trailing_zeros() as usize
}

fn conv(p: nn::Path, cin: i64, cout: i64, k: i64, stride: i64, pad: i64) -> nn::Conv2D {
    nn::conv2d(
        p,
        cin,
        cout,
        k,
        nn::ConvConfig {
            stride,
            padding: pad,
            ..Default::default()
        },
    )
}

/// The CNN image encoder trained here: `[B,3,S,S]` in [-1,1] -> `[B,D]` unit vectors. Strided
/// 4x4 convolutions halve the side down to 4x4 (`enc/d1`, `enc/d2`, ...), then `enc/fc`. Kept
/// small on purpose: it must train in minutes on two CPU cores.
#[derive(Debug)]
pub struct CnnEncoder {
    downs: Vec<(nn::Conv2D, nn::GroupNorm)>,
    fc: nn::Linear,
}

impl CnnEncoder {
    pub fn new(p: &nn::Path, width: i64, image_size: i64, embed_dim: i64) -> Self {
        let mut downs = Vec::new();
        let mut c = 3;
        for i in 0..down_levels(image_size) {
            let out = width << i.min(3);
            downs.push((
                conv(p / format!("d{}", i + 1), c, out, 4, 2, 1),
                nn::group_norm(
                    p / format!("n{}", i + 1),
                    groups(out),
                    out,
                    Default::default(),
                ),
            ));
            c = out;
        }
        let fc = nn::linear(p / "fc", c * 16, embed_dim, Default::default());
        CnnEncoder { downs, fc }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        self.forward_features(x).1
    }

    /// The embedding and the activation map of every level (finest first): the trainer matches
    /// a generated image's maps to its target's (a perceptual loss in the encoder's own space).
    pub fn forward_features(&self, x: &Tensor) -> (Vec<Tensor>, Tensor) {
        let mut h = x.shallow_clone();
        let mut maps = Vec::with_capacity(self.downs.len());
        for (c, n) in &self.downs {
            h = lrelu(&n.forward(&c.forward(&h)));
            maps.push(h.shallow_clone());
        }
        (maps, l2_normalize(&self.fc.forward(&h.flatten(1, -1))))
    }
}

/// A TorchScript image encoder a user brings.
#[derive(Debug)]
pub struct ScriptEncoder {
    module: CModule,
    imagenet_norm: bool,
    device: Device,
    /// The module's serialized bytes, kept to write them back into checkpoints.
    pub bytes: Vec<u8>,
}

impl ScriptEncoder {
    pub fn load(bytes: Vec<u8>, imagenet_norm: bool, device: Device) -> Result<Self> {
        let mut module =
            CModule::load_data_on_device(&mut bytes.as_slice(), device).map_err(|e| {
                ModelError::Mismatch(format!("cannot load the TorchScript encoder: {e}"))
            })?;
        module.set_eval();
        for (_, p) in module.named_parameters()? {
            let _ = p.set_requires_grad(false);
        }
        Ok(ScriptEncoder {
            module,
            imagenet_norm,
            device,
            bytes,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = if self.imagenet_norm {
            let mean = Tensor::from_slice(&[0.485f32, 0.456, 0.406])
                .view([1, 3, 1, 1])
                .to_device(self.device);
            let std = Tensor::from_slice(&[0.229f32, 0.224, 0.225])
                .view([1, 3, 1, 1])
                .to_device(self.device);
            ((x + 1.0) / 2.0 - mean) / std
        } else {
            x.shallow_clone()
        };
        let y = self.module.forward_ts(&[x])?;
        Ok(l2_normalize(&y.f_flatten(1, -1)?))
    }
}

/// Either image encoder.
#[derive(Debug)]
pub enum ImageEncoder {
    Cnn(CnnEncoder),
    Script(ScriptEncoder),
}

impl ImageEncoder {
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            ImageEncoder::Cnn(e) => Ok(e.forward(x)),
            ImageEncoder::Script(e) => e.forward(x),
        }
    }

    /// The embedding with the CNN's activation maps (none for a TorchScript module, which is
    /// opaque).
    pub fn forward_features(&self, x: &Tensor) -> Result<(Vec<Tensor>, Tensor)> {
        match self {
            ImageEncoder::Cnn(e) => Ok(e.forward_features(x)),
            ImageEncoder::Script(e) => Ok((Vec::new(), e.forward(x)?)),
        }
    }
}

/// Hashed ids of a batch of texts, padded with 0, plus pretrained word rows when present.
pub struct TextBatch {
    pub ids: Tensor,
    pub word_rows: Option<Tensor>,
}

impl TextBatch {
    /// `texts` must already have passed [`crate::text::checked_words`] (or be captions).
    pub fn new(
        cfg: &TextConfig,
        vectors: Option<&WordVectors>,
        texts: &[Vec<String>],
        device: Device,
    ) -> Self {
        let ids: Vec<Vec<i64>> = texts.iter().map(|w| subword_ids(cfg, w)).collect();
        let ids = pad(&ids, device);
        let word_rows = vectors.map(|v| {
            let rows: Vec<Vec<i64>> = texts
                .iter()
                .map(|ws| ws.iter().map(|w| v.row(w)).collect())
                .collect();
            pad(&rows, device)
        });
        TextBatch { ids, word_rows }
    }
}

fn pad(rows: &[Vec<i64>], device: Device) -> Tensor {
    let len = rows.iter().map(Vec::len).max().unwrap_or(0).max(1);
    let mut flat = vec![0i64; rows.len() * len];
    for (r, row) in rows.iter().enumerate() {
        flat[r * len..r * len + row.len()].copy_from_slice(row);
    }
    Tensor::from_slice(&flat)
        .view([rows.len() as i64, len as i64])
        .to_device(device)
}

fn masked_mean(table: &Tensor, ids: &Tensor) -> Tensor {
    let e = Tensor::embedding(table, ids, 0, false, false);
    let mask = ids.gt(0).to_kind(Kind::Float).unsqueeze(-1);
    let count = mask
        .sum_dim_intlist([1i64].as_slice(), false, Kind::Float)
        .clamp_min(1.0);
    (e * mask).sum_dim_intlist([1i64].as_slice(), false, Kind::Float) / count
}

/// fastText-style text encoder: mean of hashed subword vectors (+ projected word vectors).
#[derive(Debug)]
pub struct TextEncoder {
    buckets: Tensor,
    fc: nn::Linear,
    pretrained: Option<(Tensor, nn::Linear)>,
}

impl TextEncoder {
    pub fn new(p: &nn::Path, cfg: &TextConfig, vectors: Option<&WordVectors>) -> Self {
        let buckets = p.var(
            "buckets",
            &[cfg.buckets + 1, cfg.dim],
            nn::Init::Randn {
                mean: 0.0,
                stdev: 0.1,
            },
        );
        let fc = nn::linear(p / "fc", cfg.dim, cfg.dim, Default::default());
        let pretrained = cfg.pretrained_dim.map(|pd| {
            let rows = vectors.map_or(0, |v| v.words.len()) as i64;
            let table = match vectors {
                Some(v) => {
                    let t = Tensor::from_slice(&v.values).view([rows, pd]);
                    Tensor::cat(&[Tensor::zeros([1, pd], (Kind::Float, Device::Cpu)), t], 0)
                }
                None => Tensor::zeros([1, pd], (Kind::Float, Device::Cpu)),
            };
            let table = p.add("pretrained", table.to_device(p.device()), false);
            (
                table,
                nn::linear(p / "proj", pd, cfg.dim, Default::default()),
            )
        });
        TextEncoder {
            buckets,
            fc,
            pretrained,
        }
    }

    pub fn forward(&self, batch: &TextBatch) -> Tensor {
        let mut h = masked_mean(&self.buckets, &batch.ids);
        if let (Some((table, proj)), Some(rows)) = (&self.pretrained, &batch.word_rows) {
            // Out of place: autograd keeps its graph.
            h = &h + proj.forward(&masked_mean(table, rows));
        }
        self.fc.forward(&h)
    }
}

/// Width of the generator's and critic's condition vector.
pub fn condition_dim(cfg: &GeneratorConfig, enc: &EncoderConfig) -> i64 {
    let base = enc.embed_dim + 1 + enc.text.dim;
    if cfg.compose_condition {
        base + enc.embed_dim
    } else {
        base
    }
}

/// The condition the composition head sees: `[e_src * has, has, text]`; the generator and the
/// critic see it followed by the composed embedding when `compose_condition` is on.
pub fn condition(e_src: &Tensor, has_image: &Tensor, text: &Tensor) -> Tensor {
    Tensor::cat(
        &[
            e_src * has_image,
            has_image.shallow_clone(),
            text.shallow_clone(),
        ],
        1,
    )
}

/// Image+text composition without a GAN (a TIRG-style gated residual, Vo et al. 2019):
/// `normalize(gate * e_src + residual)`. It trains the embedding space in stage 1 and is the
/// composition baseline at evaluation.
#[derive(Debug)]
pub struct Composer {
    fc1: nn::Linear,
    gate: nn::Linear,
    res: nn::Linear,
}

impl Composer {
    pub fn new(p: &nn::Path, embed_dim: i64, text_dim: i64, hidden: i64) -> Self {
        Composer {
            fc1: nn::linear(
                p / "fc1",
                embed_dim + 1 + text_dim,
                hidden,
                Default::default(),
            ),
            gate: nn::linear(p / "gate", hidden, embed_dim, Default::default()),
            res: nn::linear(p / "res", hidden, embed_dim, Default::default()),
        }
    }

    pub fn forward(&self, e_src: &Tensor, has_image: &Tensor, text: &Tensor) -> Tensor {
        let h = self.fc1.forward(&condition(e_src, has_image, text)).relu();
        let gate = self.gate.forward(&h).sigmoid();
        l2_normalize(&(gate * (e_src * has_image) + self.res.forward(&h)))
    }
}

/// Conditional generator: (noise, source pixels, image embedding, text) -> `[B,3,S,S]` in [-1,1].
///
/// A U-Net (Ronneberger et al. 2015; pix2pix, Isola et al. 2017): `gen/src1..` encode the source
/// image down to 4x4; a linear layer (`gen/fc`) seeds a 4x4 map from noise and condition; each
/// `gen/upN` block doubles the side, takes the source features of its level as a skip input and
/// is FiLM-modulated (Perez et al. 2018) by the condition. Without source pixels (a stored
/// embedding or a text-only query) the pixel input is zeros and the embedding carries the source.
#[derive(Debug)]
pub struct Generator {
    fc: nn::Linear,
    cond: nn::Linear,
    src: Vec<nn::Conv2D>,
    ups: Vec<(nn::Conv2D, nn::GroupNorm, nn::Linear)>,
    out: nn::Conv2D,
    c0: i64,
    /// Skip connections from the source in use, coarsest first (levels, then the pixels).
    skips: usize,
    pub noise_dim: i64,
}

impl Generator {
    pub fn new(p: &nn::Path, cfg: &GeneratorConfig, enc: &EncoderConfig) -> Self {
        let levels = down_levels(enc.image_size);
        let chan = |level: usize| cfg.width * (1i64 << (levels - level).min(2));
        let cond_in = condition_dim(cfg, enc);
        let c0 = chan(0);
        let fc = nn::linear(
            p / "fc",
            cfg.noise_dim + cond_in,
            c0 * 16,
            Default::default(),
        );
        let cond = nn::linear(p / "cond", cond_in, cfg.cond_dim, Default::default());
        // src{k} maps level levels-k+1 (the image for k = 1) to level levels-k.
        let mut src = Vec::new();
        for k in 1..=levels {
            let cin = if k == 1 { 3 } else { chan(levels - k + 1) };
            src.push(conv(p / format!("src{k}"), cin, chan(levels - k), 4, 2, 1));
        }
        let skips = cfg
            .pixel_skips
            .map_or(levels + 1, |k| (k as usize).min(levels + 1));
        let mut ups = Vec::new();
        for l in 1..=levels {
            let cin = if l <= skips { 2 } else { 1 } * chan(l - 1);
            let cout = chan(l);
            ups.push((
                conv(p / format!("up{l}"), cin, cout, 3, 1, 1),
                nn::group_norm(
                    p / format!("norm{l}"),
                    groups(cout),
                    cout,
                    nn::GroupNormConfig {
                        affine: false,
                        ..Default::default()
                    },
                ),
                nn::linear(
                    p / format!("film{l}"),
                    cfg.cond_dim,
                    2 * cout,
                    nn::LinearConfig {
                        ws_init: nn::Init::Const(0.0),
                        ..Default::default()
                    },
                ),
            ));
        }
        let with_pixels = if skips > levels { 3 } else { 0 };
        let out = conv(p / "out", chan(levels) + with_pixels, 3, 3, 1, 1);
        Generator {
            fc,
            cond,
            src,
            ups,
            out,
            c0,
            skips,
            noise_dim: cfg.noise_dim,
        }
    }

    /// `src` is `[B,3,S,S]`, zeros where a sample has no source pixels.
    pub fn forward(&self, z: &Tensor, cond: &Tensor, src: &Tensor) -> Tensor {
        let c = self.cond.forward(cond).relu();
        // Skip features, finest first: level levels-1 down to level 0, None where that level
        // takes no skip (the chain runs to the coarsest level whenever any skip is in use).
        let levels = self.src.len();
        let first = levels.saturating_sub(self.skips);
        let mut skips: Vec<Option<Tensor>> = Vec::with_capacity(levels);
        let mut h = src.shallow_clone();
        for (i, conv) in self.src.iter().enumerate() {
            if self.skips == 0 {
                skips.push(None);
                continue;
            }
            h = lrelu(&conv.forward(&h));
            skips.push((i >= first).then(|| h.shallow_clone()));
        }
        let mut x = self
            .fc
            .forward(&Tensor::cat(&[z, cond], 1))
            .relu()
            .view([-1, self.c0, 4, 4]);
        for (conv, norm, film) in &self.ups {
            let x2 = match skips.pop().expect("one entry a level") {
                Some(skip) => Tensor::cat(&[&x, &skip], 1),
                None => x,
            };
            let (h, w) = (x2.size()[2], x2.size()[3]);
            x = norm.forward(&conv.forward(&x2.upsample_nearest2d([h * 2, w * 2], None, None)));
            let gb = film.forward(&c).unsqueeze(-1).unsqueeze(-1);
            let parts = gb.chunk(2, 1);
            x = (x * (parts[0].shallow_clone() + 1.0) + &parts[1]).relu();
        }
        let x = if self.skips > levels {
            Tensor::cat(&[&x, src], 1)
        } else {
            x
        };
        self.out.forward(&x).tanh()
    }
}

/// Conditional critic with a projection head (Miyato and Koyama 2018): `lin(h) + <h, proj(cond)>`.
/// No normalization layers, as the gradient penalty needs per-sample gradients.
#[derive(Debug)]
pub struct Critic {
    downs: Vec<nn::Conv2D>,
    fc: nn::Linear,
    lin: nn::Linear,
    proj: nn::Linear,
}

impl Critic {
    pub fn new(p: &nn::Path, cfg: &GeneratorConfig, enc: &EncoderConfig) -> Self {
        let mut downs = Vec::new();
        let mut c = 3;
        for i in 0..down_levels(enc.image_size) {
            let out = cfg.critic_width * (1i64 << i.min(3));
            downs.push(conv(p / format!("d{}", i + 1), c, out, 4, 2, 1));
            c = out;
        }
        let cond_in = condition_dim(cfg, enc);
        Critic {
            downs,
            fc: nn::linear(p / "fc", c * 16, cfg.cond_dim, Default::default()),
            lin: nn::linear(p / "lin", cfg.cond_dim, 1, Default::default()),
            proj: nn::linear(p / "proj", cond_in, cfg.cond_dim, Default::default()),
        }
    }

    pub fn forward(&self, x: &Tensor, cond: &Tensor) -> Tensor {
        let mut h = x.shallow_clone();
        for d in &self.downs {
            h = lrelu(&d.forward(&h));
        }
        let h = lrelu(&self.fc.forward(&h.flatten(1, -1)));
        let proj =
            (&h * self.proj.forward(cond)).sum_dim_intlist([1i64].as_slice(), false, Kind::Float);
        self.lin.forward(&h).squeeze_dim(1) + proj
    }
}
