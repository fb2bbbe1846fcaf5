//! `synth`: the SynthTriplet model from the command line, without PostgreSQL. Generates a
//! catalog, trains, evaluates, generates images and benchmarks, on CUDA when present.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use clap::{Args, Parser, Subcommand, ValueEnum};
use synthsearch_data::Split;
use synthsearch_data::image_io::{DecodeLimits, chw_to_png, decode, from_chw, grid_png, to_chw};
use synthsearch_data::{CatalogConfig, generate as generate_catalog, write_fashioniq};
use synthsearch_model::config::{EncoderKind, GanLoss};
use synthsearch_model::train::DirectHead;
use synthsearch_model::{
    Dataset, EncoderConfig, EvalPoint, EvalSample, GeneratorConfig, JudgeConfig, LossMeans, Model,
    ModelInit, PREVIEW_COLUMNS, Reference, TrainConfig, Trainer, WalkEnd, WishEvalConfig,
    WordVectors, curves_svg, evaluate_point, held_out_judge, preview, split_figures,
};
use tch::{Device, Kind, Tensor};

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

// The trainer takes an Arc like the database worker does; this binary stays on one thread.
#[allow(clippy::arc_with_non_send_sync)]
fn shared(d: Dataset) -> Arc<Dataset> {
    Arc::new(d)
}

#[derive(Parser)]
#[command(
    name = "synth",
    about = "SynthTriplet-GAN multimodal product search, without the database"
)]
struct Cli {
    /// libtorch threads (default: all cores).
    #[arg(long, global = true)]
    threads: Option<usize>,
    #[arg(long, global = true, value_enum, default_value_t = DeviceArg::Auto)]
    device: DeviceArg,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, ValueEnum)]
enum DeviceArg {
    Auto,
    Cpu,
    Cuda,
}

