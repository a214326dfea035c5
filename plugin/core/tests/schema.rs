//! `schema/sluice-config.schema.json` (JSON Schema 2020-12) accepts every
//! example and rejects configs the filter rejects at parse time, so editors
//! that use it flag the same mistakes.
use serde_json::{json, Value};
use std::fs;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

struct Validator {
    schemas: boon::Schemas,
    index: boon::SchemaIndex,
}

impl Validator {
    fn new() -> Validator {
        let path = root().join("schema/sluice-config.schema.json");
        let schema: Value =
            serde_json::from_str(&fs::read_to_string(&path).expect("schema file")).expect("JSON");
        assert_eq!(
            schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
            "draft 2020-12"
        );
        let url = "https://sluice.dev/schema/sluice-config.schema.json";
        let mut compiler = boon::Compiler::new();
        compiler.set_default_draft(boon::Draft::V2020_12);
        compiler.enable_format_assertions();
        compiler.add_resource(url, schema).expect("schema added");
        let mut schemas = boon::Schemas::new();
        let index = compiler
            .compile(url, &mut schemas)
            .unwrap_or_else(|e| panic!("schema compiles: {e:#}"));
        Validator { schemas, index }
    }

    fn check(&self, doc: &Value) -> Result<(), String> {
        self.schemas
            .validate(doc, self.index)
            .map_err(|e| format!("{e:#}"))
    }
}

#[test]
fn schema_accepts_every_example() {
    let v = Validator::new();
    let mut files: Vec<PathBuf> = fs::read_dir(root().join("examples"))
        .expect("examples/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    for file in files {
        let doc: Value =
            serde_json::from_str(&fs::read_to_string(&file).expect("readable")).expect("JSON");
        if let Err(e) = v.check(&doc) {
            panic!("{} does not validate:\n{e}", file.display());
        }
        println!("{}: valid", file.file_name().unwrap().to_string_lossy());
    }
}

/// Configs the schema must reject, each also rejected by `parse`.
fn bad_configs() -> Vec<(&'static str, Value)> {
    vec![
        ("missing version", json!({"flags": {}})),
        (
            "unknown top-level field",
            json!({"version": 1, "flagz": {}}),
        ),
        ("version is not a number", json!({"version": "1"})),
        (
            "unknown flag field",
            json!({"version": 1, "flags": {"f": {"enabeld": false}}}),
        ),
        (
            "unknown condition key",
            json!({"version": 1, "segments": {"s": {"header": "x", "equal": "y"}}}),
        ),
        (
            "identity source kind that does not exist",
            json!({"version": 1, "identity": {"user": [{"ip": true}]}}),
        ),
        (
            "unit source written as an object",
            json!({"version": 1, "attributes": {"p": {"path": "/"}}}),
        ),
        (
            "rollout weight is a string",
            json!({"version": 1, "flags": {"f": {"rules": [{"rollout": {"on": "50", "off": 50}}]}}}),
        ),
        (
            "route without header",
            json!({"version": 1, "routes": {"r": {"versions": ["v1"], "split": {"v1": 100}}}}),
        ),
        (
            "guard action unknown",
            json!({"version": 1, "routes": {"r": {"header": "x-r", "versions": ["a", "b"],
                "canary": {"stable": "a", "canary": "b"}, "guard": {"max_error_rate": 5, "action": "explode"}}}}),
        ),
        (
            "unknown overrides field",
            json!({"version": 1, "overrides": {"secret": "let-me-test"}}),
        ),
        (
            "without_identity value unknown",
            json!({"version": 1, "identity": {"without_identity": "sticky"}}),
        ),
    ]
}

#[test]
fn schema_rejects_bad_configs() {
    let v = Validator::new();
    for (what, doc) in bad_configs() {
        assert!(
            v.check(&doc).is_err(),
            "schema accepted a bad config ({what}): {doc}"
        );
        let parsed = sluice_core::compile::parse(doc.to_string().as_bytes());
        assert!(
            parsed.is_err(),
            "parse accepted a bad config ({what}): {doc}"
        );
    }
}

