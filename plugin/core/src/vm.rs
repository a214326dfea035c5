//! One VM's state for one plugin config: the plan, its stat ids (defined once), what requests
//! counted since the last tick, the guards' verdicts and the Unleash payload in force. The filter
//! keeps one per root context and hands every HTTP context a reference; the host is reached only
//! through `crate::host`'s traits, so all of it runs natively in tests.
use crate::chain_metrics::ChainMetrics;
use crate::decision::Decision;
use crate::engine::RouteControl;
use crate::guard::{Delta, Window, CANARY, STABLE};
use crate::host::{HttpCalls, MetricKind, SetError, SharedData, Stats};
use crate::notify::{json_string, Event, Notifier};
use crate::pipeline::{self, Facts, Live, Patch, Scratch};
use crate::plan::{Plan, Strategy};
use crate::poll::PollState;
use crate::slots::Slots;
use crate::telemetry::{latency_bucket, MetricNames, Tally};
use crate::usage::UsageState;
use log::{info, warn};
use std::cell::RefCell;
use std::mem::ManuallyDrop;
use std::rc::Rc;

pub struct VmState {
    /// Dropped by `VmState`'s `Drop`, out of line: its drop glue, inlined into the filter's
    /// `Rc<VmState>` drop (built for speed), made that the module's largest function.
    pub plan: ManuallyDrop<Plan>,
    /// Names this config in shared data: its revision, or a hash of its text.
    pub plan_id: String,
    pub seed: u64,
    /// Dropped by `VmState`'s `Drop`, like `plan`.
    pub tally: ManuallyDrop<RefCell<Tally>>,
    /// Per route: what this VM saw since it last merged into the shared window.
    guard_deltas: RefCell<Vec<Delta>>,
    pub controls: RefCell<Vec<RouteControl>>,
    /// The Unleash payload in force (pushed, then replaced by polls).
    pub unleash: RefCell<Option<Rc<sluice_unleash::Engine>>>,
    pub poll: RefCell<PollState>,
    /// Unleash usage counted since the last tick, and the reports in flight.
    pub usage: RefCell<UsageState>,
    /// Dropped by `VmState`'s `Drop`, like `plan`.
    metrics: ManuallyDrop<MetricIds>,
    /// Indices of the flags marked `experiment`.
    experiment_flags: Vec<usize>,
    /// Trip notifications still to deliver.
    notifier: RefCell<Notifier>,
    /// The decision and patch buffers every request reuses.
    scratch: RefCell<Scratch>,
    /// Signed decisions and baggage: accepted, rejected, signed.
    chain_metrics: ChainMetrics,
}

/// Stat ids of one plan, defined once per VM at configure time.
struct MetricIds {
    route_requests: Vec<Vec<Option<u32>>>,
    route_responses: Vec<Vec<[Option<u32>; 5]>>,
    route_latency: Vec<Vec<Option<u32>>>,
    /// Flag-major, variant-minor: `FlagCounts`' slots.
    flag_evaluations: Vec<Option<u32>>,
    overrides_honoured: Option<u32>,
    overrides_refused: Option<u32>,
    guard_tripped: Vec<Option<u32>>,
    guard_trips: Vec<Option<u32>>,
    experiment_responses: Vec<Vec<[Option<u32>; 5]>>,
    experiment_latency: Vec<Vec<Option<u32>>>,
    experiment_goals: Vec<Vec<Vec<Option<u32>>>>,
    guard_webhook: Vec<Option<[Option<u32>; 3]>>,
}

impl MetricIds {
    /// The plan's stats, defined (their names are needed only for that).
    #[inline(never)]
    fn of(plan: &Plan, stats: &dyn Stats) -> MetricIds {
        MetricIds::define(&MetricNames::of(plan), stats)
    }

