//! Usage metrics back to Unleash, as its SDKs send them: the client registers once
//! (`/client/register`), then every interval one bucket of yes/no and variant counts per feature
//! goes to `/client/metrics`. Each VM counts its own requests; on its tick it adds them into one
//! shared bucket (compare-and-swap, like the guard windows). One VM per interval (the poll
//! scheduler's [`claim_round`]) closes the bucket and sends it, through the poll's cluster and
//! token. Buckets Unleash did not take are kept, up to `max_pending`, and retried; the oldest
//! beyond that are dropped and counted.
use crate::decision::FeatureUsage;
use crate::host::{HttpCalls, MetricKind, SetError, SharedData, Stats};
use crate::notify::json_string;
use crate::plan::{PollPlan, UsagePlan};
use crate::poll::claim_round;
use crate::telemetry;
use log::{info, warn};
use sluice_primitives::time::format_rfc3339_millis;

/// The strategies Sluice's Unleash engine implements, as the register call lists them.
const STRATEGIES: [&str; 8] = [
    "default",
    "userWithId",
    "gradualRolloutUserId",
    "gradualRolloutSessionId",
    "gradualRolloutRandom",
    "flexibleRollout",
    "remoteAddress",
    "applicationHostname",
];

/// Unleash splits this at `:` into the SDK's name and version.
const SDK_VERSION: &str = concat!("sluice:", env!("CARGO_PKG_VERSION"));

/// One feature's counts in a bucket.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Toggle {
    pub yes: u64,
    pub no: u64,
    pub variants: ByName<u64>,
}

/// Counts per feature name.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Counts {
    pub toggles: ByName<Toggle>,
}

impl Counts {
    /// One evaluation, counted like an Unleash SDK's `getVariant`: yes or no, and the variant
    /// (`disabled` when none was chosen).
    pub fn count(&mut self, feature: &str, usage: &FeatureUsage) {
        let variant = usage.variant.as_deref().unwrap_or("disabled");
        self.toggles.update(feature, |toggle| {
            if usage.enabled {
                toggle.yes += 1;
            } else {
                toggle.no += 1;
            }
            toggle.variants.update(variant, |n| *n += 1);
        });
    }

    pub fn add(&mut self, other: &Counts) {
        for (name, t) in other.toggles.iter() {
            self.toggles.update(name, |mine| {
                mine.yes += t.yes;
                mine.no += t.no;
                for (v, n) in t.variants.iter() {
                    mine.variants.update(v, |m| *m += n);
                }
            });
        }
    }

    pub fn is_empty(&self) -> bool {
        self.toggles.is_empty()
    }

    /// The `toggles` object of a metrics bucket.
    fn to_json(&self) -> String {
        let mut out = String::from("{");
        for (i, (name, t)) in self.toggles.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&json_string(name));
            out.push_str(&format!(
                ":{{\"yes\":{},\"no\":{},\"variants\":{{",
                t.yes, t.no
            ));
            for (j, (v, n)) in t.variants.iter().enumerate() {
                if j > 0 {
                    out.push(',');
                }
                out.push_str(&json_string(v));
                out.push_str(&format!(":{n}"));
            }
            out.push_str("}}");
        }
        out.push('}');
        out
    }
}

/// Counts by name, sorted by name (the order Unleash's metrics and the shared encoding list
/// them in). A sorted list rather than a `BTreeMap`: a few dozen names per bucket, and the
/// tree's code (~4 KB of wasm per key type) is compiled by V8 into every Envoy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ByName<V>(Vec<(String, V)>);

impl<V> Default for ByName<V> {
    fn default() -> Self {
        ByName(Vec::new())
    }
}

