//! Config v1: the JSON an operator writes, as Rust types.
//!
//! These types mirror the document; `read` fills them from a parsed JSON
//! tree by hand and rejects unknown fields, naming the path. Meaning is
//! checked later by `compile`, which turns a `Config` into a `Plan`. Named
//! collections are JSON objects whose keys are names, kept in document order
//! here; `compile` makes key order irrelevant (flags, variants and rollout
//! entries sorted by name, split entries in the `versions` order) because Istio
//! re-serialises the config with sorted keys. A repeated key is an error rather
//! than a silent overwrite.
mod chain;
mod named;
mod read;

pub use chain::{Chain, ChainKey, Release, ReleasePin, Requirement};
pub use named::Named;

/// A JSON value kept as written (flag variant values, the Unleash payload).
pub type Value = sluice_primitives::json::Value<'static>;

/// The config schema version this filter reads.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug)]
pub struct Config {
    /// Schema version; must be 1.
    pub version: u32,
    /// Operator's label for this config (shown in logs, metrics and the debug
    /// header; a new revision resets canary guards).
    pub revision: Option<String>,
    /// Editors' schema pointer; ignored.
    pub schema: Option<String>,
    pub identity: Identity,
    pub attributes: Named<Source>,
    pub segments: Named<Condition>,
    pub flags: Named<Flag>,
    pub routes: Named<Route>,
    pub overrides: Option<Overrides>,
    pub outputs: Outputs,
    /// Flags managed in Unleash, evaluated here beside the native ones.
    pub unleash: Option<Unleash>,
    /// Signed decisions carried down the call chain.
    pub chain: Option<Chain>,
    /// Releases: versions of several routes rolled out as one cohort.
    pub releases: Named<Release>,
    /// Flag sources polled beside Unleash (`sources.spring`).
    pub sources: Sources,
}

/// Where a request fact comes from.
#[derive(Debug, Clone)]
pub enum Source {
    Header(String),
    Cookie(String),
    Query(String),
    Path,
    Method,
    Authority,
    SourceAddress,
    /// A W3C baggage member (percent-decoded), e.g. an OpenTelemetry `userId`.
    Baggage(String),
}

/// Who the user is: ordered fallback lists for the user and session keys.
#[derive(Debug, Default)]
pub struct Identity {
    pub user: Vec<Source>,
    pub session: Vec<Source>,
    /// What a request with no key at all gets; per flag/route overridable.
    pub without_identity: WithoutIdentity,
}

/// The fallback for a request that carries no identity.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum WithoutIdentity {
    /// The flag's default variant, the route's stable version.
    #[default]
    Default,
    /// A fresh random bucket per request (not sticky).
    Random,
}

/// Which key a rollout hashes: the user key (falling back to the session
/// key) or the session key (falling back to the user key).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum BucketBy {
    #[default]
    User,
    Session,
}

/// A condition. Either a combinator (`all`, `any`, `not`, `segment`) or a
/// leaf: one subject (`attr`, `header`, `cookie`, `query`) and one operator.
/// Kept as a flat struct so `compile` can say exactly what is missing or
/// doubled.
#[derive(Debug, Clone, Default)]
pub struct Condition {
    pub all: Option<Vec<Condition>>,
    pub any: Option<Vec<Condition>>,
    pub not: Option<Box<Condition>>,
    pub segment: Option<String>,

    pub attr: Option<String>,
    pub header: Option<String>,
    pub cookie: Option<String>,
    pub query: Option<String>,

    pub equals: Option<String>,
    pub in_list: Option<Vec<String>>,
    pub prefix: Option<String>,
    pub suffix: Option<String>,
    pub contains: Option<String>,
    pub num_eq: Option<f64>,
    pub num_gt: Option<f64>,
    pub num_gte: Option<f64>,
    pub num_lt: Option<f64>,
    pub num_lte: Option<f64>,
    pub semver_eq: Option<String>,
    pub semver_gt: Option<String>,
    pub semver_gte: Option<String>,
    pub semver_lt: Option<String>,
    pub semver_lte: Option<String>,
    pub cidr: Option<OneOrMany>,
    pub present: Option<bool>,

    /// Compare text case-insensitively (ASCII).
    pub ignore_case: bool,
    /// Invert the leaf's result.
    pub negate: bool,
}

