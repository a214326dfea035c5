//! A wasmtime host of the proxy-wasm ABI 0.2.1 (what the Rust SDK 0.2.5 imports)
//! plus the WASI preview1 calls a `wasm32-wasip1` filter needs. It runs a
//! compiled filter the way Envoy does: one VM per worker, shared data and queues
//! across workers, Envoy's header, metric and property semantics, and a virtual
//! clock the test moves.
//!
//! ```no_run
//! use sluice_host::{Host, ScriptedResponse};
//! # fn main() -> anyhow::Result<()> {
//! let mut host = Host::builder("build/sluice.wasm").plugin_config(r#"{"version":1}"#).workers(2).build()?;
//! host.on_http_call("config", ScriptedResponse::ok("{}"));
//! let out = host.worker(1).request().header("x-user-id", "42").source("10.1.2.3:5555").send()?;
//! println!("{:?} after {} instructions", out.request_header("x-sluice-flags"), out.fuel.total());
//! # Ok(()) }
//! ```
//!
//! See `HOSTCALLS.md` for what is implemented and how it differs from Envoy.

mod abi;
mod headers;
mod host;
mod request;
mod state;
mod types;
mod wasi;

pub use headers::HeaderMap;
pub use host::{
    ConfigRejected, Host, HostBuilder, Worker, WorkerRef, DEFAULT_FUEL_LIMIT, DEFAULT_START,
};
pub use request::{Action, HeaderChange, Outcome, RequestBuilder};
pub use types::status;
pub use types::{
    ForeignCall, Fuel, HookFuel, HttpCall, LocalReply, LogEntry, LogLevel, LogSource, MetricKind,
    MetricValue, Metrics, ScriptedResponse,
};
pub use wasi::ProcExit;