#[derive(Subcommand)]
enum Cmd {
    /// Generate a synthetic catalog in the Fashion-IQ layout.
    Catalog {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 10_000)]
        products: usize,
        #[arg(long, default_value_t = 64)]
        size: u32,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// "clean", or "photo": framing, silhouette, backdrop, light and noise vary.
        #[arg(long, default_value = "clean")]
        variation: synthsearch_data::Variation,
    },
    /// Real product photos (Fashion-MNIST, Debian's dataset-fashion-mnist) in the Fashion-IQ
    /// layout: tags kind, tone and pattern (columns.json) and relative captions.
    Photos {
        #[arg(long)]
        out: PathBuf,
        /// The folder of the gzip'ed IDX files.
        #[arg(long, default_value = synthsearch_data::photos::SOURCE_DIR)]
        source: PathBuf,
        /// At most this many products per split (train, val and test each); all when left out.
        #[arg(long)]
        products: Option<usize>,
        /// The catalog seed: val split, sample, pairs and captions.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Share of the train file held out as val.
        #[arg(long, default_value_t = 0.1)]
        val_share: f32,
        /// At most this many pairs per product of a split.
        #[arg(long, default_value_t = 2.0)]
        pairs_per_product: f32,
    },
    /// Train a model (stage 1: encoders; stage 2: the conditional GAN).
    Train(Box<TrainArgs>),
    /// Draw the curves of a training history (`train --history`) as SVG.
    Curves {
        /// The history: one evaluation a line, as `train --history` writes it.
        #[arg(long)]
        history: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value = "Training")]
        title: String,
    },
    /// The reported figures of a model: Recall@K of the model and the baselines, and wish
    /// precision beside its ceiling on the headline wishes, on the validation split and, apart,
    /// the test split, each over held-out images only; the synthesized images read by a judge
    /// trained on held-out real images.
    Eval {
        #[arg(long)]
        model: PathBuf,
        #[command(flatten)]
        data: DataArgs,
        /// At most this many pairs of each split (0: all).
        #[arg(long, default_value_t = 0)]
        queries: usize,
        /// Leave out the independent judge (it trains for about half a minute).
        #[arg(long)]
        no_judge: bool,
        /// Also write the figures as JSON (the shape of synth_jobs.recall).
        #[arg(long)]
        json: Option<PathBuf>,
        /// Evaluate with this query expansion instead of the model's own.
        #[arg(long)]
        query_expansion: Option<f64>,
    },
    /// One query's page: the top K products of the data set for (reference product, text),
    /// ranked by the GAN and by the composition, with each product's attributes.
    Rank {
        #[arg(long)]
        model: PathBuf,
        #[command(flatten)]
        data: DataArgs,
        /// The reference product's id in the data set; leave out for a text-only query.
        #[arg(long)]
        reference: Option<String>,
        #[arg(long)]
        text: String,
        #[arg(long, default_value_t = 10)]
        k: usize,
        /// Also write the reference and the synthesized image side by side as PNG.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Synthesize the image for (reference image, text) and write it as PNG.
    Generate {
        #[arg(long)]
        model: PathBuf,
        /// Reference image (PNG, JPEG or WebP); leave out for a text-only query.
        #[arg(long)]
        image: Option<PathBuf>,
        #[arg(long)]
        text: String,
        #[arg(long)]
        out: PathBuf,
        /// Noise seed (default: zero noise).
        #[arg(long)]
        seed: Option<u64>,
    },
    /// The walk between two queries as one PNG strip: from (--image, --text) to (--to-image, or
    /// --image again; --to-text, or --text again).
    Walk {
        #[arg(long)]
        model: PathBuf,
        #[arg(long)]
        image: Option<PathBuf>,
        #[arg(long)]
        to_image: Option<PathBuf>,
        #[arg(long)]
        text: String,
        #[arg(long)]
        to_text: Option<String>,
        /// Images along the walk, both ends included.
        #[arg(long, default_value_t = 8)]
        points: usize,
        #[arg(long)]
        out: PathBuf,
        /// Noise seed (default: zero noise).
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Training step time and generation latency at batch 1 and 64.
    Bench {
        #[arg(long, default_value_t = 32)]
        size: i64,
        #[arg(long, default_value_t = 20)]
        iters: usize,
        #[arg(long, default_value_t = 64)]
        batch: usize,
    },
}

#[derive(Args, Clone)]
struct DataArgs {
    /// A data set in the Fashion-IQ layout.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Or: generate a catalog of this many products in memory.
    #[arg(long, default_value_t = 20_000)]
    products: usize,
    #[arg(long, default_value_t = 42)]
    catalog_seed: u64,
    /// Share of the generated products held out for validation (what tuning may read).
    #[arg(long, default_value_t = 0.1)]
    val_share: f32,
    /// Share of the generated products held out for test (read by the reported figure alone).
    #[arg(long, default_value_t = 0.1)]
    test_share: f32,
    /// How the generated catalog is drawn: "clean", or "photo" (framing, silhouette, backdrop,
    /// light and noise vary per product as in product photos).
    #[arg(long, default_value = "clean")]
    variation: synthsearch_data::Variation,
    /// Train on the data's own pairs (a generated catalog's, or a folder's captions), or on pairs
    /// formed from its attribute values (products of one category that differ in one or two
    /// attributes), as from a shop's attribute columns; a folder needs attribute columns for
    /// that (attributes.json or columns.json).
    #[arg(long, value_enum, default_value_t = PairsArg::Catalog)]
    pairs: PairsArg,
    /// With --pairs attributes: at most this many pairs.
    #[arg(long, default_value_t = synthsearch_data::wishes::PairPlan::default().max_pairs)]
    max_pairs: usize,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum PairsArg {
    Catalog,
    Attributes,
}

#[derive(Args)]
struct TrainArgs {
    #[command(flatten)]
    data: DataArgs,
    #[arg(long)]
    out: PathBuf,
    /// Continue the run saved in this checkpoint.
    #[arg(long)]
    resume: Option<PathBuf>,
    /// Keep this model's encoders (and so every stored embedding) and train a new GAN on them;
    /// --encoder-steps is ignored.
    #[arg(long, conflicts_with = "resume")]
    retrain_gan: Option<PathBuf>,
    #[arg(long, default_value_t = 32)]
    size: i64,
    #[arg(long, default_value_t = 64)]
    embed_dim: i64,
    #[arg(long, default_value_t = 16)]
    encoder_width: i64,
    #[arg(long, default_value_t = 12)]
    generator_width: i64,
    #[arg(long, default_value_t = 8)]
    critic_width: i64,
    /// Condition the generator on text and source only, not on the composed embedding.
    #[arg(long)]
    no_compose_condition: bool,
    /// Skip connections from the source pixels, coarsest level first, the pixels themselves last
    /// (default: all of them).
    #[arg(long)]
    pixel_skips: Option<u32>,
    /// Synthetic query expansion: the weight of the composed query in a query's search
    /// embedding (0: the synthesized image's embedding alone).
    #[arg(long, default_value_t = 1.0)]
    query_expansion: f64,
    /// A TorchScript image encoder to use instead of training the CNN.
    #[arg(long)]
    torchscript: Option<PathBuf>,
    #[arg(long)]
    imagenet_norm: bool,
    /// fastText `.vec` word vectors to add to the text encoder.
    #[arg(long)]
    word_vectors: Option<PathBuf>,
    #[arg(long, default_value_t = TrainConfig::default().seed)]
    seed: u64,
    #[arg(long, default_value_t = TrainConfig::default().batch_size)]
    batch: usize,
    #[arg(long, default_value_t = TrainConfig::default().encoder_steps)]
    encoder_steps: u64,
    #[arg(long, default_value_t = TrainConfig::default().gan_steps)]
    gan_steps: u64,
    #[arg(long, value_enum, default_value_t = LossArg::WganGp)]
    gan_loss: LossArg,
    #[arg(long, default_value_t = TrainConfig::default().lr_generator)]
    lr_generator: f64,
    #[arg(long, default_value_t = TrainConfig::default().lr_critic)]
    lr_critic: f64,
    #[arg(long, default_value_t = TrainConfig::default().n_critic)]
    n_critic: usize,
    /// The gradient penalty every this many GAN steps, its weight scaled to match.
    #[arg(long, default_value_t = TrainConfig::default().gp_every)]
    gp_every: u64,
    #[arg(long, default_value_t = TrainConfig::default().adv_weight)]
    adv_weight: f64,
    #[arg(long, default_value_t = TrainConfig::default().triplet_weight)]
    triplet_weight: f64,
    #[arg(long, default_value_t = TrainConfig::default().l1_weight)]
    l1_weight: f64,
    #[arg(long, default_value_t = TrainConfig::default().contrastive_weight)]
    contrastive_weight: f64,
    /// Stage 2: rank E(G) against the batch's targets only, not the whole catalog.
    #[arg(long)]
    contrastive_in_batch: bool,
    #[arg(long, default_value_t = TrainConfig::default().triplet_margin)]
    triplet_margin: f64,
    /// Weight of the perceptual loss (encoder activation maps of generated vs target image).
    #[arg(long, default_value_t = TrainConfig::default().feature_weight)]
    feature_weight: f64,
    /// Weight of the wish loss (every product with the asked values is a positive; needs data
    /// with attributes).
    #[arg(long, default_value_t = TrainConfig::default().wish_weight)]
    wish_weight: f64,
    /// Each near miss of a wish (all of the query's conditions but one) counts as
    /// `1 +` this many negatives in the wish loss.
    #[arg(long, default_value_t = TrainConfig::default().wish_near_miss_weight)]
    wish_near_miss_weight: f64,
    /// Stage 1: random images added to the batch's targets as keys of the wish loss.
    #[arg(long, default_value_t = TrainConfig::default().wish_keys)]
    wish_keys: usize,
    /// Stage 1: rank the wish against the whole catalog, embedded again every this many steps
    /// (0: the batch's keys only).
    #[arg(long, default_value_t = TrainConfig::default().wish_bank_every)]
    wish_bank_every: u64,
    /// Stage 1: weight of the attribute probes on the embeddings and the composed query.
    #[arg(long, default_value_t = TrainConfig::default().attribute_weight)]
    attribute_weight: f64,
    /// Stage 2: the frozen attribute probes on E(G).
    #[arg(long, default_value_t = TrainConfig::default().gan_attribute_weight)]
    gan_attribute_weight: f64,
    /// Stage 2: weight of ranking the catalog as the composed query does (KL divergence).
    #[arg(long, default_value_t = TrainConfig::default().distill_weight)]
    distill_weight: f64,
    /// Stage 2: the catalog-ranking losses on the expanded search embedding, not E(G) alone.
    #[arg(long)]
    expanded_losses: bool,
    /// Stage 2: also train the ablation's head without an image (the GAN's losses on the
    /// embedding, no image) and report its rows beside the GAN's.
    #[arg(long)]
    ablation_head: bool,
    /// Train from the captions alone, as a shop with relative captions and no attribute columns
    /// would: the losses that read attribute values (wish, probes, colour) are off; the values
    /// only measure the result.
    #[arg(long)]
    captions_only: bool,
    /// Stage 2: weight of the colour loss on the generated pixels (needs a colour column).
    #[arg(long, default_value_t = TrainConfig::default().colour_weight)]
    colour_weight: f64,
    #[arg(long, default_value_t = TrainConfig::default().text_only_prob)]
    text_only_prob: f64,
    /// Share of the other GAN samples trained without source pixels (from the embedding alone).
    #[arg(long, default_value_t = TrainConfig::default().pixel_drop_prob)]
    pixel_drop_prob: f64,
    /// Stop (and save) after this many minutes, whatever the step count.
    #[arg(long)]
    minutes: Option<f64>,
    /// Write PNG grids here (source | generated | text-only generated | target).
    #[arg(long)]
    grids: Option<PathBuf>,
    #[arg(long, default_value_t = 500)]
    grid_every: u64,
    #[arg(long, default_value_t = 1000)]
    save_every: u64,
    /// Pairs of each split for the final evaluation (0: all).
    #[arg(long, default_value_t = 0)]
    eval_queries: usize,
    /// Also write the final figures as JSON (the shape of `synth eval --json`).
    #[arg(long)]
    report_json: Option<PathBuf>,
    /// Evaluate every this many steps during training (0: only at the end), on the first
    /// `--eval-sample` validation pairs and a sample of the headline wishes.
    #[arg(long, default_value_t = 0)]
    eval_every: u64,
    #[arg(long, default_value_t = EvalSample::default().queries)]
    eval_sample: usize,
    /// Append each evaluation during training to this file, one JSON object a line (`synth
    /// curves` draws it).
    #[arg(long)]
    history: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum LossArg {
    WganGp,
    NonSaturating,
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("synth: {e}");
        std::process::exit(1);
    }
}

fn device(arg: DeviceArg) -> AnyResult<Device> {
    Ok(match arg {
        DeviceArg::Auto => synthsearch_model::default_device(),
        DeviceArg::Cpu => Device::Cpu,
        DeviceArg::Cuda => {
            if !tch::Cuda::is_available() {
                return Err("CUDA is not available on this machine".into());
            }
            Device::Cuda(0)
        }
    })
}

fn run(cli: Cli) -> AnyResult<()> {
    if let Some(n) = cli.threads {
        synthsearch_model::set_threads(n);
    }
    let dev = device(cli.device)?;
    if dev.is_cuda() {
        tch::Cuda::cudnn_set_benchmark(true);
    }
    match cli.cmd {
        Cmd::Catalog {
            out,
            products,
            size,
            seed,
            variation,
        } => {
            let t = Instant::now();
            let cat = generate_catalog(&CatalogConfig {
                seed,
                products,
                image_size: size,
                variation,
                ..CatalogConfig::default()
            });
            let s = write_fashioniq(&cat, &out, image::ImageFormat::Png)?;
            wrote(&s, &out, t);
            Ok(())
        }
        Cmd::Photos {
            out,
            source,
            products,
            seed,
            val_share,
            pairs_per_product,
        } => {
            use synthsearch_data::photos;
            if !(0.0..=1.0).contains(&val_share) {
                return Err(format!("--val-share {val_share} is not in [0, 1]").into());
            }
            let t = Instant::now();
            let config = photos::PhotoConfig {
                seed,
                products,
                val_share,
                pairs_per_product,
            };
            let catalog = photos::load(&source, &config)?;
            let s = photos::write(&catalog, &out)?;
            print!("{}", catalog.report());
            wrote(&s, &out, t);
            Ok(())
        }
        Cmd::Train(a) => train(*a, dev),
        Cmd::Curves {
            history,
            out,
            title,
        } => {
            let text = std::fs::read_to_string(&history)?;
            let points = text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .enumerate()
                .map(|(i, l)| {
                    serde_json::from_str::<EvalPoint>(l)
                        .map_err(|e| format!("{} line {}: {e}", history.display(), i + 1))
                })
                .collect::<Result<Vec<_>, _>>()?;
            std::fs::write(&out, curves_svg(&points, &title))?;
            eprintln!("{} evaluations drawn in {}", points.len(), out.display());
            Ok(())
        }
        Cmd::Eval {
            model,
            data,
            queries,
            no_judge,
            json,
            query_expansion,
        } => {
            let mut m = Model::from_bytes(&read(&model)?, dev)?;
            if let Some(w) = query_expansion {
                m.set_query_expansion(w)?;
            }
            eprintln!("query expansion {}", m.query_expansion());
            let d = load_data(&data, m.image_size())?;
            report(&m, &d, queries, !no_judge, None, json.as_deref())
        }
        Cmd::Rank {
            model,
            data,
            reference,
            text,
            k,
            out,
        } => {
            let m = Model::from_bytes(&read(&model)?, dev)?;
            let d = load_data(&data, m.image_size())?;
            rank(&m, &d, reference.as_deref(), &text, k, out.as_deref())
        }
        Cmd::Generate {
            model,
            image,
            text,
            out,
            seed,
        } => {
            let m = Model::from_bytes(&read(&model)?, dev)?;
            let s = m.image_size() as u32;
            let chw = read_reference(image.as_deref(), s)?;
            let reference = chw.as_deref().map_or(Reference::None, Reference::Image);
            let g = m.generate(reference, &text, seed)?;
            std::fs::write(&out, chw_to_png(&g.image, s)?)?;
            println!(
                "wrote {} ({} dims embedding)",
                out.display(),
                g.embedding.len()
            );
            Ok(())
        }
        Cmd::Walk {
            model,
            image,
            to_image,
            text,
            to_text,
            points,
            out,
            seed,
        } => {
            let m = Model::from_bytes(&read(&model)?, dev)?;
            let s = m.image_size() as u32;
            let a = read_reference(image.as_deref(), s)?;
            let b = read_reference(to_image.as_deref(), s)?;
            let b = b.or_else(|| a.clone());
            let (ra, rb) = (
                a.as_deref().map_or(Reference::None, Reference::Image),
                b.as_deref().map_or(Reference::None, Reference::Image),
            );
            let to_text = to_text.unwrap_or_else(|| text.clone());
            let walk = m.walk(
                WalkEnd {
                    reference: ra,
                    text: &text,
                },
                WalkEnd {
                    reference: rb,
                    text: &to_text,
                },
                points,
                seed,
            )?;
            let images = walk
                .iter()
                .map(|(_, g)| from_chw(&g.image, s))
                .collect::<Result<Vec<_>, _>>()?;
            std::fs::write(&out, grid_png(&images, images.len(), 2)?)?;
            println!(
                "wrote {} ({} images, {text:?} to {to_text:?})",
                out.display(),
                images.len()
            );
            Ok(())
        }
        Cmd::Bench { size, iters, batch } => bench(dev, size, iters, batch),
    }
}

/// A reference image file decoded to CHW floats at the model's size; `None` without a file.
/// The page of one query by the GAN and by the composition (`synth rank`).
fn rank(
    m: &Model,
    d: &Dataset,
    reference: Option<&str>,
    text: &str,
    k: usize,
    out: Option<&Path>,
) -> AnyResult<()> {
    let r = match reference {
        Some(id) => Some(
            d.ids
                .iter()
                .position(|i| i == id)
                .ok_or_else(|| format!("no product {id:?} in the data set"))?,
        ),
        None => None,
    };
    let s = m.image_size();
    let px = r
        .map(|r| Vec::<f32>::try_from(&d.batch(&[r]).flatten(0, -1)))
        .transpose()?;
    let reference_arg = px.as_deref().map_or(Reference::None, Reference::Image);
    let g = m.generate(reference_arg, text, None)?;
    let composed = m.compose(reference_arg, text)?;
    let all: Vec<usize> = (0..d.len()).collect();
    let mut gallery = Vec::with_capacity(d.len());
    for chunk in all.chunks(256) {
        let x = d.batch(chunk).to_device(m.device());
        let e = tch::no_grad(|| m.encode_tensor(&x))?.to_device(Device::Cpu);
        let flat = Vec::<f32>::try_from(&e.flatten(0, -1))?;
        gallery.extend(flat.chunks(m.embed_dim()).map(<[f32]>::to_vec));
    }
    let describe = |i: usize| -> String {
        let mut s = d.categories[i].clone();
        if let Some(t) = &d.attributes {
            for (c, col) in t.columns.iter().enumerate() {
                if let Some(v) = t.value(i, c) {
                    s.push_str(&format!(" {col}={v}"));
                }
            }
        }
        s
    };
    if let Some(r) = r {
        println!("reference {}: {}", d.ids[r], describe(r));
    }
    for (name, q) in [
        ("SynthTriplet GAN", &g.embedding),
        ("composition", &composed),
    ] {
        let mut order: Vec<(f64, usize)> = gallery
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != r)
            .map(|(i, e)| (synthsearch_vector::distance::l2_distance(q, e), i))
            .collect();
        order.sort_by(|a, b| a.0.total_cmp(&b.0));
        println!("\n{name}, {text:?}:");
        for (n, (dist, i)) in order.iter().take(k).enumerate() {
            println!("{:>3} {:.4} {} {}", n + 1, dist, d.ids[*i], describe(*i));
        }
    }
    if let Some(out) = out {
        let mut tiles = Vec::new();
        if let Some(px) = &px {
            tiles.push(from_chw(px, s as u32)?);
        }
        tiles.push(from_chw(&g.image, s as u32)?);
        // Eight times the model's size, nearest neighbour, to be looked at.
        let tiles: Vec<_> = tiles
            .iter()
            .map(|t| {
                image::imageops::resize(
                    t,
                    8 * s as u32,
                    8 * s as u32,
                    image::imageops::FilterType::Nearest,
                )
            })
            .collect();
        std::fs::write(out, grid_png(&tiles, tiles.len(), 16)?)?;
    }
    Ok(())
}

fn read_reference(p: Option<&Path>, size: u32) -> AnyResult<Option<Vec<f32>>> {
    p.map(|p| Ok(to_chw(&decode(&read(p)?, &DecodeLimits::default())?, size)))
        .transpose()
}

fn read(p: &Path) -> AnyResult<Vec<u8>> {
    std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()).into())
}