impl<V> ByName<V> {
    fn find(&self, name: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(n, _)| n.as_str().cmp(name))
    }

    pub fn get(&self, name: &str) -> Option<&V> {
        let i = self.find(name).ok()?;
        self.0.get(i).map(|(_, v)| v)
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut V> {
        let i = self.find(name).ok()?;
        self.0.get_mut(i).map(|(_, v)| v)
    }

    /// `name`'s value, replaced.
    pub fn insert(&mut self, name: String, value: V) {
        match self.find(&name) {
            Ok(i) => {
                if let Some(entry) = self.0.get_mut(i) {
                    entry.1 = value;
                }
            }
            Err(i) => self.0.insert(i, (name, value)),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &V)> {
        self.0.iter().map(|(n, v)| (n, v))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<V: Default> ByName<V> {
    /// Changes `name`'s value with `change`, added as the default first if absent.
    pub fn update(&mut self, name: &str, change: impl FnOnce(&mut V)) {
        let i = match self.find(name) {
            Ok(i) => i,
            Err(i) => {
                self.0.insert(i, (name.to_string(), V::default()));
                i
            }
        };
        if let Some((_, value)) = self.0.get_mut(i) {
            change(value);
        }
    }
}

/// A closed bucket: the counts between `start_ms` and `stop_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    pub start_ms: i64,
    pub stop_ms: i64,
    pub counts: Counts,
}

/// What every VM of this Envoy shares: who the client is, whether it registered, the bucket
/// being filled and the closed buckets not yet taken by Unleash (oldest first).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SharedUsage {
    pub instance_id: String,
    pub started_ms: i64,
    pub registered: bool,
    pub current_start_ms: i64,
    pub current: Counts,
    pub pending: Vec<Bucket>,
}

/// Names are free text (variant names): one per line needs `\` and line breaks escaped.
fn escape(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('\n', "\\n")
        .replace('\r', "\\r")
}

fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

impl SharedUsage {
    fn encode(&self) -> Vec<u8> {
        let mut out = format!(
            "sluice-usage 1\ninstance {}\nstarted {}\nregistered {}\ncurrent {}\n",
            escape(&self.instance_id),
            self.started_ms,
            u8::from(self.registered),
            self.current_start_ms
        );
        let toggles = |out: &mut String, counts: &Counts| {
            for (name, t) in counts.toggles.iter() {
                out.push_str(&format!("t {} {} {}\n", t.yes, t.no, escape(name)));
                for (v, n) in t.variants.iter() {
                    out.push_str(&format!("v {n} {}\n", escape(v)));
                }
            }
        };
        toggles(&mut out, &self.current);
        for b in &self.pending {
            out.push_str(&format!("bucket {} {}\n", b.start_ms, b.stop_ms));
            toggles(&mut out, &b.counts);
        }
        out.into_bytes()
    }

    /// `None` for anything this version did not write.
    #[inline(never)]
    fn decode(bytes: &[u8]) -> Option<SharedUsage> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut lines = text.lines();
        if lines.next()? != "sluice-usage 1" {
            return None;
        }
        let mut s = SharedUsage::default();
        // Where `t`/`v` lines go: the current bucket until a `bucket` line, then the last one.
        let mut in_pending = false;
        let mut toggle: Option<String> = None;
        for line in lines {
            let (tag, rest) = line.split_once(' ')?;
            match tag {
                "instance" => s.instance_id = unescape(rest),
                "started" => s.started_ms = rest.parse().ok()?,
                "registered" => s.registered = rest == "1",
                "current" => s.current_start_ms = rest.parse().ok()?,
                "bucket" => {
                    let (start, stop) = rest.split_once(' ')?;
                    s.pending.push(Bucket {
                        start_ms: start.parse().ok()?,
                        stop_ms: stop.parse().ok()?,
                        counts: Counts::default(),
                    });
                    in_pending = true;
                    toggle = None;
                }
                "t" => toggle = Some(s.decode_toggle(rest, in_pending)?),
                "v" => s.decode_variant(rest, in_pending, toggle.as_deref()?)?,
                _ => return None,
            }
        }
        Some(s)
    }

    /// Where `t`/`v` lines go: the current bucket, or the last pending one.
    fn counts_mut(&mut self, in_pending: bool) -> Option<&mut Counts> {
        if in_pending {
            Some(&mut self.pending.last_mut()?.counts)
        } else {
            Some(&mut self.current)
        }
    }

    /// A `t <yes> <no> <feature>` line; returns the feature, which the `v` lines after it count.
    #[inline(never)]
    fn decode_toggle(&mut self, rest: &str, in_pending: bool) -> Option<String> {
        let mut parts = rest.splitn(3, ' ');
        let yes = parts.next()?.parse().ok()?;
        let no = parts.next()?.parse().ok()?;
        let name = unescape(parts.next()?);
        self.counts_mut(in_pending)?.toggles.insert(
            name.clone(),
            Toggle {
                yes,
                no,
                variants: ByName::default(),
            },
        );
        Some(name)
    }

    /// A `v <count> <variant>` line of feature `toggle`.
    #[inline(never)]
    fn decode_variant(&mut self, rest: &str, in_pending: bool, toggle: &str) -> Option<()> {
        let (n, name) = rest.split_once(' ')?;
        let t = self.counts_mut(in_pending)?.toggles.get_mut(toggle)?;
        t.variants.insert(unescape(name), n.parse().ok()?);
        Some(())
    }
}

