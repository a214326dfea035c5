//! Sluice's decision logic, pure and host-free: `config` (what operators write), `compile`
//! (config → `plan`, with every check), `engine` (plan + request → `decision`), `pipeline` (the
//! one request pipeline: facts in, header patch out), and the per-VM state the filter keeps
//! (`vm`: stats, guards; `poll`: Unleash polling). The host is reached only through `host`'s
//! traits, so everything here builds and is tested natively.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod chain_metrics;
pub mod compile;
pub mod config;
pub mod guard;
pub mod host;
pub mod notify;
pub mod poll;
pub mod sequential;
pub mod spring;
pub mod telemetry;
pub mod usage;
pub mod vm;

// The request path is its own crate (built for speed; this one's configure-time code for size),
// re-exported so every path stays `sluice_core::plan`, `sluice_core::pipeline`, ...
pub use sluice_engine::{bucket, decision, engine, header_map, pipeline, plan, slots, token};
