//! One worker VM's state for one plugin config: the plan, the stats defined
//! for it, what requests counted since the last tick, and the guards'
//! verdicts. Shared by the root context and its HTTP contexts (one thread).
use crate::engine::RouteControl;
use crate::guard::{Delta, Window};
use crate::plan::{Plan, Strategy};
use crate::telemetry::{MetricNames, Tally};
use log::{info, warn};
use proxy_wasm::hostcalls;
use proxy_wasm::types::{MetricType, Status};
use std::cell::RefCell;
use std::rc::Rc;

pub struct Worker {
    pub plan: Plan,
    /// Names this config in shared data: its revision, or a hash of its text.
    pub plan_id: String,
    pub seed: u64,
    pub tally: RefCell<Tally>,
    /// Per route: what this worker saw since it last merged into the window.
    pub guard_deltas: RefCell<Vec<Delta>>,
    pub controls: RefCell<Vec<RouteControl>>,
    /// The Unleash payload in force (pushed, then replaced by polls).
    pub unleash: RefCell<Option<Rc<sluice_unleash::Engine>>>,
    pub poll_state: RefCell<super::unleash_poll::PollState>,
    metrics: Metrics,
}

/// Stat ids, defined once per VM at configure time.
struct Metrics {
    route_requests: Vec<Vec<u32>>,
    route_responses: Vec<Vec<[u32; 5]>>,
    route_latency: Vec<Vec<u32>>,
    flag_evaluations: Vec<Vec<u32>>,
    overrides_honoured: u32,
    overrides_refused: u32,
    guard_tripped: Vec<Option<u32>>,
    guard_trips: Vec<Option<u32>>,
}

fn define(kind: MetricType, name: &str) -> u32 {
    // A host that refuses a metric must not take the filter down: id 0 is
    // then simply never incremented successfully.
    hostcalls::define_metric(kind, name).unwrap_or(0)
}

/// Adds one to a counter by name (defined on first use); for rare events.
pub fn bump_counter(name: &str) {
    let id = define(MetricType::Counter, name);
    let _ = hostcalls::increment_metric(id, 1);
}

/// Adds to a gauge by name (defined on first use).
pub fn add_to_gauge(name: &str, delta: i64) {
    let id = define(MetricType::Gauge, name);
    let _ = hostcalls::increment_metric(id, delta);
}

impl Worker {
    pub fn new(plan: Plan, plan_id: String, seed: u64) -> Worker {
        let names = MetricNames::of(&plan);
        let counters = |v: &Vec<Vec<String>>| -> Vec<Vec<u32>> {
            v.iter()
                .map(|row| row.iter().map(|n| define(MetricType::Counter, n)).collect())
                .collect()
        };
        let metrics = Metrics {
            route_requests: counters(&names.route_requests),
            route_responses: names
                .route_responses
                .iter()
                .map(|row| {
                    row.iter()
                        .map(|classes| classes.clone().map(|n| define(MetricType::Counter, &n)))
                        .collect()
                })
                .collect(),
            route_latency: names
                .route_latency
                .iter()
                .map(|row| {
                    row.iter()
                        .map(|n| define(MetricType::Histogram, n))
                        .collect()
                })
                .collect(),
            flag_evaluations: counters(&names.flag_evaluations),
            overrides_honoured: define(MetricType::Counter, &names.overrides_honoured),
            overrides_refused: define(MetricType::Counter, &names.overrides_refused),
            guard_tripped: names
                .guard_tripped
                .iter()
                .map(|n| n.as_ref().map(|n| define(MetricType::Gauge, n)))
                .collect(),
            guard_trips: names
                .guard_trips
                .iter()
                .map(|n| n.as_ref().map(|n| define(MetricType::Counter, n)))
                .collect(),
        };
        // A new config starts with its guards untripped (a re-push of the
        // same revision sets them again from shared data right away).
        for id in metrics.guard_tripped.iter().flatten() {
            let _ = hostcalls::record_metric(*id, 0);
        }
        let routes = plan.routes.len();
        let unleash = plan.unleash.as_ref().and_then(|u| u.initial.clone());
        Worker {
            unleash: RefCell::new(unleash),
            poll_state: RefCell::default(),
            tally: RefCell::new(Tally::for_plan(&plan)),
            guard_deltas: RefCell::new(vec![Delta::default(); routes]),
            controls: RefCell::new(vec![RouteControl::Normal; routes]),
            plan,
            plan_id,
            seed,
            metrics,
        }
    }