/// A string or a list of strings.
#[derive(Debug, Clone)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    #[inline(never)]
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

#[derive(Debug)]
pub struct Flag {
    pub description: Option<String>,
    /// Variant name → value (string, number, bool or any JSON). Omitted: a
    /// boolean flag `{"on": true, "off": false}` defaulting to `off`.
    pub variants: Option<Named<Value>>,
    /// Served when no rule matches (and to users without identity).
    pub default: Option<String>,
    /// Kill switch: `false` serves `off_variant` to everyone.
    pub enabled: bool,
    /// Served when the flag is killed, not yet scheduled, ramped out, or a
    /// prerequisite fails. Defaults to `default`.
    pub off_variant: Option<String>,
    pub prerequisites: Vec<Prerequisite>,
    pub rules: Vec<Rule>,
    pub schedule: Option<Schedule>,
    pub bucket_by: Option<BucketBy>,
    /// Shared bucketing group: flags with the same salt put a user in the
    /// same bucket. Defaults to the flag's name.
    pub salt: Option<String>,
    pub without_identity: Option<WithoutIdentity>,
    /// A header of its own carrying this flag's value.
    pub header: Option<String>,
    /// Count responses, latency and goals per variant (`true` or an object).
    pub experiment: Option<Experiment>,
}

/// A flag's experiment outcomes: per variant, responses by status class, latency, and the goals
/// the service reports in a response header.
#[derive(Debug, Clone, PartialEq)]
pub struct Experiment {
    /// Goal names counted (others are ignored, which bounds the stats' cardinality).
    pub goals: Vec<String>,
    /// The response header the service names reached goals in; stripped before the client.
    pub goal_header: String,
}

pub fn default_goal_header() -> String {
    "x-sluice-goal".to_string()
}

fn yes() -> bool {
    true
}

#[derive(Debug)]
pub struct Prerequisite {
    pub flag: String,
    /// The prerequisite holds when that flag got one of these variants.
    pub variants: Vec<String>,
}

/// A targeting rule: when `when` holds (or always, without it), serve one
/// variant or a weighted rollout across variants.
#[derive(Debug)]
pub struct Rule {
    pub name: Option<String>,
    pub when: Option<Condition>,
    pub serve: Option<String>,
    /// Variant → percent (0.01 steps), summing to 100.
    pub rollout: Option<Named<f64>>,
}

/// When the flag is on: not before `enable_at`, and for a share of users that
/// grows linearly by `ramp`.
#[derive(Debug)]
pub struct Schedule {
    pub enable_at: Option<String>,
    pub ramp: Option<Ramp>,
}

#[derive(Debug)]
pub struct Ramp {
    pub start: String,
    pub duration: String,
    pub from: f64,
    pub to: f64,
}

/// Version routing for one upstream service.
#[derive(Debug)]
pub struct Route {
    pub matcher: RouteMatch,
    /// The request header this route writes (e.g. `x-route-reviews`).
    pub header: String,
    pub versions: Vec<String>,
    pub canary: Option<Canary>,
    pub blue_green: Option<BlueGreen>,
    /// N-way split: version → percent, summing to 100.
    pub split: Option<Named<f64>>,
    /// Ordered conditions that force a version before weights apply.
    pub pins: Vec<Pin>,
    pub bucket_by: Option<BucketBy>,
    pub salt: Option<String>,
    pub without_identity: Option<WithoutIdentity>,
    pub sticky_cookie: Option<StickyCookie>,
    pub guard: Option<Guard>,
    /// Version → what it needs of the same user (other routes' versions, flag variants).
    pub requires: Named<Vec<Requirement>>,
}

#[derive(Debug, Default)]
pub struct RouteMatch {
    /// Hosts (`:authority`, port ignored); `*.example.com` matches subdomains.
    pub authority: Vec<String>,
    pub path_prefix: Option<String>,
    pub methods: Vec<String>,
}

/// A stable and a canary version, the canary's share set by `weight` and
/// raised over time by `steps`.
#[derive(Debug)]
pub struct Canary {
    pub stable: String,
    pub canary: String,
    /// Percent before the first step (or always, without steps).
    pub weight: f64,
    /// Start of the schedule; steps with `after` count from it.
    pub start: Option<String>,
    pub steps: Vec<Step>,
}

