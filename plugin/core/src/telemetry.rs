//! What Sluice counts, and under which names. Requests add to a per-VM
//! `Tally` (no hostcall; flag evaluations go to the request scratch's
//! `FlagCounts` as each flag is decided); the root context flushes both to
//! Envoy's stats on each tick, so metrics cost the request path no hostcall.
//!
//! Names follow Envoy's dotted convention under `sluice.`; Envoy exposes
//! them with its wasm prefix (`wasmcustom.sluice.…`, Prometheus
//! `envoy_wasmcustom_sluice_…`).
use crate::decision::{Decision, OverrideStatus};
use crate::host::{MetricKind, SharedData, Stats};
use crate::plan::Plan;

/// Upper bounds (ms) of the latency buckets, shared by the metrics and the
/// guard's p99 estimate.
pub const LATENCY_BOUNDS_MS: [u32; 23] = [
    1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 75, 100, 150, 200, 300, 500, 750, 1000, 1500, 2000, 3000,
    5000, 10000,
];
/// Buckets: one per bound plus overflow.
pub const LATENCY_BUCKETS: usize = LATENCY_BOUNDS_MS.len() + 1;

pub fn latency_bucket(ms: u64) -> usize {
    LATENCY_BOUNDS_MS
        .iter()
        .position(|b| ms <= u64::from(*b))
        .unwrap_or(LATENCY_BOUNDS_MS.len())
}

/// Counters of rare events, bumped by name where they happen.
pub const CONFIG_LOADED: &str = "sluice.config.loaded";
pub const CONFIG_REJECTED: &str = "sluice.config.rejected";
pub const UNLEASH_FETCH_OK: &str = "sluice.unleash.fetch.ok";
pub const UNLEASH_FETCH_NOT_MODIFIED: &str = "sluice.unleash.fetch.not_modified";
pub const UNLEASH_FETCH_FAILED: &str = "sluice.unleash.fetch.failed";
/// A fetched payload whose generation could not be announced to the other VMs this tick.
/// Usage buckets Unleash took (2xx).
pub const UNLEASH_METRICS_SENT: &str = "sluice.unleash.metrics.sent";
/// Register and metrics calls that failed (no answer, or not 2xx); their buckets are kept.
pub const UNLEASH_METRICS_FAILED: &str = "sluice.unleash.metrics.failed";
/// Buckets dropped, oldest first, beyond `unleash.metrics.max_pending_buckets`.
pub const UNLEASH_METRICS_DROPPED: &str = "sluice.unleash.metrics.dropped";
pub const UNLEASH_PUBLISH_RETRIES: &str = "sluice.unleash.publish.retries";
pub const SPRING_FETCH_OK: &str = "sluice.spring.fetch.ok";
pub const SPRING_FETCH_NOT_MODIFIED: &str = "sluice.spring.fetch.not_modified";
pub const SPRING_FETCH_FAILED: &str = "sluice.spring.fetch.failed";
pub const SPRING_PUBLISH_RETRIES: &str = "sluice.spring.publish.retries";

/// `sluice.config.revision.<revision>`: 1 for the config in force, 0 once replaced. A
/// revision-less config is named by a hash.
pub fn active_revision(plan_id: &str) -> String {
    format!("sluice.config.revision.{}", stat_segment(plan_id))
}

/// Shared-data key naming the revision in force, so the next config can zero its gauge.
const REVISION_IN_FORCE: &str = "sluice.config.revision";

/// Marks `plan_id` as the config in force: its revision gauge reads 1, the one it replaced 0.
/// Set, not counted per VM: Envoy first configures each new config on a canary VM that it kills
/// without `on_done`, so VMs counted up and down left every replaced revision at 1.
#[inline(never)]
pub fn announce_revision(shared: &dyn SharedData, stats: &dyn Stats, plan_id: &str) {
    let previous = shared
        .get(REVISION_IN_FORCE)
        .and_then(|(value, _)| value)
        .and_then(|value| String::from_utf8(value).ok());
    let set = |plan_id: &str, value| {
        if let Some(id) = stats.define(MetricKind::Gauge, &active_revision(plan_id)) {
            stats.record(id, value);
        }
    };
    if let Some(previous) = previous.filter(|p| p != plan_id) {
        set(&previous, 0);
    }
    set(plan_id, 1);
    // Every VM writes the same value; the last write wins, no CAS needed.
    let _ = shared.set(REVISION_IN_FORCE, plan_id.as_bytes(), None);
}

