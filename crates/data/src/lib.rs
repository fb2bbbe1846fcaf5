//! Training data: the synthetic catalog generator, real product photos (Fashion-MNIST), the
//! Fashion-IQ reader and the image pipeline.
//! No PostgreSQL and no libtorch here, so everything is tested with plain `cargo test`.

pub mod attributes;
mod captions;
pub mod catalog;
pub mod fashioniq;
pub mod image_io;
pub mod measure;
pub mod photos;
pub mod render;
mod rng;
pub mod wishes;
mod writer;

pub use attributes::{
    AttributeKind, Attributes, Category, Colour, Hem, Material, Neckline, Pattern, Sleeve, Split,
    UnknownName,
};
pub use catalog::{Catalog, CatalogConfig, Pair, Product, generate};
pub use render::{Variation, render};
pub use writer::{WriteError, WriteSummary, write_fashioniq};
