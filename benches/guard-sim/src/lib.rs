//! The guard simulation (`make bench-guard`): canary rollouts driven through the core's real request and response path
//! (`VmState::on_request`, `on_response`, `run_guards` with in-memory shared data and a virtual
//! clock), many seeds, the sequential guard side by side with threshold guards on the same traffic.
//!
//! Natively, not through the .wasm: a thousand rollouts of minutes at up to 1,000 req/s are
//! hundreds of millions of requests, hours under wasmtime; the guard code is the same crate.
//!
//! [`Traffic`] is the seeded request stream, shared with the cross-check that replays it through
//! the .wasm (`tests/wasm_cross_check.rs`). One unguarded VM routes every request (so all guards see identical traffic, and a guard that
//! trips does not change what the others see); each guard is its own VM that gets the response and
//! runs its guard every simulated second, as the filter's tick does. A proxy is one VM (one
//! worker); `proxies > 1` spreads the traffic round-robin over that many independent proxies, each
//! with its own shared data, as a fleet without a control plane would.
use serde_json::json;
use sluice_core::engine::Headers;
use sluice_core::host::local::LocalShared;
use sluice_core::host::{MetricKind, Stats};
use sluice_core::pipeline::Facts;
use sluice_core::vm::{Routed, VmState};

/// The virtual clock's start (any time after the route's canary start).
pub const START_MS: i64 = 1_795_694_400_000;
const TICK_MS: i64 = 1_000;
/// How long every simulated response takes.
pub const LATENCY_MS: i64 = 5;
/// The request header carrying the user with [`Users::Header`].
pub const USER_HEADER: &str = "x-sim-user";
/// The header the simulated route writes its version into.
pub const ROUTE_HEADER: &str = "x-route-api";

/// A guard under test: a label and its `guard` config object.
#[derive(Debug, Clone)]
pub struct GuardUnderTest {
    pub label: String,
    pub guard: serde_json::Value,
}

pub fn default_guards() -> Vec<GuardUnderTest> {
    vec![
        GuardUnderTest {
            label: "sequential, alpha 0.05".into(),
            guard: json!({"method": "sequential", "alpha": 0.05}),
        },
        GuardUnderTest {
            label: "threshold 2%, 30s, min 50".into(),
            guard: json!({"max_error_rate": 2, "window": "30s", "min_requests": 50}),
        },
        GuardUnderTest {
            label: "threshold 5%, 30s, min 100".into(),
            guard: json!({"max_error_rate": 5, "window": "30s", "min_requests": 100}),
        },
    ]
}

#[derive(Debug, Clone)]
pub struct Scenario {
    /// Requests per second over the whole fleet.
    pub rate: u32,
    /// Canary share, percent.
    pub canary_weight: f64,
    pub stable_error: f64,
    pub canary_error: f64,
    /// How long a rollout runs if no guard trips, seconds.
    pub horizon_s: u32,
    pub proxies: usize,
    pub users: Users,
}

/// How a simulated request picks its side of the split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Users {
    /// No identity: the split draws on per-request entropy (`make bench-guard`).
    Random,
    /// A fresh random user id in [`USER_HEADER`] per request: the split is the user's hash, so the
    /// same traffic splits identically in the .wasm, whose entropy is its own (the cross-check).
    Header,
}

/// When the guards run after simulated second `second` (0-based): the end of that second.
pub fn tick_ms(second: i64) -> i64 {
    START_MS + (second + 1) * TICK_MS
}

/// Stats that keep nothing: the simulation reads the guard's verdict, not the counters.
struct NoStats;
impl Stats for NoStats {
    fn define(&self, _: MetricKind, _: &str) -> Option<u32> {
        Some(0)
    }
    fn increment(&self, _: u32, _: i64) {}
    fn record(&self, _: u32, _: u64) {}
}