/// Response status classes counted per route and version.
pub const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// A response's `:status` value (three digits, as Envoy writes it); 0 for anything else, which
/// no status class counts.
pub fn parse_status(value: &[u8]) -> u32 {
    match *value {
        [a, b, c] if a.is_ascii_digit() && b.is_ascii_digit() && c.is_ascii_digit() => {
            u32::from(a - b'0') * 100 + u32::from(b - b'0') * 10 + u32::from(c - b'0')
        }
        _ => 0,
    }
}

pub fn status_class(status: u32) -> Option<usize> {
    match status {
        100..=599 => Some(status as usize / 100 - 1),
        _ => None,
    }
}

/// Stat names of one plan, in a layout the tally indexes.
pub struct MetricNames {
    pub route_requests: Vec<Vec<String>>,
    pub route_responses: Vec<Vec<[String; 5]>>,
    pub route_latency: Vec<Vec<String>>,
    pub flag_evaluations: Vec<Vec<String>>,
    pub overrides_honoured: String,
    pub overrides_refused: String,
    pub guard_tripped: Vec<Option<String>>,
    pub guard_trips: Vec<Option<String>>,
    /// Per route with a guard webhook: `[delivered, failed, gave_up]`.
    pub guard_webhook: Vec<Option<[String; 3]>>,
    /// Per flag (empty unless an experiment), per variant.
    pub experiment_responses: Vec<Vec<[String; 5]>>,
    pub experiment_latency: Vec<Vec<String>>,
    /// Per flag, per variant, per goal.
    pub experiment_goals: Vec<Vec<Vec<String>>>,
}

/// `sluice.experiment.<flag>.<variant>.<what>`.
#[inline(never)]
fn experiment_names<T>(
    plan: &Plan,
    each: impl Fn(&dyn Fn(&str) -> String, &crate::plan::ExperimentPlan) -> T,
) -> Vec<Vec<T>> {
    plan.flags
        .iter()
        .map(|f| match &f.experiment {
            Some(e) => f
                .variant_names
                .iter()
                .map(|v| {
                    let name = |what: &str| stat_name("sluice.experiment", &[&f.name, v], what);
                    each(&name, e)
                })
                .collect(),
            None => Vec::new(),
        })
        .collect()
}

/// Stat-name-safe text: Envoy splits on dots, so names keep letters, digits,
/// `_` and `-` only.
pub fn stat_segment(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    push_stat_segment(&mut out, name);
    out
}

/// Appends `name` made stat-safe: runs of allowed bytes copied whole, one `_` per other
/// character (a multi-byte character's continuation bytes are skipped). Bytes, not chars: a
/// char iterator costs several times as much under wasm.
#[inline(never)]
fn push_stat_segment(out: &mut String, name: &str) {
    let mut run = 0;
    for (i, &b) in name.as_bytes().iter().enumerate() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            continue;
        }
        // Empty when `run` sits inside a character (after a continuation byte).
        out.push_str(name.get(run..i).unwrap_or_default());
        if !(0x80..0xC0).contains(&b) {
            out.push('_');
        }
        run = i + 1;
    }
    out.push_str(name.get(run..).unwrap_or_default());
}

/// `prefix.<name>.<name>….suffix`, each name made stat-safe: one allocation per stat name (a
/// config of 1,000 flags defines thousands at every push).
#[inline(never)]
fn stat_name(prefix: &str, names: &[&str], suffix: &str) -> String {
    let len = prefix.len() + suffix.len() + names.iter().map(|n| n.len() + 1).sum::<usize>() + 1;
    let mut out = String::with_capacity(len);
    out.push_str(prefix);
    for name in names {
        out.push('.');
        push_stat_segment(&mut out, name);
    }
    out.push('.');
    out.push_str(suffix);
    out
}

impl MetricNames {
    #[inline(never)]
    pub fn of(plan: &Plan) -> MetricNames {
        MetricNames {
            route_requests: per_version(plan, "requests"),
            route_responses: route_responses(plan),
            route_latency: per_version(plan, "latency_ms"),
            flag_evaluations: flag_evaluations(plan),
            overrides_honoured: "sluice.overrides.honoured".into(),
            overrides_refused: "sluice.overrides.refused".into(),
            guard_tripped: per_guard(plan, "tripped"),
            guard_trips: per_guard(plan, "trips"),
            guard_webhook: guard_webhook(plan),
            experiment_responses: experiment_names(plan, |name, _| {
                STATUS_CLASSES.map(|class| name(&format!("responses.{class}")))
            }),
            experiment_latency: experiment_names(plan, |name, _| name("latency_ms")),
            experiment_goals: experiment_names(plan, |name, e| {
                e.goals
                    .iter()
                    .map(|g| name(&format!("goal.{}", stat_segment(g))))
                    .collect()
            }),
        }
    }
}