#[derive(Debug)]
pub struct Step {
    pub at: Option<String>,
    pub after: Option<String>,
    pub weight: f64,
}

/// Two colors, one active; `preview` reaches the idle one; `shift` moves
/// users to the active color gradually (canary steps toward `active`).
#[derive(Debug)]
pub struct BlueGreen {
    pub active: String,
    pub preview: Option<Condition>,
    pub shift: Option<Shift>,
}

#[derive(Debug)]
pub struct Shift {
    pub weight: f64,
    pub start: Option<String>,
    pub steps: Vec<Step>,
}

#[derive(Debug)]
pub struct Pin {
    pub when: Condition,
    pub version: String,
}

/// For requests without identity: assign once and remember in a cookie.
#[derive(Debug)]
pub struct StickyCookie {
    pub name: String,
    pub path: String,
    pub max_age: Option<String>,
    pub same_site: Option<SameSite>,
    pub secure: bool,
    pub http_only: bool,
}

fn root_path() -> String {
    "/".to_string()
}

#[derive(Debug, Clone, Copy)]
pub enum SameSite {
    Strict,
    Lax,
    None,
}

/// Canary guard: error-rate and latency thresholds over a window that, once
/// crossed, roll the canary back or pause it (`action`).
#[derive(Debug)]
pub struct Guard {
    /// Trip when the canary's 5xx share over the window exceeds this percent.
    pub max_error_rate: Option<f64>,
    /// Trip when the canary's p99 latency exceeds stable's by this factor.
    pub max_p99_ratio: Option<f64>,
    pub window: String,
    pub min_requests: u64,
    /// Also count Envoy's non-5xx local replies and streams reset before a
    /// response as errors (5xx count always).
    pub count_local_replies: bool,
    pub action: GuardAction,
    /// `threshold` (the fields above) or `sequential` (an anytime-valid test of canary vs
    /// stable, see `crate::sequential`).
    pub method: GuardMethod,
    /// The sequential guard's false-alarm bound.
    pub alpha: Option<f64>,
    /// The sequential guard counts responses slower than this as bad too.
    pub slow: Option<String>,
    /// Told about a trip (POST through an Envoy cluster).
    pub webhook: Option<Webhook>,
}