fn load_data(a: &DataArgs, size: usize) -> AnyResult<Dataset> {
    let t = Instant::now();
    let plan = synthsearch_data::wishes::PairPlan {
        seed: a.catalog_seed,
        max_pairs: a.max_pairs,
        ..Default::default()
    };
    let d = match &a.data {
        Some(dir) => {
            let d = Dataset::from_fashioniq(dir, size)?;
            match a.pairs {
                PairsArg::Catalog => d,
                PairsArg::Attributes => d.with_pairs_from_attributes(&plan)?,
            }
        }
        None => {
            let cat = generate_catalog(&CatalogConfig {
                seed: a.catalog_seed,
                products: a.products,
                image_size: size as u32,
                split_shares: [1.0 - a.val_share - a.test_share, a.val_share, a.test_share],
                variation: a.variation,
                ..CatalogConfig::default()
            });
            match a.pairs {
                PairsArg::Catalog => Dataset::from_catalog(&cat, size)?,
                PairsArg::Attributes => Dataset::from_catalog_attributes(&cat, size, &plan)?,
            }
        }
    };
    eprintln!(
        "data: {} images, {} train pairs, {} val pairs, {} test pairs ({:.1} s)",
        d.len(),
        d.train.len(),
        d.val.len(),
        d.test.len(),
        t.elapsed().as_secs_f64()
    );
    Ok(d)
}