/// Configs that parse but do not compile; the schema catches them too.
fn bad_shapes() -> Vec<(&'static str, Value)> {
    let route = |extra: Value| {
        let mut r = json!({"header": "x-r", "versions": ["a", "b"]});
        for (k, v) in extra.as_object().unwrap() {
            r[k] = v.clone();
        }
        json!({"version": 1, "routes": {"r": r}})
    };
    vec![
        ("version 2", json!({"version": 2})),
        (
            "sequential guard with a threshold",
            route(json!({"canary": {"stable": "a", "canary": "b"},
                "guard": {"method": "sequential", "max_error_rate": 5}})),
        ),
        (
            "threshold guard with alpha",
            route(json!({"canary": {"stable": "a", "canary": "b"},
                "guard": {"max_error_rate": 5, "alpha": 0.05}})),
        ),
        (
            "sequential guard alpha above 0.5",
            route(json!({"canary": {"stable": "a", "canary": "b"},
                "guard": {"method": "sequential", "alpha": 0.7}})),
        ),
        (
            "two operators",
            json!({"version": 1, "segments": {"s": {"header": "x", "equals": "a", "prefix": "b"}}}),
        ),
        (
            "leaf without subject",
            json!({"version": 1, "segments": {"s": {"equals": "a"}}}),
        ),
        (
            "combinator mixed with a leaf",
            json!({"version": 1, "segments": {"s": {"any": [{"header": "x", "present": true}], "header": "y", "equals": "z"}}}),
        ),
        (
            "rule with serve and rollout",
            json!({"version": 1, "flags": {"f": {"rules": [{"serve": "on", "rollout": {"on": 100}}]}}}),
        ),
        (
            "flag name with a space",
            json!({"version": 1, "flags": {"new checkout": {}}}),
        ),
        (
            "header name with a colon",
            json!({"version": 1, "flags": {"f": {"header": "x-a:b"}}}),
        ),
        ("route without strategy", route(json!({}))),
        (
            "route with two strategies",
            route(json!({"split": {"a": 50, "b": 50}, "canary": {"stable": "a", "canary": "b"}})),
        ),
        (
            "step with at and after",
            route(
                json!({"canary": {"stable": "a", "canary": "b", "start": "2026-01-01T00:00:00Z",
                "steps": [{"at": "2026-01-01T00:10:00Z", "after": "10m", "weight": 5}]}}),
            ),
        ),
        (
            "weight over 100",
            route(json!({"canary": {"stable": "a", "canary": "b", "weight": 120}})),
        ),
        (
            "bad duration",
            route(
                json!({"split": {"a": 50, "b": 50}, "sticky_cookie": {"name": "c", "max_age": "1 week"}}),
            ),
        ),
        (
            "secret hash too short",
            json!({"version": 1, "overrides": {"secret_sha256": "abc123"}}),
        ),
        (
            "overrides with nothing to trust",
            json!({"version": 1, "overrides": {}}),
        ),
    ]
}

#[test]
fn schema_rejects_configs_that_do_not_compile() {
    let v = Validator::new();
    for (what, doc) in bad_shapes() {
        assert!(
            v.check(&doc).is_err(),
            "schema accepted a bad config ({what}): {doc}"
        );
        let loaded = sluice_core::compile::load(doc.to_string().as_bytes());
        assert!(
            loaded.is_err(),
            "load accepted a bad config ({what}): {doc}"
        );
    }
}

#[test]
fn schema_accepts_small_valid_configs() {
    let v = Validator::new();
    let good = [
        json!({"version": 1}),
        json!({"version": 1, "outputs": {"flags_header": null}}),
        json!({"version": 1, "identity": {"user": ["source_address", {"header": "x-user-id"}]}}),
        json!({"version": 1, "flags": {"f": {"variants": {"a": {"n": [1, 2]}, "b": 3.5}, "default": "a"}}}),
        json!({"version": 1, "routes": {"r": {"header": "x-route-r", "versions": ["a", "b"],
            "canary": {"stable": "a", "canary": "b"},
            "guard": {"method": "sequential", "alpha": 0.01, "slow": "500ms",
                "webhook": {"cluster": "ctrl", "path": "/trip", "timeout": "1s", "attempts": 3}}}}}),
        json!({"version": 1, "flags": {"f": {"experiment": true},
            "g": {"experiment": {"goals": ["purchase"], "goal_header": "x-goal"}}}}),
    ];
    for doc in good {
        v.check(&doc)
            .unwrap_or_else(|e| panic!("schema rejected {doc}: {e}"));
        sluice_core::compile::load(doc.to_string().as_bytes())
            .unwrap_or_else(|e| panic!("load rejected {doc}: {e}"));
    }
}
