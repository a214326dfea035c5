//! Sluice (`build/sluice.wasm`) in a real Envoy 1.40: what a user checks after deploying it.
//! Flags reach the upstream, a 10% canary sends 10% of users to v2 and each user stays there,
//! a client cannot pick its version, pins/overrides/blue-green route as configured, an invalid
//! config is refused with Sluice's own error in Envoy's log, and config pushes (ECDS) change
//! routing while traffic runs without failing a request.
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sluice_e2e::stack::{Stack, ECDS_STATS};
use sluice_e2e::{paths, EnvoyOptions, HttpClient, Outcome, RequestSpec, Traffic};

/// The tester secret of the configs below, and its SHA-256 (what the config holds).
const SECRET: &str = "letmein";
const SECRET_SHA256: &str = "1c8bfe8f801d79745c4631d09fff36c82aa37fc4cce4fc946683d7b336b63032";

/// A config in the shape of the demo: users by `x-user`, two flags, a canary on reviews (all
/// paths), a blue-green on web (`/web`), pins and tester overrides.
fn config(canary_weight: f64, active_color: &str) -> Value {
    json!({
        "version": 1,
        "revision": format!("canary-{canary_weight}-{active_color}"),
        "identity": { "user": [{ "header": "x-user" }] },
        "flags": {
            "checkout": { "rules": [{ "serve": "on" }] },
            "theme": {
                "variants": { "light": "light", "dark": "dark" },
                "default": "dark"
            }
        },
        "routes": {
            "reviews": {
                "match": { "path_prefix": "/" },
                "header": "x-route-reviews",
                "versions": ["v1", "v2"],
                "canary": { "stable": "v1", "canary": "v2", "weight": canary_weight },
                "pins": [{ "when": { "header": "x-beta", "equals": "1" }, "version": "v2" }]
            },
            "web": {
                "match": { "path_prefix": "/web" },
                "header": "x-route-web",
                "versions": ["blue", "green"],
                "blue_green": {
                    "active": active_color,
                    "preview": { "header": "x-preview", "equals": "1" }
                }
            }
        },
        "overrides": { "secret_sha256": SECRET_SHA256 }
    })
}

fn start(config: &Value) -> Stack {
    Stack::start(&paths::sluice_wasm(), &config.to_string()).expect("envoy starts with sluice")
}

fn start_ecds(config: &Value) -> Stack {
    Stack::start_ecds(
        &paths::sluice_wasm(),
        &config.to_string(),
        EnvoyOptions::default(),
        |bootstrap| bootstrap,
    )
    .expect("envoy starts with sluice via ECDS")
}

/// GET through Envoy; the echo of the backend that answered (status must be 200).
fn echo(client: &mut HttpClient, path: &str, headers: &[(&str, &str)]) -> sluice_e2e::Echo {
    let response = client.get(path, headers).expect("request through envoy");
    assert_eq!(
        response.status,
        200,
        "{path} {headers:?}: {}",
        response.text()
    );
    response.echo().expect("an echo backend answered")
}

fn summarize(outcomes: &[Outcome]) -> String {
    let failed: Vec<&Outcome> = outcomes.iter().filter(|o| !o.ok()).collect();
    format!(
        "{} requests, {} failed, first failures: {:?}",
        outcomes.len(),
        failed.len(),
        &failed[..failed.len().min(5)]
    )
}

#[test]
fn flags_header_reaches_the_upstream_and_replaces_a_spoofed_one() {
    let stack = start(&config(10.0, "blue"));
    let mut client = stack.envoy.client();

    let seen = echo(&mut client, "/reviews/1", &[("x-user", "alice")]);
    assert_eq!(
        seen.header("x-sluice-flags"),
        Some("checkout=on;theme=dark")
    );

    // A client cannot hand the services its own flags.
    let seen = echo(
        &mut client,
        "/reviews/1",
        &[("x-user", "alice"), ("x-sluice-flags", "checkout=off")],
    );
    assert_eq!(
        seen.header_values("x-sluice-flags"),
        ["checkout=on;theme=dark"]
    );
    assert!(stack.envoy.log().contains("sluice: config loaded"));
}

