//! Every config in `examples/` loads: parses strictly and compiles to a plan.
use sluice_core::compile::load_with_env;
use sluice_core::engine::{evaluate, Headers, Request};
use sluice_core::pipeline::{self, Facts, Live};
use std::fs;
use std::path::{Path, PathBuf};

/// Examples name their signing keys by environment variable (`chain.keys[].env`), as a
/// deployment does; here every such variable holds a test secret.
fn load(bytes: &[u8]) -> Result<sluice_core::plan::Plan, sluice_core::compile::ConfigError> {
    load_with_env(bytes, &|name| {
        name.starts_with("SLUICE_CHAIN_KEY_")
            .then(|| "test-secret-0123456789abcdef0123456789".to_string())
    })
}

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

fn example_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(examples_dir())
        .expect("examples/ exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_example_compiles() {
    let files = example_files();
    let mut failures = Vec::new();
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = fs::read(file).expect("readable example");
        match load(&bytes) {
            Ok(plan) => println!(
                "{name}: ok (revision `{}`): {} flags, {} routes, reads {} headers, owns {}",
                plan.revision,
                plan.flags.len(),
                plan.routes.len(),
                plan.headers.len(),
                plan.owned_headers.join(", ")
            ),
            Err(err) => failures.push(format!("{name}: {err}")),
        }
    }
    assert!(
        failures.is_empty(),
        "examples that do not load:\n{}",
        failures.join("\n")
    );
    assert!(
        files.len() >= 6,
        "expected the six example configs, found {files:?}"
    );
}

#[test]
fn every_example_points_at_the_schema() {
    for file in example_files() {
        let text = fs::read_to_string(&file).expect("readable example");
        let json: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(
            json["$schema"],
            "../schema/sluice-config.schema.json",
            "{} should reference the schema",
            file.display()
        );
    }
}

fn load_example(name: &str) -> sluice_core::plan::Plan {
    let bytes = fs::read(examples_dir().join(name)).expect("readable example");
    load(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The request headers Sluice would write for these request headers.
fn written(plan: &sluice_core::plan::Plan, headers: &[(&str, &str)]) -> Vec<(String, String)> {
    let pairs: Vec<(String, Vec<u8>)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
        .collect();
    let borrowed: Vec<(&str, &[u8])> = pairs
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_slice()))
        .collect();
    let facts = Facts {
        headers: Headers::Pairs(&borrowed),
        ..Facts::default()
    };
    let scratch = pipeline::run_once(plan, Live::default(), &facts);
    scratch
        .patch
        .sets(plan)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn header<'a>(out: &'a [(String, String)], name: &str) -> Option<&'a str> {
    out.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// The demo's end-to-end test counts 10k users on reviews v2 and expects
/// 10% ± 2 points; the config must give that on its own.
#[test]
fn demo_reviews_canary_is_ten_percent_and_sticky() {
    let plan = load_example("demo.json");
    let mut on_v2 = 0;
    for i in 0..10_000 {
        let user = format!("user-{i}");
        let base = [
            (":authority", "reviews"),
            (":path", "/reviews/1"),
            ("x-user-id", user.as_str()),
        ];
        let first = written(&plan, &base);
        let version = header(&first, "x-route-reviews").expect("reviews header");
        if version == "v2" {
            on_v2 += 1;
        }
        if i % 100 == 0 {
            // The same user through the cookie instead of the header: same version.
            let cookie = format!("uid={user}");
            let again = written(
                &plan,
                &[(":authority", "reviews"), ("cookie", cookie.as_str())],
            );
            assert_eq!(header(&again, "x-route-reviews"), Some(version), "{user}");
        }
    }
    println!("demo: {on_v2} of 10000 users on reviews v2");
    assert!((800..=1200).contains(&on_v2), "{on_v2} users on v2");
}

#[test]
fn demo_ratings_preview_reaches_green() {
    let plan = load_example("demo.json");
    let plain = written(&plan, &[(":authority", "ratings"), ("x-user-id", "u1")]);
    assert_eq!(header(&plain, "x-route-ratings"), Some("blue"));
    let preview = written(
        &plan,
        &[
            (":authority", "ratings"),
            ("x-user-id", "u1"),
            ("x-preview", "1"),
        ],
    );
    assert_eq!(header(&preview, "x-route-ratings"), Some("green"));
    let flags = header(&plain, "x-sluice-flags").expect("flags header");
    assert!(flags.starts_with("checkout="), "{flags}");
}

