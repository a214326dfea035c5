//! The evaluation plan: a config compiled once (names interned to indices,
//! header names lower-cased, CIDRs, semvers, times and weights parsed) so that
//! evaluating a request only walks data.
use crate::bucket::BUCKETS;
use sluice_primitives::cidr::Cidr;
use sluice_primitives::semver::Version;
use std::rc::Rc;

/// Index of a header in `Plan::headers` (the request headers the plan reads).
pub type HeaderId = usize;

#[derive(Debug)]
pub struct Plan {
    pub revision: String,
    /// Lower-cased request headers the plan reads, each once.
    pub headers: Vec<String>,
    /// Where `cookie` sits in `headers`, when cookies are read.
    pub cookie_header: Option<HeaderId>,
    pub reads_source_address: bool,
    pub reads_clock: bool,
    pub user_key: Vec<Subject>,
    pub session_key: Vec<Subject>,
    pub flags: Vec<FlagPlan>,
    /// Flag indices with prerequisites before dependants.
    pub flag_order: Vec<usize>,
    pub routes: Vec<RoutePlan>,
    pub overrides: Option<OverridePlan>,
    pub flags_header: Option<String>,
    pub baggage_prefix: Option<String>,
    /// Where the incoming `baggage` header sits in `headers`, when baggage is written.
    pub baggage_header: Option<HeaderId>,
    /// Every request header Sluice writes; incoming copies are removed.
    pub owned_headers: Vec<String>,
    pub unleash: Option<UnleashPlan>,
    /// Incoming flag decisions from these peers are kept (see `outputs.trust_incoming_from`).
    pub trusted_peers: Vec<Cidr>,
    /// Where the incoming flags header sits in `headers`, when peers are trusted.
    pub incoming_flags_header: Option<HeaderId>,
}

/// A request fact a condition or key reads.
#[derive(Debug, Clone, PartialEq)]
pub enum Subject {
    Header(HeaderId),
    Cookie(String),
    Query(String),
    Path,
    Method,
    Authority,
    SourceAddress,
}

#[derive(Debug, Clone)]
pub enum Cond {
    All(Vec<Cond>),
    Any(Vec<Cond>),
    Not(Box<Cond>),
    Leaf(Leaf),
}

#[derive(Debug, Clone)]
pub struct Leaf {
    pub subject: Subject,
    pub op: Op,
    pub ignore_case: bool,
    pub negate: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Eq,
    Gt,
    Gte,
    Lt,
    Lte,
}

#[derive(Debug, Clone)]
pub enum Op {
    /// Operand lower-cased already when `ignore_case`.
    Equals(String),
    In(Vec<String>),
    Prefix(String),
    Suffix(String),
    Contains(String),
    Number(Cmp, f64),
    Semver(Cmp, Version),
    Cidr(Vec<Cidr>),
    Present(bool),
}

/// A flag's variants are indices into `variants`.
pub type VariantId = usize;

#[derive(Debug)]
pub struct FlagPlan {
    pub name: String,
    pub variant_names: Vec<String>,
    /// Each variant's value as written to the flag's own header.
    pub variant_values: Vec<String>,
    pub default: VariantId,
    pub off_variant: VariantId,
    pub enabled: bool,
    pub prerequisites: Vec<(usize, Vec<VariantId>)>,
    pub rules: Vec<RulePlan>,
    pub enable_at_ms: Option<i64>,
    pub ramp: Option<RampPlan>,
    pub key: KeyPlan,
    pub header: Option<String>,
}

#[derive(Debug)]
pub struct RulePlan {
    pub when: Option<Cond>,
    pub serve: Serve,
}

#[derive(Debug)]
pub enum Serve {
    Variant(VariantId),
    Rollout(Rollout),
}

/// Weighted choice over buckets: entry i owns buckets
/// `[upper[i-1], upper[i])`. Order is fixed by the config, so growing one
/// entry's weight while others shrink only moves users into it.
#[derive(Debug, Clone)]
pub struct Rollout {
    pub upper: Vec<(u32, usize)>,
}

impl Rollout {
    pub fn pick(&self, bucket: u32) -> usize {
        for (upper, choice) in &self.upper {
            if bucket < *upper {
                return *choice;
            }
        }
        // Weights sum to BUCKETS (checked at compile time); fall back to the last.
        self.upper.last().map_or(0, |(_, c)| *c)
    }
}

/// How a flag or route hashes users.
#[derive(Debug, Clone)]
pub struct KeyPlan {
    pub salt: String,
    pub session_first: bool,
    pub random_without_identity: bool,
}