#[test]
fn canary_at_10_percent_sends_10_percent_of_10k_users_to_v2_and_each_user_sticks() {
    let stack = start(&config(10.0, "blue"));
    let mut client = stack.envoy.client();
    let users = 10_000;
    let started = Instant::now();
    let mut first: Vec<String> = Vec::with_capacity(users);
    for u in 0..users {
        let user = format!("user-{u}");
        first.push(echo(&mut client, "/reviews", &[("x-user", &user)]).version);
    }
    // Every user again: the same version, whatever the order.
    let mut moved = Vec::new();
    for u in (0..users).rev() {
        let user = format!("user-{u}");
        let again = echo(&mut client, "/reviews/other", &[("x-user", &user)]).version;
        if again != first[u] {
            moved.push((user, first[u].clone(), again));
        }
    }
    let elapsed = started.elapsed();
    let on_v2 = first.iter().filter(|v| *v == "v2").count();
    let share = 100.0 * on_v2 as f64 / users as f64;
    eprintln!(
        "canary 10%: {on_v2} of {users} users on v2 ({share:.2}%); {} requests in {elapsed:?}",
        2 * users
    );
    assert!(
        (8.0..=12.0).contains(&share),
        "{share:.2}% of users on v2, expected 10 ± 2"
    );
    assert!(
        first.iter().all(|v| v == "v1" || v == "v2"),
        "only v1 and v2 answer"
    );
    assert!(
        moved.is_empty(),
        "{} users changed version, e.g. {:?}",
        moved.len(),
        &moved[..moved.len().min(5)]
    );
    // Envoy's own counters agree with what the users saw.
    assert_eq!(
        stack.envoy.stat("cluster.reviews-v2.upstream_rq_200"),
        Some(2 * on_v2 as u64)
    );
}

#[test]
fn a_client_sending_the_route_header_does_not_choose_its_version() {
    // Canary at 0%: everyone is on v1, whatever they send.
    let stack = start(&config(0.0, "blue"));
    let mut client = stack.envoy.client();
    for u in 0..200 {
        let user = format!("user-{u}");
        let seen = echo(
            &mut client,
            "/reviews",
            &[("x-user", &user), ("x-route-reviews", "v2")],
        );
        assert_eq!(seen.version, "v1", "{user} chose v2 by sending the header");
        assert_eq!(seen.header_values("x-route-reviews"), ["v1"]);
    }
    // Without a user key too, and on the blue-green route.
    let seen = echo(&mut client, "/reviews", &[("x-route-reviews", "v2")]);
    assert_eq!(seen.version, "v1");
    let seen = echo(&mut client, "/web", &[("x-route-web", "green")]);
    assert_eq!(seen.version, "blue");
    assert_eq!(stack.backends.get("v2").requests(), 0);
    assert_eq!(stack.backends.get("green").requests(), 0);
}

#[test]
fn pins_overrides_and_blue_green_preview_route_as_configured() {
    let stack = start(&config(0.0, "blue"));
    let mut client = stack.envoy.client();
    let alice = ("x-user", "alice");

    // Pin: x-beta: 1 forces v2 even at 0%.
    assert_eq!(echo(&mut client, "/reviews", &[alice]).version, "v1");
    assert_eq!(
        echo(&mut client, "/reviews", &[alice, ("x-beta", "1")]).version,
        "v2"
    );

    // Tester override, honoured with the secret, refused without or with a wrong one.
    let ask = ("x-sluice-override", "reviews=v2;theme=light");
    let seen = echo(
        &mut client,
        "/reviews",
        &[alice, ask, ("x-sluice-secret", SECRET)],
    );
    assert_eq!(seen.version, "v2");
    assert_eq!(
        seen.header("x-sluice-flags"),
        Some("checkout=on;theme=light")
    );
    for refused in [
        vec![alice, ask],
        vec![alice, ask, ("x-sluice-secret", "guess")],
    ] {
        let seen = echo(&mut client, "/reviews", &refused);
        assert_eq!(seen.version, "v1", "{refused:?}");
        assert_eq!(
            seen.header("x-sluice-flags"),
            Some("checkout=on;theme=dark")
        );
    }

    // Blue-green: the active color, and the idle one for previewers.
    assert_eq!(echo(&mut client, "/web/home", &[alice]).version, "blue");
    assert_eq!(
        echo(&mut client, "/web/home", &[alice, ("x-preview", "1")]).version,
        "green"
    );
}

