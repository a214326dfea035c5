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
