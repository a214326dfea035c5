//! The `sluice` binary, run as an operator would, on small configs in tests/configs/.
use std::io::Read as _;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn config(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/configs")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// Runs sluice from the configs directory, so file names print short.
fn sluice(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .current_dir(config(""))
        .output()
        .expect("run sluice")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A config written to a temporary file (for variants of the checked-in ones).
fn temp_config(name: &str, body: &str) -> String {
    let dir = std::env::temp_dir().join(format!("sluice-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn check_names_file_line_column_path_and_reason() {
    let out = sluice(&["check", "bad.json"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "");
    assert_eq!(
        text(&out.stderr),
        "bad.json:8:45: routes.reviews.canary.canary: unknown version `v3` (versions: v1, v2)\n"
    );
    let syntax = temp_config("syntax.json", "{\n  \"version\": 1,\n  \"flags\": {\n");
    let out = sluice(&["check", &syntax]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        format!("{syntax}:4:1: config: EOF while parsing an object\n")
    );
    let out = sluice(&["check", "bad.json", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["ok"], false);
    assert_eq!(json["errors"][0]["line"], 8);
    assert_eq!(json["errors"][0]["path"], "routes.reviews.canary.canary");
}

#[test]
fn check_warns_about_likely_mistakes_and_strict_fails_on_them() {
    let out = sluice(&["check", "warn.json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "warn.json: ok: 1 flag(s), 1 route(s), 7 warning(s)\n"
    );
    assert_eq!(
        text(&out.stderr),
        "\
warn.json:5:50: warning: flags.checkout.rules[0].rollout.on: 0.5 is a percent (0.5% of users); if you meant 50%, write 50
warn.json:9:59: warning: routes.reviews.match.path_prefix: route `reviews` can never match a normal request: path_prefix `/api/*` is a literal prefix and `*` is not a wildcard (use `/api/`)
warn.json:12:61: warning: routes.reviews.canary.weight: the canary weight 5% applies from the push on, before `start` (2026-12-01T09:00:00Z); for nothing before `start`, set weight 0 and add a step {\"at\": \"2026-12-01T09:00:00Z\", \"weight\": 5}
warn.json:13:36: warning: routes.reviews.guard.max_error_rate: max_error_rate is a percent: 0.02 trips at 0.02% errors; for 2% write 2
warn.json:18:30: warning: unleash.headers.new-kart: feature `new-kart` is not in unleash.features: its header is never written
warn.json:21:48: warning: unleash.payload.features[0].strategies[0].constraints[0].operator: Unleash operators are upper case: `in` is unknown and the constraint never matches; write `IN`
warn.json:22:26: warning: unleash.payload.features[0].strategies[0].constraints[1].contextName: context field `tenant` is not mapped (unleash.context.properties): the constraint never sees a value
"
    );
    let out = sluice(&["check", "warn.json", "--strict"]);
    assert_eq!(out.status.code(), Some(1));
    // The same config, loaded by the embedded filter module too.
    let out = sluice(&["check", "eval.json", "--wasm"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "eval.json: ok: 1 flag(s), 2 route(s); loaded by the embedded module\n"
    );
}

#[test]
fn eval_gives_reasons_and_says_why_routes_did_not_match() {
    let at = "2026-01-01T00:00:00Z";
    let out = sluice(&[
        "eval",
        "eval.json",
        "--authority",
        "reviews",
        "-H",
        "x-user-id: 42",
        "-H",
        "x-beta:1",
        "--at",
        at,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "\
request: GET / to reviews at 2026-01-01T00:00:00Z
user key: x-user-id=42
routes:
  reviews = v2 (pin0): pin 0 matched and forces this version
  ratings: not matched: path `/` does not start with `/ratings`; authority `reviews` is not ratings
flags:
  checkout = off (rollout0): rule 0's rollout placed the user by bucket
request headers set:
  x-sluice-flags: checkout=off
  x-route-reviews: v2
"
    );
    let out = sluice(&["eval", "eval.json", "--authority", "ratings", "--at", at]);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("  checkout = off (no-identity): the request carries no user key"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  ratings: not matched: path `/` does not start with `/ratings`\n"),
        "{stdout}"
    );
    let out = sluice(&[
        "eval",
        "eval.json",
        "--json",
        "--authority",
        "reviews",
        "-H",
        "x-user-id:42",
        "--at",
        at,
    ]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["routes"][0]["reason"], "weight");
    assert_eq!(json["unmatched_routes"][0]["route"], "ratings");
}

#[test]
fn explain_shows_every_step_with_bucket_numbers() {
    let out = sluice(&[
        "explain",
        "eval.json",
        "--authority",
        "reviews",
        "-H",
        "x-user-id:42",
        "--at",
        "2026-01-01T00:00:00Z",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    // The CLI's bucket numbers are the engine's.
    assert_eq!(sluice_core::bucket::bucket("reviews", b"42"), 3890);
    assert_eq!(sluice_core::bucket::bucket("checkout", b"42"), 5384);
    for expected in [
        "  reviews = v1 (weight): the weights placed the user by bucket\n\
         \x20     match: authority, path and method match\n\
         \x20     pin 0 → v2: does not match\n\
         \x20     bucket 3890 of 10000 (salt `reviews`, key x-user-id=42)\n\
         \x20     canary weight now 10.00%: [0, 1000) → v2, [1000, 10000) → v1 → v1\n",
        "      rule 0 rollout [0, 8000) → off, [8000, 10000) → on; bucket 5384 of 10000 (salt `checkout`, key x-user-id=42) → off\n",
    ] {
        assert!(stdout.contains(expected), "missing {expected:?} in:\n{stdout}");
    }
}

#[test]
fn diff_of_a_canary_from_10_to_20_percent_moves_exactly_10_percent_forward() {
    let old = std::fs::read_to_string(config("old.json")).unwrap();
    let new = temp_config("new.json", &old.replace("\"weight\": 10", "\"weight\": 20"));
    let out = sluice(&["diff", "old.json", &new, "--at", "2026-01-01T00:00:00Z"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!(
            "\
old.json → {new} at 2026-01-01T00:00:00Z
route reviews: exact, over the 10,000 buckets (users no pin, preview or rule condition picks out)
  v1 → v2  10.00%
  stay: v1 80.00%, v2 10.00%
no users move backwards
"
        )
    );
    // Back down: the warning.
    let out = sluice(&[
        "diff",
        &new,
        "old.json",
        "--at",
        "2026-01-01T00:00:00Z",
        "--json",
    ]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["items"][0]["exact"], true);
    assert_eq!(json["items"][0]["backward"][0]["from"], "v2");
    assert_eq!(json["items"][0]["backward"][0]["percent"], 10.0);
}

#[test]
fn simulate_trips_the_guard_on_a_failing_canary_and_counts_moves() {
    let csv = std::env::temp_dir().join(format!("sluice-cli-users-{}.csv", std::process::id()));
    let out = sluice(&[
        "simulate",
        "guard.json",
        "--users",
        "200",
        "--rounds",
        "3",
        "--advance",
        "1m",
        "--at",
        "2026-01-01T00:00:00Z",
        "--upstream",
        "v2=500:50%",
        "--per-user",
        csv.to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("round 1 at 2026-01-01T00:00:00Z: 200 requests"),
        "{stdout}"
    );
    assert!(stdout.contains("  guard reviews: TRIPPED\n"), "{stdout}");
    // Once tripped, everyone is on v1: the canary's users moved backwards.
    assert!(stdout.contains("v1 100.0%  v2 0.0%"), "{stdout}");
    let rows = std::fs::read_to_string(&csv).unwrap();
    assert!(
        rows.starts_with(
            "user,round,at,request,status,route reviews\nuser-0,1,2026-01-01T00:00:00Z,reviews,"
        ),
        "{rows}"
    );
    assert_eq!(rows.lines().count(), 1 + 200 * 3);
}

#[test]
fn a_closed_pipe_is_not_a_panic() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["explain", "eval.json", "--authority", "reviews"])
        .current_dir(config(""))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn every_command_has_its_own_options_and_help() {
    let out = sluice(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("diff OLD NEW"));
    for command in ["check", "eval", "explain", "simulate", "diff"] {
        let out = sluice(&[command, "--help"]);
        assert_eq!(out.status.code(), Some(0));
        assert!(
            text(&out.stdout).starts_with(&format!("sluice {command} ")),
            "{command}"
        );
    }
    let out = sluice(&["eval", "eval.json", "--users", "5"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "error: invalid option --users for `sluice eval` (see sluice eval --help)\n"
    );
    let out = sluice(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unknown command \"frobnicate\""));
}