    #[inline(never)]
    fn define(names: &MetricNames, stats: &dyn Stats) -> MetricIds {
        MetricIds {
            guard_webhook: names
                .guard_webhook
                .iter()
                .map(|n| {
                    n.as_ref()
                        .map(|n| n.each_ref().map(|n| stats.define(MetricKind::Counter, n)))
                })
                .collect(),
            experiment_responses: define_classes(stats, &names.experiment_responses),
            experiment_latency: define_rows(
                stats,
                &names.experiment_latency,
                MetricKind::Histogram,
            ),
            experiment_goals: names
                .experiment_goals
                .iter()
                .map(|flag| define_rows(stats, flag, MetricKind::Counter))
                .collect(),
            route_requests: define_rows(stats, &names.route_requests, MetricKind::Counter),
            route_responses: define_classes(stats, &names.route_responses),
            route_latency: define_rows(stats, &names.route_latency, MetricKind::Histogram),
            flag_evaluations: define_flattened(stats, &names.flag_evaluations),
            overrides_honoured: stats.define(MetricKind::Counter, &names.overrides_honoured),
            overrides_refused: stats.define(MetricKind::Counter, &names.overrides_refused),
            guard_tripped: define_optional(stats, &names.guard_tripped, MetricKind::Gauge),
            guard_trips: define_optional(stats, &names.guard_trips, MetricKind::Counter),
        }
    }
}

/// Defines a stat of `kind` per name, shaped like the names (per route or flag, per version or
/// variant).
#[inline(never)]
fn define_rows(stats: &dyn Stats, rows: &[Vec<String>], kind: MetricKind) -> Vec<Vec<Option<u32>>> {
    rows.iter()
        .map(|row| row.iter().map(|n| stats.define(kind, n)).collect())
        .collect()
}

/// `define_rows` for counters, in one list: flag-major, variant-minor (`FlagCounts`' slots).
#[inline(never)]
fn define_flattened(stats: &dyn Stats, rows: &[Vec<String>]) -> Vec<Option<u32>> {
    define_rows(stats, rows, MetricKind::Counter)
        .into_iter()
        .flatten()
        .collect()
}

/// Defines a stat of `kind` per name given (none where there is no name).
#[inline(never)]
fn define_optional(
    stats: &dyn Stats,
    names: &[Option<String>],
    kind: MetricKind,
) -> Vec<Option<u32>> {
    names
        .iter()
        .map(|n| n.as_ref().and_then(|n| stats.define(kind, n)))
        .collect()
}

/// `define_rows` for counters per status class.
#[inline(never)]
fn define_classes(stats: &dyn Stats, rows: &[Vec<[String; 5]>]) -> Vec<Vec<[Option<u32>; 5]>> {
    rows.iter()
        .map(|row| {
            row.iter()
                .map(|classes| {
                    classes
                        .each_ref()
                        .map(|n| stats.define(MetricKind::Counter, n))
                })
                .collect()
        })
        .collect()
}

impl Drop for VmState {
    fn drop(&mut self) {
        drop_large_parts(&mut self.plan, &mut self.tally, &mut self.metrics);
    }
}

/// The drop glue of `VmState`'s largest parts, built here (for size) rather than where the
/// `VmState` is dropped.
#[inline(never)]
fn drop_large_parts(
    plan: &mut ManuallyDrop<Plan>,
    tally: &mut ManuallyDrop<RefCell<Tally>>,
    metrics: &mut ManuallyDrop<MetricIds>,
) {
    // SAFETY: called once, by `VmState::drop`; none of the three is used after it.
    unsafe {
        ManuallyDrop::drop(plan);
        ManuallyDrop::drop(tally);
        ManuallyDrop::drop(metrics);
    }
}

/// Adds a count to a counter (a defined one; nothing for 0).
fn add(stats: &dyn Stats, id: Option<u32>, n: u64) {
    if let (Some(id), true) = (id, n > 0) {
        stats.increment(id, n as i64);
    }
}

/// Adds counts shaped like their counters' ids (per route or flag, per version or variant).
#[inline(never)]
fn add_counts(stats: &dyn Stats, ids: &[Vec<Option<u32>>], counts: &[Vec<u64>]) {
    for (ids, counts) in ids.iter().zip(counts) {
        ids.iter()
            .zip(counts)
            .for_each(|(id, n)| add(stats, *id, *n));
    }
}

/// `add_counts` for counts per status class.
#[inline(never)]
fn add_classes(stats: &dyn Stats, ids: &[Vec<[Option<u32>; 5]>], counts: &[Vec<[u64; 5]>]) {
    for (ids, counts) in ids.iter().zip(counts) {
        for (classes, class_counts) in ids.iter().zip(counts) {
            classes
                .iter()
                .zip(class_counts)
                .for_each(|(id, n)| add(stats, *id, *n));
        }
    }
}

