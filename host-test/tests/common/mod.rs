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
