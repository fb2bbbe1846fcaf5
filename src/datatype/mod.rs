//! The `embedding` type: a float4 vector of 1..16000 dimensions.

mod functions;
mod io;
pub mod memory;