/// Records latency samples into their histograms.
#[inline(never)]
fn record_samples(stats: &dyn Stats, ids: &[Vec<Option<u32>>], samples: &[Vec<Vec<u32>>]) {
    for (ids, samples) in ids.iter().zip(samples) {
        for (id, values) in ids.iter().zip(samples) {
            if let Some(id) = id {
                values.iter().for_each(|v| stats.record(*id, u64::from(*v)));
            }
        }
    }
}

/// What one request needs remembered until its response: where it was routed, and when.
#[derive(Debug, Default, Clone)]
pub struct Routed {
    /// `(route, version)` per matched route. Four inline: a request rarely matches more, and
    /// every inline slot is zeroed and moved with each request's context.
    pub routes: Slots<(usize, usize), 4>,
    pub started_ms: i64,
    /// Whether a guard counts Envoy's own replies, so the filter must ask who answered.
    pub counts_local_replies: bool,
    /// `(flag, variant)` per experiment flag, for outcomes per variant.
    pub variants: Slots<(usize, usize), 4>,
}

impl Routed {
    /// Nothing to count on the response.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty() && self.variants.is_empty()
    }
}

/// An empty guard delta per route.
#[inline(never)]
fn empty_deltas(routes: usize) -> Vec<Delta> {
    vec![Delta::default(); routes]
}

/// Indices of the plan's flags marked `experiment`.
#[inline(never)]
fn experiment_flags(plan: &Plan) -> Vec<usize> {
    (0..plan.flags.len())
        .filter(|i| plan.flags[*i].experiment.is_some())
        .collect()
}

/// Names a config in shared data: its revision, or a hash of its text when it has none.
#[inline(never)]
pub fn plan_id(plan: &Plan, config: &[u8]) -> String {
    if plan.revision.is_empty() {
        format!("{:08x}", sluice_primitives::murmur3_x86_32(config, 0))
    } else {
        plan.revision.clone()
    }
}

impl VmState {
    #[inline(never)]
    pub fn new(plan: Plan, plan_id: String, seed: u64, stats: &dyn Stats) -> VmState {
        let metrics = MetricIds::of(&plan, stats);
        let chain_metrics = ChainMetrics::define(
            stats,
            plan.chain.token.is_some(),
            !plan.chain.baggage_keys.is_empty() || plan.chain.token.is_some(),
        );
        // A new config starts with its guards untripped (a re-push of the same revision sets
        // them again from shared data right away).
        for id in metrics.guard_tripped.iter().flatten() {
            stats.record(*id, 0);
        }
        let routes = plan.routes.len();
        let unleash = plan.unleash.as_ref().and_then(|u| u.initial.clone());
        VmState {
            experiment_flags: experiment_flags(&plan),
            notifier: RefCell::default(),
            unleash: RefCell::new(unleash),
            poll: RefCell::default(),
            usage: RefCell::default(),
            tally: ManuallyDrop::new(RefCell::new(Tally::for_plan(&plan))),
            guard_deltas: RefCell::new(empty_deltas(routes)),
            controls: RefCell::new(vec![RouteControl::Normal; routes]),
            plan: ManuallyDrop::new(plan),
            plan_id,
            seed,
            metrics: ManuallyDrop::new(metrics),
            scratch: RefCell::default(),
            chain_metrics,
        }
    }

    /// Per-request entropy for an HTTP context: distinct per context, per VM and per config.
    pub fn entropy(&self, context_id: u32) -> u64 {
        self.seed ^ u64::from(context_id).wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }

    /// The request pipeline with this VM's live state; counts the decision and hands the patch
    /// to `apply`. Returns what the response accounting needs.
    pub fn on_request(&self, facts: &Facts, apply: impl FnOnce(&Plan, &Patch)) -> Routed {
        let mut routed = Routed::default();
        self.on_request_into(facts, &mut routed, apply);
        routed
    }

    /// `on_request`, recording into `routed` (empty: the request's own, fresh one) in place:
    /// the filter keeps it in the request's context, and a `Routed` is ~150 bytes to move.
    #[inline(never)]
    pub fn on_request_into(
        &self,
        facts: &Facts,
        routed: &mut Routed,
        apply: impl FnOnce(&Plan, &Patch),
    ) {
        let unleash = self.unleash.borrow().clone();
        let spring = self.spring_flags();
        let controls = self.controls.borrow();
        let live = Live {
            controls: &controls,
            unleash: unleash.as_deref(),
            spring: spring.as_deref(),
        };
        let mut scratch = self.scratch.borrow_mut();
        pipeline::run(&self.plan, live, facts, &mut scratch);
        self.tally.borrow_mut().count_decision(&scratch.decision);
        self.count_usage(&scratch.decision);
        self.chain_metrics
            .count(&scratch.decision, scratch.patch.signed_token());
        apply(&self.plan, &scratch.patch);
        self.record_routing(&scratch.decision, facts.now_ms, routed);
    }