/// What a folder writer wrote, and how long it took.
fn wrote(s: &synthsearch_data::WriteSummary, out: &Path, t: Instant) {
    println!(
        "wrote {} images ({} bytes) and {} pairs to {} in {:.1} s",
        s.images,
        s.image_bytes,
        s.pairs,
        out.display(),
        t.elapsed().as_secs_f64()
    );
}

fn hms(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

fn train(a: TrainArgs, dev: Device) -> AnyResult<()> {
    let started = Instant::now();
    let generator = GeneratorConfig {
        width: a.generator_width,
        critic_width: a.critic_width,
        compose_condition: !a.no_compose_condition,
        pixel_skips: a.pixel_skips,
        query_expansion: Some(a.query_expansion),
        ..GeneratorConfig::default()
    };
    let cfg = TrainConfig {
        seed: a.seed,
        batch_size: a.batch,
        encoder_steps: a.encoder_steps,
        gan_steps: a.gan_steps,
        lr_generator: a.lr_generator,
        lr_critic: a.lr_critic,
        gan_loss: match a.gan_loss {
            LossArg::WganGp => GanLoss::WassersteinGp,
            LossArg::NonSaturating => GanLoss::NonSaturating,
        },
        n_critic: a.n_critic,
        gp_every: a.gp_every,
        adv_weight: a.adv_weight,
        triplet_weight: a.triplet_weight,
        l1_weight: a.l1_weight,
        contrastive_weight: a.contrastive_weight,
        contrastive_catalog: !a.contrastive_in_batch,
        feature_weight: a.feature_weight,
        triplet_margin: a.triplet_margin,
        text_only_prob: a.text_only_prob,
        pixel_drop_prob: a.pixel_drop_prob,
        wish_weight: a.wish_weight,
        wish_near_miss_weight: a.wish_near_miss_weight,
        wish_keys: a.wish_keys,
        wish_bank_every: a.wish_bank_every,
        attribute_weight: a.attribute_weight,
        gan_attribute_weight: a.gan_attribute_weight,
        colour_weight: a.colour_weight,
        distill_weight: a.distill_weight,
        expanded_losses: a.expanded_losses,
        ablation_head: a.ablation_head,
        ..TrainConfig::default()
    };
    let cfg = if a.captions_only {
        TrainConfig {
            wish_weight: 0.0,
            attribute_weight: 0.0,
            gan_attribute_weight: 0.0,
            colour_weight: 0.0,
            ..cfg
        }
    } else {
        cfg
    };
    let mut trainer = if let Some(p) = &a.resume {
        let bytes = read(p)?;
        let peek = Model::from_bytes(&bytes, Device::Cpu)?;
        let data = shared(load_data(&a.data, peek.image_size())?);
        let mut t = Trainer::resume(&bytes, data, dev)?;
        t.set_gan_steps(a.gan_steps);
        eprintln!("resumed at step {}", t.steps_done());
        t
    } else if let Some(p) = &a.retrain_gan {
        let model = Model::from_bytes(&read(p)?, dev)?;
        let data = shared(load_data(&a.data, model.image_size())?);
        tch::manual_seed(a.seed as i64);
        eprintln!("training a new GAN on encoder {}", model.encoder_version()?);
        Trainer::retrain_gan(model, generator, cfg, data)?
    } else {
        let data = shared(load_data(&a.data, a.size as usize)?);
        tch::manual_seed(a.seed as i64);
        let (kind, script) = match &a.torchscript {
            Some(p) => (
                EncoderKind::TorchScript {
                    imagenet_norm: a.imagenet_norm,
                },
                Some(read(p)?),
            ),
            None => (
                EncoderKind::Cnn {
                    width: a.encoder_width,
                },
                None,
            ),
        };
        let word_vectors = match &a.word_vectors {
            Some(p) => Some(WordVectors::read_file(p)?),
            None => None,
        };
        let init = ModelInit {
            encoder: EncoderConfig {
                kind,
                image_size: a.size,
                embed_dim: a.embed_dim,
                ..EncoderConfig::default()
            },
            generator,
            word_vectors,
            script,
        };
        Trainer::new(Model::new(init, dev)?, cfg, data)?
    };
    if let Some(dir) = &a.grids {
        std::fs::create_dir_all(dir)?;
    }
    let total = trainer.total_steps();
    let t0 = Instant::now();
    let first = trainer.steps_done();
    let mut last_print = Instant::now();
    let deadline = a.minutes.map(|m| m * 60.0);
    let sample = EvalSample {
        queries: a.eval_sample,
        ..EvalSample::default()
    };
    let mut history = match &a.history {
        Some(p) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)?,
        ),
        None => None,
    };
    // Mean of each loss since the previous evaluation.
    let mut since = LossMeans::default();
    let mut eval_seconds = 0.0;
    while !trainer.is_done() {
        let r = trainer.step()?;
        let done = r.step;
        let out_of_time = deadline.is_some_and(|d| started.elapsed().as_secs_f64() > d);
        since.add(&r.losses);
        // Every eval_every steps, and once more at the end (on the same sample).
        let last = done == total || out_of_time;
        if a.eval_every > 0 && (done % a.eval_every == 0 || last) {
            let losses = since.take();
            let stage = format!("{:?}", r.stage).to_lowercase();
            let p = evaluate_point(
                trainer.model(),
                trainer.data(),
                &sample,
                done,
                &stage,
                losses,
            )?;
            eval_seconds += p.seconds;
            let r10 = |m: &str| p.recall_at_10().get(m).copied().unwrap_or(f64::NAN);
            eprintln!(
                "eval at step {done} ({:.1} s): R@10 GAN {:.3} composition {:.3}; wish P@10 GAN {:.3}",
                p.seconds,
                r10("gan"),
                r10("composition"),
                p.precision_at_10().get("gan").copied().unwrap_or(f64::NAN)
            );
            if let Some(f) = history.as_mut() {
                use std::io::Write as _;
                writeln!(f, "{}", serde_json::to_string(&p)?)?;
            }
        }
        if last_print.elapsed().as_secs_f64() > 5.0 || done == total || done == first + 1 {
            last_print = Instant::now();
            let rate = (done - first) as f64 / t0.elapsed().as_secs_f64();
            let losses: Vec<String> = r
                .losses
                .iter()
                .map(|(n, v)| format!("{n}={v:.4}"))
                .collect();
            eprintln!(
                "step {done}/{total} [{:?}] {}  {rate:.2} steps/s  elapsed {}  left {}",
                r.stage,
                losses.join(" "),
                hms(started.elapsed().as_secs_f64()),
                hms((total - done) as f64 / rate.max(1e-9))
            );
        }
        if let Some(dir) = a
            .grids
            .as_ref()
            .filter(|_| done % a.grid_every == 0 || done == total)
        {
            write_grid(trainer.model(), trainer.data(), dir, done)?;
        }
        if done % a.save_every == 0 {
            std::fs::write(&a.out, trainer.save()?)?;
        }
        if out_of_time {
            eprintln!("time limit reached at step {done}");
            break;
        }
    }
    std::fs::write(&a.out, trainer.save()?)?;
    let train_secs = started.elapsed().as_secs_f64();
    eprintln!(
        "saved {} after {} (encoder {}, generator {})",
        a.out.display(),
        hms(train_secs),
        trainer.model().encoder_version()?,
        trainer.model().generator_version()?
    );
    let steps_per_second = (trainer.steps_done() - first) as f64 / t0.elapsed().as_secs_f64();
    println!(
        "trained {} steps in {} ({steps_per_second:.2} steps/s, {eval_seconds:.1} s of it evaluating)",
        trainer.steps_done(),
        hms(train_secs),
    );
    report(
        trainer.model(),
        trainer.data(),
        a.eval_queries,
        true,
        trainer.ablation_head(),
        a.report_json.as_deref(),
    )
}

