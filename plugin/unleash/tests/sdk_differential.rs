//! Differential test against Unleash's own Node SDK (npm `unleash-client`, offline, bootstrapped
//! with each payload; `make setup-unleash-sdk` installs it into build/unleash-sdk): for every
//! example payload (examples/*.json, the client specification's fixtures) and for random payloads
//! (every built-in strategy, constraints with every operator, segments, variants with stickiness
//! and overrides, dependencies) × generated contexts, Sluice's answer per feature (enabled, variant
//! name, variant payload) equals the SDK's.
//!
//! Answers that depend on a random roll (random stickiness, gradualRolloutRandom, default
//! stickiness without userId or sessionId) cannot be compared and are counted apart: the engine
//! reports them by calling its random source.
//!
//! Naming: the engine and the SDK both call "no variant" `disabled`; the filter's flags header
//! writes a disabled feature as `off` (docs/platforms.md).

use std::cell::Cell;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{json, Value};
use sluice_primitives::time::parse_rfc3339_millis;
use sluice_unleash::{Context, Engine, Payload};

fn root() -> PathBuf {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    crate_dir
        .ancestors()
        .nth(2)
        .unwrap_or(crate_dir)
        .to_path_buf()
}

/// The SDK's node_modules: `UNLEASH_SDK_DIR`, else build/unleash-sdk.
fn sdk_dir() -> PathBuf {
    std::env::var_os("UNLEASH_SDK_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("build/unleash-sdk"))
}

/// xorshift64*: reproducible payloads and contexts from a seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const USERS: &[&str] = &["u1", "u2", "u3", "u17", "alice", "Bob", "user-42", "7"];
const SESSIONS: &[&str] = &["s1", "s2", "sess-9", "x"];
const IPS: &[&str] = &[
    "10.0.0.1",
    "10.1.2.3",
    "192.168.1.20",
    "::1",
    "2001:db8::7",
    "bad-ip",
];
const NETS: &[&str] = &[
    "10.0.0.1",
    "10.1.0.0/16",
    "192.168.1.0/24",
    "2001:db8::/32",
    "::1",
];
/// The remoteAddress strategy's list: the Node SDK matches IPv6 addresses exactly but no IPv6
/// networks (Sluice and Yggdrasil do; IN_CIDR covers those in both).
const STRATEGY_IPS: &[&str] = &[
    "10.0.0.1",
    "10.1.0.0/16",
    "192.168.1.0/24",
    "::1",
    "2001:db8::7",
];
const ENVIRONMENTS: &[&str] = &["production", "staging", "default"];
const APPS: &[&str] = &["sluice-differential", "shop", "Shop"];
const TENANTS: &[&str] = &["acme", "ACME", "globex", "initech", "Acme Corp"];
const COUNTRIES: &[&str] = &["DE", "NL", "de", "US"];
const VERSIONS: &[&str] = &[
    "1.2.3",
    "1.10.0",
    "2.0.0-beta.1",
    "2.0.0",
    "0.9.9",
    "v1.0.0",
    "junk",
];
/// Not "": the Node SDK reads an empty context value as the number 0 (JavaScript's `Number("")`);
/// Sluice, like Yggdrasil, as no number.
const SCORES: &[&str] = &["0", "5", "10", "10.5", "-3", "1e2", "abc", " 7"];
const TIMES: &[&str] = &[
    "2025-06-01T00:00:00.000Z",
    "2026-01-01T00:00:00.000Z",
    "2026-11-30T12:00:00.000Z",
    "2027-03-15T08:30:00.000Z",
];

/// Values a constraint on this field compares against, drawn from the same pools as contexts so
/// that matches happen.
fn constraint(rng: &mut Rng) -> Value {
    let fields = [
        "userId",
        "sessionId",
        "remoteAddress",
        "environment",
        "appName",
        "currentTime",
        "tenant",
        "country",
        "version",
        "score",
        "missing",
    ];
    let field = *rng.pick(&fields);
    let operators: &[&str] = match field {
        // What Unleash's admin API offers for the field: dates on currentTime only.
        "currentTime" => &["DATE_AFTER", "DATE_BEFORE"],
        "version" => &[
            "SEMVER_EQ",
            "SEMVER_GT",
            "SEMVER_LT",
            "SEMVER_GTE",
            "SEMVER_LTE",
            "IN",
        ],
        "score" => &["NUM_EQ", "NUM_GT", "NUM_GTE", "NUM_LT", "NUM_LTE", "NOT_IN"],
        "remoteAddress" => &["IN_CIDR", "IN", "NOT_IN"],
        "missing" => &[
            "IN",
            "NOT_IN",
            "STR_CONTAINS",
            "NUM_EQ",
            "REGEX",
            "UNKNOWN_OP",
        ],
        _ => &[
            "IN",
            "NOT_IN",
            "STR_CONTAINS",
            "STR_STARTS_WITH",
            "STR_ENDS_WITH",
            "REGEX",
            "UNKNOWN_OP",
        ],
    };
    let operator = *rng.pick(operators);
    let pool: &[&str] = match field {
        "userId" => USERS,
        "sessionId" => SESSIONS,
        "remoteAddress" => {
            if operator == "IN_CIDR" {
                NETS
            } else {
                IPS
            }
        }
        "environment" => ENVIRONMENTS,
        "appName" => APPS,
        "currentTime" => TIMES,
        "missing" if operator.starts_with("NUM") => &["0", "5", "10.5"],
        "tenant" | "missing" => TENANTS,
        "country" => COUNTRIES,
        // Constraint values as Unleash's admin API accepts them (contexts may hold anything).
        "version" => &["1.2.3", "1.10.0", "2.0.0-beta.1", "2.0.0", "0.9.9"],
        _ => &["0", "5", "10", "10.5", "-3"],
    };
    let mut c = json!({
        "contextName": field,
        "operator": operator,
        "inverted": rng.chance(25),
        "caseInsensitive": rng.chance(30),
    });
    match operator {
        "NUM_EQ" | "NUM_GT" | "NUM_GTE" | "NUM_LT" | "NUM_LTE" | "DATE_AFTER" | "DATE_BEFORE"
        | "SEMVER_EQ" | "SEMVER_GT" | "SEMVER_LT" | "SEMVER_GTE" | "SEMVER_LTE" => {
            c["value"] = json!(rng.pick(pool));
            c["values"] = json!([]);
        }
        "REGEX" => {
            let patterns = ["^a", "[0-9]+$", "(?i)acme", "^u[12]$", "glo.ex", "^$"];
            c["value"] = json!(rng.pick(&patterns));
        }
        _ => {
            let mut values = Vec::new();
            for _ in 0..=rng.below(3) {
                let v = *rng.pick(pool);
                // Substrings make STR_* operators interesting.
                let v = match (operator, rng.below(3)) {
                    ("STR_CONTAINS" | "STR_STARTS_WITH", 0) if v.len() > 2 => &v[..2],
                    ("STR_ENDS_WITH", 0) if v.len() > 2 => &v[v.len() - 2..],
                    _ => v,
                };
                values.push(json!(v));
            }
            c["values"] = Value::Array(values);
        }
    }
    c
}

fn stickiness(rng: &mut Rng) -> &'static str {
    const STICKINESS: &[&str] = &["default", "userId", "sessionId", "tenant", "random"];
    STICKINESS[rng.below(STICKINESS.len())]
}

