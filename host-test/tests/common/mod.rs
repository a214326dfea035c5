//! Helpers shared by the host-test integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// `build/<name>` at the workspace root; fails (never skips) when it is missing.
pub fn module(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("build")
        .join(name);
    assert!(
        path.exists(),
        "{} is missing: run `make modules` (or `make test`) to build the .wasm modules the host tests load",
        path.display()
    );
    path
}

/// `build/<name>` compiled once per test binary (fails when it is missing).
pub fn plugin(name: &str) -> sluice_wasm_host::Plugin {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static PLUGINS: OnceLock<Mutex<HashMap<String, sluice_wasm_host::Plugin>>> = OnceLock::new();
    let mut plugins = PLUGINS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    plugins
        .entry(name.to_string())
        .or_insert_with(|| {
            let path = module(name);
            sluice_wasm_host::Plugin::load(&path)
                .unwrap_or_else(|e| panic!("cannot load {}: {e:#}", path.display()))
        })
        .clone()
}

/// The headers the native pipeline sets for the request headers the module sent upstream, with
/// `source` and `now_ms` as the facts: what the module must have set too.
pub fn native_sets(
    plan: &sluice_core::plan::Plan,
    out: &sluice_wasm_host::Outcome,
    source: Option<&[u8]>,
    now_ms: i64,
) -> std::collections::BTreeMap<String, String> {
    let names: Vec<String> = out
        .sent_headers
        .iter()
        .map(|(k, _)| String::from_utf8_lossy(k).into_owned())
        .collect();
    let pairs: Vec<(&str, &[u8])> = names
        .iter()
        .zip(out.sent_headers.iter())
        .map(|(name, (_, v))| (name.as_str(), v))
        .collect();
    let facts = sluice_core::pipeline::Facts {
        headers: sluice_core::engine::Headers::Pairs(&pairs),
        source,
        now_ms,
        entropy: 0,
    };
    let live = sluice_core::pipeline::Live::default();
    sluice_core::pipeline::run_once(plan, live, &facts)
        .patch
        .sets(plan)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}
