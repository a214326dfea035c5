//! Plain data the host records: logs, metrics, foreign calls, HTTP callouts,
//! scripted upstream responses and per-hook fuel.

use crate::headers::HeaderMap;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// proxy-wasm status codes (`proxy_status_t`) the host returns.
pub mod status {
    pub const OK: i32 = 0;
    pub const NOT_FOUND: i32 = 1;
    pub const BAD_ARGUMENT: i32 = 2;
    pub const SERIALIZATION_FAILURE: i32 = 3;
    pub const EMPTY: i32 = 7;
    pub const CAS_MISMATCH: i32 = 8;
    pub const INTERNAL_FAILURE: i32 = 10;
    pub const BROKEN_CONNECTION: u32 = 11;
}

/// proxy-wasm log levels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    Trace = 0,
    Debug = 1,
    Info = 2,
    Warn = 3,
    Error = 4,
    Critical = 5,
}

impl LogLevel {
    pub fn from_i32(level: i32) -> Option<Self> {
        Some(match level {
            0 => Self::Trace,
            1 => Self::Debug,
            2 => Self::Info,
            3 => Self::Warn,
            4 => Self::Error,
            5 => Self::Critical,
            _ => return None,
        })
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Trace => "trace",
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
            Self::Critical => "critical",
        })
    }
}

/// Where a log line came from: `proxy_log`, or WASI `fd_write` to stdout/stderr
/// (recorded at `Info` / `Error`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogSource {
    ProxyLog,
    Stdout,
    Stderr,
}

/// One log line, with the worker and context that wrote it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    pub worker: usize,
    pub context_id: u32,
    pub level: LogLevel,
    pub source: LogSource,
    pub message: String,
}

impl fmt::Display for LogEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}", self.level, self.message)
    }
}

/// Metric kinds, numbered as in proxy-wasm (`proxy_define_metric`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MetricKind {
    Counter = 0,
    Gauge = 1,
    Histogram = 2,
}

/// A metric's current value: counters and gauges hold a number, histograms
/// every recorded value in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetricValue {
    Counter(u64),
    Gauge(u64),
    Histogram(Vec<u64>),
}

impl MetricValue {
    /// The counter or gauge value; for a histogram, the number of samples.
    pub fn value(&self) -> u64 {
        match self {
            Self::Counter(v) | Self::Gauge(v) => *v,
            Self::Histogram(samples) => samples.len() as u64,
        }
    }
}

/// Every metric by name.
pub type Metrics = BTreeMap<String, MetricValue>;

/// A call to `proxy_call_foreign_function`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForeignCall {
    pub worker: usize,
    pub context_id: u32,
    pub name: String,
    pub arguments: Vec<u8>,
}

/// A `dispatch_http_call` the filter made.
#[derive(Clone, Debug)]
pub struct HttpCall {
    pub worker: usize,
    pub context_id: u32,
    pub token: u32,
    pub cluster: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub trailers: HeaderMap,
    pub timeout: Option<Duration>,
}

#[derive(Clone, Debug)]
pub(crate) enum Scripted {
    Response {
        headers: HeaderMap,
        body: Vec<u8>,
        trailers: HeaderMap,
    },
    Fail,
    Timeout,
}

/// What a scripted upstream does with a `dispatch_http_call`
/// (see [`crate::Host::on_http_call`]).
#[derive(Clone, Debug)]
pub struct ScriptedResponse {
    pub(crate) kind: Scripted,
    pub(crate) delay: Duration,
}

impl ScriptedResponse {
    /// A response with `:status` = `status` and no body.
    pub fn status(status: u16) -> Self {
        let mut headers = HeaderMap::new();
        headers.add(":status", status.to_string());
        Self {
            kind: Scripted::Response {
                headers,
                body: Vec::new(),
                trailers: HeaderMap::new(),
            },
            delay: Duration::ZERO,
        }
    }

    /// `200` with `body`.
    pub fn ok(body: impl AsRef<[u8]>) -> Self {
        Self::status(200).body(body)
    }

    /// The call fails (connection reset, or an answer over Envoy's response buffer): the
    /// filter's `on_http_call_response` gets no headers and no body, as Envoy's `onFailure`
    /// does, and reading the call's header map is `BadArgument`, as in Envoy.
    pub fn fail() -> Self {
        Self {
            kind: Scripted::Fail,
            delay: Duration::ZERO,
        }
    }

    /// The upstream never answers: when the call's timeout elapses on the virtual
    /// clock the filter gets Envoy's local reply `504` / `upstream request timeout`.
    pub fn timeout() -> Self {
        Self {
            kind: Scripted::Timeout,
            delay: Duration::ZERO,
        }
    }

    /// Adds a response header.
    pub fn header(mut self, name: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Self {
        if let Scripted::Response { headers, .. } = &mut self.kind {
            headers.add(name, value);
        }
        self
    }

    /// Sets the response body.
    pub fn body(mut self, bytes: impl AsRef<[u8]>) -> Self {
        if let Scripted::Response { body, .. } = &mut self.kind {
            *body = bytes.as_ref().to_vec();
        }
        self
    }

    /// Adds a response trailer.
    pub fn trailer(mut self, name: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Self {
        if let Scripted::Response { trailers, .. } = &mut self.kind {
            trailers.add(name, value);
        }
        self
    }

    /// Delivers the response (or failure) after `delay` of virtual time instead of
    /// right away. A delay at or past the call's timeout becomes a timeout.
    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// A local reply sent with `proxy_send_local_response`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalReply {
    pub status: u32,
    pub details: String,
    pub body: Vec<u8>,
    /// The headers the filter passed (Envoy adds `:status`, `content-length`
    /// and `content-type` to the response; see `Outcome::response_headers`).
    pub headers: HeaderMap,
    /// `-1` for a plain HTTP reply.
    pub grpc_status: i32,
}

/// Fuel (wasm instructions, wasmtime's deterministic count) spent in one call
/// into the module.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookFuel {
    pub worker: usize,
    pub context_id: u32,
    pub hook: &'static str,
    pub fuel: u64,
}

/// Fuel spent by a request: total and per hook (hooks in call order).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fuel {
    pub hooks: Vec<HookFuel>,
}

/// One line per hook: `hook fuel`, then the total.
impl fmt::Display for Fuel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for hook in &self.hooks {
            writeln!(f, "{:<28} {:>10}", hook.hook, hook.fuel)?;
        }
        write!(f, "{:<28} {:>10}", "total", self.total())
    }
}

impl Fuel {
    pub fn total(&self) -> u64 {
        self.hooks.iter().map(|h| h.fuel).sum()
    }

    /// Fuel spent in `hook` (summed if it ran more than once).
    pub fn hook(&self, hook: &str) -> u64 {
        self.hooks
            .iter()
            .filter(|h| h.hook == hook)
            .map(|h| h.fuel)
            .sum()
    }
}