fn variants(rng: &mut Rng, group: &str, with_overrides: bool) -> Value {
    let count = 1 + rng.below(3);
    let sticky = stickiness(rng);
    let mut out = Vec::new();
    for i in 0..count {
        let mut v = json!({
            "name": format!("{group}-v{i}"),
            "weight": if i == 0 && rng.chance(20) { 0 } else { 1 + rng.below(999) },
            "weightType": "variable",
            "stickiness": sticky,
        });
        if rng.chance(25) {
            v["weightType"] = json!("fix");
            v["weight"] = json!(rng.below(1000));
        }
        match rng.below(4) {
            0 => v["payload"] = json!({"type": "string", "value": format!("p{i}")}),
            1 => v["payload"] = json!({"type": "json", "value": format!("{{\"n\":{i}}}")}),
            2 => v["payload"] = json!({"type": "number", "value": format!("{i}")}),
            _ => {}
        }
        if with_overrides && rng.chance(30) {
            let field = *rng.pick(&["userId", "sessionId", "tenant"]);
            let pool = match field {
                "userId" => USERS,
                "sessionId" => SESSIONS,
                _ => TENANTS,
            };
            v["overrides"] =
                json!([{"contextName": field, "values": [rng.pick(pool), rng.pick(pool)]}]);
        }
        out.push(v);
    }
    Value::Array(out)
}

