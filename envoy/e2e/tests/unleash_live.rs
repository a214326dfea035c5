//! Sluice in a real Envoy polling a live Unleash (npm unleash-server 7.5.1 over PostgreSQL, both
//! started here; `make setup-unleash`). Flags, a segment and a client token are made through
//! Unleash's admin API; traffic runs throughout. Asserted: each admin change (rollout 0 → 100, a
//! variant weight, a flag disabled, a flag archived) reaches every request within the poll
//! interval + 1 s of Unleash serving it; with Unleash stopped the last good payload stays in force
//! and `fetch.failed` counts; after a restart polling resumes; no request fails.
//!
//! The expected header of each request is computed from the payload Unleash serves to clients, by
//! the native evaluator (sluice-unleash, itself checked against Unleash's SDK).
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sluice_e2e::unleash::{Postgres, Unleash};
use sluice_e2e::{paths, stack, Backends, EnvoyOptions, HttpClient, Stack};
use sluice_unleash::{Context, Engine, Payload};

const INTERVAL: Duration = Duration::from_secs(1);
const FEATURES: [&str; 2] = ["checkout", "banner"];
const USERS: u64 = 200;

fn config(token: &str) -> String {
    json!({
        "version": 1,
        "revision": "unleash-live-1",
        "identity": { "user": [{ "header": "x-user" }] },
        "unleash": {
            "poll": {
                "cluster": "unleash",
                "authority": "unleash.local",
                "authorization": token,
                "interval": "1s",
                "timeout": "800ms"
            },
            "context": {
                "app_name": "sluice-e2e",
                "environment": "development",
                "properties": { "tier": { "header": "x-tier" } }
            },
            "features": FEATURES
        }
    })
    .to_string()
}

fn envoy_yaml(backends: &Backends, config: &str, unleash: SocketAddr) -> String {
    let yaml = stack::envoy_yaml(&paths::sluice_wasm(), config, backends);
    let cluster = format!(
        "  - name: unleash\n    type: STATIC\n    connect_timeout: 1s\n    load_assignment:\n      cluster_name: unleash\n      endpoints:\n      - lb_endpoints:\n        - endpoint: {{ address: {{ socket_address: {{ address: \"{}\", port_value: {} }} }} }}\n",
        unleash.ip(),
        unleash.port()
    );
    let at = yaml
        .find("  clusters:\n")
        .expect("the template has clusters")
        + "  clusters:\n".len();
    format!("{}{cluster}{}", &yaml[..at], &yaml[at..])
}

fn user(i: u64) -> (String, &'static str) {
    (
        format!("user-{i}"),
        if i.is_multiple_of(2) {
            "gold"
        } else {
            "silver"
        },
    )
}

/// The flags header Sluice must write for this user under `payload` (as served to clients).
fn expected(engine: &Engine, user: &str, tier: &str) -> String {
    let props = [("tier", tier)];
    let ctx = Context::new()
        .user_id(user)
        .app_name("sluice-e2e")
        .environment("development")
        .properties(&props);
    // The flags header lists Unleash features sorted by name.
    let mut names = FEATURES;
    names.sort();
    names
        .iter()
        .map(|name| {
            let v = engine.variant(name, &ctx);
            let value = if !v.feature_enabled {
                "off"
            } else if v.enabled {
                v.name
            } else {
                "on"
            };
            format!("{name}={value}")
        })
        .collect::<Vec<_>>()
        .join(";")
}

fn engine(payload: &Value) -> Engine {
    Engine::new(Payload::from_json(&payload.to_string()).expect("Unleash serves a valid payload"))
}

#[derive(Clone, Debug)]
struct Sample {
    at: Duration,
    user: u64,
    flags: Result<String, String>,
}

struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<Vec<Sample>>>,
    started: Instant,
}