/// Linear share of users (in basis points) from `from` at `start_ms` to `to`
/// at `start_ms + duration_ms`.
#[derive(Debug, Clone)]
pub struct RampPlan {
    pub start_ms: i64,
    pub duration_ms: i64,
    pub from: u32,
    pub to: u32,
    pub salt: String,
}

impl RampPlan {
    pub fn share_at(&self, now_ms: i64) -> u32 {
        if now_ms <= self.start_ms {
            return self.from;
        }
        let elapsed = now_ms - self.start_ms;
        if self.duration_ms <= 0 || elapsed >= self.duration_ms {
            return self.to;
        }
        let span = i64::from(self.to) - i64::from(self.from);
        let share = i64::from(self.from) + span * elapsed / self.duration_ms;
        share.clamp(0, i64::from(BUCKETS)) as u32
    }
}

#[derive(Debug)]
pub struct RoutePlan {
    pub name: String,
    pub header: String,
    pub versions: Vec<String>,
    pub authorities: Vec<AuthorityMatch>,
    pub path_prefix: Option<String>,
    pub methods: Vec<String>,
    pub pins: Vec<(Cond, usize)>,
    pub strategy: Strategy,
    pub key: KeyPlan,
    pub sticky_cookie: Option<StickyCookiePlan>,
    pub guard: Option<GuardPlan>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AuthorityMatch {
    Exact(String),
    /// `*.example.com` stored as `.example.com`.
    Suffix(String),
}

#[derive(Debug)]
pub enum Strategy {
    /// `baseline` serves everyone except the `shifted` share (basis points
    /// from `schedule`), which gets `target`.
    Progressive {
        baseline: usize,
        target: usize,
        schedule: WeightSchedule,
    },
    /// Blue-green: `active` (possibly shifting in from `idle` by schedule),
    /// `preview` reaches `idle`.
    BlueGreen {
        active: usize,
        idle: usize,
        preview: Option<Cond>,
        schedule: WeightSchedule,
    },
    Split(Rollout),
}

/// Weight in basis points over time: `initial`, then each step from its time on.
#[derive(Debug, Clone)]
pub struct WeightSchedule {
    pub initial: u32,
    pub steps: Vec<(i64, u32)>,
}

impl WeightSchedule {
    pub fn weight_at(&self, now_ms: i64) -> u32 {
        let mut weight = self.initial;
        for (at, w) in &self.steps {
            if now_ms >= *at {
                weight = *w;
            } else {
                break;
            }
        }
        weight
    }

    pub fn is_timed(&self) -> bool {
        !self.steps.is_empty()
    }
}

#[derive(Debug, Clone)]
pub struct StickyCookiePlan {
    pub name: String,
    /// Everything after `name=value` in Set-Cookie.
    pub attributes: String,
}

#[derive(Debug, Clone)]
pub struct GuardPlan {
    pub max_error_rate_bp: Option<u32>,
    pub max_p99_ratio: Option<f64>,
    pub window_ms: u64,
    pub min_requests: u64,
    pub count_local_replies: bool,
    pub pause: bool,
}

#[derive(Debug)]
pub struct OverridePlan {
    pub header: HeaderId,
    pub secret_header: HeaderId,
    pub secret_sha256: Option<[u8; 32]>,
    pub allow_sources: Vec<Cidr>,
    pub debug_header: Option<String>,
}

/// The compiled `unleash` section: where the payload comes from and how a
/// request maps onto Unleash's context.
#[derive(Debug)]
pub struct UnleashPlan {
    /// The payload pushed with the config, compiled, if any.
    pub initial: Option<Rc<sluice_unleash::Engine>>,
    pub poll: Option<PollPlan>,
    pub user_id: Vec<Subject>,
    pub session_id: Vec<Subject>,
    pub remote_address: Vec<Subject>,
    pub properties: Vec<(String, Subject)>,
    pub app_name: Option<String>,
    pub environment: Option<String>,
    /// Only these features are written (and, before any payload, as `off`).
    pub features: Option<Vec<String>>,
    /// Feature → its own header.
    pub feature_headers: Vec<(String, String)>,
    pub pass_through_before_payload: bool,
    /// Native flag names: a payload feature of the same name is not written.
    pub native_flags: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct PollPlan {
    pub cluster: String,
    pub authority: String,
    pub path: String,
    pub authorization: Option<String>,
    pub interval_ms: u64,
    pub timeout_ms: u64,
    pub max_body_bytes: u64,
}
