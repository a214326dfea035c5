//! Embeds the filter module the CLI was built with: `build/sluice.wasm` at the workspace root
//! (or the file named by `SLUICE_EMBED_WASM`), so `sluice` runs from any directory.
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=SLUICE_EMBED_WASM");
    if std::env::var_os("CARGO_FEATURE_TOOL").is_none() {
        return;
    }
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let wasm = std::env::var_os("SLUICE_EMBED_WASM")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("../build/sluice.wasm"));
    println!("cargo:rerun-if-changed={}", wasm.display());
    let wasm = match wasm.canonicalize() {
        Ok(path) => path,
        Err(_) => {
            eprintln!(
                "error: {} not found: the sluice CLI embeds the filter module; run `make wasm` first \
                 (or set SLUICE_EMBED_WASM=PATH)",
                wasm.display()
            );
            std::process::exit(1);
        }
    };
    println!("cargo:rustc-env=SLUICE_EMBEDDED_WASM={}", wasm.display());
}