fn strategy(rng: &mut Rng, feature: &str, segments: usize) -> Value {
    let names = [
        "default",
        "userWithId",
        "remoteAddress",
        "flexibleRollout",
        "flexibleRollout",
        "gradualRolloutUserId",
        "gradualRolloutSessionId",
        "gradualRolloutRandom",
        "applicationHostname",
        "a-custom-strategy",
    ];
    let name = *rng.pick(&names);
    let rollout = *rng.pick(&["0", "1", "25", "50", "99", "100"]);
    let parameters = match name {
        "userWithId" => {
            json!({"userIds": format!("{}, {},{}", rng.pick(USERS), rng.pick(USERS), rng.pick(USERS))})
        }
        "remoteAddress" => {
            json!({"IPs": format!("{}, {}", rng.pick(STRATEGY_IPS), rng.pick(STRATEGY_IPS))})
        }
        "flexibleRollout" => json!({
            "rollout": rollout,
            "stickiness": stickiness(rng),
            "groupId": if rng.chance(80) { feature.to_string() } else { "shared".to_string() },
        }),
        "gradualRolloutUserId" | "gradualRolloutSessionId" => {
            json!({"percentage": rollout, "groupId": feature})
        }
        "gradualRolloutRandom" => json!({"percentage": rollout}),
        "applicationHostname" => json!({"hostNames": "vm, localhost, other"}),
        _ => json!({}),
    };
    let mut s = json!({"name": name, "parameters": parameters});
    if rng.chance(50) {
        s["constraints"] = Value::Array((0..1 + rng.below(3)).map(|_| constraint(rng)).collect());
    }
    if segments > 0 && rng.chance(30) {
        let mut ids: Vec<Value> = vec![json!(1 + rng.below(segments))];
        if rng.chance(30) {
            ids.push(json!(1 + rng.below(segments + 1))); // sometimes a missing segment
        }
        s["segments"] = Value::Array(ids);
    }
    // Unleash offers strategy variants on flexibleRollout, which always has a groupId (without
    // one the Node SDK hashes the text "undefined"; Sluice uses the feature name).
    if name == "flexibleRollout" && rng.chance(40) {
        s["variants"] = variants(rng, &format!("{feature}-s"), false);
    }
    s
}

fn random_payload(rng: &mut Rng) -> Value {
    let segments = rng.below(3);
    let feature_count = 1 + rng.below(5);
    let mut features = Vec::new();
    for f in 0..feature_count {
        let name = format!("feature-{f}");
        let strategies: Vec<Value> = (0..rng.below(4))
            .map(|_| strategy(rng, &name, segments))
            .collect();
        let mut feature = json!({
            "name": name,
            "enabled": rng.chance(85),
            "strategies": strategies,
        });
        if rng.chance(50) {
            feature["variants"] = variants(rng, &name, true);
        }
        if f > 0 && rng.chance(30) {
            let parent = format!("feature-{}", rng.below(f + 1)); // sometimes itself: a cycle
            let mut dep = json!({"feature": parent});
            match rng.below(3) {
                0 => dep["enabled"] = json!(false),
                1 => dep["variants"] = json!([format!("{parent}-v0"), format!("{parent}-v1")]),
                _ => {}
            }
            feature["dependencies"] = json!([dep]);
        }
        features.push(feature);
    }
    let segments: Vec<Value> = (1..=segments)
        .map(|id| json!({"id": id, "name": format!("segment-{id}"), "constraints": [constraint(rng)]}))
        .collect();
    json!({"version": 2, "features": features, "segments": segments})
}

