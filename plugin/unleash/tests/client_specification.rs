//! Runs the Unleash client specification (npm `@unleash/client-specification`,
//! fetched by `make unleash-spec`): every case of every file its index.json
//! lists, the delta-API files by applying their events. Set
//! `UNLEASH_SPEC_DIR` to run another copy.
// A test crate: clippy.toml allows these in #[test] functions only, not in their helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::cell::Cell;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;
use sluice_primitives::time::parse_rfc3339_millis;
use sluice_unleash::{Context, Delta, Engine, Payload};

fn spec_dir() -> PathBuf {
    match std::env::var_os("UNLEASH_SPEC_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => {
            // plugin/unleash → the workspace root.
            let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
            let root = crate_dir.ancestors().nth(2).unwrap_or(crate_dir);
            root.join("build/unleash-spec/package/specifications")
        }
    }
}

/// The context of one case, owning its strings.
struct CaseContext {
    user_id: Option<String>,
    session_id: Option<String>,
    remote_address: Option<String>,
    environment: Option<String>,
    app_name: Option<String>,
    current_time: i64,
    properties: Vec<(String, String)>,
}

impl CaseContext {
    fn from_json(value: &Value) -> CaseContext {
        let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_string);
        // As in the SDKs, the time is "now" unless the case sets it.
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let current_time = text("currentTime")
            .map(|t| parse_rfc3339_millis(&t).unwrap_or(i64::MIN))
            .unwrap_or(now);
        // A property that is null is absent.
        let properties = value
            .get("properties")
            .and_then(Value::as_object)
            .map(|map| {
                map.iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        CaseContext {
            user_id: text("userId"),
            session_id: text("sessionId"),
            remote_address: text("remoteAddress"),
            environment: text("environment"),
            app_name: text("appName"),
            current_time,
            properties,
        }
    }

    fn with<R>(&self, random: &dyn Fn() -> u32, run: impl FnOnce(&Context<'_>) -> R) -> R {
        let props: Vec<(&str, &str)> = self
            .properties
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let mut ctx = Context::new()
            .current_time_millis(self.current_time)
            .properties(&props)
            .random(random);
        if let Some(v) = &self.user_id {
            ctx = ctx.user_id(v);
        }
        if let Some(v) = &self.session_id {
            ctx = ctx.session_id(v);
        }
        if let Some(v) = &self.remote_address {
            ctx = ctx.remote_address(v);
        }
        if let Some(v) = &self.environment {
            ctx = ctx.environment(v);
        }
        if let Some(v) = &self.app_name {
            ctx = ctx.app_name(v);
        }
        run(&ctx)
    }
}

fn build_engine(state: &Value) -> Result<Engine, String> {
    let json = state.to_string();
    if state.get("events").is_some() {
        Delta::from_json(&json)
            .map(Engine::from_delta)
            .map_err(|e| format!("delta does not parse: {e}"))
    } else {
        Payload::from_json(&json)
            .map(Engine::new)
            .map_err(|e| format!("payload does not parse: {e}"))
    }
}

#[test]
fn unleash_client_specification() {
    let dir = spec_dir();
    let index_path = dir.join("index.json");
    let Ok(index) = std::fs::read_to_string(&index_path) else {
        panic!(
            "Unleash client specification not found at {}: run `make unleash-spec`",
            dir.display()
        );
    };
    let files: Vec<String> = serde_json::from_str(&index).expect("index.json is a list of names");
    assert!(!files.is_empty(), "index.json lists no files");

    // A deterministic random source (xorshift32) for `random` stickiness.
    let state = Cell::new(0x9e37_79b9u32);
    let random = move || {
        let mut x = state.get();
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        state.set(x);
        x
    };

    let mut report = String::new();
    let mut failures = String::new();
    let (mut passed, mut total) = (0usize, 0usize);
    for file in &files {
        let text = std::fs::read_to_string(dir.join(file))
            .unwrap_or_else(|e| panic!("{file}: cannot read: {e}"));
        let spec: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}: not JSON: {e}"));
        let tests = spec["tests"].as_array().cloned().unwrap_or_default();
        let variant_tests = spec["variantTests"].as_array().cloned().unwrap_or_default();
        let cases = tests.len() + variant_tests.len();
        let engine = match build_engine(&spec["state"]) {
            Ok(engine) => engine,
            Err(why) => {
                total += cases;
                writeln!(failures, "{file}: {why} ({cases} cases not run)").unwrap();
                writeln!(report, "  {file}: 0/{cases}").unwrap();
                continue;
            }
        };
        let mut file_passed = 0;
        for case in &tests {
            let description = case["description"].as_str().unwrap_or("?");
            let toggle = case["toggleName"].as_str().expect("toggleName");
            let expected = case["expectedResult"].as_bool().expect("expectedResult");
            let ctx = CaseContext::from_json(&case["context"]);
            let actual = ctx.with(&random, |ctx| engine.is_enabled(toggle, ctx));
            if actual == expected {
                file_passed += 1;
            } else {
                writeln!(
                    failures,
                    "{file}: {description}: isEnabled({toggle:?}) = {actual}, expected {expected}"
                )
                .unwrap();
            }
        }
        for case in &variant_tests {
            let description = case["description"].as_str().unwrap_or("?");
            let toggle = case["toggleName"].as_str().expect("toggleName");
            let expected = &case["expectedResult"];
            let ctx = CaseContext::from_json(&case["context"]);
            let actual = ctx.with(&random, |ctx| {
                let v = engine.variant(toggle, ctx);
                let mut json = serde_json::json!({
                    "name": v.name,
                    "enabled": v.enabled,
                    "feature_enabled": v.feature_enabled,
                });
                if let Some(p) = v.payload {
                    json["payload"] = serde_json::json!({"type": p.payload_type, "value": p.value});
                }
                json
            });
            if &actual == expected {
                file_passed += 1;
            } else {
                writeln!(
                    failures,
                    "{file}: {description}: getVariant({toggle:?}) = {actual}, expected {expected}"
                )
                .unwrap();
            }
        }
        passed += file_passed;
        total += cases;
        writeln!(report, "  {file}: {file_passed}/{cases}").unwrap();
    }

    println!(
        "Unleash client specification ({}): {passed}/{total} cases passed\n{report}",
        dir.display()
    );
    assert!(
        failures.is_empty(),
        "{} of {total} specification cases failed:\n{failures}",
        total - passed
    );
}
