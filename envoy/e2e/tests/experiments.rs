//! Experiments and the sequential guard in a real Envoy: outcomes per variant land in Envoy's
//! stats, `sluice analyze` on the live admin `/stats/prometheus` names the worse variant and finds
//! nothing in an A/A split; a sequential guard trips on a bad canary and POSTs its webhook to a
//! test server through an Envoy cluster.
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use sluice_e2e::{paths, stack, Backend, BackendOptions, Backends, EnvoyOptions, Stack};

/// The `sluice` CLI of this workspace (make test-e2e builds it first).
fn sluice_cli() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/debug/sluice");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build -p sluice-cli` (make test-e2e does)",
        path.display()
    );
    path
}

fn experiment_config() -> String {
    json!({
        "version": 1,
        "revision": "exp-1",
        "identity": { "user": [{ "header": "x-user" }] },
        "flags": {
            // The variant's value routes the request: `slow` reaches the failing, slower backend.
            "engine": {
                "variants": { "fast": "v1", "slow": "v2" },
                "default": "fast",
                "rules": [{ "rollout": { "fast": 50, "slow": 50 } }],
                "header": "x-route-reviews",
                "experiment": { "goals": ["purchase"] }
            },
            // An A/A split on the same traffic: both variants reach the same mix.
            "aa": {
                "variants": { "a": 1, "b": 2 },
                "default": "a",
                "rules": [{ "rollout": { "a": 50, "b": 50 } }],
                "experiment": true
            }
        }
    })
    .to_string()
}

#[test]
fn analyze_names_the_worse_variant_and_sees_no_difference_in_an_a_a_split() {
    let mut backends = Backends::start(&["v1", "blue", "green"]).expect("backends");
    backends.add(
        Backend::start(
            "v2",
            BackendOptions::new("v2")
                .fail_rate(0.08)
                .delay(Duration::from_millis(15)),
        )
        .expect("failing, slow v2"),
    );
    let stack = Stack::start_on(
        backends,
        &paths::sluice_wasm(),
        &experiment_config(),
        EnvoyOptions::default().concurrency(2),
    )
    .expect("envoy with an experiment");
    let mut client = stack.envoy.client();
    let mut by_variant = [0u32; 2];
    for i in 0..1200 {
        let user = format!("user-{i}");
        let r = client
            .get("/reviews", &[("x-user", &user)])
            .expect("request");
        let version = r
            .echo()
            .and_then(|e| e.header("x-route-reviews").map(str::to_string));
        by_variant[usize::from(version.as_deref() == Some("v2"))] += 1;
    }
    assert!(by_variant.iter().all(|n| *n > 400), "{by_variant:?}");
    // Stats are flushed on the filter's 1s tick.
    let flushed = sluice_e2e::wait_until(Duration::from_secs(5), || {
        ["fast", "slow"]
            .iter()
            .flat_map(|v| {
                ["2xx", "5xx"]
                    .map(|c| format!("wasmcustom.sluice.experiment.engine.{v}.responses.{c}"))
            })
            .map(|n| stack.envoy.stat(&n).unwrap_or(0))
            .sum::<u64>()
            == 1200
    });
    assert!(
        flushed,
        "{:?}",
        stack
            .envoy
            .stats()
            .into_iter()
            .filter(|(k, _)| k.contains("experiment"))
            .collect::<Vec<_>>()
    );

    let config = stack
        .envoy
        .write_file("sluice.json", &experiment_config())
        .expect("config file");
    let url = format!("http://{}/stats/prometheus", stack.envoy.admin_addr());
    let out = std::process::Command::new(sluice_cli())
        .args([
            "analyze",
            "--config",
            &config.to_string_lossy(),
            &url,
            "--json",
        ])
        .output()
        .expect("run sluice analyze");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let worse: Vec<&str> = doc["significantly_worse"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(
        worse.contains(&"experiment engine: slow error_rate"),
        "{stdout}"
    );
    // No latency verdict here: Envoy 1.40 puts every Sluice latency sample into the `+Inf`
    // bucket (values around 4.3e9 reach its histograms; the route latency stats show the same),
    // so analyze rightly sees no difference. Tracked in the branch report.
    assert!(
        worse
            .iter()
            .all(|w| w.starts_with("experiment engine: slow")),
        "{stdout}"
    );
    let aa = doc["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "aa")
        .expect("the A/A experiment");
    for c in aa["comparisons"].as_array().unwrap() {
        assert_eq!(c["significant"], false, "A/A: {c}");
        assert!(c["p"].as_f64().is_some(), "A/A tested: {c}");
    }
}

/// A tiny HTTP server recording POST bodies; answers 500 to the first, 200 after.
struct Recorder {
    addr: SocketAddr,
    bodies: Arc<Mutex<Vec<String>>>,
}

impl Recorder {
    fn start() -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().unwrap();
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&bodies);
        // The accept thread ends with the test process (the listener lives in it).
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let seen = Arc::clone(&seen);
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    loop {
                        let mut length = 0usize;
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        loop {
                            let mut h = String::new();
                            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                                return;
                            }
                            let h = h.trim_end();
                            if h.is_empty() {
                                break;
                            }
                            if let Some((n, v)) = h.split_once(':') {
                                if n.eq_ignore_ascii_case("content-length") {
                                    length = v.trim().parse().unwrap_or(0);
                                }
                            }
                        }
                        let mut body = vec![0; length];
                        if reader.read_exact(&mut body).is_err() {
                            return;
                        }
                        let status = {
                            let mut seen = seen.lock().unwrap();
                            seen.push(String::from_utf8_lossy(&body).into_owned());
                            if seen.len() == 1 {
                                "500 Internal Server Error"
                            } else {
                                "200 OK"
                            }
                        };
                        let mut out = &stream;
                        let _ = write!(out, "HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n");
                    }
                });
            }
        });
        Recorder { addr, bodies }
    }
}