#[test]
fn pins_and_overrides_example_behaves_as_documented() {
    let plan = load_example("pins-overrides.json");
    let catalog = |headers: &[(&str, &str)]| {
        let mut all = vec![(":authority", "catalog.shop.svc.cluster.local:8080")];
        all.extend_from_slice(headers);
        header(&written(&plan, &all), "x-route-catalog").map(str::to_string)
    };
    // Pins come before the 5% weight.
    assert_eq!(
        catalog(&[("x-user-email", "Ana@ACME-shop.example")]).as_deref(),
        Some("v2")
    );
    assert_eq!(catalog(&[("x-canary", "always")]).as_deref(), Some("v2"));
    // The secret from examples/README.md unlocks overrides; a wrong one does not.
    let stable_user = (0..)
        .map(|i| format!("u{i}"))
        .find(|u| catalog(&[("x-user-id", u.as_str())]).as_deref() == Some("v1"))
        .expect("some user is on v1");
    let ask = ("x-sluice-override", "catalog=v2;new-pdp=on");
    let with = catalog(&[
        ("x-user-id", &stable_user),
        ask,
        ("x-sluice-secret", "let-me-test"),
    ]);
    assert_eq!(with.as_deref(), Some("v2"));
    let without = catalog(&[
        ("x-user-id", &stable_user),
        ask,
        ("x-sluice-secret", "guess"),
    ]);
    assert_eq!(without.as_deref(), Some("v1"));
    // The debug header value quoted in examples/README.md.
    let pairs: Vec<(&str, &[u8])> = [
        (":authority", "catalog"),
        ("x-user-id", stable_user.as_str()),
        ask,
        ("x-sluice-secret", "let-me-test"),
    ]
    .iter()
    .map(|(k, v)| (*k, v.as_bytes()))
    .collect();
    let explained = evaluate(&plan, &Request::from_pairs(&plan, &pairs)).explain(&plan);
    assert_eq!(
        explained,
        "rev=catalog-v2-pins-2026-11-26; catalog=v2(override); new-pdp=on(override)"
    );
}

/// The JSON configs embedded (as `StringValue` block scalars) in the rendered
/// Envoy and EnvoyFilter manifests, with their indentation removed.
fn embedded_configs(yaml: &str) -> Vec<String> {
    let lines: Vec<&str> = yaml.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.trim_end().ends_with("value: |") {
            let indent = lines
                .get(i + 1)
                .map_or(0, |l| l.len() - l.trim_start().len());
            let block: Vec<&str> = lines[i + 1..]
                .iter()
                .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() >= indent)
                .map(|l| l.get(indent..).unwrap_or(""))
                .collect();
            out.push(block.join("\n"));
        }
    }
    out
}

/// `examples/render.py` writes the manifests from the JSON configs; this
/// catches a JSON edit that was not re-rendered (for the StringValue copies).
#[test]
fn rendered_manifests_carry_the_tested_configs() {
    let techniques = [
        ("canary", "canary.json"),
        ("blue-green", "blue-green.json"),
        ("ab-split", "ab-split.json"),
        ("pins-overrides", "pins-overrides.json"),
    ];
    for (technique, source) in techniques {
        let mut want: serde_json::Value =
            serde_json::from_slice(&fs::read(examples_dir().join(source)).expect("json"))
                .expect("valid JSON");
        want.as_object_mut().expect("object").remove("$schema");
        for manifest in [
            format!("envoy/{technique}.yaml"),
            format!("istio/{technique}/envoyfilter/envoyfilter.yaml"),
        ] {
            let yaml = fs::read_to_string(examples_dir().join(&manifest))
                .unwrap_or_else(|e| panic!("{manifest}: {e}"));
            let configs = embedded_configs(&yaml);
            assert!(!configs.is_empty(), "{manifest}: no embedded config");
            for text in configs {
                let got: serde_json::Value = serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("{manifest}: embedded config: {e}"));
                assert_eq!(
                    got, want,
                    "{manifest} is stale: run python3 examples/render.py"
                );
                load(text.as_bytes()).unwrap_or_else(|e| panic!("{manifest}: {e}"));
            }
        }
    }
}
