//! Sluice's request path, kept apart from the configure-time code so each can be built for what
//! it does (this crate for speed, sluice-core's config reading and compiling for size): `plan`
//! (a compiled config), `engine` (plan + request → `decision`), `pipeline` (the one request
//! pipeline: facts in, header patch out), and what they use per request (`bucket`, `slots`,
//! `header_map`, `token`, `spring_flags`). sluice-core re-exports every module under its own
//! name.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod bucket;
pub mod decision;
pub mod engine;
pub mod header_map;
pub mod pipeline;
pub mod plan;
pub mod salt_table;
pub mod slots;
pub mod spring_flags;
pub mod token;
