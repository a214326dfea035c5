//! Small parsers and a hash shared by the Sluice filter and its Unleash
//! evaluator. Written here rather than pulled from crates so the .wasm stays
//! small; each module is one job with its own tests.
pub mod cidr;
pub mod duration;
pub mod json;
mod murmur3;
pub mod semver;
pub mod time;

pub use murmur3::{murmur3_x86_32, murmur3_x86_32_parts, Murmur3};