#[test]
fn an_invalid_config_is_refused_by_envoy_with_sluices_error_in_the_log() {
    let mut bad = config(10.0, "blue");
    bad["routes"]["reviews"]["canary"]["canary"] = json!("v3");
    let error = match Stack::start(&paths::sluice_wasm(), &bad.to_string()) {
        Ok(_) => panic!("envoy started with an invalid sluice config"),
        Err(error) => error,
    };
    assert!(error.exit.is_some(), "envoy does not start: {error}");
    let sluice_line = error
        .log
        .lines()
        .find(|line| line.contains("sluice: config rejected:"))
        .unwrap_or_else(|| panic!("no sluice error in the log: {error}"));
    assert!(
        sluice_line.contains("routes.reviews.canary") && sluice_line.contains("v3"),
        "the error names the path and the reason: {sluice_line}"
    );
    assert!(error.log.contains("Unable to create Wasm plugin sluice"));
}

#[test]
fn a_config_push_while_traffic_runs_ramps_the_canary_with_zero_failed_requests() {
    let stack = start_ecds(&config(10.0, "blue"));
    let users = 300u64;
    let traffic = Traffic::start(stack.envoy.addr(), move |i| {
        RequestSpec::get("/reviews").header("x-user", &format!("user-{}", i % users))
    });
    let step = Duration::from_secs(10);
    assert!(traffic.wait_more(3 * users, step), "traffic flows");

    // Push 2: canary 10% → 50%.
    let pushed = Instant::now();
    stack
        .push(
            "2",
            &paths::sluice_wasm(),
            &config(50.0, "blue").to_string(),
        )
        .unwrap();
    assert!(stack.wait_ecds("2", step), "ECDS version 2 applied");
    let applied = pushed.elapsed();
    let sent_at_apply = traffic.sent();
    assert!(traffic.wait_more(3 * users, step));
    let outcomes = traffic.stop();
    eprintln!(
        "ECDS push (canary 10% → 50%) applied {applied:?} after the rename; {}",
        summarize(&outcomes)
    );
    assert!(outcomes.iter().all(Outcome::ok), "{}", summarize(&outcomes));

    // Per user: the version before the push, and after it was applied.
    let user_of = |o: &Outcome| o.index % users;
    let mut before: BTreeMap<u64, String> = BTreeMap::new();
    let mut after: BTreeMap<u64, String> = BTreeMap::new();
    let (mut flips_before, mut flips_after) = (0, 0);
    for o in &outcomes {
        let version = o.version.clone().unwrap_or_default();
        let (map, flips) = if o.index < users * 3 {
            (&mut before, &mut flips_before)
        } else if o.index > sent_at_apply {
            (&mut after, &mut flips_after)
        } else {
            continue; // during the switch
        };
        if let Some(previous) = map.insert(user_of(o), version.clone()) {
            if previous != version {
                *flips += 1;
            }
        }
    }
    assert_eq!(
        (flips_before, flips_after),
        (0, 0),
        "users stick between pushes"
    );
    let share = |m: &BTreeMap<u64, String>| {
        100.0 * m.values().filter(|v| *v == "v2").count() as f64 / m.len() as f64
    };
    let (share_before, share_after) = (share(&before), share(&after));
    eprintln!("users on v2: {share_before:.1}% before, {share_after:.1}% after");
    assert!((4.0..=17.0).contains(&share_before), "{share_before:.1}%");
    assert!((40.0..=60.0).contains(&share_after), "{share_after:.1}%");
    // Monotonic ramp: a user on the canary at 10% is still on it at 50%.
    for (user, version) in &before {
        if version == "v2" {
            assert_eq!(
                after.get(user).map(String::as_str),
                Some("v2"),
                "user-{user}"
            );
        }
    }
    assert_eq!(stack.ecds_stat("update_rejected"), 0);
}

#[test]
fn blue_green_switch_pushed_while_traffic_runs_moves_everyone_at_once() {
    let stack = start_ecds(&config(10.0, "blue"));
    let traffic = Traffic::start(stack.envoy.addr(), |i| {
        RequestSpec::get("/web/home").header("x-user", &format!("user-{}", i % 100))
    });
    let step = Duration::from_secs(10);
    assert!(traffic.wait_more(300, step));
    stack
        .push(
            "2",
            &paths::sluice_wasm(),
            &config(10.0, "green").to_string(),
        )
        .unwrap();
    assert!(stack.wait_ecds("2", step));
    assert!(traffic.wait_more(300, step));
    let outcomes = traffic.stop();
    assert!(outcomes.iter().all(Outcome::ok), "{}", summarize(&outcomes));
    let mut runs: Vec<&str> = Vec::new();
    for o in &outcomes {
        let v = o.version.as_deref().unwrap_or("-");
        if runs.last() != Some(&v) {
            runs.push(v);
        }
    }
    assert_eq!(runs, ["blue", "green"], "one switch, no flapping");
}