/// This VM's side: counts since its last tick and the calls it has in flight.
#[derive(Debug, Default)]
pub struct UsageState {
    pub delta: Counts,
    /// Metrics posts in flight: their token and the bucket they carry.
    in_flight: Vec<(u32, Bucket)>,
    register_in_flight: Option<u32>,
}

/// Counters of the usage reports, defined once per VM.
pub struct UsageCounters {
    sent: Option<u32>,
    failed: Option<u32>,
    dropped: Option<u32>,
}

impl UsageCounters {
    pub fn define(stats: &dyn Stats) -> UsageCounters {
        let counter = |name| stats.define(MetricKind::Counter, name);
        UsageCounters {
            sent: counter(telemetry::UNLEASH_METRICS_SENT),
            failed: counter(telemetry::UNLEASH_METRICS_FAILED),
            dropped: counter(telemetry::UNLEASH_METRICS_DROPPED),
        }
    }
}

fn bump(stats: &dyn Stats, id: Option<u32>, n: u64) {
    if let (Some(id), true) = (id, n > 0) {
        stats.increment(id, n as i64);
    }
}

/// Read-modify-write of the shared usage with compare-and-swap; `None` when the host failed or
/// the state kept changing (the caller keeps what it meant to add for the next tick).
#[inline(never)]
fn update(
    shared: &dyn SharedData,
    key: &str,
    mut change: impl FnMut(&mut SharedUsage),
) -> Option<SharedUsage> {
    for _ in 0..8 {
        let (bytes, cas) = shared.get(key)?;
        let mut state = bytes
            .as_deref()
            .and_then(SharedUsage::decode)
            .unwrap_or_default();
        change(&mut state);
        match shared.set(key, &state.encode(), cas) {
            Ok(()) => return Some(state),
            Err(SetError::CasMismatch) => continue,
            Err(SetError::Failed) => return None,
        }
    }
    None
}

/// Keeps the newest `max` buckets; returns how many were dropped.
fn bound(pending: &mut Vec<Bucket>, max: usize) -> u64 {
    sluice_primitives::order::sort_by_key(pending, |b| b.start_ms);
    let over = pending.len().saturating_sub(max.max(1));
    pending.drain(..over);
    over as u64
}

/// The shared keys of the usage of one polled source (named like the poll's own keys).
#[derive(Debug)]
pub(crate) struct UsageKeys {
    pub state: String,
    pub schedule: String,
}

/// What the usage reports of one VM work with: its counts, the plan, the shared keys and the
/// host's shared data and stats.
pub(crate) struct Reports<'a> {
    pub usage: &'a std::cell::RefCell<UsageState>,
    pub plan: &'a UsagePlan,
    pub keys: &'a UsageKeys,
    pub shared: &'a dyn SharedData,
    pub counters: &'a UsageCounters,
    pub stats: &'a dyn Stats,
}

/// What one VM does on its tick: add its counts into the shared bucket; if it wins this
/// interval's round, close the bucket and send every pending one (and register first, once).
#[inline(never)]
pub(crate) fn tick(r: &Reports, poll: &PollPlan, seed: u64, calls: &dyn HttpCalls, now_ms: i64) {
    let claimed = claim_round(r.shared, &r.keys.schedule, now_ms, r.plan.interval_ms);
    let Some((state, taken)) = merge_counts(r, claimed, seed, now_ms) else {
        return;
    };
    if claimed {
        send_reports(r, poll, calls, &state, taken);
    }
}

