//! The canary guard through the module (build/sluice.wasm), as Envoy runs it:
//! three worker VMs sharing their counts through shared data, ticks on the
//! virtual clock, a fake upstream that answers per version. A healthy canary
//! keeps ramping; a failing or slow one trips within the window and every
//! worker sends its users to stable within a tick; too few requests never
//! trip; a new config revision resets the guard; `pause` holds the share;
//! Envoy's own replies count only with `count_local_replies`.
mod common;

use sluice_core::plan::Plan;
use sluice_wasm_host::{Host, LogLevel, MetricValue, Outcome, RequestBuilder};
use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const WORKERS: usize = 3;
const TICK: Duration = Duration::from_secs(1);

/// A guarded canary on `reviews` (v1 stable, v2 canary), keyed by `x-user-id`.
fn config(revision: &str, canary: &str, guard: &str) -> String {
    format!(
        r#"{{"version": 1, "revision": "{revision}", "identity": {{"user": [{{"header": "x-user-id"}}]}},
  "routes": {{"reviews": {{"match": {{"authority": ["reviews"]}}, "header": "x-route-reviews", "versions": ["v1", "v2"],
    "canary": {canary},
    "guard": {guard}}}}},
  "outputs": {{"flags_header": null}}}}"#
    )
}

/// What the fake upstream does with one request: status and time to answer.
#[derive(Clone, Copy, Debug)]
struct Answer {
    status: u16,
    latency: Duration,
}

fn ok_after(ms: u64) -> Answer {
    Answer {
        status: 200,
        latency: Duration::from_millis(ms),
    }
}

/// Where one request went: the version the config would pick (the native
/// engine, guard untripped) and the version the module wrote.
#[derive(Debug)]
struct Routed {
    planned: String,
    actual: String,
}

/// Sluice on several workers in front of a fake `reviews` upstream.
struct Mesh {
    host: Host,
    plan: Plan,
    /// Responses the fake canary gave so far (drives "every n-th fails").
    canary_answers: u64,
    /// When the workers were configured: they tick every second from then.
    origin: SystemTime,
}

impl Mesh {
    fn new(config: &str) -> Mesh {
        let host = common::plugin("sluice.wasm")
            .host()
            .plugin_config(config)
            .workers(WORKERS)
            .build()
            .unwrap();
        Mesh {
            origin: host.now(),
            host,
            plan: sluice_core::compile::load(config.as_bytes()).unwrap(),
            canary_answers: 0,
        }
    }

    fn reconfigure(&mut self, config: &str) {
        assert_eq!(self.host.reconfigure(config).unwrap(), vec![true; WORKERS]);
        self.plan = sluice_core::compile::load(config.as_bytes()).unwrap();
    }

    fn now_ms(&self) -> i64 {
        self.host
            .now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
    }

    /// The version the config gives `user` now, guard untripped.
    fn planned(&self, user: u32) -> String {
        let user = user.to_string();
        let pairs: [(&str, &[u8]); 3] = [
            (":authority", b"reviews"),
            (":path", b"/reviews/1"),
            ("x-user-id", user.as_bytes()),
        ];
        let mut req = sluice_core::engine::Request::from_pairs(&self.plan, &pairs);
        req.now_ms = self.now_ms();
        let decision = sluice_core::engine::evaluate(&self.plan, &req);
        let route = &decision.routes[0];
        self.plan.routes[route.route].versions[route.version].clone()
    }

    /// One request from `user`, on worker `user % WORKERS`; the upstream
    /// answers as `answer` says for the version the config sends it to.
    fn request(&mut self, user: u32, answer: &mut impl FnMut(&str, u64) -> Answer) -> Routed {
        let planned = self.planned(user);
        let a = if planned == "v2" {
            self.canary_answers += 1;
            answer("v2", self.canary_answers)
        } else {
            answer("v1", 0)
        };
        let out = self
            .host
            .request_on(user as usize % WORKERS)
            .authority("reviews")
            .path("/reviews/1")
            .header("x-user-id", user.to_string())
            .upstream_status(a.status)
            .upstream_latency(a.latency)
            .send()
            .unwrap();
        Routed {
            planned,
            actual: out.request_header("x-route-reviews").unwrap(),
        }
    }

