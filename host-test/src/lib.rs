//! wasmtime host of the proxy-wasm ABI (filled in by the host-test issue).