/// `sluice.route.<route>.<version>.<what>`, per route, per version.
#[inline(never)]
fn per_version(plan: &Plan, what: &str) -> Vec<Vec<String>> {
    plan.routes
        .iter()
        .map(|r| {
            r.versions
                .iter()
                .map(|v| stat_name("sluice.route", &[&r.name, v], what))
                .collect()
        })
        .collect()
}

/// `sluice.route.<route>.<version>.responses.<class>`, per route, per version, per class.
#[inline(never)]
fn route_responses(plan: &Plan) -> Vec<Vec<[String; 5]>> {
    plan.routes
        .iter()
        .map(|r| {
            r.versions
                .iter()
                .map(|v| {
                    STATUS_CLASSES.map(|class| {
                        stat_name("sluice.route", &[&r.name, v], &format!("responses.{class}"))
                    })
                })
                .collect()
        })
        .collect()
}

/// `sluice.flag.<flag>.<variant>.evaluations`, per flag, per variant.
#[inline(never)]
fn flag_evaluations(plan: &Plan) -> Vec<Vec<String>> {
    plan.flags
        .iter()
        .map(|f| {
            f.variant_names
                .iter()
                .map(|v| stat_name("sluice.flag", &[&f.name, v], "evaluations"))
                .collect()
        })
        .collect()
}

/// `sluice.guard.<route>.<what>` per route with a guard.
#[inline(never)]
fn per_guard(plan: &Plan, what: &str) -> Vec<Option<String>> {
    plan.routes
        .iter()
        .map(|r| {
            r.guard
                .as_ref()
                .map(|_| stat_name("sluice.guard", &[&r.name], what))
        })
        .collect()
}

/// `sluice.guard.<route>.webhook.{delivered,failed,gave_up}` per route with a guard webhook.
#[inline(never)]
fn guard_webhook(plan: &Plan) -> Vec<Option<[String; 3]>> {
    plan.routes
        .iter()
        .map(|r| {
            r.guard.as_ref().and_then(|g| g.webhook.as_ref()).map(|_| {
                ["delivered", "failed", "gave_up"]
                    .map(|what| format!("sluice.guard.{}.webhook.{what}", stat_segment(&r.name)))
            })
        })
        .collect()
}

/// Counts gathered between two flushes, shaped like `MetricNames`.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub route_requests: Vec<Vec<u64>>,
    pub route_responses: Vec<Vec<[u64; 5]>>,
    /// Latency samples (ms) per route and version, flushed as histogram records.
    pub route_latency: Vec<Vec<Vec<u32>>>,
    pub overrides_honoured: u64,
    pub overrides_refused: u64,
    /// Shaped like `MetricNames::experiment_*`.
    pub experiment_responses: Vec<Vec<[u64; 5]>>,
    pub experiment_latency: Vec<Vec<Vec<u32>>>,
    pub experiment_goals: Vec<Vec<Vec<u64>>>,
}

/// At most this many latency samples per route/version between flushes; the
/// rest still count in the guard, only the histogram thins out.
const MAX_SAMPLES_PER_FLUSH: usize = 4096;

impl Tally {
    #[inline(never)]
    pub fn for_plan(plan: &Plan) -> Tally {
        Tally {
            route_requests: plan
                .routes
                .iter()
                .map(|r| vec![0; r.versions.len()])
                .collect(),
            route_responses: plan
                .routes
                .iter()
                .map(|r| vec![[0; 5]; r.versions.len()])
                .collect(),
            route_latency: plan
                .routes
                .iter()
                .map(|r| vec![Vec::new(); r.versions.len()])
                .collect(),
            overrides_honoured: 0,
            overrides_refused: 0,
            experiment_responses: experiment_shape(plan, |_| [0; 5]),
            experiment_latency: experiment_shape(plan, |_| Vec::new()),
            experiment_goals: experiment_shape(plan, |e| vec![0; e.goals.len()]),
        }
    }

    /// One response to a request that got `variant` of experiment flag `flag`.
    pub fn count_experiment_response(
        &mut self,
        flag: usize,
        variant: usize,
        status: u32,
        latency_ms: Option<u64>,
    ) {
        if let (Some(class), Some(slot)) = (
            status_class(status),
            self.experiment_responses
                .get_mut(flag)
                .and_then(|v| v.get_mut(variant)),
        ) {
            slot[class] += 1;
        }
        if let (Some(ms), Some(samples)) = (
            latency_ms,
            self.experiment_latency
                .get_mut(flag)
                .and_then(|v| v.get_mut(variant)),
        ) {
            if samples.len() < MAX_SAMPLES_PER_FLUSH {
                samples.push(ms.min(u64::from(u32::MAX)) as u32);
            }
        }
    }