    /// Users `users`, one request each, all routed as the config says (the
    /// guard has not tripped); returns how many went to the canary.
    fn traffic(
        &mut self,
        users: impl IntoIterator<Item = u32>,
        mut answer: impl FnMut(&str, u64) -> Answer,
    ) -> usize {
        let mut canary = 0;
        for user in users {
            let r = self.request(user, &mut answer);
            assert_eq!(r.actual, r.planned, "user {user} routed while untripped");
            canary += usize::from(r.actual == "v2");
        }
        canary
    }

    /// Users 0..200, one request each to `reviews`; `canary` shapes the requests the config
    /// sends to v2. Returns the canary's outcomes and the others'.
    fn send_users(
        &mut self,
        canary: impl Fn(RequestBuilder<'_>) -> RequestBuilder<'_>,
    ) -> (Vec<Outcome>, Vec<Outcome>) {
        let (mut to_canary, mut others) = (Vec::new(), Vec::new());
        for user in 0..200u32 {
            let on_canary = self.planned(user) == "v2";
            let request = self
                .host
                .request_on(user as usize % WORKERS)
                .authority("reviews")
                .header("x-user-id", user.to_string());
            if on_canary {
                to_canary.push(canary(request).send().unwrap());
            } else {
                others.push(request.send().unwrap());
            }
        }
        (to_canary, others)
    }

    /// Which of `users` each worker sends to the canary now (answers 200).
    fn canary_users(&mut self, users: impl IntoIterator<Item = u32> + Clone) -> Vec<BTreeSet<u32>> {
        (0..WORKERS)
            .map(|w| {
                users
                    .clone()
                    .into_iter()
                    .filter(|u| {
                        let out = self
                            .host
                            .request_on(w)
                            .authority("reviews")
                            .header("x-user-id", u.to_string())
                            .send()
                            .unwrap();
                        out.request_header("x-route-reviews").as_deref() == Some("v2")
                    })
                    .collect()
            })
            .collect()
    }

    /// Moves the clock to the next tick (requests that took virtual time
    /// may have moved it off the tick grid).
    fn tick(&mut self) {
        let since = self.host.now().duration_since(self.origin).unwrap();
        let into = Duration::from_nanos((since.as_nanos() % TICK.as_nanos()) as u64);
        self.host.advance(TICK - into).unwrap();
    }

    /// Seconds since the workers were configured.
    fn seconds(&self) -> f64 {
        self.host
            .now()
            .duration_since(self.origin)
            .unwrap()
            .as_secs_f64()
    }

    fn value(&self, name: &str) -> Option<u64> {
        self.host.metric(name).map(|m| m.value())
    }

    fn tripped(&self) -> bool {
        self.value("sluice.guard.reviews.tripped") == Some(1)
    }

    fn warnings(&self) -> Vec<String> {
        self.host
            .logs()
            .into_iter()
            .filter(|l| l.level >= LogLevel::Warn)
            .map(|l| l.message)
            .collect()
    }
}

/// Every `n`-th canary response is a 500; stable always answers 200.
fn canary_fails_every(n: u64) -> impl FnMut(&str, u64) -> Answer {
    move |version, i| Answer {
        status: if version == "v2" && i.is_multiple_of(n) {
            500
        } else {
            200
        },
        latency: Duration::ZERO,
    }
}

#[test]
fn a_healthy_canary_keeps_ramping_through_its_steps() {
    // 2% of canary responses fail and both versions answer in 10ms: under
    // both thresholds, so the guard lets the schedule run to 100%.
    let mut mesh = Mesh::new(&config(
        "healthy-1",
        r#"{"stable": "v1", "canary": "v2", "weight": 10, "start": "2026-01-01T00:00:00Z",
            "steps": [{"after": "1m", "weight": 25}, {"after": "2m", "weight": 50}, {"after": "3m", "weight": 100}]}"#,
        r#"{"max_error_rate": 5, "max_p99_ratio": 2, "window": "10s", "min_requests": 20}"#,
    ));
    let healthy = |version: &str, i: u64| Answer {
        status: if version == "v2" && i.is_multiple_of(50) {
            503
        } else {
            200
        },
        latency: Duration::from_millis(10),
    };
    let mut shares = Vec::new();
    let mut cohorts: Vec<BTreeSet<u32>> = Vec::new();
    let mut user = 0u32;
    for minute in 0..4 {
        // A minute of traffic: 30 requests a second from 1000 users, spread
        // over the workers (each user every ~33s, on varying workers).
        let (mut canary, mut total) = (0usize, 0usize);
        let mut on_canary = BTreeSet::new();
        for _ in 0..60 {
            for _ in 0..30 {
                let u = user % 1000;
                let r = mesh.request(u, &mut |v: &str, i| healthy(v, i));
                assert_eq!(r.actual, r.planned, "user {u} at minute {minute}");
                if r.actual == "v2" {
                    canary += 1;
                    on_canary.insert(u);
                }
                total += 1;
                user += 1;
            }
            mesh.tick();
            assert!(
                !mesh.tripped(),
                "tripped at minute {minute}: {:?}",
                mesh.warnings()
            );
        }
        shares.push((canary * 100 / total, on_canary.len() / 10));
        cohorts.push(on_canary);
    }
    println!("canary share per minute (requests %, users %): {shares:?}");
    let expected: [usize; 4] = [10, 25, 50, 100];
    for ((requests, users), want) in shares.iter().zip(expected) {
        assert!(requests.abs_diff(want) <= 5, "{shares:?}");
        assert!(users.abs_diff(want) <= 5, "{shares:?}");
    }
    for pair in cohorts.windows(2) {
        assert!(pair[0].is_subset(&pair[1]), "canary users stay on it");
    }
    assert_eq!(mesh.value("sluice.guard.reviews.tripped"), Some(0));
    assert_eq!(mesh.value("sluice.guard.reviews.trips"), Some(0));
    assert!(mesh.warnings().is_empty(), "{:?}", mesh.warnings());
    assert!(mesh.value("sluice.route.reviews.v2.responses.5xx").unwrap() > 0);
}