    /// Counts the Unleash features evaluated for this request, for the usage reports.
    #[inline(never)]
    fn count_usage(&self, decision: &Decision) {
        if decision.unleash.iter().all(|f| f.usage.is_none()) {
            return;
        }
        let mut usage = self.usage.borrow_mut();
        for f in &decision.unleash {
            if let Some(u) = &f.usage {
                usage.delta.count(&f.name, u);
            }
        }
    }

    #[inline(never)]
    fn record_routing(&self, decision: &Decision, now_ms: i64, routed: &mut Routed) {
        for r in &decision.routes {
            routed.routes.push((r.route, r.version));
        }
        routed.counts_local_replies = routed.routes.iter().any(|(r, _)| {
            self.plan.routes[*r]
                .guard
                .as_ref()
                .is_some_and(|g| g.count_local_replies)
        });
        for &flag in &self.experiment_flags {
            if let Some(outcome) = decision.flags.get(flag) {
                routed.variants.push((flag, outcome.variant));
            }
        }
        routed.started_ms = now_ms;
    }

    /// Counts the goals a response's goal header names (`header`: index into
    /// `plan.goal_headers`) for the request's experiment variants. The filter strips every
    /// `plan.goal_headers` header from every response, counted or not.
    pub fn on_goals(&self, routed: &Routed, header: usize, value: &[u8]) {
        let mut tally = self.tally.borrow_mut();
        for &(flag, variant) in routed.variants.iter() {
            let Some(e) = self
                .plan
                .flags
                .get(flag)
                .and_then(|f| f.experiment.as_ref())
            else {
                continue;
            };
            if e.goal_header != header {
                continue;
            }
            for goal in crate::telemetry::goals_in(value) {
                if let Some(g) = e.goals.iter().position(|name| name.as_bytes() == goal) {
                    tally.count_goal(flag, variant, g);
                }
            }
        }
    }

    /// Counts one response (status 0: the stream ended without one) for stats and guards.
    /// `local_reply`: Envoy answered itself (timeout, no healthy upstream, reset).
    pub fn on_response(&self, routed: &Routed, status: u32, local_reply: bool, now_ms: i64) {
        // No start time (the request was not clocked): no latency sample, rather than "now".
        let latency = (routed.started_ms > 0).then(|| (now_ms - routed.started_ms).max(0) as u64);
        let mut tally = self.tally.borrow_mut();
        let mut deltas = self.guard_deltas.borrow_mut();
        for &(flag, variant) in routed.variants.iter() {
            tally.count_experiment_response(flag, variant, status, latency);
        }
        for &(route, version) in routed.routes.iter() {
            tally.count_response(route, version, status, latency);
            let r = &self.plan.routes[route];
            let (
                Some(guard),
                Strategy::Progressive {
                    baseline, target, ..
                },
            ) = (&r.guard, &r.strategy)
            else {
                continue;
            };
            let side = if version == *target {
                CANARY
            } else if version == *baseline {
                STABLE
            } else {
                continue;
            };
            let error = status >= 500 || (guard.count_local_replies && local_reply);
            if let Some(delta) = deltas.get_mut(route) {
                let slow = guard
                    .sequential
                    .as_ref()
                    .and_then(|s| s.slow_ms)
                    .is_some_and(|slow| latency.is_some_and(|l| l > slow));
                delta.sides[side].record(error, slow, latency.map(latency_bucket));
            }
        }
    }

