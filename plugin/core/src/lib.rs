//! Sluice's decision logic, pure and host-free: `config` (what operators write), `compile`
//! (config → `plan`, with every check), `engine` (plan + request → `decision`), `pipeline` (the
//! one request pipeline: facts in, header patch out), and the per-VM state the filter keeps
//! (`vm`: stats, guards; `poll`: Unleash polling). The host is reached only through `host`'s
//! traits, so everything here builds and is tested natively.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod bucket;
pub mod chain_metrics;
pub mod compile;
pub mod config;
pub mod decision;
pub mod engine;
pub mod guard;
pub mod header_map;
pub mod host;
pub mod notify;
pub mod pipeline;
pub mod plan;
pub mod poll;
pub mod sequential;
pub mod slots;
pub mod spring;
pub mod telemetry;
pub mod token;
pub mod usage;
pub mod vm;
