//! A wasmtime host of the proxy-wasm ABI 0.2.1 (what the Rust SDK 0.2.5 imports)
//! plus the WASI preview1 calls a `wasm32-wasip1` filter needs. It runs a
//! compiled filter the way Envoy does: one VM per worker, shared data and queues
//! across workers, Envoy's header, metric and property semantics, and a virtual
//! clock the test moves.
//!
//! The model is wasmtime's: a [`Plugin`] is compiled once (cheap to clone), each
//! [`Host`] is started from it with a configuration, and each of the host's
//! workers runs the plugin in its own [`Vm`].
//!
//! ```no_run
//! use sluice_wasm_host::{Plugin, ScriptedResponse};
//! # fn main() -> anyhow::Result<()> {
//! let plugin = Plugin::load("build/sluice.wasm")?;
//! let mut host = plugin.host().plugin_config(r#"{"version":1}"#).workers(2).build()?;
//! host.on_http_call("config", ScriptedResponse::ok("{}"));
//! let out = host.request_on(1).header("x-user-id", "42").source("10.1.2.3:5555").send()?;
//! println!("{:?} after {} instructions", out.request_header("x-sluice-flags"), out.fuel.total());
//! println!("worker 1's linear memory: {} bytes", host.vm(1).memory_bytes());
//! # Ok(()) }
//! ```
//!
//! See `HOSTCALLS.md` for what is implemented and how it differs from Envoy.

mod abi;
mod headers;
mod host;
mod plugin;
mod request;
mod state;
mod types;
mod vm;
mod wasi;

pub use headers::HeaderMap;
pub use host::{ConfigRejected, Host, HostBuilder, DEFAULT_FUEL_LIMIT, DEFAULT_START};
pub use plugin::Plugin;
pub use request::{Action, HeaderChange, Outcome, Request, RequestBuilder};
pub use types::status;
pub use types::{
    ForeignCall, Fuel, HookFuel, HttpCall, LocalReply, LogEntry, LogLevel, LogSource, MetricKind,
    MetricValue, Metrics, ScriptedResponse,
};
pub use vm::Vm;
pub use wasi::ProcExit;
