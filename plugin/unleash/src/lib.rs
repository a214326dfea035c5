//! Unleash at the edge: the client-API payload model and its evaluation,
//! pure Rust (no host calls), conforming to the Unleash client
//! specification 6.1.0.
//!
//! ```
//! use sluice_unleash::{Context, Engine, Payload};
//!
//! let payload = Payload::from_json(r#"{"version": 2, "features": [
//!     {"name": "checkout", "enabled": true, "strategies": [
//!         {"name": "flexibleRollout",
//!          "parameters": {"rollout": "100", "stickiness": "default", "groupId": "checkout"}}
//!     ]}
//! ]}"#)?;
//! let engine = Engine::new(payload);
//! let ctx = Context::new().user_id("u-42");
//! assert!(engine.is_enabled("checkout", &ctx));
//! assert_eq!(engine.variant("checkout", &ctx).name, "disabled");
//! # Ok::<(), sluice_unleash::Error>(())
//! ```
//!
//! One job per module: [`model`] reads payloads, [`delta`] patches them,
//! `constraints`, `strategies` and `variants` compile and evaluate their
//! part, [`engine`] ties them together per feature.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod constraints;
mod context;
pub mod delta;
pub mod engine;
pub mod hashing;
mod json;
pub mod model;
mod strategies;
mod variants;

pub use context::{Context, RandomSource};
pub use delta::{Delta, DeltaEvent};
pub use engine::{Engine, FeatureId, VariantResult, Warning, DISABLED_VARIANT};
pub use model::{Error, Payload, VariantPayload};