fn random_context(rng: &mut Rng) -> Value {
    let mut ctx = json!({
        "environment": rng.pick(ENVIRONMENTS),
        "appName": rng.pick(APPS),
        "currentTime": rng.pick(TIMES),
    });
    if rng.chance(80) {
        ctx["userId"] = json!(rng.pick(USERS));
    }
    if rng.chance(50) {
        ctx["sessionId"] = json!(rng.pick(SESSIONS));
    }
    if rng.chance(70) {
        ctx["remoteAddress"] = json!(rng.pick(IPS));
    }
    let mut properties = serde_json::Map::new();
    for (name, pool) in [
        ("tenant", TENANTS),
        ("country", COUNTRIES),
        ("version", VERSIONS),
        ("score", SCORES),
    ] {
        if rng.chance(60) {
            properties.insert(name.into(), json!(rng.pick(pool)));
        }
    }
    ctx["properties"] = Value::Object(properties);
    ctx
}

/// One context, owning its strings, as the engine reads it.
struct Ctx {
    fields: [Option<String>; 5],
    current_time: i64,
    properties: Vec<(String, String)>,
}

impl Ctx {
    fn from_json(value: &Value) -> Ctx {
        let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_string);
        let properties = value
            .get("properties")
            .and_then(Value::as_object)
            .map(|map| {
                map.iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        let time = text("currentTime").expect("every context has a currentTime");
        Ctx {
            fields: [
                text("userId"),
                text("sessionId"),
                text("remoteAddress"),
                text("environment"),
                text("appName"),
            ],
            current_time: parse_rfc3339_millis(&time).expect("currentTime parses"),
            properties,
        }
    }

    fn with<R>(
        &self,
        hostname: &str,
        random: &dyn Fn() -> u32,
        run: impl FnOnce(&Context<'_>) -> R,
    ) -> R {
        let props: Vec<(&str, &str)> = self
            .properties
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let mut ctx = Context::new()
            .current_time_millis(self.current_time)
            .properties(&props)
            .hostname(hostname)
            .random(random);
        let [user, session, address, environment, app] = &self.fields;
        if let Some(v) = user {
            ctx = ctx.user_id(v);
        }
        if let Some(v) = session {
            ctx = ctx.session_id(v);
        }
        if let Some(v) = address {
            ctx = ctx.remote_address(v);
        }
        if let Some(v) = environment {
            ctx = ctx.environment(v);
        }
        if let Some(v) = app {
            ctx = ctx.app_name(v);
        }
        run(&ctx)
    }
}

struct Case {
    origin: String,
    payload: Value,
    features: Vec<String>,
    contexts: Vec<Value>,
}

/// The SDK fills `appName` and `environment` from its own config when the context has none; the
/// engine sees exactly what the filter's context mapping gives it. So every context names both.
fn complete(mut ctx: Value, rng: &mut Rng) -> Value {
    if ctx.get("environment").and_then(Value::as_str).is_none() {
        ctx["environment"] = json!("default");
    }
    if ctx.get("appName").and_then(Value::as_str).is_none() {
        ctx["appName"] = json!("sluice-differential");
    }
    if ctx.get("currentTime").and_then(Value::as_str).is_none() {
        ctx["currentTime"] = json!(rng.pick(TIMES));
    }
    ctx
}

fn feature_names(payload: &Value) -> Vec<String> {
    let mut names: Vec<String> = payload["features"]
        .as_array()
        .map(|fs| {
            fs.iter()
                .filter_map(|f| f["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    names.push("not-in-the-payload".into());
    names
}

/// The example payloads: the config examples' inline payloads and the specification fixtures
/// (full payloads; the delta-API files are events, not payloads).
fn example_cases(rng: &mut Rng) -> Vec<Case> {
    let mut cases = Vec::new();
    let generated: Vec<Value> = (0..40).map(|_| random_context(rng)).collect();
    let examples = root().join("examples");
    let mut files: Vec<_> = std::fs::read_dir(&examples)
        .expect("examples/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    for path in files {
        let config: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if let Some(payload) = config.pointer("/unleash/payload") {
            cases.push(Case {
                origin: path.display().to_string(),
                payload: payload.clone(),
                features: feature_names(payload),
                contexts: generated.clone(),
            });
        }
    }
    let spec = root().join("build/unleash-spec/package/specifications");
    let index = std::fs::read_to_string(spec.join("index.json"))
        .unwrap_or_else(|_| panic!("{}: not found: run `make unleash-spec`", spec.display()));
    let files: Vec<String> = serde_json::from_str(&index).unwrap();
    for file in files {
        let fixture: Value =
            serde_json::from_str(&std::fs::read_to_string(spec.join(&file)).unwrap()).unwrap();
        let state = &fixture["state"];
        if state.get("features").is_none() {
            continue;
        }
        let mut contexts: Vec<Value> = ["tests", "variantTests"]
            .iter()
            .flat_map(|k| fixture[k].as_array().cloned().unwrap_or_default())
            .map(|case| complete(case["context"].clone(), rng))
            .collect();
        contexts.extend(generated.iter().take(10).cloned());
        cases.push(Case {
            origin: format!("specification {file}"),
            payload: state.clone(),
            features: feature_names(state),
            contexts,
        });
    }
    cases
}

type Answer = (bool, String, Option<(String, String)>);

fn sdk_answers(cases: &[Case]) -> (String, Vec<Vec<Vec<Answer>>>) {
    let sdk = sdk_dir();
    assert!(
        sdk.join("node_modules/unleash-client").is_dir(),
        "Unleash's Node SDK not found in {}: run `make setup-unleash-sdk` (npm unleash-client)",
        sdk.display()
    );
    let input = json!({"cases": cases.iter().map(|c| json!({
        "payload": c.payload, "features": c.features, "contexts": c.contexts,
    })).collect::<Vec<_>>()});
    let mut child = Command::new("node")
        .arg(root().join("plugin/unleash/tests/sdk/answers.js"))
        .env("NODE_PATH", sdk.join("node_modules"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node is needed for the differential test (apt-get install nodejs)");
    let mut stdin = child.stdin.take().unwrap();
    let text = input.to_string();
    let writer = std::thread::spawn(move || stdin.write_all(text.as_bytes()));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "the SDK side failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let value: Value = serde_json::from_slice(&out.stdout).expect("the SDK side writes JSON");
    let hostname = value["hostname"].as_str().unwrap_or_default().to_string();
    let answers = value["answers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|features| {
            features
                .as_array()
                .unwrap()
                .iter()
                .map(|contexts| {
                    contexts
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|a| {
                            let payload = a[2].as_array().map(|p| {
                                (
                                    p[0].as_str().unwrap().to_string(),
                                    p[1].as_str().unwrap().to_string(),
                                )
                            });
                            (
                                a[0].as_bool().unwrap(),
                                a[1].as_str().unwrap().to_string(),
                                payload,
                            )
                        })
                        .collect()
                })
                .collect()
        })
        .collect();
    (hostname, answers)
}

#[test]
fn sluice_answers_equal_the_node_sdk() {
    let mut rng = Rng(0x5eed_cafe_f00d_0001);
    let mut cases = example_cases(&mut rng);
    let examples = cases.len();
    for i in 0..400 {
        let payload = random_payload(&mut rng);
        cases.push(Case {
            origin: format!("random payload #{i}"),
            features: feature_names(&payload),
            contexts: (0..30).map(|_| random_context(&mut rng)).collect(),
            payload,
        });
    }
    let (hostname, sdk) = sdk_answers(&cases);
    assert_eq!(sdk.len(), cases.len());

    let (mut compared, mut agreed, mut random, mut pairs) = (0usize, 0usize, 0usize, 0usize);
    let mut invalid_operands = 0usize;
    let mut enabled_seen = [0usize; 2];
    let mut mismatches = Vec::new();
    for (case, sdk_case) in cases.iter().zip(&sdk) {
        let engine = Engine::new(
            Payload::from_json(&case.payload.to_string())
                .unwrap_or_else(|e| panic!("{}: payload does not parse: {e}", case.origin)),
        );
        // Constraint values that do not parse (a fixture's `v2.0.0` semver): Sluice follows
        // Yggdrasil (never matches, even inverted), the Node SDK compares loosely. Counted apart.
        let rejected: Vec<String> = engine
            .warnings()
            .iter()
            .filter(|w| {
                w.message.contains("never matches") && !w.message.contains("unknown operator")
            })
            .map(|w| w.path.clone())
            .collect();
        let contexts: Vec<Ctx> = case.contexts.iter().map(Ctx::from_json).collect();
        pairs += contexts.len();
        for (feature, sdk_feature) in case.features.iter().zip(sdk_case) {
            let prefix = format!("features[{feature:?}]");
            if rejected
                .iter()
                .any(|p| p.starts_with(&prefix) || p.starts_with("segments"))
            {
                invalid_operands += sdk_feature.len();
                continue;
            }
            for ((ctx, ctx_json), expected) in contexts.iter().zip(&case.contexts).zip(sdk_feature)
            {
                let rolled = Cell::new(false);
                let roll = || {
                    rolled.set(true);
                    0
                };
                let actual: Answer = ctx.with(&hostname, &roll, |c| {
                    let enabled = engine.is_enabled(feature, c);
                    let v = engine.variant(feature, c);
                    let payload = v.payload.map(|p| (p.payload_type.clone(), p.value.clone()));
                    // The request path evaluates by id: it must say the same.
                    if let Some(id) = engine.id(feature) {
                        let by_id = engine.evaluate(id, c);
                        assert_eq!(
                            (by_id.feature_enabled, by_id.name),
                            (enabled, v.name),
                            "{}: {feature}: evaluate(id) differs from is_enabled/variant",
                            case.origin
                        );
                    }
                    (enabled, v.name.to_string(), payload)
                });
                if rolled.get() {
                    random += 1;
                    continue;
                }
                compared += 1;
                enabled_seen[usize::from(actual.0)] += 1;
                if &actual == expected {
                    agreed += 1;
                } else if mismatches.len() < 400 {
                    let feature_json = case.payload["features"]
                        .as_array()
                        .and_then(|fs| fs.iter().find(|f| f["name"] == json!(feature)))
                        .cloned();
                    mismatches.push(format!(
                        "{}: {feature}: sluice {actual:?}, sdk {expected:?}\n  context {ctx_json}\n  feature {}\n  segments {}",
                        case.origin,
                        feature_json.unwrap_or(Value::Null),
                        case.payload["segments"]
                    ));
                }
            }
        }
    }
    println!(
        "differential vs unleash-client: {} payloads ({examples} examples, {} random) × contexts = {pairs} pairs; \
         {compared} feature answers compared, {agreed} agree; {random} depend on a random roll and {invalid_operands} on constraint values that do not parse (not compared); \
         enabled {} / disabled {}",
        cases.len(),
        cases.len() - examples,
        enabled_seen[1],
        enabled_seen[0]
    );
    assert!(
        mismatches.is_empty(),
        "{} of {compared} answers differ from the SDK's, e.g.:\n{}",
        compared - agreed,
        mismatches.join("\n")
    );
    // The generator must exercise both outcomes, or the comparison says little.
    assert!(
        enabled_seen[0] > 1000 && enabled_seen[1] > 1000,
        "{enabled_seen:?}"
    );
}