    /// Hands the counts since the last tick to Envoy's stats.
    pub fn flush_metrics(&self) {
        let tally = std::mem::replace(&mut *self.tally.borrow_mut(), Tally::for_plan(&self.plan));
        let m = &self.metrics;
        let add = |id: u32, n: u64| {
            if n > 0 {
                let _ = hostcalls::increment_metric(id, n as i64);
            }
        };
        for (ids, counts) in m.route_requests.iter().zip(&tally.route_requests) {
            ids.iter().zip(counts).for_each(|(id, n)| add(*id, *n));
        }
        for (ids, counts) in m.route_responses.iter().zip(&tally.route_responses) {
            for (classes, class_counts) in ids.iter().zip(counts) {
                classes
                    .iter()
                    .zip(class_counts)
                    .for_each(|(id, n)| add(*id, *n));
            }
        }
        for (ids, samples) in m.route_latency.iter().zip(&tally.route_latency) {
            for (id, values) in ids.iter().zip(samples) {
                for v in values {
                    let _ = hostcalls::record_metric(*id, u64::from(*v));
                }
            }
        }
        for (ids, counts) in m.flag_evaluations.iter().zip(&tally.flag_evaluations) {
            ids.iter().zip(counts).for_each(|(id, n)| add(*id, *n));
        }
        add(m.overrides_honoured, tally.overrides_honoured);
        add(m.overrides_refused, tally.overrides_refused);
    }

    /// Merges this worker's guard counts into the shared windows, judges
    /// them, and follows any trip (this worker's or another's).
    pub fn run_guards(&self, now_ms: i64) {
        for (i, route) in self.plan.routes.iter().enumerate() {
            let Some(guard) = &route.guard else { continue };
            let delta = std::mem::take(&mut self.guard_deltas.borrow_mut()[i]);
            let key = format!("sluice.guard.{}.{}", self.plan_id, route.name);
            let current_weight = match &route.strategy {
                Strategy::Progressive { schedule, .. } => schedule.weight_at(now_ms),
                _ => 0,
            };
            let Some((window, tripped_here)) = merge_window(
                &key,
                &delta,
                now_ms,
                |w| {
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
                },
                guard.window_ms,
            ) else {
                continue;
            };
            if !window.tripped {
                continue;
            }
            let control = if guard.pause {
                RouteControl::Paused(window.paused_weight)
            } else {
                RouteControl::RolledBack
            };
            let mut controls = self.controls.borrow_mut();
            if controls[i] != control {
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
                        let _ = hostcalls::increment_metric(id, 1);
                    }
                } else {
                    info!(
                        "sluice: route `{}` follows a tripped guard: {}; {action}",
                        route.name, window.reason
                    );
                }
                if let Some(id) = self.metrics.guard_tripped[i] {
                    let _ = hostcalls::record_metric(id, 1);
                }
                controls[i] = control;
            }
        }
    }
}

/// Read-modify-write of one guard window with compare-and-swap, retried when
/// another worker wrote in between. `decide` may trip the window; returns the
/// stored window and whether this call tripped it.
fn merge_window(
    key: &str,
    delta: &Delta,
    now_ms: i64,
    decide: impl Fn(&mut Window) -> bool,
    window_ms: u64,
) -> Option<(Window, bool)> {
    for _ in 0..8 {
        let (bytes, cas) = hostcalls::get_shared_data(key).ok()?;
        let mut window = bytes
            .as_deref()
            .and_then(Window::decode)
            .unwrap_or_default();
        window.add(delta, now_ms, window_ms);
        let tripped_here = decide(&mut window);
        if delta.is_empty() && !tripped_here {
            return Some((window, false));
        }
        match hostcalls::set_shared_data(key, Some(&window.encode()), cas) {
            Ok(()) => return Some((window, tripped_here)),
            Err(Status::CasMismatch) => continue,
            Err(_) => return None,
        }
    }
    warn!("sluice: guard state `{key}` kept changing under us; will retry next tick");
    None
}
