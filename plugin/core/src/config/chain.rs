//! Config for rollouts across services: decisions signed and carried down the
//! call chain in baggage, releases that span routes, and version requirements.
use super::{BucketBy, Condition, Named, Step};

/// Signed decisions. The first Sluice on a request's path decides and signs;
/// every later one verifies and keeps those decisions.
#[derive(Debug)]
pub struct Chain {
    /// HMAC keys. The first signs; every one verifies (two while rotating).
    pub keys: Vec<ChainKey>,
    /// How long a token is honoured after it was first signed.
    pub ttl: String,
    /// Tokens longer than this (bytes, as written in baggage) are ignored.
    pub max_token_bytes: u64,
    /// The decisions' revision, signed into every token: tokens naming
    /// another (and not in `accept_revisions`) are re-decided. Defaults to
    /// the config's `revision`; set it to keep decisions across pushes that
    /// should not move users (a key rotation, a weight change).
    pub revision: Option<String>,
    /// Older revisions whose tokens are still honoured (while a push rolls
    /// through the mesh).
    pub accept_revisions: Vec<String>,
}

/// One HMAC key: its secret inline or, better, from the VM's environment.
#[derive(Debug)]
pub struct ChainKey {
    pub id: String,
    pub secret: Option<String>,
    /// Environment variable holding the secret (Istio: WasmPlugin `vmConfig.env`).
    pub env: Option<String>,
}

pub(super) fn default_ttl() -> String {
    "10m".to_string()
}

pub(super) fn default_max_token_bytes() -> u64 {
    4096
}

/// A release: several routes' versions that roll out as one cohort.
#[derive(Debug)]
pub struct Release {
    /// Route name → the version the release brings (the route's canary).
    pub routes: Named<String>,
    /// Percent of users in the release before the first step.
    pub weight: f64,
    pub start: Option<String>,
    pub steps: Vec<Step>,
    /// Ordered conditions that put a request in (or keep it out of) the release.
    pub pins: Vec<ReleasePin>,
    pub bucket_by: Option<BucketBy>,
    pub salt: Option<String>,
}

#[derive(Debug)]
pub struct ReleasePin {
    pub when: Condition,
    /// `true`: in the release; `false`: out of it.
    pub member: bool,
}

/// What a route version needs of the same user: another route's version or a
/// flag's variant.
#[derive(Debug)]
pub struct Requirement {
    pub route: Option<String>,
    pub version: Option<String>,
    pub flag: Option<String>,
    pub variant: Option<String>,
}