/// `(errors, responses)` from a trip reason: `… (6 of 52 responses in 10s) …`.
fn reason_counts(reason: &str) -> (u64, u64) {
    let inside = reason.split_once('(').unwrap().1;
    let mut words = inside.split(' ');
    let errors = words.next().unwrap().parse().unwrap();
    assert_eq!(words.next(), Some("of"));
    (errors, words.next().unwrap().parse().unwrap())
}

#[test]
fn ten_percent_canary_errors_trip_within_the_window_and_every_worker_goes_stable() {
    let mut mesh = Mesh::new(&config(
        "errors-1",
        r#"{"stable": "v1", "canary": "v2", "weight": 50}"#,
        r#"{"max_error_rate": 5, "window": "10s", "min_requests": 50}"#,
    ));
    mesh.tick();
    assert_eq!(mesh.value("sluice.guard.reviews.tripped"), Some(0));

    // 60 users a second, one request each; every 10th canary response fails.
    let users = 0..60u32;
    let mut ticks = 0;
    let mut canary_requests = 0;
    while !mesh.tripped() {
        assert!(ticks < 10, "no trip within the 10s window");
        canary_requests += mesh.traffic(users.clone(), canary_fails_every(10));
        mesh.tick();
        ticks += 1;
    }
    let errors = canary_requests as u64 / 10;
    println!(
        "10% canary errors: tripped on tick {ticks} after the first failure \
         ({canary_requests} canary requests, {errors} failed)"
    );
    // ~30 canary requests a second and min_requests 50: the second tick can judge.
    assert!(canary_requests >= 50);
    assert!(ticks <= 3, "{ticks}");

    // The tripping worker and those whose tick ran after it route to stable
    // already; the others follow on their next tick.
    let right_after = mesh.canary_users(users.clone());
    let switched = right_after.iter().filter(|c| c.is_empty()).count();
    println!("workers on stable right after the tripping tick: {switched} of {WORKERS}");
    assert!(switched >= 1);
    mesh.tick();
    let after = mesh.canary_users(0..1000u32);
    assert!(
        after.iter().all(BTreeSet::is_empty),
        "one tick later every worker routes every user to stable"
    );

    let warnings = mesh.warnings();
    assert_eq!(warnings.len(), 1, "one worker trips it: {warnings:?}");
    let reason = &warnings[0];
    assert!(
        reason.contains("route `reviews`: canary error rate")
            && reason.contains("responses in 10s) is above 5.00%")
            && reason.ends_with("rolling back to stable"),
        "{reason}"
    );
    let (failed, judged) = reason_counts(reason);
    assert!(
        judged >= 50 && judged <= canary_requests as u64 && failed * 100 > judged * 5,
        "{reason}"
    );
    let followers = mesh
        .host
        .logs()
        .iter()
        .filter(|l| l.message.contains("follows a tripped guard"))
        .count();
    assert_eq!(followers, WORKERS - 1);

    // The stats a user would look at.
    assert_eq!(mesh.value("sluice.guard.reviews.tripped"), Some(1));
    assert_eq!(mesh.value("sluice.guard.reviews.trips"), Some(1));
    assert_eq!(
        mesh.value("sluice.route.reviews.v2.responses.5xx"),
        Some(errors)
    );
    assert_eq!(mesh.value("sluice.route.reviews.v1.responses.5xx"), Some(0));
    let v2_requests = mesh.value("sluice.route.reviews.v2.requests").unwrap();
    let v2_2xx = mesh.value("sluice.route.reviews.v2.responses.2xx").unwrap();
    assert_eq!(
        v2_2xx + errors,
        v2_requests,
        "every canary request answered"
    );
    assert_eq!(
        mesh.value("sluice.route.reviews.v2.latency_ms"),
        Some(v2_requests),
        "one latency sample per canary response"
    );
}

