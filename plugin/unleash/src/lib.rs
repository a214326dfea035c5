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
//! For a request, the filter evaluates every feature by id, which skips the
//! name lookup and reads each strategy once:
//!
//! ```
//! # use sluice_unleash::{Context, Engine, Payload};
//! # let engine = Engine::new(Payload::from_json(r#"{"version": 2}"#)?);
//! # let ctx = Context::new();
//! for (id, name) in engine.features() {
//!     let result = engine.evaluate(id, &ctx); // feature_enabled, variant name, payload
//!     let _ = (name, result.feature_enabled, result.name);
//! }
//! # Ok::<(), sluice_unleash::Error>(())
//! ```
//!
//! What it does where the specification is silent (each matches Unleash's
//! Rust engine, Yggdrasil, unless noted):
//! - A payload with a wrong type (`"enabled": "yes"`) is an [`Error`] naming
//!   its path; unknown fields are ignored and `null` reads as absent. Unknown
//!   strategies and operators, operands that do not parse (numbers, dates,
//!   semvers, regexes) and missing segments or parents do not fail the
//!   payload: they evaluate to off, even under `inverted`, and are listed in
//!   [`Engine::warnings`].
//! - The engine reads no clock and no randomness: the caller puts the time
//!   ([`Context::current_time_millis`], for DATE_* on `currentTime`) and a
//!   random source ([`Context::random`], for `random` stickiness and
//!   gradualRolloutRandom) into the context, and the hostname for
//!   applicationHostname ([`Context::hostname`]).
//! - A feature's variant comes from the first strategy that is on when that
//!   strategy has variants that yield one, else from the feature's variants
//!   (as the Node SDK does; Yggdrasil looks only at strategies that declare
//!   variants). Strategy variants are placed by their own stickiness, else
//!   the strategy's; variants whose weights are all zero yield none, even
//!   for an override (Node SDK).
//! - Default stickiness is userId, then sessionId, then random; a missing
//!   custom stickiness field turns a rollout off but draws a variant at
//!   random.
//! - STR_* operators honour `caseInsensitive` with Unicode lower-casing
//!   (without allocating for ASCII); IN and NOT_IN are always exact.
//! - The `regex` feature (default) brings regex-lite for REGEX; without it,
//!   REGEX constraints never match.
//!
//! One job per module: [`model`] reads payloads, [`delta`] patches them,
//! `constraints`, `strategies` and `variants` compile and evaluate their
//! part, [`hashing`] is Unleash's bucketing, [`engine`] ties them together
//! per feature.
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
#[cfg(feature = "regex")]
mod regex;
mod strategies;
mod variants;

pub use context::{Context, RandomSource};
pub use delta::{Delta, DeltaEvent};
pub use engine::{Engine, FeatureId, VariantResult, Warning, DISABLED_VARIANT};
pub use model::{Error, Payload, VariantPayload};