impl Load {
    fn start(addr: SocketAddr, connections: u64, started: Instant) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..connections)
            .map(|c| {
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || {
                    let mut client = HttpClient::new(addr);
                    let mut samples = Vec::new();
                    let mut i = c;
                    while !stop.load(Ordering::SeqCst) {
                        let n = i % USERS;
                        let (name, tier) = user(n);
                        let at = started.elapsed();
                        let flags =
                            match client.get("/reviews", &[("x-user", &name), ("x-tier", tier)]) {
                                Ok(r) if r.status == 200 => r
                                    .echo()
                                    .and_then(|e| e.header("x-sluice-flags").map(str::to_string))
                                    .ok_or_else(|| "no flags header upstream".to_string()),
                                Ok(r) => Err(format!("HTTP {}", r.status)),
                                Err(e) => Err(e.to_string()),
                            };
                        samples.push(Sample { at, user: n, flags });
                        i += connections;
                        std::thread::sleep(Duration::from_millis(4));
                    }
                    samples
                })
            })
            .collect();
        Load {
            stop,
            threads,
            started,
        }
    }

    fn now(&self) -> Duration {
        self.started.elapsed()
    }

    fn stop(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::SeqCst);
        self.threads
            .into_iter()
            .flat_map(|t| t.join().unwrap_or_default())
            .collect()
    }
}

/// One admin change and when Unleash served it to clients.
struct Change {
    what: &'static str,
    admin_call: Duration,
    served: Duration,
    payload: Value,
}

/// Applies `apply`, then waits until Unleash's client API serves a different payload.
fn change(
    unleash: &Unleash,
    token: &str,
    load: &Load,
    before: &Value,
    what: &'static str,
    apply: impl FnOnce(&Unleash),
) -> Change {
    // Served = served to a client that polls with the ETag of what it has, as Sluice does:
    // Unleash answers such a client 304 until its revision check sees the change, which can
    // lag an unconditional read (seen by up to ~2 s after a restart).
    let etag = unleash.client_features_etag(token);
    let admin_call = load.now();
    apply(unleash);
    let mut payload = Value::Null;
    let served = sluice_e2e::wait_until(Duration::from_secs(15), || {
        match unleash.client_features_since(token, etag.as_deref()) {
            Some(now) => payload = now,
            None => return false,
        }
        payload["features"] != before["features"]
    });
    assert!(served, "{what}: Unleash never served the change");
    Change {
        what,
        admin_call,
        served: load.now(),
        payload,
    }
}

fn flexible_rollout(rollout: u32, group: &str) -> Value {
    json!({"name": "flexibleRollout",
           "parameters": {"rollout": rollout.to_string(), "stickiness": "default", "groupId": group}})
}

