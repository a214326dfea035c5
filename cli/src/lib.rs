//! The `sluice` operator CLI's library: what the binary and `sluice-demo` share.
//!
//! - [`report`]: per-user tallies (shares, stickiness, users who moved forward or backward between
//!   rounds) and the tables both print;
//! - [`locate`]: a config path (`routes.reviews.guard.max_error_rate`) back to its line and column;
//! - [`lint`]: warnings for configs that load but are likely mistakes;
//! - [`analysis`]: `sluice analyze`'s stats parsing and significance tests.
//!
//! The binary (feature `tool`, on by default) adds the subcommands; see `sluice --help`.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod analysis;
pub mod lint;
pub mod locate;
pub mod report;
