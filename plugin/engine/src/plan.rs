//! The evaluation plan: a config compiled once (names interned to indices,
//! header names lower-cased, CIDRs, semvers, times and weights parsed) so that
//! evaluating a request only walks data.
use crate::bucket::{Salt, BUCKETS};
use crate::salt_table::SaltTable;
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
    /// What each incoming header name is to Sluice (an input, an owned header), found in one
    /// pass over the request's headers.
    pub header_roles: HeaderRoles,
    /// Where each header the decision writes sits in `owned_headers`.
    pub outputs: OutputSlots,
    pub reads_source_address: bool,
    pub reads_clock: bool,
    pub user_key: Vec<Subject>,
    pub session_key: Vec<Subject>,
    pub flags: Vec<FlagPlan>,
    /// Flag indices with prerequisites before dependants.
    pub flag_order: Vec<usize>,
    /// How many evaluation counts the flags have (`FlagCounts`: one per flag and variant).
    pub flag_count_slots: usize,
    /// `flag_order` names every flag once (`Plan::index` checks): a request overwrites every
    /// outcome of the last one, which need not be cleared first.
    pub flag_order_covers_all: bool,
    pub routes: Vec<RoutePlan>,
    pub overrides: Option<OverridePlan>,
    pub flags_header: Option<String>,
    pub baggage_prefix: Option<String>,
    /// Where the incoming `baggage` header sits in `headers`, when baggage is read or written.
    pub baggage_header: Option<HeaderId>,
    /// Every request header Sluice writes; incoming copies are removed.
    pub owned_headers: Vec<String>,
    pub unleash: Option<UnleashPlan>,
    /// `sources.spring`: flags from a Spring Cloud Config Server.
    pub spring: Option<SpringPlan>,
    /// Incoming flag decisions from these peers are kept (see `outputs.trust_incoming_from`).
    pub trusted_peers: Vec<Cidr>,
    /// Where the incoming flags header sits in `headers`, when peers are trusted.
    pub incoming_flags_header: Option<HeaderId>,
    /// Response headers experiments read goals from (lower-case, distinct); the filter strips
    /// them from every response.
    pub goal_headers: Vec<String>,
    /// Releases, version requirements and signed decisions (empty when unused).
    pub chain: ChainPlan,
    /// Each flag's `name=variant` per variant, as the flags header and baggage write them.
    pub flag_pieces: FlagPieces,
    /// The flags' rollout and ramp salts, for hashing a request's key under all at once.
    pub salts: SaltTable,
}

/// Each flag's `name=variant` per variant, built once so that a request writes the flags header
/// (and baggage) with one copy per few flags. The flags are taken in order, up to `GROUP_FLAGS`
/// at a time while their variants make few combinations: a group has a piece per combination,
/// all groups' pieces in one flat table, so the request loop reads two small arrays instead of
/// walking the `FlagPlan`s. Each piece starts with its separator (the request writes the first
/// without it).
#[derive(Debug, Default)]
pub struct FlagPieces {
    /// The flags, in order, one to `GROUP_FLAGS` per group.
    pub groups: Vec<PieceGroup>,
    /// `;name=variant` (`;a=x;b=y` for two flags) per group and combination, for the flags header.
    pub header: Vec<Box<str>>,
    /// `,<baggage prefix>name=variant` likewise, when baggage is written (else empty).
    pub baggage: Vec<Box<str>>,
}

/// Consecutive flags whose decisions are written as one piece.
#[derive(Debug, Clone, Copy)]
pub struct PieceGroup {
    /// Where the group's pieces start in `FlagPieces::header` (and `baggage`).
    pub first: u32,
    /// How many flags (1 to `GROUP_FLAGS`).
    pub flags: u32,
    /// What a variant of each flag but the last steps over: the piece of variants `(a, b, c, d)`
    /// is `first + a * strides[0] + b * strides[1] + c * strides[2] + d`; of a smaller group
    /// the same without the unused strides, `first + a` for one flag (the last flag's variant
    /// varies fastest).
    pub strides: [u32; 3],
}