#[test]
fn an_invalid_push_is_rejected_and_the_running_config_keeps_routing() {
    let stack = start_ecds(&config(0.0, "blue"));
    let traffic = Traffic::start(stack.envoy.addr(), |i| {
        RequestSpec::get("/reviews").header("x-user", &format!("user-{}", i % 100))
    });
    let step = Duration::from_secs(10);
    assert!(traffic.wait_more(200, step));
    let mut bad = config(50.0, "blue");
    bad["flags"]["checkout"]["rules"][0] = json!({ "rollout": { "on": 50, "off": 40 } });
    stack
        .push("2", &paths::sluice_wasm(), &bad.to_string())
        .unwrap();
    assert!(
        sluice_e2e::wait_until(step, || stack.ecds_stat("update_rejected") == 1),
        "Envoy rejects the push"
    );
    assert!(traffic.wait_more(200, step));
    let outcomes = traffic.stop();
    assert!(outcomes.iter().all(Outcome::ok), "{}", summarize(&outcomes));
    assert!(
        outcomes.iter().all(|o| o.version.as_deref() == Some("v1")),
        "the previous config (0% canary) keeps routing"
    );
    assert_eq!(
        stack.envoy.text_stat(&format!("{ECDS_STATS}.version_text")),
        Some("1".into())
    );
    let log = stack.envoy.log();
    let sluice_line = log
        .lines()
        .find(|l| l.contains("sluice: config rejected:"))
        .unwrap_or_else(|| panic!("no sluice error in the log"));
    assert!(
        sluice_line.contains("flags.checkout.rules[0].rollout"),
        "{sluice_line}"
    );
    assert!(log.contains("Filesystem config update rejected: Unable to create Wasm plugin sluice"));
}

#[test]
fn users_stick_across_workers_each_running_its_own_vm() {
    // Two workers, one VM each: the bucket comes from the user key alone, so a user gets the same
    // version on every connection, whichever worker serves it.
    let stack = Stack::start_with(
        &paths::sluice_wasm(),
        &config(30.0, "blue").to_string(),
        EnvoyOptions::default().concurrency(2),
    )
    .expect("envoy starts with two workers");
    // The kernel spreads connections over the workers (SO_REUSEPORT): open connections until
    // both workers hold some.
    let per_worker = |w: u32| -> u64 {
        stack
            .envoy
            .stats()
            .iter()
            .filter(|(name, _)| {
                name.starts_with("listener.127.0.0.1_")
                    && name.ends_with(&format!(".worker_{w}.downstream_cx_total"))
            })
            .filter_map(|(_, v)| v.parse::<u64>().ok())
            .sum()
    };
    let mut clients: Vec<HttpClient> = Vec::new();
    while clients.len() < 4 || per_worker(0) == 0 || per_worker(1) == 0 {
        assert!(clients.len() < 64, "connections never reached both workers");
        let mut client = stack.envoy.client();
        echo(&mut client, "/reviews", &[]);
        clients.push(client);
    }
    let mut moved = 0;
    let mut on_v2 = 0;
    for u in 0..300 {
        let user = format!("user-{u}");
        let versions: Vec<String> = clients
            .iter_mut()
            .map(|c| echo(c, "/reviews", &[("x-user", &user)]).version)
            .collect();
        if versions.iter().any(|v| *v != versions[0]) {
            moved += 1;
        }
        on_v2 += usize::from(versions[0] == "v2");
    }
    let (w0, w1) = (per_worker(0), per_worker(1));
    eprintln!("connections per worker: {w0} + {w1}; {on_v2} of 300 users on v2");
    assert!(
        w0 > 0 && w1 > 0,
        "both workers served connections ({w0}, {w1})"
    );
    assert_eq!(moved, 0, "users changed version between connections");
    assert!(
        (60..=120).contains(&on_v2),
        "{on_v2} of 300 users on v2 at 30%"
    );
}
