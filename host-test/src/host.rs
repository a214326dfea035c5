//! `Host`: one plugin running on N worker VMs that share data, queues, stats
//! and a virtual clock, as Envoy runs it; it delivers events and drives requests.

use crate::headers::HeaderMap;
use crate::plugin::Plugin;
use crate::request::RequestBuilder;
use crate::state::*;
use crate::types::*;
use crate::vm::Vm;

mod send;
use anyhow::{anyhow, bail, Result};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Default fuel limit for one call into the module: far above what a filter
/// spends per hook, low enough that an endless loop fails in about a second.
pub const DEFAULT_FUEL_LIMIT: u64 = 500_000_000;

/// 2026-01-01T00:00:00Z, the virtual clock's default start.
pub const DEFAULT_START: Duration = Duration::from_secs(1_767_225_600);

/// Configures and starts a [`Host`].
pub struct HostBuilder {
    plugin: Plugin,
    plugin_config: Vec<u8>,
    vm_config: Vec<u8>,
    workers: usize,
    canary: bool,
    start: Duration,
    seed: u64,
    fuel_limit: u64,
    log_level: LogLevel,
    vm_id: String,
    plugin_name: String,
    root_id: String,
    properties: HashMap<String, Vec<u8>>,
}

/// `proxy_on_configure` returned false: Envoy rejects the configuration.
/// `logs` holds what the filter logged while configuring.
#[derive(Debug, Clone)]
pub struct ConfigRejected {
    pub worker: usize,
    pub logs: Vec<LogEntry>,
}