/// At most this many flags per piece group (`PieceGroup::strides` and the request's
/// `pipeline::group_piece` are written for four). Groups of 4 rather than 3: 1000 flags
/// 302.4 k -> 300.0 k wasm instructions per request, +64 KiB of VM memory.
const GROUP_FLAGS: usize = 4;

/// Flags share a group while they have at most this many variant combinations: four flags of
/// two variants (or two of two and one of four), not a table that grows with the product of
/// many variants.
const GROUP_MAX_PIECES: usize = 16;

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
    /// A member of the W3C `baggage` header (index into `ChainPlan::baggage_keys`).
    Baggage(usize),
}

#[derive(Debug, Clone)]
pub enum Cond {
    All(Vec<Cond>),
    Any(Vec<Cond>),
    Not(Box<Cond>),
    Leaf(Leaf),
    /// A named segment (its id, its condition): remembered per request once evaluated.
    Segment(usize, Box<Cond>),
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
    /// Set for flags marked `experiment`: outcomes are counted per variant.
    pub experiment: Option<ExperimentPlan>,
    /// Where its variants' evaluation counts start in `FlagCounts` (the flags' variants one
    /// after the other, in flag order).
    pub first_count: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ExperimentPlan {
    /// Goal names counted, in config order.
    pub goals: Vec<String>,
    /// Index into `Plan::goal_headers`.
    pub goal_header: usize,
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
/// `[upper[i-1], upper[i])`. The order does not depend on the document (variants
/// sorted by name, split entries in the route's `versions` order), so growing one
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
    pub salt: Salt,
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
    pub salt: Salt,
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

impl Strategy {
    /// Where users go without a bucket, or when a version's requirements fail.
    pub fn fallback(&self) -> usize {
        match self {
            Strategy::Progressive { baseline, .. } => *baseline,
            Strategy::BlueGreen { active, .. } => *active,
            Strategy::Split(_) => 0,
        }
    }

    /// The version a user in `bucket` gets from the weights at `now_ms`, pins and previews aside;
    /// `paused` is a guard's held canary weight, which replaces the schedule's.
    pub fn version_at(&self, bucket: u32, now_ms: i64, paused: Option<u32>) -> usize {
        match self {
            Strategy::Progressive {
                baseline,
                target,
                schedule,
            } => {
                let weight = paused.unwrap_or_else(|| schedule.weight_at(now_ms));
                if bucket < weight {
                    *target
                } else {
                    *baseline
                }
            }
            Strategy::BlueGreen {
                active,
                idle,
                schedule,
                ..
            } => {
                if bucket < schedule.weight_at(now_ms) {
                    *active
                } else {
                    *idle
                }
            }
            Strategy::Split(rollout) => rollout.pick(bucket),
        }
    }
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
    /// Set for `method: sequential`: the thresholds above are then unset.
    pub sequential: Option<SequentialPlan>,
    pub webhook: Option<WebhookPlan>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WebhookPlan {
    pub cluster: String,
    pub path: String,
    pub authority: String,
    pub timeout_ms: u64,
    pub attempts: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SequentialPlan {
    /// False-alarm bound: a canary no worse than stable trips with at most this probability.
    pub alpha: f64,
    /// Responses slower than this count as bad, like errors.
    pub slow_ms: Option<u64>,
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
    /// Usage metrics sent back to the polled Unleash, when on.
    pub metrics: Option<UsagePlan>,
}

/// Where and how often usage metrics go back to Unleash (through the poll's cluster and token).
#[derive(Debug, Clone)]
pub struct UsagePlan {
    pub interval_ms: u64,
    /// Buckets kept while Unleash cannot take them (at least 1).
    pub max_pending: usize,
    pub app_name: String,
    /// `None`: one is made up per Envoy (shared by its workers).
    pub instance_id: Option<String>,
    /// `…/client/register` and `…/client/metrics`, beside the poll's `…/client/features`.
    pub register_path: String,
    pub metrics_path: String,
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

/// The compiled `sources.spring`: where the Environment is polled, which properties are flags.
#[derive(Debug)]
pub struct SpringPlan {
    pub poll: PollPlan,
    pub prefix: String,
}

/// A request fact every plan reads from its own header.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Fact {
    #[default]
    None,
    Path,
    Method,
    Authority,
    Cookie,
}

/// One incoming header name's roles.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeaderRole {
    pub fact: Fact,
    /// Its index in `Plan::headers`, when the plan reads it.
    pub read: Option<HeaderId>,
    /// Its index in `Plan::owned_headers`, when Sluice writes or strips it.
    pub owned: Option<usize>,
}

/// Header name → role, for the names the plan cares about: a hash table on the names'
/// fingerprints, so most request headers are turned away without comparing a byte of their names
/// and the rest compare two words with one or two candidates.
#[derive(Debug, Default)]
pub struct HeaderRoles {
    entries: Vec<(String, HeaderRole)>,
    /// Per hash slot, the range of `order` holding its entries.
    slots: Vec<(u16, u16)>,
    /// Entry fingerprints and indices, grouped by slot.
    order: Vec<(Fingerprint, u16)>,
    /// `64 - log2(slots.len())`: a hash's top bits pick the slot.
    shift: u32,
}

/// A name's length and its first and last eight bytes (four below eight bytes, the bytes
/// themselves below four): names of up to 16 bytes are equal exactly when their fingerprints
/// are, so a lookup compares words instead of bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Fingerprint {
    len: usize,
    head: u64,
    tail: u64,
}

impl Fingerprint {
    fn of(name: &[u8]) -> Fingerprint {
        let (head, tail) = match (name.first_chunk::<8>(), name.last_chunk::<8>()) {
            (Some(h), Some(t)) => (u64::from_le_bytes(*h), u64::from_le_bytes(*t)),
            _ => match (name.first_chunk::<4>(), name.last_chunk::<4>()) {
                (Some(h), Some(t)) => (
                    u64::from(u32::from_le_bytes(*h)),
                    u64::from(u32::from_le_bytes(*t)),
                ),
                _ => (name.iter().fold(0, |w, b| w << 8 | u64::from(*b)), 0),
            },
        };
        Fingerprint {
            len: name.len(),
            head,
            tail,
        }
    }

    fn hash(&self) -> u64 {
        (self.head ^ self.tail.rotate_left(32) ^ self.len as u64)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }
}

/// Per hash slot the range of `order`, and `order`: fingerprints and entry indices by slot.
type SlotTable = (Vec<(u16, u16)>, Vec<(Fingerprint, u16)>);

impl HeaderRoles {
    #[inline(never)]
    pub fn new(headers: &[String], owned: &[String]) -> HeaderRoles {
        let entries = Self::entries(headers, owned);
        // At least 64 slots, and more than entries: a slot rarely holds two.
        let bits = entries.len().max(32).next_power_of_two().trailing_zeros() + 1;
        let shift = 64 - bits;
        let (slots, order) = Self::slots(&entries, bits, shift);
        HeaderRoles {
            entries,
            slots,
            order,
            shift,
        }
    }

    /// Every header name the plan reads or owns, with its roles.
    #[inline(never)]
    fn entries(headers: &[String], owned: &[String]) -> Vec<(String, HeaderRole)> {
        let mut entries: Vec<(String, HeaderRole)> = Vec::new();
        let facts = [
            (":path", Fact::Path),
            (":method", Fact::Method),
            (":authority", Fact::Authority),
            ("cookie", Fact::Cookie),
        ];
        for (name, fact) in facts {
            Self::role_of(&mut entries, name).fact = fact;
        }
        for (i, name) in headers.iter().enumerate() {
            Self::role_of(&mut entries, name).read = Some(i);
        }
        for (i, name) in owned.iter().enumerate() {
            Self::role_of(&mut entries, name).owned = Some(i);
        }
        entries
    }

    /// `name`'s entry in `entries`, added (with no role yet) if it is not there.
    #[inline(never)]
    fn role_of<'e>(entries: &'e mut Vec<(String, HeaderRole)>, name: &str) -> &'e mut HeaderRole {
        let at = match entries.iter().position(|(n, _)| n == name) {
            Some(at) => at,
            None => {
                entries.push((name.to_string(), HeaderRole::default()));
                entries.len() - 1
            }
        };
        &mut entries[at].1
    }

