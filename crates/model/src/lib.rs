//! The SynthTriplet model: encoders, conditional generator and critic, training and evaluation.
//! No PostgreSQL here: the database glue loads a [`Model`] from checkpoint bytes, calls
//! [`Model::encode_images`], [`Model::generate`] and [`Model::compose`], and drives a
//! [`Trainer`] step by step.

pub mod checkpoint;
pub mod config;
pub mod dataset;
pub mod error;
pub mod eval;
pub mod history;
pub mod judge;
pub mod model;
pub mod nets;
pub mod optim;
pub mod rng;
pub mod text;
pub mod train;

pub use config::{EncoderConfig, EncoderKind, GanLoss, GeneratorConfig, TextConfig, TrainConfig};
pub use dataset::{AttributeTable, Dataset, pairs_from_attributes};
pub use error::{ModelError, Result};
pub use eval::{
    EvalReport, JudgeReading, Method, PREVIEW_COLUMNS, Preview, WishEvalConfig, WishGroup,
    WishReport, evaluate, evaluate_wishes, held_out_judge, preview,
};
pub use history::{
    EvalPoint, EvalSample, LossMeans, SplitFigures, curves_svg, evaluate_point, final_evaluation,
    split_figures,
};
pub use judge::{Judge, JudgeConfig, JudgeHead};
pub use model::{Generated, MAX_WALK_POINTS, Model, ModelInit, Reference, WalkEnd};
pub use text::WordVectors;
pub use train::{Stage, StepReport, Trainer};

/// CUDA when present, else the CPU.
pub fn default_device() -> tch::Device {
    tch::Device::cuda_if_available()
}

/// Caps libtorch's intra-op threads (a server has many backends).
pub fn set_threads(n: usize) {
    tch::set_num_threads(n.clamp(1, 1024) as i32);
}