/// Adds this VM's counts into the shared bucket; when `claimed`, closes the bucket and takes
/// every pending one. `None` when the shared usage could not be updated (the counts then wait
/// for the next tick).
#[inline(never)]
fn merge_counts(
    r: &Reports,
    claimed: bool,
    seed: u64,
    now_ms: i64,
) -> Option<(SharedUsage, Vec<Bucket>)> {
    let Reports {
        usage,
        plan,
        keys,
        shared,
        counters,
        stats,
    } = *r;
    let delta = std::mem::take(&mut usage.borrow_mut().delta);
    let mut dropped = 0;
    let mut taken = Vec::new();
    let state = update(shared, &keys.state, |s| {
        dropped = 0;
        taken.clear();
        if s.instance_id.is_empty() {
            s.instance_id = plan
                .instance_id
                .clone()
                .unwrap_or_else(|| format!("sluice-{seed:016x}"));
            s.started_ms = now_ms;
            s.current_start_ms = now_ms;
        }
        s.current.add(&delta);
        if claimed {
            if !s.current.is_empty() {
                s.pending.push(Bucket {
                    start_ms: s.current_start_ms,
                    stop_ms: now_ms,
                    counts: std::mem::take(&mut s.current),
                });
            }
            s.current_start_ms = now_ms;
            dropped = bound(&mut s.pending, plan.max_pending);
            taken = std::mem::take(&mut s.pending);
        }
    });
    let Some(state) = state else {
        // Counted again on the next tick rather than lost.
        usage.borrow_mut().delta.add(&delta);
        return None;
    };
    if dropped > 0 {
        warn!(
            "sluice: unleash metrics: {dropped} bucket(s) dropped (more than max_pending_buckets {} waiting for Unleash)",
            plan.max_pending
        );
        bump(stats, counters.dropped, dropped);
    }
    Some((state, taken))
}

/// Registers this instance (once), then sends each taken bucket; a bucket that cannot be sent
/// goes back to the shared pending ones.
#[inline(never)]
fn send_reports(
    r: &Reports,
    poll: &PollPlan,
    calls: &dyn HttpCalls,
    state: &SharedUsage,
    taken: Vec<Bucket>,
) {
    let Reports {
        usage,
        plan,
        counters,
        stats,
        ..
    } = *r;
    if !state.registered && usage.borrow().register_in_flight.is_none() {
        register(r, poll, calls, state);
    }
    for bucket in taken {
        let body = metrics_body(plan, state, &bucket);
        match post(plan, poll, calls, state, &plan.metrics_path, &body) {
            Ok(token) => usage.borrow_mut().in_flight.push((token, bucket)),
            Err(why) => {
                warn!(
                    "sluice: unleash metrics: cannot call cluster `{}` ({why}); bucket kept",
                    poll.cluster
                );
                bump(stats, counters.failed, 1);
                put_back(r, bucket);
            }
        }
    }
}

/// Registers this instance with Unleash (once: the answer marks the shared state registered).
#[inline(never)]
fn register(r: &Reports, poll: &PollPlan, calls: &dyn HttpCalls, state: &SharedUsage) {
    let body = register_body(r.plan, state);
    match post(r.plan, poll, calls, state, &r.plan.register_path, &body) {
        Ok(token) => r.usage.borrow_mut().register_in_flight = Some(token),
        Err(why) => {
            warn!(
                "sluice: unleash metrics: cannot register through cluster `{}` ({why})",
                poll.cluster
            );
            bump(r.stats, r.counters.failed, 1);
        }
    }
}

/// POSTs `body` to Unleash's `path` through the poll's cluster, as this instance.
#[inline(never)]
fn post(
    plan: &UsagePlan,
    poll: &PollPlan,
    calls: &dyn HttpCalls,
    state: &SharedUsage,
    path: &str,
    body: &str,
) -> Result<u32, String> {
    let mut owned = vec![
        (":method".to_string(), "POST".to_string()),
        (":path".to_string(), path.to_string()),
        (":authority".to_string(), poll.authority.clone()),
        ("content-type".to_string(), "application/json".to_string()),
        ("unleash-appname".to_string(), plan.app_name.clone()),
        ("unleash-instanceid".to_string(), state.instance_id.clone()),
        ("unleash-sdk".to_string(), SDK_VERSION.to_string()),
    ];
    if let Some(token) = &poll.authorization {
        owned.push(("authorization".to_string(), token.clone()));
    }
    let headers: Vec<(&str, &str)> = owned
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    calls.dispatch_with_body(&poll.cluster, &headers, body.as_bytes(), poll.timeout_ms)
}