    pub fn count_goal(&mut self, flag: usize, variant: usize, goal: usize) {
        if let Some(slot) = self
            .experiment_goals
            .get_mut(flag)
            .and_then(|v| v.get_mut(variant))
            .and_then(|v| v.get_mut(goal))
        {
            *slot += 1;
        }
    }

    pub fn count_decision(&mut self, decision: &Decision) {
        for r in &decision.routes {
            if let Some(slot) = self
                .route_requests
                .get_mut(r.route)
                .and_then(|v| v.get_mut(r.version))
            {
                *slot += 1;
            }
        }
        match decision.overrides {
            OverrideStatus::Honoured => self.overrides_honoured += 1,
            OverrideStatus::Refused => self.overrides_refused += 1,
            OverrideStatus::Absent => {}
        }
    }

    pub fn count_response(
        &mut self,
        route: usize,
        version: usize,
        status: u32,
        latency_ms: Option<u64>,
    ) {
        if let (Some(class), Some(slot)) = (
            status_class(status),
            self.route_responses
                .get_mut(route)
                .and_then(|v| v.get_mut(version)),
        ) {
            slot[class] += 1;
        }
        if let (Some(ms), Some(samples)) = (
            latency_ms,
            self.route_latency
                .get_mut(route)
                .and_then(|v| v.get_mut(version)),
        ) {
            if samples.len() < MAX_SAMPLES_PER_FLUSH {
                samples.push(ms.min(u64::from(u32::MAX)) as u32);
            }
        }
    }
}

#[inline(never)]
fn experiment_shape<T>(
    plan: &Plan,
    each: impl Fn(&crate::plan::ExperimentPlan) -> T,
) -> Vec<Vec<T>> {
    plan.flags
        .iter()
        .map(|f| match &f.experiment {
            Some(e) => f.variant_names.iter().map(|_| each(e)).collect(),
            None => Vec::new(),
        })
        .collect()
}

/// The goals named in one goal header value: comma-separated, spaces trimmed.
pub fn goals_in(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|b| *b == b',')
        .map(|g| g.trim_ascii())
        .filter(|g| !g.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_three_digits() {
        assert_eq!(parse_status(b"200"), 200);
        assert_eq!(parse_status(b"503"), 503);
        assert_eq!(parse_status(b"099"), 99);
        assert_eq!(parse_status(b"999"), 999);
        for bad in [&b""[..], b"20", b"2000", b" 200", b"20x", b"-20", b"\xff00"] {
            assert_eq!(parse_status(bad), 0, "{bad:?}");
        }
    }

    #[test]
    fn buckets_and_classes() {
        assert_eq!(latency_bucket(0), 0);
        assert_eq!(latency_bucket(1), 0);
        assert_eq!(latency_bucket(4), 3);
        assert_eq!(latency_bucket(10_000), 22);
        assert_eq!(latency_bucket(10_001), 23);
        assert_eq!(status_class(503), Some(4));
        assert_eq!(status_class(200), Some(1));
        assert_eq!(status_class(0), None);
        assert_eq!(stat_segment("a.b c"), "a_b_c");
        // One `_` per character, whatever its length in bytes.
        assert_eq!(stat_segment("grün-€-𝄞_x9"), "gr_n-_-__x9");
        assert_eq!(stat_segment("ü-x"), "_-x");
        assert_eq!(stat_segment("a€"), "a_");
        assert_eq!(stat_segment(""), "");
    }

    #[test]
    fn the_revision_in_force_reads_1_and_the_replaced_one_0() {
        use crate::host::local::{LocalShared, LocalStats};
        let (shared, stats) = (LocalShared::default(), LocalStats::default());
        let gauge = |rev: &str| stats.value(&active_revision(rev));
        // Envoy's canary VM, then each worker: the same revision announced again stays at 1.
        announce_revision(&shared, &stats, "r1");
        announce_revision(&shared, &stats, "r1");
        assert_eq!((gauge("r1"), gauge("r2")), (1, 0));
        announce_revision(&shared, &stats, "r2");
        assert_eq!((gauge("r1"), gauge("r2")), (0, 1));
        // A rollback to r1 brings it back and retires r2.
        announce_revision(&shared, &stats, "r1");
        assert_eq!((gauge("r1"), gauge("r2")), (1, 0));
    }
}