/// The reported figures ([`synthsearch_model::final_evaluation`]'s, printed as tables): the
/// validation split, then the test split, each over its own held-out images.
fn report(
    m: &Model,
    d: &Dataset,
    queries: usize,
    judge: bool,
    head: Option<&DirectHead>,
    json: Option<&Path>,
) -> AnyResult<()> {
    let t = Instant::now();
    let reading = if judge {
        held_out_judge(d, &JudgeConfig::default(), m.device())?
    } else {
        None
    };
    if let Some(r) = &reading {
        println!(
            "judge: trained on {} held-out images, measured on {} others ({:.1} s)",
            r.trained_on,
            r.measured_on,
            t.elapsed().as_secs_f64()
        );
    }
    let mut out = serde_json::Map::new();
    for split in [Split::Val, Split::Test] {
        if d.images_in(split).is_empty() {
            continue;
        }
        let t = Instant::now();
        let sample = EvalSample {
            split,
            queries,
            wishes: Some(WishEvalConfig::default()),
        };
        let f = split_figures(m, d, &sample, reading.as_ref(), head)?;
        let r = &f.recall;
        println!(
            "\n## {} split: {} pairs, mean gallery {:.0} held-out images\n\n{}",
            split.name(),
            r.queries,
            r.mean_gallery,
            r.table()
        );
        if let Some(w) = &f.wishes {
            println!(
                "Headline wishes, {} split ({:.1} s):\n{}",
                split.name(),
                t.elapsed().as_secs_f64(),
                w.table()
            );
        }
        let figures = f.final_json();
        out.insert(split.name().to_string(), figures);
    }
    if let Some(path) = json {
        std::fs::write(path, serde_json::to_string_pretty(&out)?)?;
    }
    Ok(())
}