#[test]
fn below_min_requests_it_does_not_trip() {
    let mut mesh = Mesh::new(&config(
        "few-1",
        r#"{"stable": "v1", "canary": "v2", "weight": 50}"#,
        r#"{"max_error_rate": 5, "window": "10s", "min_requests": 50}"#,
    ));
    let canary: Vec<u32> = (0..1000).filter(|u| mesh.planned(*u) == "v2").collect();
    // 49 canary requests, every one of them failing, within one window.
    let all_fail = |_: &str, _: u64| Answer {
        status: 500,
        latency: Duration::ZERO,
    };
    assert_eq!(mesh.traffic(canary[..49].iter().copied(), all_fail), 49);
    for _ in 0..3 {
        mesh.tick();
    }
    assert!(!mesh.tripped(), "{:?}", mesh.warnings());
    assert_eq!(
        mesh.value("sluice.route.reviews.v2.responses.5xx"),
        Some(49)
    );
    // The 50th does it.
    assert_eq!(mesh.traffic(canary[49..50].iter().copied(), all_fail), 1);
    mesh.tick();
    assert!(mesh.tripped());
    assert!(
        mesh.warnings()[0].contains("(50 of 50 responses in 10s)"),
        "{:?}",
        mesh.warnings()
    );
}

#[test]
fn errors_older_than_the_window_do_not_count() {
    let mut mesh = Mesh::new(&config(
        "slide-1",
        r#"{"stable": "v1", "canary": "v2", "weight": 50}"#,
        r#"{"max_error_rate": 5, "window": "10s", "min_requests": 50}"#,
    ));
    let canary: Vec<u32> = (0..1000).filter(|u| mesh.planned(*u) == "v2").collect();
    let all_fail = |_: &str, _: u64| Answer {
        status: 500,
        latency: Duration::ZERO,
    };
    mesh.traffic(canary[..40].iter().copied(), all_fail);
    for _ in 0..11 {
        mesh.tick();
    }
    // 40 old failures slid out; 40 fresh ones are still below 50.
    mesh.traffic(canary[..40].iter().copied(), all_fail);
    mesh.tick();
    mesh.tick();
    assert!(!mesh.tripped(), "{:?}", mesh.warnings());
}