/// The simulated route `api` (versions `stable` and `canary`) as a config, with `guard` if given.
pub fn config(s: &Scenario, guard: Option<&serde_json::Value>) -> Vec<u8> {
    let weight = s.canary_weight;
    let mut route = json!({
        "header": ROUTE_HEADER,
        "versions": ["stable", "canary"],
        "canary": {"stable": "stable", "canary": "canary", "weight": weight},
    });
    if let Some(g) = guard {
        route["guard"] = g.clone();
    }
    let identity = match s.users {
        Users::Random => json!({"without_identity": "random"}),
        Users::Header => json!({"user": [{"header": USER_HEADER}]}),
    };
    json!({
        "version": 1,
        "revision": "sim",
        "identity": identity,
        "routes": {"api": route}
    })
    .to_string()
    .into_bytes()
}

fn vm(s: &Scenario, guard: Option<&serde_json::Value>) -> Result<VmState, String> {
    let plan = sluice_core::compile::load(&config(s, guard))
        .map_err(|e| format!("simulation config: {e}"))?;
    Ok(VmState::new(plan, "sim".into(), 1, &NoStats))
}

/// splitmix64: small, fast, and good enough for Bernoulli draws.
pub struct Rng(u64);
impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5851_f42d_4c95_7f2d)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

/// When each guard first tripped on some proxy and on every proxy (seconds since the start), or
/// `None` within the horizon.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub first_trip_s: Vec<Option<f64>>,
    pub all_trip_s: Vec<Option<f64>>,
}

/// One simulated request: when, from whom, where the split sent it, what the upstream answered.
pub struct SimRequest {
    pub at_ms: i64,
    /// The user id sent in [`USER_HEADER`] (with [`Users::Header`]).
    pub user: Option<String>,
    pub canary: bool,
    pub status: u32,
    /// The split's decision, as the guards' `on_response` takes it.
    pub routed: Routed,
}

/// The seeded traffic of one rollout: an unguarded VM splits every request (so every guard sees
/// identical traffic, and a guard that trips does not change what the others see), then the
/// upstream answers 503 with the side's error rate.
pub struct Traffic {
    router: VmState,
    rng: Rng,
    rate: u32,
    users: Users,
    stable_error: f64,
    canary_error: f64,
}

impl Traffic {
    pub fn new(s: &Scenario, seed: u64) -> Result<Traffic, String> {
        Ok(Traffic {
            router: vm(s, None)?,
            rng: Rng::new(seed),
            rate: s.rate,
            users: s.users,
            stable_error: s.stable_error,
            canary_error: s.canary_error,
        })
    }

    /// The requests of simulated second `second` (0-based), evenly spaced, in time order.
    pub fn second(&mut self, second: i64) -> Result<Vec<SimRequest>, String> {
        let base_ms = START_MS + second * TICK_MS;
        let step_us = 1_000_000 / i64::from(self.rate.max(1));
        let mut out = Vec::with_capacity(self.rate as usize);
        for i in 0..i64::from(self.rate) {
            let at_ms = base_ms + i * step_us / 1_000;
            let draw = self.rng.next_u64();
            let user = (self.users == Users::Header).then(|| format!("{draw:016x}"));
            let headers: [(&str, &[u8]); 3] = [
                (":authority", b"api"),
                (":path", b"/"),
                (USER_HEADER, user.as_deref().unwrap_or("").as_bytes()),
            ];
            let n = if user.is_some() { 3 } else { 2 };
            let facts = Facts {
                headers: Headers::Pairs(&headers[..n]),
                source: None,
                now_ms: at_ms,
                entropy: draw,
            };
            let routed = self.router.on_request(&facts, |_, _| {});
            let Some(&(_, version)) = routed.routes.iter().next() else {
                return Err("the simulated request matched no route".into());
            };
            let canary = version == 1;
            let p = if canary {
                self.canary_error
            } else {
                self.stable_error
            };
            let status = if self.rng.chance(p) { 503 } else { 200 };
            out.push(SimRequest {
                at_ms,
                user,
                canary,
                status,
                routed,
            });
        }
        Ok(out)
    }
}

