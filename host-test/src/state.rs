//! State behind the hostcalls: what all workers share (`Shared`, Envoy's
//! process-wide shared data, queues and stats) and what one VM owns (`VmState`).

use crate::headers::HeaderMap;
use crate::types::*;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use wasmtime::{Memory, TypedFunc};

pub(crate) type ForeignFn = Arc<dyn Fn(&[u8]) -> Result<Option<Vec<u8>>, i32> + Send + Sync>;

pub(crate) struct Queue {
    pub owner_worker: usize,
    pub owner_context: u32,
    pub items: VecDeque<Vec<u8>>,
}

/// Something a worker must be told about on the next `run_pending`.
pub(crate) enum Event {
    QueueReady {
        worker: usize,
        context_id: u32,
        token: u32,
    },
}

pub(crate) struct MetricSlot {
    pub name: String,
    pub kind: MetricKind,
    pub value: MetricValue,
}

pub(crate) struct Shared {
    /// Virtual wall-clock time (since the UNIX epoch).
    pub now: Duration,
    /// Virtual time at host start (monotonic clock origin).
    pub start: Duration,
    pub shared_data: HashMap<Vec<u8>, (Vec<u8>, u32)>,
    pub next_cas: u32,
    pub queue_tokens: HashMap<(Vec<u8>, Vec<u8>), u32>,
    pub queues: HashMap<u32, Queue>,
    pub metrics: Vec<MetricSlot>,
    /// Per id handed out, the metric it names. Envoy's `defineMetric` hands out a new id (and
    /// map entry) on every call, even for a name it has seen: a filter that defines its
    /// metrics again on every push grows this list, as it would grow Envoy's maps.
    pub metric_ids: Vec<usize>,
    pub upstreams: HashMap<String, ScriptedResponse>,
    pub foreign: HashMap<String, ForeignFn>,
    pub events: VecDeque<Event>,
    pub logs: Vec<LogEntry>,
    pub foreign_calls: Vec<ForeignCall>,
    pub http_calls: Vec<HttpCall>,
    pub hook_fuel: Vec<HookFuel>,
    /// Fuel spent after each `log_execution(id)` event until the next one (modules instrumented
    /// with `wasm-opt --log-execution`): a per-location instruction profile.
    pub execution_profile: HashMap<i32, u64>,
    /// The last event: its id and the fuel left then.
    pub execution_last: Option<(i32, u64)>,
    pub log_level: LogLevel,
    pub vm_id: String,
    pub plugin_name: String,
    pub root_id: String,
    pub properties: HashMap<String, Vec<u8>>,
}

impl Shared {
    pub fn new(now: Duration) -> Self {
        Self {
            now,
            start: now,
            shared_data: HashMap::new(),
            next_cas: 1,
            queue_tokens: HashMap::new(),
            queues: HashMap::new(),
            metrics: Vec::new(),
            metric_ids: Vec::new(),
            upstreams: HashMap::new(),
            foreign: HashMap::new(),
            events: VecDeque::new(),
            logs: Vec::new(),
            foreign_calls: Vec::new(),
            http_calls: Vec::new(),
            hook_fuel: Vec::new(),
            execution_profile: HashMap::new(),
            execution_last: None,
            log_level: LogLevel::Trace,
            vm_id: String::new(),
            plugin_name: String::new(),
            root_id: String::new(),
            properties: HashMap::new(),
        }
    }

    pub fn next_cas(&mut self) -> u32 {
        let cas = self.next_cas;
        self.next_cas = self.next_cas.wrapping_add(1).max(1);
        cas
    }

    /// Metric ids carry the kind in the low two bits, as Envoy's do; every call gets a new id,
    /// as in Envoy, an existing name's new id naming the same metric.
    pub fn define_metric(&mut self, kind: MetricKind, name: &str) -> Result<u32, i32> {
        let index = match self.metrics.iter().position(|m| m.name == name) {
            Some(i) if self.metrics[i].kind != kind => return Err(status::BAD_ARGUMENT),
            Some(i) => i,
            None => {
                let value = match kind {
                    MetricKind::Counter => MetricValue::Counter(0),
                    MetricKind::Gauge => MetricValue::Gauge(0),
                    MetricKind::Histogram => MetricValue::Histogram(Vec::new()),
                };
                self.metrics.push(MetricSlot {
                    name: name.to_string(),
                    kind,
                    value,
                });
                self.metrics.len() - 1
            }
        };
        self.metric_ids.push(index);
        Ok(metric_id(self.metric_ids.len() - 1, kind))
    }

    pub fn metric_mut(&mut self, id: u32) -> Option<&mut MetricSlot> {
        let slot = (id >> 2).checked_sub(1)? as usize;
        let index = *self.metric_ids.get(slot)?;
        self.metrics
            .get_mut(index)
            .filter(|m| m.kind as u32 == id & 3)
    }