#[test]
fn a_new_config_revision_resets_a_tripped_guard() {
    let canary = r#"{"stable": "v1", "canary": "v2", "weight": 50}"#;
    let guard = r#"{"max_error_rate": 5, "window": "10s", "min_requests": 20}"#;
    let mut mesh = Mesh::new(&config("reset-1", canary, guard));
    let users = 0..60u32;
    let planned: BTreeSet<u32> = users.clone().filter(|u| mesh.planned(*u) == "v2").collect();
    while !mesh.tripped() {
        mesh.traffic(users.clone(), canary_fails_every(2));
        mesh.tick();
    }
    mesh.tick();
    assert!(mesh
        .canary_users(users.clone())
        .iter()
        .all(BTreeSet::is_empty));

    // The same config pushed again (same revision): still rolled back, at once.
    mesh.reconfigure(&config("reset-1", canary, guard));
    assert!(
        mesh.canary_users(users.clone())
            .iter()
            .all(BTreeSet::is_empty),
        "a re-push of the same revision keeps the rollback"
    );
    mesh.tick();
    assert!(mesh.tripped());
    assert!(mesh
        .canary_users(users.clone())
        .iter()
        .all(BTreeSet::is_empty));

    // A new revision: every worker sends the canary users to v2 again, the
    // gauge says so, and healthy traffic does not trip it.
    mesh.reconfigure(&config("reset-2", canary, guard));
    assert!(
        mesh.canary_users(users.clone())
            .iter()
            .all(|c| *c == planned),
        "the canary users are back on v2 on every worker"
    );
    mesh.tick();
    assert_eq!(mesh.value("sluice.guard.reviews.tripped"), Some(0));
    for _ in 0..12 {
        mesh.traffic(users.clone(), canary_fails_every(100));
        mesh.tick();
    }
    assert!(!mesh.tripped(), "{:?}", mesh.warnings());
    assert_eq!(mesh.value("sluice.guard.reviews.trips"), Some(1));

    // And it guards again under the new revision.
    while !mesh.tripped() {
        mesh.traffic(users.clone(), canary_fails_every(2));
        mesh.tick();
    }
    assert_eq!(mesh.value("sluice.guard.reviews.trips"), Some(2));
}

#[test]
fn a_slow_canary_trips_the_latency_guard() {
    let mut mesh = Mesh::new(&config(
        "slow-1",
        r#"{"stable": "v1", "canary": "v2", "weight": 20}"#,
        r#"{"max_p99_ratio": 3, "window": "30s", "min_requests": 20}"#,
    ));
    // Both versions answer in ~10ms: no trip, however long it runs.
    let mut user = 0u32;
    let start = mesh.host.now();
    while mesh.host.now().duration_since(start).unwrap() < Duration::from_secs(40) {
        mesh.traffic(user..user + 20, |v, _| {
            ok_after(if v == "v2" { 12 } else { 10 })
        });
        user += 20;
        mesh.tick();
    }
    assert!(!mesh.tripped(), "{:?}", mesh.warnings());

    // The canary slows to 250ms. Its requests take that long on the virtual
    // clock, so ticks fire while they are in flight, as in Envoy.
    let slow_from = mesh.host.now();
    let mut slow_requests = 0;
    while !mesh.tripped() {
        assert!(
            mesh.host.now().duration_since(slow_from).unwrap() < Duration::from_secs(30),
            "no trip within the 30s window"
        );
        let r = mesh.request(user, &mut |v: &str, _| {
            ok_after(if v == "v2" { 250 } else { 10 })
        });
        slow_requests += usize::from(r.planned == "v2");
        user += 1;
    }
    let took = mesh.host.now().duration_since(slow_from).unwrap();
    println!(
        "latency trip {:.2}s after the canary slowed down ({slow_requests} slow canary responses), at {:.2}s",
        took.as_secs_f64(),
        mesh.seconds()
    );
    mesh.tick();
    assert!(mesh.canary_users(0..300u32).iter().all(BTreeSet::is_empty));
    let warnings = mesh.warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("canary p99 300ms is above 3x stable's 10ms"),
        "{}",
        warnings[0]
    );
    let Some(MetricValue::Histogram(samples)) =
        mesh.host.metric("sluice.route.reviews.v2.latency_ms")
    else {
        panic!("no canary latency histogram")
    };
    assert!(
        samples.contains(&250) && samples.contains(&12),
        "{samples:?}"
    );
    let Some(MetricValue::Histogram(stable)) =
        mesh.host.metric("sluice.route.reviews.v1.latency_ms")
    else {
        panic!("no stable latency histogram")
    };
    assert!(
        stable.contains(&10) && stable.iter().all(|ms| *ms <= 10),
        "{stable:?}"
    );
}

