//! Usage metrics from Sluice in a real Envoy (2 workers) back to a live Unleash (npm
//! unleash-server 7.5.1 over PostgreSQL, started here; `make setup-unleash`). Requests with known
//! users go through Envoy; the yes/no and variant counts Unleash's admin API then reports for each
//! feature equal exactly what Sluice evaluated (read from the flags header each request carried
//! upstream), the client shows up registered, and counts made while Unleash is stopped arrive
//! after it restarts (kept, not lost).
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sluice_e2e::unleash::{Postgres, Unleash};
use sluice_e2e::{paths, stack, Backends, EnvoyOptions, HttpClient, Stack};

const APP: &str = "sluice-usage-e2e";
const INSTANCE: &str = "sluice-e2e-instance";
/// Listed for Sluice; `ghost` is not in Unleash, so it is written `off` but not counted.
const FEATURES: [&str; 3] = ["checkout", "banner", "ghost"];

/// Per feature: yes, no, and count per variant name.
type Counts = BTreeMap<String, (u64, u64, BTreeMap<String, u64>)>;

fn config(token: &str) -> String {
    json!({
        "version": 1,
        "identity": { "user": [{ "header": "x-user" }] },
        "unleash": {
            "poll": {
                "cluster": "unleash",
                "authority": "unleash.local",
                "authorization": token,
                "interval": "1s",
                "timeout": "800ms"
            },
            "context": { "app_name": APP, "environment": "development" },
            "features": FEATURES,
            "metrics": { "interval": "2s", "instance_id": INSTANCE }
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

/// Sends one request per user through Envoy; the counts an Unleash SDK would report for the
/// flags headers that reached the upstream (`off`: no; otherwise yes; the variant, or
/// `disabled` when none was chosen).
fn traffic(addr: SocketAddr, users: std::ops::Range<u32>, counts: &mut Counts) {
    let mut client = HttpClient::new(addr);
    for i in users {
        let user = format!("user-{i}");
        let response = client
            .get("/reviews", &[("x-user", &user)])
            .expect("request through Envoy");
        assert_eq!(response.status, 200);
        let flags = response
            .echo()
            .and_then(|e| e.header("x-sluice-flags").map(str::to_string))
            .expect("flags header upstream");
        for pair in flags.split(';') {
            let (name, variant) = pair.split_once('=').expect("name=variant");
            if name == "ghost" {
                assert_eq!(variant, "off");
                continue;
            }
            let entry = counts.entry(name.to_string()).or_default();
            if variant == "off" {
                entry.1 += 1;
            } else {
                entry.0 += 1;
            }
            let variant = if variant == "off" || variant == "on" {
                "disabled"
            } else {
                variant
            };
            *entry.2.entry(variant.to_string()).or_default() += 1;
        }
    }
}

/// What Unleash reports for our app: the raw hourly metrics of each feature, summed.
fn reported(unleash: &Unleash) -> Counts {
    let mut out = Counts::new();
    for name in ["checkout", "banner"] {
        let raw = unleash.admin(
            "GET",
            &format!("/api/admin/client-metrics/features/{name}/raw?hoursBack=2"),
            None,
        );
        for row in raw["data"].as_array().into_iter().flatten() {
            if row["appName"] != APP {
                continue;
            }
            let yes = row["yes"].as_u64().unwrap_or(0);
            let no = row["no"].as_u64().unwrap_or(0);
            if yes + no == 0 {
                continue;
            }
            let entry = out.entry(name.to_string()).or_default();
            entry.0 += yes;
            entry.1 += no;
            for (v, n) in row["variants"].as_object().into_iter().flatten() {
                *entry.2.entry(v.clone()).or_default() += n.as_u64().unwrap_or(0);
            }
        }
    }
    out
}

/// Waits until Unleash reports `want`; how long that took.
fn until_reported(unleash: &Unleash, want: &Counts, what: &str) -> Duration {
    let from = Instant::now();
    let mut seen = Counts::new();
    let arrived = sluice_e2e::wait_until(Duration::from_secs(60), || {
        seen = reported(unleash);
        &seen == want
    });
    assert!(
        arrived,
        "{what}: Unleash reports {seen:?}, Sluice evaluated {want:?}"
    );
    from.elapsed()
}

#[test]
fn unleash_reports_exactly_what_sluice_evaluated_and_outage_counts_arrive_later() {
    let started = Instant::now();
    let pg = Postgres::start();
    let log_dir = paths::target_dir().join("e2e/unleash_usage_live");
    std::fs::create_dir_all(&log_dir).expect("log dir");
    let (mut unleash, unleash_took) = Unleash::start(&pg, &log_dir);
    println!(
        "PostgreSQL + Unleash 7.5.1 healthy in {:?} (Unleash {unleash_took:?})",
        started.elapsed()
    );

    let token = unleash.admin(
        "POST",
        "/api/admin/api-tokens",
        Some(&json!({"tokenName": "sluice-usage", "type": "client",
                     "environment": "development", "projects": ["*"]})),
    )["secret"]
        .as_str()
        .expect("a client token")
        .to_string();
    let project = "/api/admin/projects/default/features";
    let env = "environments/development";
    for name in ["checkout", "banner"] {
        unleash.admin(
            "POST",
            project,
            Some(&json!({"name": name, "type": "release"})),
        );
    }
    // checkout: half the users, variants blue/green; banner: on for all, no variants.
    unleash.admin(
        "POST",
        &format!("{project}/checkout/{env}/strategies"),
        Some(&json!({"name": "flexibleRollout",
        "parameters": {"rollout": "50", "stickiness": "default", "groupId": "checkout"},
        "variants": [
            {"name": "blue", "weight": 500, "weightType": "variable", "stickiness": "default"},
            {"name": "green", "weight": 500, "weightType": "variable", "stickiness": "default"}
        ]})),
    );
    unleash.admin(
        "POST",
        &format!("{project}/banner/{env}/strategies"),
        Some(&json!({"name": "default"})),
    );
    for name in ["checkout", "banner"] {
        unleash.admin("POST", &format!("{project}/{name}/{env}/on"), None);
    }

    let backends = Backends::start(&stack::VERSIONS).expect("backends");
    let yaml = envoy_yaml(&backends, &config(&token), unleash.addr());
    let envoy = sluice_e2e::Envoy::start_with(&yaml, EnvoyOptions::default().concurrency(2))
        .expect("envoy with an unleash cluster");
    let stack = Stack { envoy, backends };
    let stat = |name: &str| {
        stack
            .envoy
            .stat(&format!("wasmcustom.sluice.unleash.{name}"))
            .unwrap_or(0)
    };
    assert!(
        sluice_e2e::wait_until(Duration::from_secs(10), || stat("fetch.ok") >= 1),
        "no successful poll of Unleash; log:\n{}",
        stack.envoy.log()
    );
    // Every worker loads the payload on its next tick.
    std::thread::sleep(Duration::from_millis(1200));

    // 1. Traffic with known users; Unleash must report exactly these counts.
    let mut counts = Counts::new();
    traffic(stack.envoy.addr(), 0..300, &mut counts);
    let checkout = &counts["checkout"];
    assert!(checkout.0 > 100 && checkout.1 > 100, "{checkout:?}");
    let took = until_reported(&unleash, &counts, "after 300 requests");
    println!(
        "Sluice evaluated {counts:?}; Unleash reported the same {took:?} after the last request"
    );
    // Nothing more arrives later (no bucket sent twice): two more intervals and Unleash's 5 s
    // write-behind later, the counts are unchanged.
    std::thread::sleep(Duration::from_secs(2 * 2 + 5));
    assert_eq!(reported(&unleash), counts, "counts changed after settling");
    assert_eq!(stat("metrics.failed"), 0, "{}", stack.envoy.log());
    let sent = stat("metrics.sent");
    assert!(sent >= 1);

    // The client registered: the application lists the strategies Sluice sent and our instance.
    let mut app = Value::Null;
    let registered_from = Instant::now();
    let listed = sluice_e2e::wait_until(Duration::from_secs(45), || {
        // 404 until Unleash writes its registrations (every 20 s).
        app = unleash
            .try_admin(
                "GET",
                &format!("/api/admin/metrics/applications/{APP}"),
                None,
            )
            .unwrap_or_default();
        app["instances"]
            .as_array()
            .is_some_and(|list| list.iter().any(|i| i["instanceId"] == INSTANCE))
    });
    assert!(listed, "instance not listed: {app}");
    println!(
        "application and instance listed by Unleash {:?} after the counts",
        registered_from.elapsed()
    );
    let instance = app["instances"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|i| i["instanceId"] == INSTANCE)
        .cloned()
        .unwrap_or_default();
    assert!(
        instance["sdkVersion"]
            .as_str()
            .is_some_and(|v| v.starts_with("sluice:")),
        "{instance}"
    );
    assert!(
        app["strategies"]
            .as_array()
            .is_some_and(|s| s.iter().any(|s| s["name"] == "flexibleRollout")),
        "the register call's strategies: {app}"
    );

    // 2. Unleash stops: reports fail (counted), the buckets are kept; after the restart they
    // arrive, so Unleash's totals include every request made during the outage.
    unleash.stop();
    traffic(stack.envoy.addr(), 300..450, &mut counts);
    assert!(
        sluice_e2e::wait_until(Duration::from_secs(15), || stat("metrics.failed") >= 2),
        "failed reports not counted while Unleash is down"
    );
    let failed = stat("metrics.failed");
    let restart_took = unleash.restart();
    let took = until_reported(&unleash, &counts, "after the outage");
    let log = stack.envoy.log();
    assert!(
        log.contains("unleash metrics: sending a bucket to `/api/client/metrics` failed")
            && log.contains("bucket kept"),
        "no failed report logged:\n{log}"
    );
    assert_eq!(stat("metrics.dropped"), 0);
    println!(
        "outage: {failed} failed reports counted; Unleash restarted in {restart_took:?}; kept \
         buckets reported {took:?} after that; totals {counts:?}; reports sent {}",
        stat("metrics.sent")
    );
}