    /// The entries' fingerprints grouped by hash slot, and each slot's range of them.
    #[inline(never)]
    fn slots(entries: &[(String, HeaderRole)], bits: u32, shift: u32) -> SlotTable {
        let slot_of = |print: &Fingerprint| (print.hash() >> shift) as usize;
        let mut order: Vec<(Fingerprint, u16)> = entries
            .iter()
            .enumerate()
            .map(|(i, (name, _))| (Fingerprint::of(name.as_bytes()), i as u16))
            .collect();
        sluice_primitives::order::sort_by_key(&mut order, |(print, _)| slot_of(print));
        let mut slots = vec![(0u16, 0u16); 1 << bits];
        for (at, (print, _)) in order.iter().enumerate() {
            let slot = &mut slots[slot_of(print)];
            if slot.1 == 0 {
                slot.0 = at as u16;
            }
            slot.1 += 1;
        }
        (slots, order)
    }

    pub fn get(&self, name: &[u8]) -> Option<&HeaderRole> {
        let print = Fingerprint::of(name);
        let &(start, len) = self.slots.get((print.hash() >> self.shift) as usize)?;
        let candidates = self
            .order
            .get(start as usize..start as usize + len as usize)?;
        candidates.iter().find_map(|(p, i)| {
            if *p != print {
                return None;
            }
            let (n, role) = self.entries.get(*i as usize)?;
            // Longer names also differ in the middle.
            (name.len() <= 16 || sluice_primitives::bytes_eq(n.as_bytes(), name)).then_some(role)
        })
    }
}

