//! `sluice analyze` on Envoy stats text written the way Envoy writes it (Prometheus), from files.
use std::path::PathBuf;
use std::process::{Command, Output};

fn config() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/configs/experiment.json")
        .to_string_lossy()
        .into_owned()
}

fn sluice(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .output()
        .expect("run sluice")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// One side's stats: responses (2xx, 5xx), goals, and all latencies in one bucket.
struct Side<'a> {
    prefix: &'a str,
    ok: u64,
    errors: u64,
    goals: Option<u64>,
    latency_le: &'a str,
}

const BOUNDS: [&str; 20] = [
    "0.5", "1", "5", "10", "25", "50", "100", "250", "500", "1000", "2500", "5000", "10000",
    "30000", "60000", "300000", "600000", "1800000", "3600000", "+Inf",
];

fn prometheus(sides: &[Side]) -> String {
    let mut out = String::new();
    for s in sides {
        let name = format!("envoy_wasmcustom_sluice_{}", s.prefix);
        for (class, n) in [
            ("1xx", 0),
            ("2xx", s.ok),
            ("3xx", 0),
            ("4xx", 0),
            ("5xx", s.errors),
        ] {
            out += &format!(
                "# TYPE {name}_responses_{class} counter\n{name}_responses_{class}{{}} {n}\n"
            );
        }
        if let Some(g) = s.goals {
            out += &format!("{name}_goal_purchase{{}} {g}\n");
        }
        let total = s.ok + s.errors;
        let at = BOUNDS.iter().position(|b| *b == s.latency_le).unwrap();
        out += &format!("# TYPE {name}_latency_ms histogram\n");
        for (i, b) in BOUNDS.iter().enumerate() {
            let n = if i >= at { total } else { 0 };
            out += &format!("{name}_latency_ms_bucket{{le=\"{b}\"}} {n}\n");
        }
        out += &format!("{name}_latency_ms_sum{{}} 0\n{name}_latency_ms_count{{}} {total}\n");
    }
    out
}

fn file(name: &str, body: &str) -> String {
    let dir = std::env::temp_dir().join(format!("sluice-analyze-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    path.to_string_lossy().into_owned()
}

/// One proxy's stats: the experiment's variants and the canary's versions.
fn proxy(green_err: u64, blue_err: u64, blue_goals: u64, blue_le: &str, canary_err: u64) -> String {
    prometheus(&[
        Side {
            prefix: "experiment_button_green",
            ok: 1000 - green_err,
            errors: green_err,
            goals: Some(100),
            latency_le: "25",
        },
        Side {
            prefix: "experiment_button_blue",
            ok: 1000 - blue_err,
            errors: blue_err,
            goals: Some(blue_goals),
            latency_le: blue_le,
        },
        Side {
            prefix: "route_reviews_v1",
            ok: 9000,
            errors: 90,
            goals: None,
            latency_le: "25",
        },
        Side {
            prefix: "route_reviews_v2",
            ok: 1000 - canary_err,
            errors: canary_err,
            goals: None,
            latency_le: "25",
        },
    ])
}

#[test]
fn a_worse_variant_is_named_and_fails_the_exit_status() {
    // Two proxies, summed: blue fails 5% vs green 1%, converts 6% vs 10%, and is slower.
    let a = file("worse-a.prom", &proxy(10, 50, 60, "100", 10));
    let b = file("worse-b.prom", &proxy(10, 50, 60, "100", 10));
    let out = sluice(&["analyze", "--config", &config(), &a, &b]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("experiment button (control: green)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("blue vs control, error_rate: SIGNIFICANTLY WORSE"),
        "{stdout}"
    );
    assert!(
        stdout.contains("blue vs control, latency: SIGNIFICANTLY WORSE"),
        "{stdout}"
    );
    assert!(
        stdout.contains("blue vs control, goal.purchase: SIGNIFICANTLY WORSE"),
        "{stdout}"
    );
    assert!(
        stdout.contains("v2 vs control, error_rate: no significant difference"),
        "{stdout}"
    );
    let out = sluice(&["analyze", "--config", &config(), &a, &b, "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        json["significantly_worse"],
        serde_json::json!([
            "experiment button: blue error_rate",
            "experiment button: blue latency",
            "experiment button: blue goal.purchase"
        ])
    );
    let blue = &json["groups"][0]["variants"][0];
    assert_eq!(blue["name"], "blue");
    assert_eq!(blue["responses"], 2000.0);
    assert_eq!(blue["errors"], 100.0);
    assert_eq!(blue["goals"][0]["count"], 120.0);
}

#[test]
fn an_a_a_run_shows_no_significant_difference() {
    let a = file("aa.prom", &proxy(10, 12, 98, "25", 9));
    let out = sluice(&["analyze", "--config", &config(), &a]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(!stdout.contains("SIGNIFICANTLY"), "{stdout}");
    assert!(
        stdout.contains("blue vs control, error_rate: no significant difference"),
        "{stdout}"
    );
}

#[test]
fn bad_stats_give_a_clear_error_and_no_verdict() {
    let good = proxy(10, 50, 60, "100", 10);
    let truncated = file("truncated.prom", &good[..good.len() / 2]);
    let out = sluice(&["analyze", "--config", &config(), &truncated]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("truncated"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(text(&out.stdout), "");

    // Cut at a line end, just before the canary's 5xx counter: the text reads fine, but the
    // canary's errors would count as 0 and it would pass.
    let failing_canary = proxy(10, 12, 98, "25", 60);
    let cut = failing_canary
        .find("# TYPE envoy_wasmcustom_sluice_route_reviews_v2_responses_5xx")
        .unwrap();
    let cut = file("cut.prom", &failing_canary[..cut]);
    let out = sluice(&["analyze", "--config", &config(), &cut]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains(
            "`envoy_wasmcustom_sluice_route_reviews_v2_responses_5xx` is missing while \
             `envoy_wasmcustom_sluice_route_reviews_v2_responses_1xx` is there: truncated output?"
        ),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(text(&out.stdout), "");
    let whole = file("whole.prom", &failing_canary);
    let out = sluice(&["analyze", "--config", &config(), &whole]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the whole text names the canary worse"
    );

    let other = file("other.prom", "envoy_server_live 1\n");
    let out = sluice(&["analyze", "--config", &config(), &other]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr)
            .contains("no stats of experiment `button` (e.g. `envoy_wasmcustom_sluice_experiment_button_blue_responses_2xx`)"),
        "{}",
        text(&out.stderr)
    );

    // An earlier sample with more errors than now: the proxy restarted.
    let before = file("before.prom", &proxy(10, 80, 60, "100", 10));
    let now = file("now.prom", &good);
    let out = sluice(&["analyze", "--config", &config(), &now, "--since", &before]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("went backwards"),
        "{}",
        text(&out.stderr)
    );

    // Stats of a flag the config does not mark as an experiment: a warning, the rest analysed.
    let extra = file(
        "extra.prom",
        &(proxy(10, 12, 98, "25", 9)
            + "envoy_wasmcustom_sluice_experiment_old_a_responses_2xx{} 5\n"),
    );
    let out = sluice(&["analyze", "--config", &config(), &extra]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains("not from"),
        "{}",
        text(&out.stderr)
    );
}