    /// Hands the counts since the last tick to the host's stats.
    #[inline(never)]
    pub fn flush_metrics(&self, stats: &dyn Stats) {
        let tally = std::mem::replace(&mut *self.tally.borrow_mut(), Tally::for_plan(&self.plan));
        let m = &self.metrics;
        add_counts(stats, &m.route_requests, &tally.route_requests);
        add_classes(stats, &m.route_responses, &tally.route_responses);
        record_samples(stats, &m.route_latency, &tally.route_latency);
        // Flag evaluations are counted as they are decided, in the request scratch.
        let ids = &m.flag_evaluations;
        self.scratch
            .borrow_mut()
            .flag_counts
            .flush(|slot, n| add(stats, ids.get(slot).copied().flatten(), n));
        add(stats, m.overrides_honoured, tally.overrides_honoured);
        add(stats, m.overrides_refused, tally.overrides_refused);
        add_classes(stats, &m.experiment_responses, &tally.experiment_responses);
        record_samples(stats, &m.experiment_latency, &tally.experiment_latency);
        for (flag_ids, flag_counts) in m.experiment_goals.iter().zip(&tally.experiment_goals) {
            add_counts(stats, flag_ids, flag_counts);
        }
        self.chain_metrics.flush(stats);
    }

    /// Merges this VM's guard counts into the shared windows, judges them, and follows any trip
    /// (this VM's or another's).
    #[inline(never)]
    pub fn run_guards(&self, shared: &dyn SharedData, stats: &dyn Stats, now_ms: i64) {
        for (i, route) in self.plan.routes.iter().enumerate() {
            let Some(guard) = &route.guard else { continue };
            let delta = std::mem::take(&mut self.guard_deltas.borrow_mut()[i]);
            let key = format!("sluice.guard.{}.{}", self.plan_id, route.name);
            let current_weight = match &route.strategy {
                Strategy::Progressive { schedule, .. } => schedule.weight_at(now_ms),
                _ => 0,
            };
            let judge = |w: &mut Window| {
                if w.tripped {
                    return false;
                }
                match w.judge(guard, now_ms) {
                    Some(reason) => {
                        w.tripped = true;
                        w.paused_weight = current_weight;
                        w.reason = reason;
                        true
                    }
                    None => false,
                }
            };
            let Some((window, tripped_here)) =
                merge_window(shared, &key, &delta, now_ms, judge, guard.window_ms)
            else {
                continue;
            };
            if window.tripped {
                self.follow_trip(i, guard, &window, tripped_here, stats, now_ms);
            }
        }
    }

    /// Puts a tripped guard's action in force on route `i` (nothing when it already is): logs
    /// it, and when it tripped here counts the trip and queues its webhook.
    #[inline(never)]
    fn follow_trip(
        &self,
        i: usize,
        guard: &crate::plan::GuardPlan,
        window: &Window,
        tripped_here: bool,
        stats: &dyn Stats,
        now_ms: i64,
    ) {
        let route = &self.plan.routes[i];
        let control = if guard.pause {
            RouteControl::Paused(window.paused_weight)
        } else {
            RouteControl::RolledBack
        };
        let mut controls = self.controls.borrow_mut();
        if controls[i] == control {
            return;
        }
        let action = if guard.pause {
            "pausing the ramp"
        } else {
            "rolling back to stable"
        };
        if tripped_here {
            warn!(
                "sluice: guard tripped on route `{}`: {}; {action}",
                route.name, window.reason
            );
            if let Some(id) = self.metrics.guard_trips[i] {
                stats.increment(id, 1);
            }
            if guard.webhook.is_some() {
                let body = trip_report(self, i, guard, window, now_ms);
                self.notifier.borrow_mut().enqueue(i, body, now_ms);
            }
        } else {
            info!(
                "sluice: route `{}` follows a tripped guard: {}; {action}",
                route.name, window.reason
            );
        }
        if let Some(id) = self.metrics.guard_tripped[i] {
            stats.record(id, 1);
        }
        controls[i] = control;
    }
}

impl VmState {
    #[inline(never)]
    fn webhook_of(&self, route: usize) -> Option<&crate::plan::WebhookPlan> {
        self.plan
            .routes
            .get(route)
            .and_then(|r| r.guard.as_ref())
            .and_then(|g| g.webhook.as_ref())
    }

    /// On each tick: send the trip notifications that are due (first tries and retries).
    #[inline(never)]
    pub fn tick_webhooks(&self, calls: &dyn HttpCalls, stats: &dyn Stats, now_ms: i64) {
        if self.notifier.borrow().is_idle() {
            return;
        }
        let events = self
            .notifier
            .borrow_mut()
            .tick(|r| self.webhook_of(r), calls, now_ms);
        events.iter().for_each(|e| self.count_webhook(e, stats));
    }