/// Where each written header sits in `Plan::owned_headers` (every written header is owned).
#[derive(Debug, Default)]
pub struct OutputSlots {
    pub flags_header: Option<usize>,
    /// `(flag, its own header's slot)` for the flags that have one, in flag order.
    pub flag_headers: Vec<(usize, usize)>,
    /// Per route, its header's slot.
    pub routes: Vec<usize>,
    /// Per `unleash.feature_headers` entry.
    pub unleash_features: Vec<usize>,
    pub baggage: Option<usize>,
}

impl Plan {
    /// Precomputes what the request path looks up: the flags' salt batches and where their
    /// evaluation counts start, header roles, output slots, and the flags' `name=variant` pieces.
    /// The compiler calls it once, last.
    #[inline(never)]
    pub fn index(&mut self) {
        self.salts = SaltTable::new(&mut self.flags);
        self.flag_order_covers_all = covers_each_once(&self.flag_order, self.flags.len());
        let mut first = 0;
        for flag in &mut self.flags {
            flag.first_count = first;
            first += flag.variant_names.len() as u32;
        }
        self.flag_count_slots = first as usize;
        self.header_roles = HeaderRoles::new(&self.headers, &self.owned_headers);
        self.outputs = self.output_slots();
        self.flag_pieces = FlagPieces::new(&self.flags, self.baggage_prefix.as_deref());
    }

    #[inline(never)]
    fn output_slots(&self) -> OutputSlots {
        let slot = |name: &str| owned_slot(&self.owned_headers, name);
        OutputSlots {
            flags_header: self.flags_header.as_deref().and_then(slot),
            flag_headers: self
                .flags
                .iter()
                .enumerate()
                .filter_map(|(i, f)| Some((i, f.header.as_deref().and_then(slot)?)))
                .collect(),
            routes: owned_slots(
                &self.owned_headers,
                &mut self.routes.iter().map(|r| r.header.as_str()),
            ),
            unleash_features: owned_slots(
                &self.owned_headers,
                &mut self
                    .unleash
                    .iter()
                    .flat_map(|u| &u.feature_headers)
                    .map(|(_, h)| h.as_str()),
            ),
            baggage: self.baggage_prefix.as_ref().and_then(|_| slot("baggage")),
        }
    }
}

/// Whether `order` is a permutation of `0..len`.
#[inline(never)]
fn covers_each_once(order: &[usize], len: usize) -> bool {
    let mut seen = vec![false; len];
    order.len() == len
        && order
            .iter()
            .all(|&i| seen.get_mut(i).is_some_and(|s| !std::mem::replace(s, true)))
}

/// The index of `name` in `owned` (the plan's owned headers).
#[inline(never)]
fn owned_slot(owned: &[String], name: &str) -> Option<usize> {
    owned.iter().position(|o| o == name)
}