    /// What moved since `before` (values by index, as `metric_deltas` takes them): name and
    /// change, for every metric whose value (histograms: sample count) is not what it was.
    pub fn metric_deltas(&self, before: &[u64]) -> std::collections::BTreeMap<String, i64> {
        self.metrics
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                let was = before.get(i).copied().unwrap_or(0);
                let now = m.value.value();
                (now != was).then(|| (m.name.clone(), now as i64 - was as i64))
            })
            .collect()
    }

    pub fn metrics_snapshot(&self) -> Metrics {
        self.metrics
            .iter()
            .map(|m| (m.name.clone(), m.value.clone()))
            .collect()
    }
}

fn metric_id(index: usize, kind: MetricKind) -> u32 {
    (((index + 1) as u32) << 2) | kind as u32
}

/// Request facts the properties are computed from.
#[derive(Clone, Debug)]
pub(crate) struct RequestInfo {
    pub source: String,
    pub destination: String,
    pub start: Duration,
    pub properties: HashMap<String, Vec<u8>>,
    /// `response.code_details`, set when the response phase starts.
    pub code_details: String,
}

/// One HTTP stream (an HTTP context in the module).
pub(crate) struct Stream {
    pub request_headers: Option<HeaderMap>,
    pub request_body: Option<Vec<u8>>,
    pub request_trailers: Option<HeaderMap>,
    pub response_headers: Option<HeaderMap>,
    pub response_body: Option<Vec<u8>>,
    pub response_trailers: Option<HeaderMap>,
    pub local_reply: Option<LocalReply>,
    pub continued_request: bool,
    pub continued_response: bool,
    pub reset: bool,
    pub info: RequestInfo,
}

impl Stream {
    pub fn new(info: RequestInfo) -> Self {
        Self {
            request_headers: None,
            request_body: None,
            request_trailers: None,
            response_headers: None,
            response_body: None,
            response_trailers: None,
            local_reply: None,
            continued_request: false,
            continued_response: false,
            reset: false,
            info,
        }
    }
}

/// A response being delivered to `proxy_on_http_call_response`.
pub(crate) struct CallResponse {
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub trailers: HeaderMap,
}

/// A dispatched call waiting for its (scripted) response.
pub(crate) struct PendingCall {
    pub token: u32,
    pub context_id: u32,
    pub due: Duration,
    pub outcome: Scripted,
}

/// What one VM (one Envoy worker thread) owns.
pub(crate) struct VmState {
    pub shared: Arc<Mutex<Shared>>,
    pub worker: usize,
    pub root_id: u32,
    /// The context hostcalls act on (the hook's context, or the one set with
    /// `proxy_set_effective_context`).
    pub current: u32,
    pub streams: HashMap<u32, Stream>,
    /// `(buffer type, bytes)` readable during `proxy_on_vm_start` / `proxy_on_configure`.
    pub config_buffer: Option<(i32, Vec<u8>)>,
    pub call_response: Option<CallResponse>,
    pub pending_calls: Vec<PendingCall>,
    pub next_token: u32,
    pub tick_period: Option<Duration>,
    pub next_tick: Duration,
    pub stdio: [Vec<u8>; 2],
    pub rng: u64,
    pub memory: Option<Memory>,
    pub alloc: Option<TypedFunc<i32, i32>>,
    pub status: (u32, Vec<u8>),
    pub root_properties: HashMap<String, Vec<u8>>,
    pub done_called: bool,
}

impl VmState {
    pub fn new(shared: Arc<Mutex<Shared>>, worker: usize, root_id: u32, seed: u64) -> Self {
        Self {
            shared,
            worker,
            root_id,
            current: root_id,
            streams: HashMap::new(),
            config_buffer: None,
            call_response: None,
            pending_calls: Vec::new(),
            next_token: 1,
            tick_period: None,
            next_tick: Duration::ZERO,
            stdio: [Vec::new(), Vec::new()],
            rng: seed ^ (worker as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            memory: None,
            alloc: None,
            status: (0, Vec::new()),
            root_properties: HashMap::new(),
            done_called: false,
        }
    }

    pub fn shared(&self) -> MutexGuard<'_, Shared> {
        lock(&self.shared)
    }

    pub fn log(&self, level: LogLevel, source: LogSource, message: String) {
        let mut shared = self.shared();
        if level >= shared.log_level || source != LogSource::ProxyLog {
            shared.logs.push(LogEntry {
                worker: self.worker,
                context_id: self.current,
                level,
                source,
                message,
            });
        }
    }

    /// splitmix64: deterministic bytes for WASI `random_get`.
    pub fn next_random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

pub(crate) fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
