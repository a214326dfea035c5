//! `Host` (one plugin loaded on N worker VMs that share data, queues, stats and
//! a virtual clock) and `Worker` (one VM: a wasmtime Store + Instance).

use crate::abi;
use crate::headers::HeaderMap;
use crate::request::RequestBuilder;
use crate::state::*;
use crate::types::*;
use crate::wasi;
use anyhow::{anyhow, bail, Context as _, Result};
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use wasmtime::{Config, Engine, Instance, Linker, Module, Store, Trap, Val};

/// Default fuel limit for one call into the module: far above what a filter
/// spends per hook, low enough that an endless loop fails in about a second.
pub const DEFAULT_FUEL_LIMIT: u64 = 500_000_000;

/// 2026-01-01T00:00:00Z, the virtual clock's default start.
pub const DEFAULT_START: Duration = Duration::from_secs(1_767_225_600);

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut config = Config::new();
        config.consume_fuel(true);
        Engine::new(&config).expect("wasmtime engine with fuel")
    })
}

/// Compiled modules, by path, size and mtime: each test binary compiles a
/// module once however many hosts it starts.
fn compile_file(path: &Path) -> Result<Module> {
    type Compiled = HashMap<PathBuf, (u64, SystemTime, Module)>;
    static CACHE: OnceLock<Mutex<Compiled>> = OnceLock::new();
    let meta = std::fs::metadata(path)
        .with_context(|| format!("cannot read wasm module {}", path.display()))?;
    let mtime = meta.modified().unwrap_or(UNIX_EPOCH);
    let cache = CACHE.get_or_init(Default::default);
    let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((len, time, module)) = cache.get(path) {
        if *len == meta.len() && *time == mtime {
            return Ok(module.clone());
        }
    }
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read wasm module {}", path.display()))?;
    let module =
        compile_cached(&bytes).with_context(|| format!("cannot compile {}", path.display()))?;
    cache.insert(path.to_path_buf(), (meta.len(), mtime, module.clone()));
    Ok(module)
}

/// Compiles `bytes`, reusing machine code cached on disk by an earlier process
/// (Cranelift takes seconds for a filter in a debug build). The cache lives in
/// `$SLUICE_HOST_CACHE`, else `$XDG_CACHE_HOME/sluice-host` or
/// `~/.cache/sluice-host`, keyed by a hash of the module and the engine's
/// settings; `SLUICE_HOST_CACHE=off` disables it.
fn compile_cached(bytes: &[u8]) -> Result<Module> {
    use std::hash::{Hash, Hasher};
    let dir = match std::env::var_os("SLUICE_HOST_CACHE") {
        Some(dir) if dir == "off" => None,
        Some(dir) => Some(PathBuf::from(dir)),
        None => std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .map(|d| d.join("sluice-host")),
    };
    let Some(dir) = dir else {
        return Ok(Module::new(engine(), bytes)?);
    };
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine().precompile_compatibility_hash().hash(&mut hasher);
    bytes.hash(&mut hasher);
    let file = dir.join(format!("{:016x}-{}.cwasm", hasher.finish(), bytes.len()));
    if file.exists() {
        // SAFETY: the file is one this function wrote with `Module::serialize`
        // for this engine configuration (the name hashes both); wasmtime also
        // checks the engine compatibility header and fails rather than load a
        // mismatched artifact, in which case we recompile.
        if let Ok(module) = unsafe { Module::deserialize_file(engine(), &file) } {
            return Ok(module);
        }
    }
    let module = Module::new(engine(), bytes)?;
    if let Ok(serialized) = module.serialize() {
        let tmp = dir.join(format!(
            ".{}.{}",
            std::process::id(),
            file.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("module")
        ));
        // Best effort: a cache that cannot be written only costs time.
        if std::fs::create_dir_all(&dir).is_ok()
            && std::fs::write(&tmp, serialized).is_ok()
            && std::fs::rename(&tmp, &file).is_err()
        {
            let _ = std::fs::remove_file(&tmp);
        }
        prune(&dir, 16);
    }
    Ok(module)
}

/// Keeps the `keep` most recently written compiled modules in `dir`.
fn prune(dir: &Path, keep: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut files: Vec<(SystemTime, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "cwasm"))
        .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
        .collect();
    files.sort_by_key(|f| std::cmp::Reverse(f.0));
    for (_, path) in files.into_iter().skip(keep) {
        let _ = std::fs::remove_file(path);
    }
}