#[test]
fn a_sequential_guard_trips_on_a_bad_canary_and_posts_its_webhook() {
    let hook = Recorder::start();
    let config = json!({
        "version": 1,
        "revision": "seq-1",
        "identity": { "user": [{ "header": "x-user" }] },
        "routes": {
            "reviews": {
                "match": { "path_prefix": "/" },
                "header": "x-route-reviews",
                "versions": ["v1", "v2"],
                "canary": { "stable": "v1", "canary": "v2", "weight": 50 },
                "guard": { "method": "sequential", "alpha": 0.01,
                    "webhook": { "cluster": "rollouts", "path": "/hooks/sluice", "attempts": 4 } }
            }
        }
    })
    .to_string();
    let mut backends = Backends::start(&["v1", "blue", "green"]).expect("backends");
    backends.add(Backend::start("v2", BackendOptions::new("v2").fail_rate(0.2)).expect("bad v2"));
    let yaml = stack::envoy_yaml(&paths::sluice_wasm(), &config, &backends);
    let cluster = format!(
        "  - name: rollouts\n    type: STATIC\n    connect_timeout: 1s\n    load_assignment:\n      cluster_name: rollouts\n      endpoints:\n      - lb_endpoints:\n        - endpoint: {{ address: {{ socket_address: {{ address: \"{}\", port_value: {} }} }} }}\n",
        hook.addr.ip(),
        hook.addr.port()
    );
    let at = yaml
        .find("  clusters:\n")
        .expect("the template has clusters")
        + "  clusters:\n".len();
    let yaml = format!("{}{cluster}{}", &yaml[..at], &yaml[at..]);
    let envoy = sluice_e2e::Envoy::start_with(&yaml, EnvoyOptions::default().concurrency(2))
        .expect("envoy with a webhook cluster");
    let stack = Stack { envoy, backends };
    let mut client = stack.envoy.client();
    let mut i = 0;
    let tripped = sluice_e2e::wait_until(Duration::from_secs(30), || {
        for _ in 0..50 {
            let user = format!("user-{i}");
            i += 1;
            let _ = client.get("/reviews", &[("x-user", &user)]);
        }
        stack.envoy.stat("wasmcustom.sluice.guard.reviews.tripped") == Some(1)
    });
    assert!(tripped, "guard never tripped; log:\n{}", stack.envoy.log());
    // The first POST gets a 500; the retry a second later a 200.
    let delivered = sluice_e2e::wait_until(Duration::from_secs(10), || {
        stack
            .envoy
            .stat("wasmcustom.sluice.guard.reviews.webhook.delivered")
            == Some(1)
    });
    assert!(delivered, "log:\n{}", stack.envoy.log());
    assert_eq!(
        stack
            .envoy
            .stat("wasmcustom.sluice.guard.reviews.webhook.failed"),
        Some(1)
    );
    let bodies = hook.bodies.lock().unwrap().clone();
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    assert_eq!(bodies[0], bodies[1], "the retry sends the same report");
    let report: serde_json::Value = serde_json::from_str(&bodies[0]).expect("JSON body");
    assert_eq!(report["route"], "reviews");
    assert_eq!(report["revision"], "seq-1");
    assert_eq!(report["method"], "sequential");
    assert!(report["e_value"].as_f64().unwrap() >= 100.0, "{report}");
    assert!(
        report["since_start"]["canary"]["bad"].as_u64().unwrap() > 0,
        "{report}"
    );
    // After the trip everyone is on stable.
    for j in 0..50 {
        let r = client
            .get("/reviews", &[("x-user", &format!("after-{j}"))])
            .expect("request");
        assert_eq!(
            r.echo()
                .and_then(|e| e.header("x-route-reviews").map(str::to_string))
                .as_deref(),
            Some("v1")
        );
    }
}