/// `owned_slot` of each name, `usize::MAX` for a name not owned.
#[inline(never)]
fn owned_slots(owned: &[String], names: &mut dyn Iterator<Item = &str>) -> Vec<usize> {
    names
        .map(|name| owned_slot(owned, name).unwrap_or(usize::MAX))
        .collect()
}

impl FlagPieces {
    /// The flags' groups and their pieces, for the flags header and, under `baggage_prefix`,
    /// baggage.
    #[inline(never)]
    fn new(flags: &[FlagPlan], baggage_prefix: Option<&str>) -> FlagPieces {
        let mut pieces = FlagPieces::default();
        let mut rest = flags;
        while !rest.is_empty() {
            let (group, tail) = rest
                .split_at_checked(group_size(rest))
                .unwrap_or((rest, &[]));
            pieces.push_group(group, baggage_prefix);
            rest = tail;
        }
        pieces
    }

    /// A group's pieces, one per combination of its flags' variants (the last one's varying
    /// fastest).
    #[inline(never)]
    fn push_group(&mut self, group: &[FlagPlan], baggage_prefix: Option<&str>) {
        let variants =
            |flags: &[FlagPlan]| -> usize { flags.iter().map(|f| f.variant_names.len()).product() };
        let stride = |i: usize| variants(group.get(i + 1..).unwrap_or_default()) as u32;
        self.groups.push(PieceGroup {
            first: self.header.len() as u32,
            flags: group.len() as u32,
            strides: [stride(0), stride(1), stride(2)],
        });
        for combination in 0..variants(group) {
            let mut members = [("", ""); GROUP_FLAGS];
            let mut rest = combination;
            for (flag, member) in group.iter().zip(&mut members).rev() {
                let n = flag.variant_names.len().max(1);
                let variant = flag.variant_names.get(rest % n);
                *member = (&flag.name, variant.map_or("", String::as_str));
                rest /= n;
            }
            let members = members.get(..group.len()).unwrap_or_default();
            self.push_piece(members, baggage_prefix);
        }
    }

    /// The header's and baggage's piece for these `(flag, variant)` members.
    fn push_piece(&mut self, members: &[(&str, &str)], baggage_prefix: Option<&str>) {
        self.header.push(joined(";", "", members));
        if let Some(prefix) = baggage_prefix {
            self.baggage.push(joined(",", prefix, members));
        }
    }
}

/// How many of the first flags share a piece group: the first, and more up to `GROUP_FLAGS`
/// while they have at most `GROUP_MAX_PIECES` combinations.
#[inline(never)]
fn group_size(flags: &[FlagPlan]) -> usize {
    let mut combinations: usize = 1;
    let mut size = 0;
    for flag in flags.iter().take(GROUP_FLAGS) {
        combinations = combinations.saturating_mul(flag.variant_names.len());
        if size > 0 && combinations > GROUP_MAX_PIECES {
            break;
        }
        size += 1;
    }
    size
}

/// `<separator><prefix>name=variant` per member, in one allocation of its exact length.
#[inline(never)]
fn joined(separator: &str, prefix: &str, members: &[(&str, &str)]) -> Box<str> {
    let len = members
        .iter()
        .map(|(name, variant)| separator.len() + prefix.len() + name.len() + 1 + variant.len())
        .sum();
    let mut text = String::with_capacity(len);
    for (name, variant) in members {
        for part in [separator, prefix, name, "=", variant] {
            text.push_str(part);
        }
    }
    text.into_boxed_str()
}

/// What rollouts across services need: releases, version requirements, and
/// the token that carries decisions down the call chain.
#[derive(Debug, Default)]
pub struct ChainPlan {
    pub token: Option<TokenPlan>,
    pub releases: Vec<ReleasePlan>,
    /// Per route (indexed like `Plan::routes`): the release it belongs to and
    /// the version that release brings.
    pub route_release: Vec<Option<(usize, usize)>>,
    /// Per route: `(version, what it requires)` for versions with requirements.
    pub requires: Vec<Vec<(usize, Vec<Requirement>)>>,
    /// Some version has requirements: the engine enforces them after routing.
    pub has_requirements: bool,
    /// Decide every route for each request, matched or not: a token must
    /// carry them to later hops, and requirements look across routes.
    pub decide_all_routes: bool,
    /// Baggage member keys read as request facts (`{"baggage": "userId"}`).
    pub baggage_keys: Vec<String>,
}