/// Where a guard reports its trip: a POST of JSON through one of Envoy's clusters.
#[derive(Debug, Clone)]
pub struct Webhook {
    pub cluster: String,
    pub path: String,
    /// Defaults to the cluster's name.
    pub authority: Option<String>,
    pub timeout: String,
    /// Tries in all (the first and the retries).
    pub attempts: u32,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum GuardMethod {
    #[default]
    Threshold,
    Sequential,
}

fn default_window() -> String {
    "30s".to_string()
}

fn default_min_requests() -> u64 {
    50
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum GuardAction {
    #[default]
    Rollback,
    Pause,
}

/// Tester overrides: a header asking for versions and variants, honoured only
/// with the secret or from an allowed source range.
#[derive(Debug)]
pub struct Overrides {
    /// Value like `reviews=v2;checkout=on` (route or flag name = version or variant).
    pub header: String,
    pub secret_header: String,
    /// Hex SHA-256 of the secret (never the secret itself).
    pub secret_sha256: Option<String>,
    pub allow_sources: Vec<String>,
    /// Response header explaining decisions, only for authorised testers.
    pub debug_header: Option<String>,
}

fn default_override_header() -> String {
    "x-sluice-override".to_string()
}

fn default_secret_header() -> String {
    "x-sluice-secret".to_string()
}

#[derive(Debug)]
pub struct Outputs {
    /// Combined header `name=variant;...`; `null` turns it off.
    pub flags_header: Option<String>,
    /// Also add `sluice.<flag>=<variant>` entries (with this prefix) to the
    /// W3C `baggage` header, so the decision travels down the call chain.
    pub baggage: Option<Baggage>,
    /// Peers (CIDRs) whose incoming flag decisions are kept instead of being
    /// stripped and re-rolled: a hop behind the edge honours what the edge
    /// decided, read from the flags header or, failing that, from baggage.
    pub trust_incoming_from: Vec<String>,
}

impl Default for Outputs {
    #[inline(never)]
    fn default() -> Self {
        Outputs {
            flags_header: default_flags_header(),
            baggage: None,
            trust_incoming_from: Vec::new(),
        }
    }
}

fn default_flags_header() -> Option<String> {
    Some("x-sluice-flags".to_string())
}

#[derive(Debug)]
pub struct Baggage {
    pub prefix: String,
}

fn default_baggage_prefix() -> String {
    "sluice.".to_string()
}

/// Unleash as a flag source: a payload in `/api/client/features` format,
/// pushed inline and/or polled from an Unleash server through an Envoy cluster.
#[derive(Debug)]
pub struct Unleash {
    /// The client-API payload itself (pushed with the config).
    pub payload: Option<Value>,
    pub poll: Option<UnleashPoll>,
    pub context: UnleashContext,
    /// Only these features are written (default: every feature in the payload).
    pub features: Option<Vec<String>>,
    /// Per-feature headers: feature name → header carrying its variant.
    pub headers: Named<String>,
    /// Until a first payload arrives: write every listed feature as `off`
    /// (`defaults`) or leave requests untouched (`pass_through`).
    pub before_first_payload: BeforeFirstPayload,
    /// Usage metrics sent back to Unleash (`true`/a map: on; absent/`false`: off).
    pub metrics: Option<UnleashMetrics>,
}

/// Usage metrics (yes/no and variant counts per feature) sent back to the polled Unleash.
#[derive(Debug)]
pub struct UnleashMetrics {
    /// How long one bucket covers (Unleash SDKs: 60s).
    pub interval: String,
    /// Buckets kept while Unleash cannot take them; the oldest beyond this are dropped.
    pub max_pending_buckets: u64,
    /// `instanceId` Unleash lists the client under; default `sluice-<random hex>` per Envoy.
    pub instance_id: Option<String>,
}

impl Default for UnleashMetrics {
    #[inline(never)]
    fn default() -> Self {
        UnleashMetrics {
            interval: "60s".to_string(),
            max_pending_buckets: 30,
            instance_id: None,
        }
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum BeforeFirstPayload {
    #[default]
    Defaults,
    PassThrough,
}

/// Where and how often to fetch the payload.
#[derive(Debug)]
pub struct UnleashPoll {
    /// The Envoy cluster that reaches the Unleash server (or Unleash Edge).
    pub cluster: String,
    /// `:authority` of the request; defaults to the cluster name.
    pub authority: Option<String>,
    pub path: String,
    /// `Authorization` header value (an Unleash client API token).
    pub authorization: Option<String>,
    pub interval: String,
    pub timeout: String,
    pub max_body_bytes: u64,
}

fn default_unleash_path() -> String {
    "/api/client/features".to_string()
}

fn default_poll_interval() -> String {
    "15s".to_string()
}

fn default_poll_timeout() -> String {
    "5s".to_string()
}

fn default_max_body_bytes() -> u64 {
    4 * 1024 * 1024
}

/// The Unleash context of a request. Empty key lists fall back to the
/// config's `identity` (user, session) and the peer address.
#[derive(Debug, Default)]
pub struct UnleashContext {
    pub user_id: Vec<Source>,
    pub session_id: Vec<Source>,
    pub remote_address: Vec<Source>,
    pub app_name: Option<String>,
    pub environment: Option<String>,
    pub properties: Named<Source>,
}

/// Polled flag sources other than Unleash.
#[derive(Debug, Default)]
pub struct Sources {
    pub spring: Option<SpringSource>,
}

/// A Spring Cloud Config Server's Environment endpoint (`/{application}/{profiles}[/{label}]`),
/// polled through an Envoy cluster; properties under `prefix` become flags.
#[derive(Debug)]
pub struct SpringSource {
    pub cluster: String,
    pub authority: Option<String>,
    pub application: String,
    pub profiles: Vec<String>,
    pub label: Option<String>,
    pub prefix: String,
    /// `Authorization` header value as given (e.g. `Bearer …`).
    pub authorization: Option<String>,
    /// HTTP basic credentials, sent as `Authorization: Basic …`.
    pub basic: Option<(String, String)>,
    pub interval: String,
    pub timeout: String,
    pub max_body_bytes: u64,
}
