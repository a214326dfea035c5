//! The `sluice` operator CLI, run as a user would, on the probe module.
mod common;

use std::path::PathBuf;
use std::process::{Command, Output};

/// Writes `config` to a fresh file and returns its path.
fn config_file(name: &str, config: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sluice-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, config).unwrap();
    path
}

fn sluice(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .output()
        .expect("run sluice")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn probe() -> String {
    common::module("probe.wasm").to_string_lossy().into_owned()
}

#[test]
fn check_prints_ok_or_the_rejection_and_exits_1() {
    let good = config_file("good.json", "{}");
    let out = sluice(&["check", good.to_str().unwrap(), "--wasm", &probe()]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), "ok\n");

    let bad = config_file("bad.json", r#"{"reject": true}"#);
    let out = sluice(&["check", bad.to_str().unwrap(), "--wasm", &probe()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stdout(&out),
        "[error] probe: configuration rejected on purpose\n"
    );

    let out = sluice(&[
        "check",
        good.to_str().unwrap(),
        "--wasm",
        "nowhere/sluice.wasm",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("make build"));
}

#[test]
fn eval_shows_what_the_filter_did_to_one_request() {
    let config = config_file(
        "eval.json",
        r#"{"request": [
            {"op": "set", "name": "x-flag", "value": "on"},
            {"op": "remove", "name": "x-spoof"},
            {"op": "echo", "from": "x-user-id", "to": "x-user-echo"},
            {"op": "property", "path": ["source", "address"], "to": "x-src"},
            {"op": "echo", "from": ":authority", "to": "x-auth"},
            {"op": "time", "to": "x-now"},
            {"op": "foreign", "name": "clear_route_cache", "to": "x-cleared"}
        ]}"#,
    );
    let out = sluice(&[
        "eval",
        config.to_str().unwrap(),
        "--wasm",
        &probe(),
        "-H",
        "x-user-id: 42",
        "-H",
        "x-spoof:v2",
        "--source",
        "10.1.2.3:5555",
        "--authority",
        "reviews",
        "--at",
        "2026-03-01T12:00:00Z",
    ]);
    let text = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in [
        "request headers set by the filter:\n  x-flag: on\n  x-user-echo: 42\n  x-src: 10.1.2.3:5555\n  x-auth: reviews\n  x-now: 1772366400000000000\n",
        "request headers removed by the filter:\n  x-spoof\n",
        "local reply: none (forwarded upstream)\n",
        "response headers (upstream answered 200):\n  :status: 200\n",
        "foreign calls: clear_route_cache\n",
        "fuel: ",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }

    let reply = config_file(
        "reply.json",
        r#"{"request": [{"op": "reply", "status": 403, "body": "no"}]}"#,
    );
    let text = stdout(&sluice(&[
        "eval",
        reply.to_str().unwrap(),
        "--wasm",
        &probe(),
    ]));
    assert!(text.contains("local reply: 403"), "{text}");
    assert!(text.contains("  :status: 403\n"), "{text}");
}

#[test]
fn simulate_reports_value_shares_and_stickiness_per_written_header() {
    let config = config_file(
        "simulate.json",
        r#"{"request": [
            {"op": "set", "name": "x-const", "value": "1"},
            {"op": "echo", "from": "x-user-id", "to": "x-user-echo"},
            {"op": "time", "to": "x-now"}
        ], "response": [{"op": "set", "name": "x-resp", "value": "r"}]}"#,
    );
    let out = sluice(&[
        "simulate",
        config.to_str().unwrap(),
        "--wasm",
        &probe(),
        "--users",
        "4",
        "--requests-per-user",
        "2",
        "--advance",
        "1",
        "--workers",
        "2",
    ]);
    let text = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.starts_with("simulated 4 users x 2 requests = 8 requests on 2 worker(s)\n"),
        "{text}"
    );
    let section = |header: &str| -> String {
        let start = text
            .find(&format!("\n{header}\n"))
            .unwrap_or_else(|| panic!("no {header} in:\n{text}"));
        text[start + 1..].split("\n\n").next().unwrap().to_string()
    };
    let constant = section("x-const");
    assert!(
        constant.contains("  1                                         100.00%   100.00%"),
        "{constant}"
    );
    assert!(
        constant.ends_with("users that saw more than one value: 0 (0.00%)"),
        "{constant}"
    );
    let echo = section("x-user-echo");
    assert!(
        echo.contains("  3                                          25.00%    25.00%"),
        "{echo}"
    );
    assert!(
        echo.ends_with("users that saw more than one value: 0 (0.00%)"),
        "{echo}"
    );
    let response = section("x-resp (response)");
    assert!(
        response.contains("  r                                         100.00%   100.00%"),
        "{response}"
    );
    let now = section("x-now");
    assert!(
        now.ends_with("users that saw more than one value: 4 (100.00%)"),
        "the clock moved between rounds: {now}"
    );
}

#[test]
fn help_and_usage_errors() {
    let out = sluice(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("sluice simulate CONFIG.json --users N"));
    let out = sluice(&["frobnicate", "x.json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown command \"frobnicate\""));
}