/// The answer to a register or metrics call; `false` when the token is not one of ours.
#[inline(never)]
pub(crate) fn respond(r: &Reports, token: u32, status: Option<u32>) -> bool {
    let Reports {
        usage,
        plan,
        counters,
        stats,
        ..
    } = *r;
    let ok = status.is_some_and(|s| (200..300).contains(&s));
    let why = || match status {
        Some(s) => format!("HTTP {s}"),
        None => "no response (the call was reset)".to_string(),
    };
    if usage.borrow().register_in_flight == Some(token) {
        usage.borrow_mut().register_in_flight = None;
        registered(r, ok, why);
        return true;
    }
    let position = usage
        .borrow()
        .in_flight
        .iter()
        .position(|(t, _)| *t == token);
    let Some(i) = position else { return false };
    let (_, bucket) = usage.borrow_mut().in_flight.remove(i);
    if ok {
        bump(stats, counters.sent, 1);
    } else {
        warn!(
            "sluice: unleash metrics: sending a bucket to `{}` failed: {}; bucket kept for the next interval",
            plan.metrics_path,
            why()
        );
        bump(stats, counters.failed, 1);
        put_back(r, bucket);
    }
    true
}

/// The answer to the register call.
#[inline(never)]
fn registered(r: &Reports, ok: bool, why: impl Fn() -> String) {
    if ok {
        update(r.shared, &r.keys.state, |s| s.registered = true);
        info!(
            "sluice: unleash metrics: registered app `{}` with Unleash",
            r.plan.app_name
        );
    } else {
        warn!(
            "sluice: unleash metrics: register at `{}` failed: {}; retrying next interval",
            r.plan.register_path,
            why()
        );
        bump(r.stats, r.counters.failed, 1);
    }
}

/// A bucket Unleash did not take goes back into the shared pending list (oldest dropped
/// beyond the bound).
fn put_back(r: &Reports, bucket: Bucket) {
    let Reports {
        plan,
        keys,
        shared,
        counters,
        stats,
        ..
    } = *r;
    let mut dropped = 0;
    let stored = update(shared, &keys.state, |s| {
        s.pending.push(bucket.clone());
        dropped = bound(&mut s.pending, plan.max_pending);
    });
    if stored.is_none() {
        dropped = 1;
    }
    if dropped > 0 {
        warn!(
            "sluice: unleash metrics: {dropped} bucket(s) dropped (more than max_pending_buckets {} waiting for Unleash)",
            plan.max_pending
        );
        bump(stats, counters.dropped, dropped);
    }
}

#[inline(never)]
fn register_body(plan: &UsagePlan, state: &SharedUsage) -> String {
    let strategies: Vec<String> = STRATEGIES.iter().map(|s| json_string(s)).collect();
    format!(
        "{{\"appName\":{},\"instanceId\":{},\"sdkVersion\":{},\"strategies\":[{}],\"started\":\"{}\",\"interval\":{},\"platformName\":\"proxy-wasm\"}}",
        json_string(&plan.app_name),
        json_string(&state.instance_id),
        json_string(SDK_VERSION),
        strategies.join(","),
        format_rfc3339_millis(state.started_ms),
        plan.interval_ms
    )
}

#[inline(never)]
fn metrics_body(plan: &UsagePlan, state: &SharedUsage, bucket: &Bucket) -> String {
    format!(
        "{{\"appName\":{},\"instanceId\":{},\"sdkVersion\":{},\"bucket\":{{\"start\":\"{}\",\"stop\":\"{}\",\"toggles\":{}}}}}",
        json_string(&plan.app_name),
        json_string(&state.instance_id),
        json_string(SDK_VERSION),
        format_rfc3339_millis(bucket.start_ms),
        format_rfc3339_millis(bucket.stop_ms),
        bucket.counts.to_json()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_usage_survives_encoding_with_odd_variant_names() {
        let mut counts = Counts::default();
        let odd = FeatureUsage {
            enabled: true,
            variant: Some("a b\\c\nd\re".to_string()),
        };
        counts.count("checkout", &odd);
        counts.count("checkout", &odd);
        counts.count(
            "banner",
            &FeatureUsage {
                enabled: false,
                variant: None,
            },
        );
        let state = SharedUsage {
            instance_id: "sluice 1".to_string(),
            started_ms: 5,
            registered: true,
            current_start_ms: 7,
            current: counts.clone(),
            pending: vec![Bucket {
                start_ms: 1,
                stop_ms: 2,
                counts,
            }],
        };
        let decoded = SharedUsage::decode(&state.encode());
        assert_eq!(decoded.as_ref(), Some(&state));
        let banner = state.current.toggles.get("banner").expect("banner counted");
        assert_eq!((banner.yes, banner.no), (0, 1));
        assert_eq!(banner.variants.get("disabled"), Some(&1));
        assert_eq!(SharedUsage::decode(b"something else"), None);
        assert_eq!(SharedUsage::decode(b"sluice-usage 1\nt 1 x"), None);
    }
}