/// A grid of rows (source | synthesized | synthesized from the text alone | target) for the first
/// validation pairs, and the wish of each row in a text file beside it.
fn write_grid(m: &Model, d: &Dataset, dir: &Path, step: u64) -> AnyResult<()> {
    let p = preview(m, d, 8, 96)?;
    std::fs::write(dir.join(format!("grid-{step:06}.png")), &p.png)?;
    let rows: Vec<String> = p
        .wishes
        .iter()
        .enumerate()
        .map(|(i, t)| format!("row {}: {t}", i + 1))
        .collect();
    std::fs::write(
        dir.join(format!("grid-{step:06}.txt")),
        format!("columns: {PREVIEW_COLUMNS}\n{}\n", rows.join("\n")),
    )?;
    Ok(())
}

fn bench(dev: Device, size: i64, iters: usize, batch: usize) -> AnyResult<()> {
    let products = (batch * 4).max(400);
    let cat = generate_catalog(&CatalogConfig {
        products,
        image_size: size as u32,
        ..CatalogConfig::default()
    });
    let data = shared(Dataset::from_catalog(&cat, size as usize)?);
    tch::manual_seed(1);
    let init = ModelInit {
        encoder: EncoderConfig {
            image_size: size,
            ..EncoderConfig::default()
        },
        ..ModelInit::default()
    };
    let cfg = TrainConfig {
        batch_size: batch.min(data.train.len()),
        encoder_steps: iters as u64 + 2,
        gan_steps: iters as u64 + 2,
        ..TrainConfig::default()
    };
    let mut t = Trainer::new(Model::new(init, dev)?, cfg, data)?;
    let sync = || {
        if dev.is_cuda() {
            tch::Cuda::synchronize(0);
        }
    };
    // Each call is timed on its own and the median reported: on a shared machine a mean over
    // the loop takes in whatever else ran meanwhile.
    let median_ms = |mut v: Vec<f64>| -> f64 {
        v.sort_by(f64::total_cmp);
        let n = v.len();
        if n == 0 {
            f64::NAN
        } else if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        }
    };
    let time_steps = |t: &mut Trainer| -> AnyResult<f64> {
        for _ in 0..2 {
            t.step()?;
        }
        sync();
        let mut each = Vec::with_capacity(iters);
        for _ in 0..iters {
            let s = Instant::now();
            t.step()?;
            sync();
            each.push(s.elapsed().as_secs_f64() * 1000.0);
        }
        Ok(median_ms(each))
    };
    let enc_ms = time_steps(&mut t)?;
    let gan_ms = time_steps(&mut t)?;
    let m = t.model();
    let mut gen_ms = Vec::new();
    for b in [1usize, 64] {
        let es = Tensor::randn([b as i64, m.embed_dim() as i64], (Kind::Float, dev));
        let one = Tensor::ones([b as i64, 1], (Kind::Float, dev));
        let texts = vec![vec!["in".to_string(), "black".into(), "leather".into()]; b];
        let z = m.noise(b, None);
        let px = Tensor::zeros([b as i64, 3, size, size], (Kind::Float, dev));
        let run = || {
            tch::no_grad(|| {
                m.generate_tensor(&es, &one, Some(&px), &texts, &z)
                    .map(|_| ())
            })
        };
        for _ in 0..3 {
            run()?;
        }
        sync();
        let mut each = Vec::with_capacity(iters * 5);
        for _ in 0..iters * 5 {
            let s = Instant::now();
            run()?;
            sync();
            each.push(s.elapsed().as_secs_f64() * 1000.0);
        }
        gen_ms.push(median_ms(each));
    }
    let machine = if dev.is_cuda() {
        "CUDA device 0".to_string()
    } else {
        format!("CPU, {} libtorch threads", tch::get_num_threads())
    };
    println!(
        "machine: {machine}; images {size}x{size}; training batch {batch}; medians of single calls"
    );
    println!("| work | ms |\n| --- | ---: |");
    println!("| stage-1 step (encoders, contrastive), batch {batch} | {enc_ms:.2} |");
    println!(
        "| stage-2 step (WGAN-GP critic + generator; triplet, L1, contrastive, perceptual), batch {batch} | {gan_ms:.2} |"
    );
    println!("| generate + embed, batch 1 | {:.3} |", gen_ms[0]);
    println!("| generate + embed, batch 64 | {:.3} |", gen_ms[1]);
    Ok(())
}