enum Source {
    File(PathBuf),
    Bytes(Vec<u8>),
}

/// Configures and starts a [`Host`].
pub struct HostBuilder {
    source: Source,
    plugin_config: Vec<u8>,
    vm_config: Vec<u8>,
    workers: usize,
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
    fn new(source: Source) -> Self {
        Self {
            source,
            plugin_config: Vec::new(),
            vm_config: Vec::new(),
            workers: 1,
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
        let module = match &self.source {
            Source::File(path) => compile_file(path)?,
            Source::Bytes(bytes) => Module::new(engine(), bytes)
                .map_err(anyhow::Error::from)
                .context("cannot compile the wasm module")?,
        };
        let mut linker = Linker::new(engine());
        let mut names = Vec::new();
        abi::link(&mut linker, &mut names)?;
        wasi::link(&mut linker, &mut names)?;
        let unknown: Vec<String> = module
            .imports()
            .filter(|i| !names.contains(&(i.module(), i.name())))
            .map(|i| format!("{}.{}", i.module(), i.name()))
            .collect();
        if !unknown.is_empty() {
            bail!(
                "the module imports functions this host does not provide: {}",
                unknown.join(", ")
            );
        }
        let abi: Vec<&str> = module
            .exports()
            .map(|e| e.name())
            .filter(|n| n.starts_with("proxy_abi_version_"))
            .collect();
        if abi.is_empty() {
            bail!("not a proxy-wasm module: it exports no proxy_abi_version_* function");
        }
        if !abi.contains(&"proxy_abi_version_0_2_1") && !abi.contains(&"proxy_abi_version_0_2_0") {
            bail!(
                "unsupported proxy-wasm ABI {}: this host implements 0.2.1",
                abi.join(", ")
            );
        }

        let mut shared = Shared::new(self.start);
        shared.log_level = self.log_level;
        shared.vm_id = self.vm_id.clone();
        shared.plugin_name = self.plugin_name.clone();
        shared.root_id = self.root_id.clone();
        shared.properties = self.properties.clone();
        let shared = Arc::new(Mutex::new(shared));

        let mut host = Host {
            shared: shared.clone(),
            workers: Vec::new(),
            plugin_config: self.plugin_config.clone(),
        };
        let mut rejected = None;
        for index in 0..self.workers {
            let logs_before = host.logs().len();
            let mut worker = Worker::instantiate(
                &linker,
                &module,
                shared.clone(),
                index,
                self.seed,
                self.fuel_limit,
            )?;
            worker.start(&self.vm_config)?;
            let accepted = worker.configure(&self.plugin_config)?;
            host.workers.push(worker);
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

/// One VM: an Envoy worker thread's instance of the plugin.
pub struct Worker {
    pub(crate) store: Store<VmState>,
    instance: Instance,
    index: usize,
    next_context: u32,
    failed: Option<String>,
    fuel_limit: u64,
}

impl Worker {
    fn instantiate(
        linker: &Linker<VmState>,
        module: &Module,
        shared: Arc<Mutex<Shared>>,
        index: usize,
        seed: u64,
        fuel_limit: u64,
    ) -> Result<Self> {
        let root_id = 1;
        let mut store = Store::new(engine(), VmState::new(shared, index, root_id, seed));
        store.set_fuel(fuel_limit)?;
        let instance = linker
            .instantiate(&mut store, module)
            .map_err(anyhow::Error::from)
            .context("cannot instantiate the module")?;
        let memory = instance
            .get_memory(&mut store, "memory")
            .ok_or_else(|| anyhow!("the module exports no memory"))?;
        let alloc = instance
            .get_typed_func::<i32, i32>(&mut store, "proxy_on_memory_allocate")
            .or_else(|_| instance.get_typed_func::<i32, i32>(&mut store, "malloc"))
            .map_err(|_| anyhow!("the module exports no proxy_on_memory_allocate(i32) -> i32"))?;
        store.data_mut().memory = Some(memory);
        store.data_mut().alloc = Some(alloc);
        Ok(Self {
            store,
            instance,
            index,
            next_context: root_id + 1,
            failed: None,
            fuel_limit,
        })
    }

    /// `_initialize`, root context creation, `proxy_on_vm_start`.
    fn start(&mut self, vm_config: &[u8]) -> Result<()> {
        let root = self.root_id();
        if self
            .instance
            .get_func(&mut self.store, "_initialize")
            .is_some()
        {
            self.call("_initialize", root, &[])?;
        } else if self.instance.get_func(&mut self.store, "_start").is_some() {
            self.call("_start", root, &[])?;
        }
        self.call("proxy_on_context_create", root, &[root as i32, 0])?;
        self.store.data_mut().config_buffer = Some((6, vm_config.to_vec()));
        let started = self.call(
            "proxy_on_vm_start",
            root,
            &[root as i32, vm_config.len() as i32],
        );
        self.store.data_mut().config_buffer = None;
        if started? == Some(0) {
            bail!(
                "proxy_on_vm_start returned false on worker {}: Envoy fails the VM",
                self.index
            );
        }
        Ok(())
    }

    /// `proxy_on_configure`; its result.
    pub(crate) fn configure(&mut self, config: &[u8]) -> Result<bool> {
        let root = self.root_id();
        self.store.data_mut().config_buffer = Some((7, config.to_vec()));
        let result = self.call(
            "proxy_on_configure",
            root,
            &[root as i32, config.len() as i32],
        );
        self.store.data_mut().config_buffer = None;
        Ok(result? != Some(0))
    }

    /// The size of the VM's linear memory, in bytes (what the module has grown it to: config,
    /// plan, heap).
    pub fn memory_bytes(&self) -> usize {
        self.store
            .data()
            .memory
            .map_or(0, |memory| memory.data_size(&self.store))
    }

    pub fn index(&self) -> usize {
        self.index
    }

    /// The root context id (the plugin's context on this VM).
    pub fn root_id(&self) -> u32 {
        self.store.data().root_id
    }

    /// The tick period the plugin set, if any.
    pub fn tick_period(&self) -> Option<Duration> {
        self.store.data().tick_period
    }

    /// Why this VM is unusable (a trap earlier), if it is.
    pub fn failure(&self) -> Option<&str> {
        self.failed.as_deref()
    }

    pub(crate) fn new_context_id(&mut self) -> u32 {
        let id = self.next_context;
        self.next_context += 1;
        id
    }

    pub(crate) fn state(&self) -> &VmState {
        self.store.data()
    }

    pub(crate) fn state_mut(&mut self) -> &mut VmState {
        self.store.data_mut()
    }

    /// Calls the export `hook` with `args` on behalf of `context_id`; `None` if
    /// the module does not export it (Envoy skips such hooks). A trap or an
    /// exhausted fuel limit is an error naming the hook, and the VM is dead from
    /// then on (as in Envoy, which fails every later request on that VM).
    pub(crate) fn call(
        &mut self,
        hook: &'static str,
        context_id: u32,
        args: &[i32],
    ) -> Result<Option<i32>> {
        if let Some(failure) = &self.failed {
            bail!(
                "{hook} not called: worker {} is dead since an earlier failure: {failure}",
                self.index
            );
        }
        let Some(func) = self.instance.get_func(&mut self.store, hook) else {
            return Ok(None);
        };
        let params: Vec<Val> = args.iter().map(|a| Val::I32(*a)).collect();
        let mut results = vec![Val::I32(0); func.ty(&self.store).results().len()];
        self.store.data_mut().current = context_id;
        self.store.set_fuel(self.fuel_limit)?;
        self.store.data().shared().execution_last = None;
        let logs_before = self.store.data().shared().logs.len();
        let result = func.call(&mut self.store, &params, &mut results);
        let fuel = self.fuel_limit - self.store.get_fuel().unwrap_or(0);
        let worker = self.index;
        self.store.data().shared().hook_fuel.push(HookFuel {
            worker,
            context_id,
            hook,
            fuel,
        });
        if let Err(error) = result {
            let mut message = format!("{hook} trapped: {}", self.describe(&error));
            let shared = self.store.data().shared();
            if let Some(log) = shared.logs[logs_before..]
                .iter()
                .rev()
                .find(|l| l.worker == worker && l.level == LogLevel::Critical)
            {
                message.push_str(&format!(" (the filter logged: {})", log.message));
            }
            drop(shared);
            self.failed = Some(message.clone());
            // A dead VM has no timers and no callouts any more.
            let state = self.store.data_mut();
            state.tick_period = None;
            state.pending_calls.clear();
            bail!(message);
        }
        Ok(results.first().and_then(Val::i32))
    }

    fn describe(&self, error: &wasmtime::Error) -> String {
        if let Some(trap) = error.downcast_ref::<Trap>() {
            if *trap == Trap::OutOfFuel {
                return format!(
                    "fuel limit of {} instructions exhausted (endless loop?)",
                    self.fuel_limit
                );
            }
            return format!("wasm trap: {trap}");
        }
        if let Some(exit) = error.downcast_ref::<wasi::ProcExit>() {
            return exit.to_string();
        }
        format!("{error}")
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
    pub(crate) workers: Vec<Worker>,
    plugin_config: Vec<u8>,
}

impl Host {
    /// A host for the module at `path` (a `.wasm` file).
    pub fn builder(path: impl AsRef<Path>) -> HostBuilder {
        HostBuilder::new(Source::File(path.as_ref().to_path_buf()))
    }

    /// A host for a module given as bytes (binary or WAT text).
    pub fn builder_from_bytes(bytes: impl AsRef<[u8]>) -> HostBuilder {
        HostBuilder::new(Source::Bytes(bytes.as_ref().to_vec()))
    }

    pub(crate) fn shared(&self) -> std::sync::MutexGuard<'_, Shared> {
        lock(&self.shared)
    }

    pub fn worker_count(&self) -> usize {
        self.workers.len()
    }

    /// Worker VM `index` (panics if there is no such worker).
    pub fn worker(&mut self, index: usize) -> WorkerRef<'_> {
        assert!(
            index < self.workers.len(),
            "no worker {index}: the host has {}",
            self.workers.len()
        );
        WorkerRef { host: self, index }
    }

    /// Inspect worker `index` (panics if there is no such worker).
    pub fn worker_info(&self, index: usize) -> &Worker {
        &self.workers[index]
    }

    /// A request on worker 0.
    pub fn request(&mut self) -> RequestBuilder<'_> {
        RequestBuilder::new(self, 0)
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
                .workers
                .iter()
                .filter_map(|w| w.state().tick_period.map(|_| w.state().next_tick))
                .min();
            let next_call = self
                .workers
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
            for index in 0..self.workers.len() {
                let state = self.workers[index].state_mut();
                let Some(period) = state.tick_period else {
                    continue;
                };
                if state.next_tick <= next {
                    state.next_tick = next + period;
                    let root = state.root_id;
                    self.workers[index].call("proxy_on_tick", root, &[root as i32])?;
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
                if let Some(w) = self.workers.get_mut(worker).filter(|w| w.failed.is_none()) {
                    w.call(
                        "proxy_on_queue_ready",
                        context_id,
                        &[context_id as i32, token as i32],
                    )?;
                }
                continue;
            }
            let now = self.shared().now;
            let due = self.workers.iter().enumerate().find_map(|(i, w)| {
                let calls = &w.state().pending_calls;
                calls.iter().position(|c| c.due <= now).map(|at| (i, at))
            });
            let Some((index, at)) = due else {
                return Ok(());
            };
            let call = self.workers[index].state_mut().pending_calls.remove(at);
            self.deliver_call(index, call)?;
        }
        bail!("events keep coming after 100000 deliveries: the filter loops through queues or HTTP calls")
    }

    fn deliver_call(&mut self, index: usize, call: PendingCall) -> Result<()> {
        let worker = &mut self.workers[index];
        let state = worker.state_mut();
        if call.context_id != state.root_id && !state.streams.contains_key(&call.context_id) {
            return Ok(()); // the context is gone; Envoy cancels its calls
        }
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
        state.call_response = Some(response);
        let result = worker.call("proxy_on_http_call_response", call.context_id, &args);
        worker.state_mut().call_response = None;
        result.map(drop)
    }

    /// Calls `proxy_on_configure` again on every worker's root context with a new
    /// configuration; returns what each returned. (Envoy would create a new root
    /// context for a pushed config; a filter that polls its config sees this.)
    pub fn reconfigure(&mut self, config: impl AsRef<[u8]>) -> Result<Vec<bool>> {
        self.plugin_config = config.as_ref().to_vec();
        let mut results = Vec::new();
        for index in 0..self.workers.len() {
            let config = self.plugin_config.clone();
            results.push(self.workers[index].configure(&config)?);
            self.run_pending()?;
        }
        Ok(results)
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

/// A handle on one worker of a host.
pub struct WorkerRef<'h> {
    host: &'h mut Host,
    index: usize,
}

impl<'h> WorkerRef<'h> {
    /// A request on this worker.
    pub fn request(self) -> RequestBuilder<'h> {
        RequestBuilder::new(self.host, self.index)
    }
}