#[derive(Debug)]
pub struct TokenPlan {
    /// `(key id, key)`: the first signs, all verify.
    pub keys: Vec<(String, sluice_primitives::sha256::HmacKey)>,
    pub ttl_s: u32,
    pub max_bytes: usize,
    /// This config's revision first, then the others still honoured.
    pub revisions: Vec<u32>,
    /// The baggage member carrying the token, e.g. `sluice.token`.
    pub member: String,
}

#[derive(Debug)]
pub struct ReleasePlan {
    pub name: String,
    /// `(route, version the release brings)`.
    pub members: Vec<(usize, usize)>,
    pub key: KeyPlan,
    pub schedule: WeightSchedule,
    /// Ordered: the first that holds puts the request in (`true`) or out.
    pub pins: Vec<(Cond, bool)>,
}

/// One thing a route version needs of the same user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    /// Route, version.
    Route(usize, usize),
    /// Flag, variant.
    Flag(usize, VariantId),
}

#[cfg(test)]
mod tests {
    use super::{covers_each_once, Fact, HeaderRoles};

    #[test]
    fn a_flag_order_covers_all_only_as_a_permutation() {
        assert!(covers_each_once(&[2, 0, 1], 3));
        assert!(covers_each_once(&[], 0));
        assert!(!covers_each_once(&[0, 0, 2], 3), "a repeat");
        assert!(!covers_each_once(&[0, 1], 3), "one missing");
        assert!(!covers_each_once(&[0, 3, 1], 3), "out of range");
    }

    #[test]
    fn header_roles_find_each_name_and_only_it() {
        let read: Vec<String> = [
            "x-user-id",
            "x-b",
            "abcd",
            "x-a-very-long-header-name-1",
            "cookie",
        ]
        .map(String::from)
        .to_vec();
        let owned: Vec<String> = ["x-theme", "x-user-id", "x-a-very-long-header-name-2"]
            .map(String::from)
            .to_vec();
        let roles = HeaderRoles::new(&read, &owned);
        for (i, name) in read.iter().enumerate() {
            assert_eq!(
                roles.get(name.as_bytes()).and_then(|r| r.read),
                Some(i),
                "{name}"
            );
        }
        for (i, name) in owned.iter().enumerate() {
            assert_eq!(
                roles.get(name.as_bytes()).and_then(|r| r.owned),
                Some(i),
                "{name}"
            );
        }
        let user = roles.get(b"x-user-id").copied().unwrap_or_default();
        assert_eq!((user.read, user.owned), (Some(0), Some(1)));
        let cookie = roles.get(b"cookie").copied().unwrap_or_default();
        assert_eq!((cookie.fact, cookie.read), (Fact::Cookie, Some(4)));
        assert_eq!(roles.get(b":path").map(|r| r.fact), Some(Fact::Path));
        assert_eq!(
            roles.get(b":authority").map(|r| r.fact),
            Some(Fact::Authority)
        );
        // Same length, first and last bytes as a known name (or all but the first, for the
        // short ones); prefixes; case; the empty name.
        for other in [
            "x-user-ix",
            "x-usar-id",
            "x-c",
            "y-b",
            "x_b",
            "abce",
            "abc",
            "x-a-very-long-header-nome-1",
            "x-a-very-lung-header-name-1",
            "x-a-very-long-header-name-",
            "X-User-Id",
            "",
            "accept",
            ":method2",
        ] {
            assert_eq!(roles.get(other.as_bytes()), None, "{other}");
        }
    }

    #[test]
    fn many_names_spread_over_more_slots() {
        let owned: Vec<String> = (0..1000).map(|i| format!("x-flag-{i}")).collect();
        let roles = HeaderRoles::new(&[], &owned);
        for (i, name) in owned.iter().enumerate() {
            assert_eq!(roles.get(name.as_bytes()).and_then(|r| r.owned), Some(i));
        }
        assert_eq!(roles.get(b"x-flag-1000"), None);
        assert!(roles.slots.len() > owned.len());
    }
}