#[test]
fn admin_api_changes_reach_routing_and_an_outage_keeps_the_last_payload() {
    let started = Instant::now();
    let pg = Postgres::start();
    let pg_took = started.elapsed();
    let log_dir = paths::target_dir().join("e2e/unleash_live");
    std::fs::create_dir_all(&log_dir).expect("log dir");
    let (mut unleash, unleash_took) = Unleash::start(&pg, &log_dir);
    println!("PostgreSQL started in {pg_took:?}; Unleash 7.5.1 healthy {unleash_took:?} later");

    // Through the admin API: a client token, a segment, two flags.
    let token = unleash.admin(
        "POST",
        "/api/admin/api-tokens",
        Some(&json!({"tokenName": "sluice-e2e", "type": "client",
                     "environment": "development", "projects": ["*"]})),
    )["secret"]
        .as_str()
        .expect("a client token")
        .to_string();
    let segment = unleash.admin(
        "POST",
        "/api/admin/segments",
        Some(&json!({"name": "gold-tier",
                     "constraints": [{"contextName": "tier", "operator": "IN", "values": ["gold"]}]})),
    )["id"]
        .clone();
    let project = "/api/admin/projects/default/features";
    let env = "environments/development";
    for name in FEATURES {
        unleash.admin(
            "POST",
            project,
            Some(&json!({"name": name, "type": "release"})),
        );
    }
    let mut checkout = flexible_rollout(0, "checkout");
    checkout["constraints"] =
        json!([{"contextName": "userId", "operator": "STR_STARTS_WITH", "values": ["user-"]}]);
    let checkout_id = unleash.admin(
        "POST",
        &format!("{project}/checkout/{env}/strategies"),
        Some(&checkout),
    )["id"]
        .as_str()
        .unwrap()
        .to_string();
    let banner_variants = |blue: u32| {
        json!([
            {"name": "blue", "weight": blue, "weightType": "fix", "stickiness": "default"},
            {"name": "green", "weight": 1000 - blue, "weightType": "variable", "stickiness": "default"}
        ])
    };
    let mut banner = flexible_rollout(100, "banner");
    banner["segments"] = json!([segment]);
    banner["variants"] = banner_variants(900);
    let banner_id = unleash.admin(
        "POST",
        &format!("{project}/banner/{env}/strategies"),
        Some(&banner),
    )["id"]
        .as_str()
        .unwrap()
        .to_string();
    for name in FEATURES {
        unleash.admin("POST", &format!("{project}/{name}/{env}/on"), None);
    }
    let first = unleash.client_features(&token);

    let backends = Backends::start(&stack::VERSIONS).expect("backends");
    let yaml = envoy_yaml(&backends, &config(&token), unleash.addr());
    let envoy = sluice_e2e::Envoy::start_with(&yaml, EnvoyOptions::default().concurrency(2))
        .expect("envoy with an unleash cluster");
    let stack = Stack { envoy, backends };
    let stat = |name: &str| {
        stack
            .envoy
            .stat(&format!("wasmcustom.sluice.unleash.fetch.{name}"))
            .unwrap_or(0)
    };
    assert!(
        sluice_e2e::wait_until(Duration::from_secs(10), || stat("ok") >= 1),
        "no successful poll of Unleash; log:\n{}",
        stack.envoy.log()
    );
    // Every worker loads the payload on its next tick.
    std::thread::sleep(INTERVAL + Duration::from_millis(200));
    let load = Load::start(stack.envoy.addr(), 6, started);
    let load_from = load.now();
    std::thread::sleep(Duration::from_secs(2));

    // The admin changes, one after another, each left to settle.
    let settle = INTERVAL * 3;
    let mut changes = Vec::new();
    let mut last = first.clone();
    let mut step = |what, apply: &dyn Fn(&Unleash)| {
        let c = change(&unleash, &token, &load, &last, what, apply);
        last = c.payload.clone();
        changes.push(c);
        std::thread::sleep(settle);
    };
    step("checkout rollout 0 → 100", &|u: &Unleash| {
        let mut s = flexible_rollout(100, "checkout");
        s["constraints"] =
            json!([{"contextName": "userId", "operator": "STR_STARTS_WITH", "values": ["user-"]}]);
        u.admin(
            "PUT",
            &format!("{project}/checkout/{env}/strategies/{checkout_id}"),
            Some(&s),
        );
    });
    step("banner variant weights blue 900 → 100", &|u: &Unleash| {
        let mut s = flexible_rollout(100, "banner");
        s["segments"] = json!([segment]);
        s["variants"] = banner_variants(100);
        u.admin(
            "PUT",
            &format!("{project}/banner/{env}/strategies/{banner_id}"),
            Some(&s),
        );
    });
    step("banner disabled", &|u: &Unleash| {
        u.admin("POST", &format!("{project}/banner/{env}/off"), None);
    });
    step("checkout archived", &|u: &Unleash| {
        u.admin("DELETE", &format!("{project}/checkout"), None);
    });

    // Unleash goes away: the last payload stays in force, failures are counted.
    let failed_before = stat("failed");
    let outage_from = load.now();
    unleash.stop();
    assert!(
        sluice_e2e::wait_until(Duration::from_secs(10), || stat("failed")
            >= failed_before + 3),
        "failed polls not counted while Unleash is down"
    );
    let outage_until = load.now();
    let failed_during = stat("failed") - failed_before;

    // Back again: polling resumes, and the next change reaches routing.
    let restart_took = unleash.restart();
    let polls_before = stat("ok") + stat("not_modified");
    assert!(
        sluice_e2e::wait_until(Duration::from_secs(10), || stat("ok")
            + stat("not_modified")
            > polls_before),
        "no successful poll after Unleash restarted"
    );
    let resumed = change(
        &unleash,
        &token,
        &load,
        &last,
        "banner enabled after the restart",
        |u| {
            u.admin("POST", &format!("{project}/banner/{env}/on"), None);
        },
    );
    std::thread::sleep(settle);
    let end = load.now();
    changes.push(resumed);
    let samples = load.stop();

    // No request failed.
    let errors: Vec<_> = samples.iter().filter(|s| s.flags.is_err()).collect();
    assert!(
        errors.is_empty(),
        "{} failed requests, e.g. {:?}",
        errors.len(),
        &errors[..errors.len().min(5)]
    );
    let flags = |s: &Sample| s.flags.clone().unwrap_or_default();

    // Before any change: the first payload, for every request.
    let expect_of = |payload: &Value| {
        let engine = engine(payload);
        (0..USERS)
            .map(|i| {
                let (name, tier) = user(i);
                (i, expected(&engine, &name, tier))
            })
            .collect::<BTreeMap<u64, String>>()
    };
    let mut previous = expect_of(&first);
    let before: Vec<_> = samples
        .iter()
        .filter(|s| s.at >= load_from && s.at < changes[0].admin_call)
        .collect();
    assert!(before.len() > 100, "{}", before.len());
    for s in &before {
        assert_eq!(
            flags(s),
            previous[&s.user],
            "before any change, user-{} at {:?}",
            s.user,
            s.at
        );
    }

    // Each change: requests are old or new until the change reached every worker, new after; it
    // reaches every request within the poll interval + 1 s of Unleash serving it.
    let budget = INTERVAL + Duration::from_secs(1);
    for (i, c) in changes.iter().enumerate() {
        let now = expect_of(&c.payload);
        let differs = (0..USERS).filter(|u| now[u] != previous[u]).count();
        assert!(differs > 0, "{}: changes no user's header", c.what);
        let until = changes.get(i + 1).map_or(end, |n| n.admin_call);
        let window: Vec<_> = samples
            .iter()
            .filter(|s| s.at >= c.admin_call && s.at < until)
            .collect();
        let mut last_old = None;
        for s in &window {
            let got = flags(s);
            if got == now[&s.user] {
                continue;
            }
            assert_eq!(
                got, previous[&s.user],
                "{}: user-{} at {:?} is neither old nor new",
                c.what, s.user, s.at
            );
            last_old = Some(s.at);
        }
        let lag = last_old.map_or(Duration::ZERO, |t| t.saturating_sub(c.served));
        println!(
            "{}: served by Unleash {:?} after the admin call; last request with the old answer {:?} \
             after that ({} users' headers changed, {} requests in the window)",
            c.what,
            c.served.saturating_sub(c.admin_call),
            lag,
            differs,
            window.len()
        );
        assert!(
            lag <= budget,
            "{}: took {lag:?}, over the poll interval + 1 s",
            c.what
        );
        assert!(window.iter().filter(|s| s.at >= c.served + budget).count() > 50);
        previous = now;
    }

    // While Unleash was down: requests kept the last good answers (checked above as part of
    // the archive step's window), and failures were counted and logged.
    let during = samples
        .iter()
        .filter(|s| s.at >= outage_from && s.at <= outage_until)
        .count();
    assert!(during > 50, "{during}");
    let log = stack.envoy.log();
    assert!(
        log.contains("unleash poll failed:") && log.contains("keeping the last good payload"),
        "no failed poll logged:\n{log}"
    );
    println!(
        "outage: {failed_during} failed polls counted in {:?}; Unleash restarted in {restart_took:?}; \
         {} requests, 0 failed; polls ok {} not_modified {} failed {}",
        outage_until.saturating_sub(outage_from),
        samples.len(),
        stat("ok"),
        stat("not_modified"),
        stat("failed")
    );
}