#[test]
fn action_pause_holds_the_share_instead_of_rolling_back() {
    let mut mesh = Mesh::new(&config(
        "pause-1",
        r#"{"stable": "v1", "canary": "v2", "weight": 20, "start": "2026-01-01T00:00:00Z",
            "steps": [{"after": "1m", "weight": 50}, {"after": "2m", "weight": 100}]}"#,
        r#"{"max_error_rate": 5, "window": "10s", "min_requests": 20, "action": "pause"}"#,
    ));
    let users = 0..100u32;
    while !mesh.tripped() {
        mesh.traffic(users.clone(), canary_fails_every(5));
        mesh.tick();
    }
    mesh.tick();
    let at_trip = mesh.canary_users(0..1000u32);
    assert!(at_trip.iter().all(|c| *c == at_trip[0]), "workers agree");
    let share = at_trip[0].len();
    assert!((150..=250).contains(&share), "20%: {share}");
    assert!(mesh.warnings()[0].contains("pausing the ramp"));

    // The schedule would now give 50%, then 100%: the share stays put, on the
    // same users.
    mesh.host.advance(Duration::from_secs(70)).unwrap();
    let later = mesh.canary_users(0..1000u32);
    assert!(later.iter().all(|c| *c == at_trip[0]), "held at 20%");
    mesh.host.advance(Duration::from_secs(60)).unwrap();
    let much_later = mesh.canary_users(0..1000u32);
    assert!(much_later.iter().all(|c| *c == at_trip[0]), "held at 20%");
    assert_eq!(mesh.value("sluice.guard.reviews.tripped"), Some(1));
    assert_eq!(mesh.value("sluice.guard.reviews.trips"), Some(1));
}

/// A 50 % canary guarded by a 5 % error rate over 10 s (20 requests at least).
fn error_rate_mesh(revision: &str, count_local_replies: bool) -> Mesh {
    Mesh::new(&config(
        revision,
        r#"{"stable": "v1", "canary": "v2", "weight": 50}"#,
        &format!(
            r#"{{"max_error_rate": 5, "window": "10s", "min_requests": 20, "count_local_replies": {count_local_replies}}}"#
        ),
    ))
}

#[test]
fn local_replies_count_as_errors_only_when_asked() {
    // The canary's requests hit Envoy's stream idle timeout: Envoy answers
    // 408 itself (details other than `via_upstream`), not the upstream.
    let run = |count_local_replies: bool, details: &str| {
        let mut mesh = error_rate_mesh("local-1", count_local_replies);
        mesh.send_users(|request| request.upstream_status(408).response_code_details(details));
        mesh.tick();
        mesh.tick();
        (
            mesh.tripped(),
            mesh.value("sluice.route.reviews.v2.responses.4xx").unwrap(),
        )
    };
    let (tripped, local_408s) = run(false, "stream_idle_timeout");
    assert!(!tripped, "a 4xx is not an error by default");
    assert!(local_408s > 20);
    assert_eq!(
        run(true, "stream_idle_timeout"),
        (true, local_408s),
        "Envoy's own replies count with count_local_replies"
    );
    assert_eq!(
        run(true, "via_upstream"),
        (false, local_408s),
        "the upstream's own 408s do not"
    );
}

#[test]
fn a_stream_reset_before_the_response_counts_as_an_error_only_when_asked() {
    // The canary's connections drop before it answers: no response reaches the filter, only the
    // request's end. Like Envoy's own replies, that is an error with `count_local_replies`.
    let run = |count_local_replies: bool| {
        let mut mesh = error_rate_mesh("reset-before-response-1", count_local_replies);
        let (resets, answered) = mesh.send_users(|request| request.reset_before_response());
        assert!(resets.len() > 20, "{} canary requests", resets.len());
        assert!(resets.iter().all(|out| out.status().is_none()));
        assert!(answered.iter().all(|out| out.status() == Some(200)));
        mesh.tick();
        mesh.tick();
        mesh.tripped()
    };
    assert!(!run(false), "a reset is not an error by default");
    assert!(run(true), "a reset counts with count_local_replies");
}
