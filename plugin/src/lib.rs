//! Sluice: progressive delivery inside the proxy.
//!
//! The decision logic is pure and host-free: `config` (what operators write),
//! `compile` (config → `plan`, with every check), `engine` (plan + request →
//! `decision`). The proxy-wasm glue in `glue` only gathers the request,
//! asks the engine and applies the decision.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod bucket;
pub mod compile;
pub mod config;
pub mod decision;
pub mod engine;
pub mod guard;
pub mod header_map;
pub mod plan;
pub mod telemetry;
pub mod unleash;

#[cfg(target_arch = "wasm32")]
mod glue;