impl fmt::Display for ConfigRejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "plugin configuration rejected: proxy_on_configure returned false on worker {}",
            self.worker
        )?;
        for log in &self.logs {
            write!(f, "\n  {log}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigRejected {}

impl HostBuilder {
    pub(crate) fn new(plugin: Plugin) -> Self {
        Self {
            plugin,
            plugin_config: Vec::new(),
            vm_config: Vec::new(),
            workers: 1,
            canary: false,
            start: DEFAULT_START,
            seed: 0,
            fuel_limit: DEFAULT_FUEL_LIMIT,
            log_level: LogLevel::Trace,
            vm_id: String::new(),
            plugin_name: "sluice".to_string(),
            root_id: String::new(),
            properties: HashMap::new(),
        }
    }

    /// The plugin configuration (`proxy_on_configure`'s buffer; Istio's `pluginConfig`).
    pub fn plugin_config(mut self, config: impl AsRef<[u8]>) -> Self {
        self.plugin_config = config.as_ref().to_vec();
        self
    }

    /// The VM configuration (`proxy_on_vm_start`'s buffer).
    pub fn vm_config(mut self, config: impl AsRef<[u8]>) -> Self {
        self.vm_config = config.as_ref().to_vec();
        self
    }

    /// How many worker VMs (Envoy worker threads) run the plugin; default 1.
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n.max(1);
        self
    }

    /// Configures every config first on a throwaway canary VM, as Envoy does (proxy-wasm's
    /// `canary`: a clone of the base VM is started and configured, then killed without
    /// `proxy_on_done`; it shares stats and shared data with the workers). A config the canary
    /// rejects reaches no worker. Off by default: the canary's log lines and stats would add to
    /// every test's.
    pub fn envoy_canary(mut self, on: bool) -> Self {
        self.canary = on;
        self
    }

    /// The virtual clock's start; default [`DEFAULT_START`].
    pub fn start_time(mut self, at: SystemTime) -> Self {
        self.start = at.duration_since(UNIX_EPOCH).unwrap_or_default();
        self
    }

    /// Seed of WASI `random_get` (each worker derives its own stream).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Fuel (wasm instructions) one call into the module may spend before it
    /// fails; default [`DEFAULT_FUEL_LIMIT`].
    pub fn fuel_limit(mut self, fuel: u64) -> Self {
        self.fuel_limit = fuel;
        self
    }

    /// Log lines below `level` are dropped (and `proxy_get_log_level` returns it).
    pub fn log_level(mut self, level: LogLevel) -> Self {
        self.log_level = level;
        self
    }

    /// `vm_id` (shared data and queues are scoped by it in Envoy), default "".
    pub fn vm_id(mut self, id: &str) -> Self {
        self.vm_id = id.to_string();
        self
    }

    /// `plugin_name` property, default "sluice".
    pub fn plugin_name(mut self, name: &str) -> Self {
        self.plugin_name = name.to_string();
        self
    }

    /// `plugin_root_id` property, default "".
    pub fn root_id(mut self, id: &str) -> Self {
        self.root_id = id.to_string();
        self
    }

    /// A property every context can read (e.g. `node.id`, `xds.cluster_name`);
    /// `name` is the dotted path.
    pub fn property(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.properties
            .insert(name.to_string(), value.as_ref().to_vec());
        self
    }

    /// Starts every worker VM and configures the plugin; a rejected configuration
    /// is an error ([`ConfigRejected`], downcast it to read the logs).
    pub fn build(self) -> Result<Host> {
        let (host, rejected) = self.start()?;
        match rejected {
            Some(rejected) => Err(rejected.into()),
            None => Ok(host),
        }
    }

    /// Like [`build`](Self::build) but returns the host even when the
    /// configuration is rejected, with the rejection.
    pub fn start(self) -> Result<(Host, Option<ConfigRejected>)> {
        let mut shared = Shared::new(self.start);
        shared.log_level = self.log_level;
        shared.vm_id = self.vm_id.clone();
        shared.plugin_name = self.plugin_name.clone();
        shared.root_id = self.root_id.clone();
        shared.properties = self.properties.clone();
        let shared = Arc::new(Mutex::new(shared));

        let canary = self.canary.then(|| Canary {
            plugin: self.plugin.clone(),
            vm_config: self.vm_config.clone(),
            seed: self.seed,
            fuel_limit: self.fuel_limit,
            index: self.workers,
        });
        let mut host = Host {
            shared: shared.clone(),
            vms: Vec::new(),
            plugin_config: self.plugin_config.clone(),
            canary,
        };
        let logs_before = host.logs().len();
        if !host.run_canary(&self.plugin_config)? {
            let logs = host.logs()[logs_before..].to_vec();
            let worker = self.workers;
            return Ok((host, Some(ConfigRejected { worker, logs })));
        }
        let mut rejected = None;
        for index in 0..self.workers {
            let logs_before = host.logs().len();
            let mut vm = Vm::instantiate(
                &self.plugin,
                shared.clone(),
                index,
                self.seed,
                self.fuel_limit,
            )?;
            vm.start(&self.vm_config)?;
            let accepted = vm.configure(&self.plugin_config)?;
            host.vms.push(vm);
            host.run_pending()?;
            if !accepted && rejected.is_none() {
                rejected = Some(ConfigRejected {
                    worker: index,
                    logs: host.logs()[logs_before..].to_vec(),
                });
            }
        }
        Ok((host, rejected))
    }
}

/// The plugin loaded on one or more worker VMs, with Envoy's shared state and a
/// virtual clock.
///
/// Asynchronous events (`proxy_on_queue_ready`, and `proxy_on_http_call_response`
/// for responses that are due) are delivered by [`Host::run_pending`], which
/// runs after every hook a request runs, after startup, and as
/// [`Host::advance`] moves the clock. A scripted response without delay is
/// thus delivered right after the hook that dispatched the call returns.
pub struct Host {
    shared: Arc<Mutex<Shared>>,
    pub(crate) vms: Vec<Vm>,
    plugin_config: Vec<u8>,
    canary: Option<Canary>,
}

/// What a canary VM is made from ([`HostBuilder::envoy_canary`]); `index` follows the workers'.
struct Canary {
    plugin: Plugin,
    vm_config: Vec<u8>,
    seed: u64,
    fuel_limit: u64,
    index: usize,
}

impl Host {
    pub(crate) fn shared(&self) -> std::sync::MutexGuard<'_, Shared> {
        lock(&self.shared)
    }

    /// How many workers (one VM each) run the plugin.
    pub fn worker_count(&self) -> usize {
        self.vms.len()
    }

    /// The VM of worker `index`, to inspect (panics if there is no such worker).
    pub fn vm(&self, index: usize) -> &Vm {
        &self.vms[index]
    }

    /// A request on worker 0's VM: `host.request().header(..).send()`.
    pub fn request(&mut self) -> RequestBuilder<'_> {
        self.request_on(0)
    }

    /// A request on worker `index`'s VM ([`send`](RequestBuilder::send) panics if
    /// there is no such worker).
    pub fn request_on(&mut self, index: usize) -> RequestBuilder<'_> {
        RequestBuilder::new(self, index)
    }

    /// The virtual wall-clock time.
    pub fn now(&self) -> SystemTime {
        UNIX_EPOCH + self.shared().now
    }

    /// Moves the virtual clock forward by `by`, firing every tick and delivering
    /// every delayed or timed-out HTTP call response that falls due, in time order.
    pub fn advance(&mut self, by: Duration) -> Result<()> {
        let target = self.shared().now + by;
        self.advance_to(target)
    }

    pub(crate) fn advance_to(&mut self, target: Duration) -> Result<()> {
        loop {
            let now = self.shared().now;
            let next_tick = self
                .vms
                .iter()
                .filter_map(|w| w.state().tick_period.map(|_| w.state().next_tick))
                .min();
            let next_call = self
                .vms
                .iter()
                .flat_map(|w| w.state().pending_calls.iter().map(|c| c.due))
                .min();
            let Some(next) = next_tick
                .into_iter()
                .chain(next_call)
                .min()
                .filter(|t| *t <= target)
            else {
                break;
            };
            self.shared().now = next.max(now);
            for index in 0..self.vms.len() {
                let state = self.vms[index].state_mut();
                let Some(period) = state.tick_period else {
                    continue;
                };
                if state.next_tick <= next {
                    state.next_tick = next + period;
                    let root = state.root_id;
                    self.vms[index].call("proxy_on_tick", root, &[root as i32])?;
                    self.run_pending()?;
                }
            }
            self.run_pending()?;
        }
        let mut shared = self.shared();
        shared.now = shared.now.max(target);
        drop(shared);
        self.run_pending()
    }

    /// Delivers queued `proxy_on_queue_ready` events and due HTTP call responses,
    /// until none is left.
    pub fn run_pending(&mut self) -> Result<()> {
        for _ in 0..100_000 {
            let event = self.shared().events.pop_front();
            if let Some(Event::QueueReady {
                worker,
                context_id,
                token,
            }) = event
            {
                if let Some(w) = self.vms.get_mut(worker).filter(|w| w.failure().is_none()) {
                    w.call(
                        "proxy_on_queue_ready",
                        context_id,
                        &[context_id as i32, token as i32],
                    )?;
                }
                continue;
            }
            let now = self.shared().now;
            let due = self.vms.iter().enumerate().find_map(|(i, w)| {
                let calls = &w.state().pending_calls;
                calls.iter().position(|c| c.due <= now).map(|at| (i, at))
            });
            let Some((index, at)) = due else {
                return Ok(());
            };
            let call = self.vms[index].state_mut().pending_calls.remove(at);
            self.deliver_call(index, call)?;
        }
        bail!("events keep coming after 100000 deliveries: the filter loops through queues or HTTP calls")
    }

    fn deliver_call(&mut self, index: usize, call: PendingCall) -> Result<()> {
        let worker = &mut self.vms[index];
        let state = worker.state_mut();
        if call.context_id != state.root_id && !state.streams.contains_key(&call.context_id) {
            return Ok(()); // the context is gone; Envoy cancels its calls
        }
        // Envoy's onFailure has no response: reading its header map is BadArgument there.
        let failed = matches!(call.outcome, Scripted::Fail);
        let (response, status) = match call.outcome {
            Scripted::Response {
                headers,
                body,
                trailers,
            } => (
                CallResponse {
                    headers,
                    body,
                    trailers,
                },
                (0, Vec::new()),
            ),
            Scripted::Fail => (
                CallResponse {
                    headers: HeaderMap::new(),
                    body: Vec::new(),
                    trailers: HeaderMap::new(),
                },
                (status::BROKEN_CONNECTION, b"reset".to_vec()),
            ),
            Scripted::Timeout => {
                let body = b"upstream request timeout".to_vec();
                let headers = HeaderMap::from_pairs([
                    (":status", "504".to_string()),
                    ("content-length", body.len().to_string()),
                    ("content-type", "text/plain".to_string()),
                ]);
                (
                    CallResponse {
                        headers,
                        body,
                        trailers: HeaderMap::new(),
                    },
                    (0, Vec::new()),
                )
            }
        };
        let args = [
            call.context_id as i32,
            call.token as i32,
            response.headers.len() as i32,
            response.body.len() as i32,
            response.trailers.len() as i32,
        ];
        state.status = status;
        state.call_response = (!failed).then_some(response);
        let result = worker.call("proxy_on_http_call_response", call.context_id, &args);
        worker.state_mut().call_response = None;
        result.map(drop)
    }

    /// Calls `proxy_on_configure` again on every worker's root context with a new
    /// configuration; returns what each returned. (Envoy would create a new root
    /// context for a pushed config; a filter that polls its config sees this.)
    pub fn reconfigure(&mut self, config: impl AsRef<[u8]>) -> Result<Vec<bool>> {
        if !self.run_canary(config.as_ref())? {
            return Ok(vec![false; self.vms.len()]);
        }
        self.plugin_config = config.as_ref().to_vec();
        let mut results = Vec::new();
        for index in 0..self.vms.len() {
            let config = self.plugin_config.clone();
            results.push(self.vms[index].configure(&config)?);
            self.run_pending()?;
        }
        Ok(results)
    }

    /// With [`HostBuilder::envoy_canary`]: starts and configures a canary VM with `config`,
    /// then drops it without `proxy_on_done`, as Envoy kills it; whether it accepted. Without: true.
    fn run_canary(&mut self, config: &[u8]) -> Result<bool> {
        let Some(canary) = &self.canary else {
            return Ok(true);
        };
        let mut vm = Vm::instantiate(
            &canary.plugin,
            self.shared.clone(),
            canary.index,
            canary.seed,
            canary.fuel_limit,
        )?;
        vm.start(&canary.vm_config)?;
        vm.configure(config)
    }

    /// Scripts the upstream `cluster`: every `dispatch_http_call` to it gets
    /// `response` (the latest script for a cluster wins). A call to a cluster
    /// without a script fails with `BadArgument`, as an unknown cluster does in Envoy.
    pub fn on_http_call(&mut self, cluster: &str, response: ScriptedResponse) {
        self.shared()
            .upstreams
            .insert(cluster.to_string(), response);
    }

    /// Registers a foreign function (`proxy_call_foreign_function`); `clear_route_cache`
    /// exists already (recorded, returns nothing). Unknown names are `NotFound`.
    pub fn foreign_function(
        &mut self,
        name: &str,
        f: impl Fn(&[u8]) -> Result<Option<Vec<u8>>, i32> + Send + Sync + 'static,
    ) {
        self.shared().foreign.insert(name.to_string(), Arc::new(f));
    }

    /// Shared data: `(value, cas)`.
    /// Fuel per `log_execution` location since the host started (modules instrumented with
    /// `wasm-opt --log-execution`; empty otherwise), and clears it.
    pub fn take_execution_profile(&mut self) -> std::collections::HashMap<i32, u64> {
        std::mem::take(&mut self.shared().execution_profile)
    }

    pub fn shared_data(&self, key: impl AsRef<[u8]>) -> Option<(Vec<u8>, u32)> {
        self.shared().shared_data.get(key.as_ref()).cloned()
    }

    /// Sets shared data as another VM would (new CAS).
    pub fn set_shared_data(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        let mut shared = self.shared();
        let cas = shared.next_cas();
        shared
            .shared_data
            .insert(key.as_ref().to_vec(), (value.as_ref().to_vec(), cas));
    }

    /// Enqueues onto the queue `name` of this host's vm_id, as another VM would,
    /// and delivers `proxy_on_queue_ready`.
    pub fn enqueue(&mut self, name: &str, value: impl AsRef<[u8]>) -> Result<()> {
        {
            let mut shared = self.shared();
            let key = (shared.vm_id.clone().into_bytes(), name.as_bytes().to_vec());
            let token = *shared
                .queue_tokens
                .get(&key)
                .ok_or_else(|| anyhow!("no shared queue named {name:?} is registered"))?;
            let queue = shared
                .queues
                .get_mut(&token)
                .ok_or_else(|| anyhow!("queue {name:?} has no owner"))?;
            queue.items.push_back(value.as_ref().to_vec());
            let (worker, context_id) = (queue.owner_worker, queue.owner_context);
            shared.events.push_back(Event::QueueReady {
                worker,
                context_id,
                token,
            });
        }
        self.run_pending()
    }

    /// What is left in queue `name`.
    pub fn queue_items(&self, name: &str) -> Vec<Vec<u8>> {
        let shared = self.shared();
        let key = (shared.vm_id.clone().into_bytes(), name.as_bytes().to_vec());
        shared
            .queue_tokens
            .get(&key)
            .and_then(|t| shared.queues.get(t))
            .map(|q| q.items.iter().cloned().collect())
            .unwrap_or_default()
    }

    pub fn metrics(&self) -> Metrics {
        self.shared().metrics_snapshot()
    }

    /// How many metric ids the module has been handed (`proxy_define_metric` calls, all VMs):
    /// each call is an entry in Envoy's maps, so this must not grow with every push.
    pub fn metric_definitions(&self) -> usize {
        self.shared().metric_ids.len()
    }

    pub fn metric(&self, name: &str) -> Option<MetricValue> {
        self.shared()
            .metrics
            .iter()
            .find(|m| m.name == name)
            .map(|m| m.value.clone())
    }

    /// Every log line so far, from every worker.
    pub fn logs(&self) -> Vec<LogEntry> {
        self.shared().logs.clone()
    }

    pub fn http_calls(&self) -> Vec<HttpCall> {
        self.shared().http_calls.clone()
    }

    pub fn foreign_calls(&self) -> Vec<ForeignCall> {
        self.shared().foreign_calls.clone()
    }

    /// Fuel per hook call since the host started (startup included).
    pub fn hook_fuel(&self) -> Vec<HookFuel> {
        self.shared().hook_fuel.clone()
    }

    /// Forgets recorded logs, calls and fuel (long simulations).
    pub fn clear_records(&mut self) {
        let mut shared = self.shared();
        shared.logs.clear();
        shared.http_calls.clear();
        shared.foreign_calls.clear();
        shared.hook_fuel.clear();
    }
}
