//! The model inside PostgreSQL: the registry, the per-backend model cache, the `synthquery` type
//! and the SQL functions that encode images and synthesize queries.

pub mod cache;
pub mod functions;
pub mod query;
pub mod registry;