/// One rollout with one seed.
pub fn rollout(s: &Scenario, guards: &[GuardUnderTest], seed: u64) -> Result<Outcome, String> {
    let mut traffic = Traffic::new(s, seed)?;
    let mut fleet = Vec::new();
    for _ in 0..s.proxies {
        let mut per_guard = Vec::new();
        for g in guards {
            per_guard.push((vm(s, Some(&g.guard))?, LocalShared::default()));
        }
        fleet.push(per_guard);
    }
    let mut tripped = vec![vec![None::<f64>; guards.len()]; s.proxies];
    let mut next_proxy = 0usize;
    for second in 0..i64::from(s.horizon_s) {
        for r in traffic.second(second)? {
            let proxy = &fleet[next_proxy];
            for (g, _) in proxy.iter() {
                g.on_response(&r.routed, r.status, false, r.at_ms + LATENCY_MS);
            }
            next_proxy = (next_proxy + 1) % s.proxies;
        }
        let tick_ms = tick_ms(second);
        let at_s = (second + 1) as f64;
        for (p, proxy) in fleet.iter().enumerate() {
            for (k, (g, shared)) in proxy.iter().enumerate() {
                if tripped[p][k].is_none() {
                    g.run_guards(shared, &NoStats, tick_ms);
                    if g.controls.borrow().iter().any(|c| !is_normal(c)) {
                        tripped[p][k] = Some(at_s);
                    }
                }
            }
        }
        if tripped.iter().all(|row| row.iter().all(Option::is_some)) {
            break;
        }
    }
    let mut out = Outcome::default();
    for k in 0..guards.len() {
        let times: Vec<Option<f64>> = tripped.iter().map(|row| row[k]).collect();
        out.first_trip_s
            .push(times.iter().flatten().copied().reduce(f64::min));
        out.all_trip_s.push(if times.iter().all(Option::is_some) {
            times.iter().flatten().copied().reduce(f64::max)
        } else {
            None
        });
    }
    Ok(out)
}

fn is_normal(c: &sluice_core::engine::RouteControl) -> bool {
    matches!(c, sluice_core::engine::RouteControl::Normal)
}

/// Per guard over many seeds: the share that tripped and trip-time quantiles.
#[derive(Debug, Clone)]
pub struct Summary {
    pub label: String,
    pub runs: usize,
    pub tripped: usize,
    /// Median and p95 of the trip time, seconds; `None` when fewer than that share tripped.
    pub median_s: Option<f64>,
    pub p95_s: Option<f64>,
}

/// Quantile of trip times where rollouts that never tripped count as infinitely late.
pub fn quantile(times: &[Option<f64>], q: f64) -> Option<f64> {
    let mut sorted: Vec<f64> = times.iter().map(|t| t.unwrap_or(f64::INFINITY)).collect();
    sorted.sort_by(f64::total_cmp);
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len().max(1));
    sorted.get(rank - 1).copied().filter(|t| t.is_finite())
}

pub fn summarize(label: &str, times: &[Option<f64>]) -> Summary {
    Summary {
        label: label.to_string(),
        runs: times.len(),
        tripped: times.iter().filter(|t| t.is_some()).count(),
        median_s: quantile(times, 0.5),
        p95_s: quantile(times, 0.95),
    }
}

/// Per guard, per seed: when it tripped (seconds), if it did.
pub type TripTimes = Vec<Vec<Option<f64>>>;

/// Runs `seeds` rollouts; per guard, the first-trip times (and the every-proxy times).
pub fn run_many(
    s: &Scenario,
    guards: &[GuardUnderTest],
    seeds: std::ops::Range<u64>,
) -> Result<(TripTimes, TripTimes), String> {
    let mut first = vec![Vec::new(); guards.len()];
    let mut all = vec![Vec::new(); guards.len()];
    for seed in seeds {
        let o = rollout(s, guards, seed)?;
        for k in 0..guards.len() {
            first[k].push(o.first_trip_s[k]);
            all[k].push(o.all_trip_s[k]);
        }
    }
    Ok((first, all))
}