    /// An HTTP call's answer; `false` when it is not a webhook call of this VM.
    #[inline(never)]
    pub fn webhook_response(
        &self,
        token: u32,
        status: Option<u32>,
        stats: &dyn Stats,
        now_ms: i64,
    ) -> bool {
        let event =
            self.notifier
                .borrow_mut()
                .response(token, status, |r| self.webhook_of(r), now_ms);
        match event {
            Some(e) => {
                self.count_webhook(&e, stats);
                true
            }
            None => false,
        }
    }

    #[inline(never)]
    fn count_webhook(&self, event: &Event, stats: &dyn Stats) {
        let (route, which) = match *event {
            Event::Delivered { route } => (route, 0),
            Event::Failed { route } => (route, 1),
            Event::GaveUp { route } => (route, 2),
        };
        let id = self
            .metrics
            .guard_webhook
            .get(route)
            .and_then(|ids| ids.as_ref())
            .and_then(|ids| ids[which]);
        if let Some(id) = id {
            stats.increment(id, 1);
        }
        if which == 2 {
            // A final failure also counts as a failed attempt.
            if let Some(id) = self
                .metrics
                .guard_webhook
                .get(route)
                .and_then(|ids| ids.as_ref())
                .and_then(|ids| ids[1])
            {
                stats.increment(id, 1);
            }
        }
    }
}

/// The JSON a trip webhook receives: which route and config, what the guard saw, why it tripped.
#[inline(never)]
fn trip_report(
    vm: &VmState,
    route: usize,
    guard: &crate::plan::GuardPlan,
    window: &Window,
    now_ms: i64,
) -> String {
    let r = &vm.plan.routes[route];
    let [stable, canary] = window.totals(now_ms, guard.window_ms);
    let e = &window.evidence;
    let (method, test) = match &guard.sequential {
        Some(s) => (
            "sequential",
            format!(
                ",\"alpha\":{},\"e_value\":{}",
                sluice_primitives::float_text::Plain(s.alpha),
                sluice_primitives::float_text::Fixed::<3>(e.e_value().min(1e300))
            ),
        ),
        None => ("threshold", String::new()),
    };
    let (stable_name, canary_name) = match &r.strategy {
        Strategy::Progressive {
            baseline, target, ..
        } => (r.versions[*baseline].as_str(), r.versions[*target].as_str()),
        _ => ("", ""),
    };
    format!(
        "{{\"event\":\"sluice.guard.tripped\",\"route\":{},\"revision\":{},\"config\":{},\"stable\":{},\"canary\":{},\"action\":\"{}\",\"method\":\"{method}\"{test},\"reason\":{},\"at_ms\":{now_ms},\"window_ms\":{},\"window\":{{\"canary\":{{\"responses\":{},\"errors\":{}}},\"stable\":{{\"responses\":{},\"errors\":{}}}}},\"since_start\":{{\"canary\":{{\"responses\":{},\"bad\":{}}},\"stable\":{{\"responses\":{},\"bad\":{}}}}}}}",
        json_string(&r.name),
        json_string(&vm.plan.revision),
        json_string(&vm.plan_id),
        json_string(stable_name),
        json_string(canary_name),
        if guard.pause { "pause" } else { "rollback" },
        json_string(&window.reason),
        guard.window_ms,
        canary.total,
        canary.errors,
        stable.total,
        stable.errors,
        e.canary_total,
        e.canary_bad,
        e.stable_total,
        e.stable_bad,
    )
}

/// Read-modify-write of one guard window with compare-and-swap, retried when another VM wrote in
/// between. `decide` may trip the window; returns the stored window and whether this call
/// tripped it.
#[inline(never)]
fn merge_window(
    shared: &dyn SharedData,
    key: &str,
    delta: &Delta,
    now_ms: i64,
    decide: impl Fn(&mut Window) -> bool,
    window_ms: u64,
) -> Option<(Window, bool)> {
    for _ in 0..8 {
        let (bytes, cas) = shared.get(key)?;
        let mut window = bytes
            .as_deref()
            .and_then(Window::decode)
            .unwrap_or_default();
        window.add(delta, now_ms, window_ms);
        let tripped_here = decide(&mut window);
        if delta.is_empty() && !tripped_here {
            return Some((window, false));
        }
        match shared.set(key, &window.encode(), cas) {
            Ok(()) => return Some((window, tripped_here)),
            Err(SetError::CasMismatch) => continue,
            Err(SetError::Failed) => return None,
        }
    }
    warn!("sluice: guard state `{key}` kept changing under us; will retry next tick");
    None
}
