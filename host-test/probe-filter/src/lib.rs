//! A test-only proxy-wasm filter for host-test: its plugin configuration (JSON)
//! lists operations to run at each hook, so the host's tests can drive every
//! hostcall through a real module. Results of operations in an HTTP context are
//! written into headers of the phase's map (`to`); in the root context they are
//! logged at info as `to=value`.
//!
//! ```json
//! { "tick_ms": 1000, "queue": "jobs", "reject": false,
//!   "on_configure": [ops], "on_tick": [ops], "request": [ops], "response": [ops] }
//! ```
//! A request header `x-probe-trap: unreachable | panic` makes
//! `on_http_request_headers` trap.

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, Bytes, ContextType, LogLevel, MapType, MetricType, Status};
use serde::Deserialize;
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(ProbeRoot { config: Rc::new(Config::default()), queue: None }) });
}}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct Config {
    reject: bool,
    tick_ms: u64,
    queue: Option<String>,
    on_configure: Vec<Op>,
    on_tick: Vec<Op>,
    request: Vec<Op>,
    response: Vec<Op>,
    /// Replaces the whole response body (`proxy_set_buffer_bytes`).
    response_body: Option<String>,
    /// Writes `x-request-body` = the request body as read in `on_http_request_body`
    /// into the response headers.
    echo_request_body: bool,
}

#[derive(Deserialize, Clone, Copy, PartialEq)]
#[serde(rename_all = "snake_case")]
enum Cas {
    None,
    Current,
    Stale,
}

fn no_cas() -> Cas {
    Cas::None
}

#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
enum Op {
    Set {
        name: String,
        value: String,
    },
    Add {
        name: String,
        value: String,
    },
    Remove {
        name: String,
    },
    /// Copies the first value of `from` (bytes) into header `to`.
    Echo {
        from: String,
        to: String,
    },
    /// Reads the whole map: `to` = "count;k1=v1,k2=v2..." (bytes, lossy keys).
    Pairs {
        to: String,
    },
    /// Reads the whole map, appends a pair, writes the whole map back.
    AppendMap {
        name: String,
        value: String,
    },
    SharedSet {
        key: String,
        value: String,
        #[serde(default = "no_cas")]
        cas: Cas,
        to: String,
    },
    SharedGet {
        key: String,
        to: String,
    },
    Enqueue {
        #[serde(default)]
        vm_id: String,
        queue: String,
        value: String,
        to: String,
    },
    Dispatch {
        cluster: String,
        path: String,
        #[serde(default)]
        timeout_ms: u64,
        #[serde(default)]
        pause: bool,
        to: String,
    },
    Counter {
        name: String,
        by: i64,
        to: String,
    },
    Gauge {
        name: String,
        #[serde(default)]
        set: Option<u64>,
        #[serde(default)]
        add: Option<i64>,
        to: String,
    },
    Histogram {
        name: String,
        value: u64,
        to: String,
    },
    Property {
        path: Vec<String>,
        #[serde(default)]
        int: bool,
        to: String,
    },
    SetProperty {
        path: Vec<String>,
        value: String,
    },
    Log {
        level: u32,
        message: String,
    },
    Reply {
        status: u32,
        body: String,
        #[serde(default)]
        headers: Vec<(String, String)>,
    },
    Foreign {
        name: String,
        #[serde(default)]
        args: String,
        to: String,
    },
    Time {
        to: String,
    },
    Tick {
        ms: u64,
    },
    /// `proxy_get_log_level` into `to`.
    LogLevel {
        to: String,
    },
    /// `dispatch_grpc_call` (the host has no gRPC upstreams): status into `to`.
    Grpc {
        to: String,
    },
    /// `proxy_done`.
    Done {
        to: String,
    },
    /// Resets the stream (`proxy_close_stream`).
    Reset,
    Spin,
}

/// Where an operation runs.
enum Scope {
    Root,
    Http(MapType),
}

fn out(scope: &Scope, to: &str, value: &[u8]) {
    match scope {
        Scope::Http(map) => {
            let _ = hostcalls::add_map_value_bytes(*map, to, value);
        }
        Scope::Root => {
            let _ = hostcalls::log(
                LogLevel::Info,
                &format!("{to}={}", String::from_utf8_lossy(value)),
            );
        }
    }
}

fn status_text(status: Status) -> Vec<u8> {
    format!("{status:?}").into_bytes()
}

fn metric(kind: MetricType, name: &str) -> u32 {
    hostcalls::define_metric(kind, name).unwrap_or(0)
}

/// Runs `ops`; returns `Pause` when one asked to stop the stream.
fn run(ops: &[Op], scope: &Scope) -> Action {
    let map = match scope {
        Scope::Http(map) => *map,
        Scope::Root => MapType::HttpRequestHeaders,
    };
    let mut action = Action::Continue;
    for op in ops {
        match op {
            Op::Set { name, value } => {
                hostcalls::set_map_value_bytes(map, name, Some(value.as_bytes()))
                    .unwrap_or_default()
            }
            Op::Add { name, value } => {
                hostcalls::add_map_value_bytes(map, name, value.as_bytes()).unwrap_or_default()
            }
            Op::Remove { name } => hostcalls::remove_map_value(map, name).unwrap_or_default(),
            Op::Echo { from, to } => {
                let value = hostcalls::get_map_value_bytes(map, from)
                    .ok()
                    .flatten()
                    .unwrap_or_else(|| b"none".to_vec());
                out(scope, to, &value);
            }
            Op::Pairs { to } => {
                let pairs = hostcalls::get_map_bytes(map).unwrap_or_default();
                let mut text = format!("{};", pairs.len()).into_bytes();
                for (i, (k, v)) in pairs.iter().enumerate() {
                    if i > 0 {
                        text.push(b',');
                    }
                    text.extend_from_slice(k.as_bytes());
                    text.push(b'=');
                    text.extend_from_slice(v);
                }
                out(scope, to, &text);
            }
            Op::AppendMap { name, value } => {
                let mut pairs = hostcalls::get_map_bytes(map).unwrap_or_default();
                pairs.push((name.clone(), value.as_bytes().to_vec()));
                let view: Vec<(&str, &[u8])> = pairs
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_slice()))
                    .collect();
                hostcalls::set_map_bytes(map, view).unwrap_or_default();
            }
            Op::SharedSet {
                key,
                value,
                cas,
                to,
            } => {
                let current = hostcalls::get_shared_data(key)
                    .map(|(_, c)| c)
                    .unwrap_or(None);
                let cas = match cas {
                    Cas::None => None,
                    Cas::Current => current,
                    Cas::Stale => Some(current.unwrap_or(1).wrapping_sub(1).max(1) ^ 0x8000_0000),
                };
                let result = match hostcalls::set_shared_data(key, Some(value.as_bytes()), cas) {
                    Ok(()) => b"ok".to_vec(),
                    Err(status) => status_text(status),
                };
                out(scope, to, &result);
            }
            Op::SharedGet { key, to } => {
                let value = match hostcalls::get_shared_data(key) {
                    Ok((Some(value), cas)) => {
                        [value, format!("@{}", cas.unwrap_or(0)).into_bytes()].concat()
                    }
                    Ok((None, _)) => b"none".to_vec(),
                    Err(status) => status_text(status),
                };
                out(scope, to, &value);
            }
            Op::Enqueue {
                vm_id,
                queue,
                value,
                to,
            } => {
                let result = match hostcalls::resolve_shared_queue(vm_id, queue) {
                    Ok(Some(id)) => {
                        match hostcalls::enqueue_shared_queue(id, Some(value.as_bytes())) {
                            Ok(()) => b"ok".to_vec(),
                            Err(status) => status_text(status),
                        }
                    }
                    Ok(None) => b"no_queue".to_vec(),
                    Err(status) => status_text(status),
                };
                out(scope, to, &result);
            }
            Op::Dispatch {
                cluster,
                path,
                timeout_ms,
                pause,
                to,
            } => {
                let headers = vec![
                    (":method", "GET"),
                    (":path", path.as_str()),
                    (":authority", cluster.as_str()),
                ];
                let result = hostcalls::dispatch_http_call(
                    cluster,
                    headers,
                    None,
                    vec![],
                    Duration::from_millis(*timeout_ms),
                );
                match result {
                    Ok(token) => {
                        out(scope, to, format!("token {token}").as_bytes());
                        if *pause {
                            action = Action::Pause;
                        }
                    }
                    Err(status) => out(scope, to, &status_text(status)),
                }
            }
            Op::Counter { name, by, to } => {
                let id = metric(MetricType::Counter, name);
                let result = hostcalls::increment_metric(id, *by);
                let value = hostcalls::get_metric(id)
                    .map(|v| v.to_string())
                    .unwrap_or_else(|s| format!("{s:?}"));
                out(
                    scope,
                    to,
                    format!("id={id};inc={result:?};value={value}").as_bytes(),
                );
            }
            Op::Gauge { name, set, add, to } => {
                let id = metric(MetricType::Gauge, name);
                if let Some(v) = set {
                    let _ = hostcalls::record_metric(id, *v);
                }
                if let Some(d) = add {
                    let _ = hostcalls::increment_metric(id, *d);
                }
                let value = hostcalls::get_metric(id)
                    .map(|v| v.to_string())
                    .unwrap_or_else(|s| format!("{s:?}"));
                out(scope, to, format!("id={id};value={value}").as_bytes());
            }
            Op::Histogram { name, value, to } => {
                let id = metric(MetricType::Histogram, name);
                let recorded = hostcalls::record_metric(id, *value);
                let get = hostcalls::get_metric(id)
                    .map(|v| v.to_string())
                    .unwrap_or_else(|s| format!("{s:?}"));
                out(
                    scope,
                    to,
                    format!("id={id};record={recorded:?};get={get}").as_bytes(),
                );
            }
            Op::Property { path, int, to } => {
                let path: Vec<&str> = path.iter().map(String::as_str).collect();
                let value = match hostcalls::get_property(path) {
                    Ok(Some(bytes)) if *int => match <[u8; 8]>::try_from(bytes.as_slice()) {
                        Ok(b) => i64::from_le_bytes(b).to_string().into_bytes(),
                        Err(_) => b"not-an-int".to_vec(),
                    },
                    Ok(Some(bytes)) => bytes,
                    Ok(None) => b"none".to_vec(),
                    Err(status) => status_text(status),
                };
                out(scope, to, &value);
            }
            Op::SetProperty { path, value } => {
                let path: Vec<&str> = path.iter().map(String::as_str).collect();
                let _ = hostcalls::set_property(path, Some(value.as_bytes()));
            }
            Op::Log { level, message } => {
                let level = match level {
                    0 => LogLevel::Trace,
                    1 => LogLevel::Debug,
                    2 => LogLevel::Info,
                    3 => LogLevel::Warn,
                    4 => LogLevel::Error,
                    _ => LogLevel::Critical,
                };
                let _ = hostcalls::log(level, message);
            }
            Op::Reply {
                status,
                body,
                headers,
            } => {
                let headers: Vec<(&str, &str)> = headers
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                let _ = hostcalls::send_http_response(*status, headers, Some(body.as_bytes()));
                action = Action::Pause;
            }
            Op::Foreign { name, args, to } => {
                let value = match hostcalls::call_foreign_function(name, Some(args.as_bytes())) {
                    Ok(Some(bytes)) => bytes,
                    Ok(None) => b"ok".to_vec(),
                    Err(status) => status_text(status),
                };
                out(scope, to, &value);
            }
            Op::Time { to } => {
                let nanos = hostcalls::get_current_time()
                    .ok()
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_nanos());
                out(scope, to, nanos.to_string().as_bytes());
            }
            Op::Tick { ms } => {
                let _ = hostcalls::set_tick_period(Duration::from_millis(*ms));
            }
            Op::LogLevel { to } => {
                let level = hostcalls::get_log_level()
                    .map(|l| format!("{l:?}"))
                    .unwrap_or_else(|s| format!("{s:?}"));
                out(scope, to, level.as_bytes());
            }
            Op::Grpc { to } => {
                let result = hostcalls::dispatch_grpc_call(
                    "grpc",
                    "svc",
                    "Method",
                    vec![],
                    None,
                    Duration::from_secs(1),
                );
                out(scope, to, format!("{result:?}").as_bytes());
            }
            Op::Done { to } => {
                let result = hostcalls::done();
                out(scope, to, format!("{result:?}").as_bytes());
            }
            Op::Reset => {
                let _ = hostcalls::reset_http_request();
                action = Action::Pause;
            }
            Op::Spin => {
                let mut i: u64 = 0;
                loop {
                    i = std::hint::black_box(i.wrapping_add(1));
                }
            }
        }
    }
    action
}

/// The wasm `unreachable` instruction (natively, an abort: the crate only
/// builds natively for `cargo check --workspace`).
fn trap() -> ! {
    #[cfg(target_arch = "wasm32")]
    core::arch::wasm32::unreachable();
    #[cfg(not(target_arch = "wasm32"))]
    std::process::abort()
}

struct ProbeRoot {
    config: Rc<Config>,
    queue: Option<u32>,
}

impl Context for ProbeRoot {
    fn on_http_call_response(
        &mut self,
        _token: u32,
        headers: usize,
        body_size: usize,
        _trailers: usize,
    ) {
        let status = (headers > 0)
            .then(|| hostcalls::get_map_value(MapType::HttpCallResponseHeaders, ":status"))
            .and_then(|r| r.ok().flatten())
            .unwrap_or_else(|| "none".to_string());
        let body = hostcalls::get_buffer(
            proxy_wasm::types::BufferType::HttpCallResponseBody,
            0,
            body_size,
        )
        .ok()
        .flatten()
        .unwrap_or_default();
        log::info!(
            "call response: status={status} body={}",
            String::from_utf8_lossy(&body)
        );
        let _ = hostcalls::set_shared_data("probe.call.body", Some(&body), None);
    }
}

impl RootContext for ProbeRoot {
    fn on_vm_start(&mut self, size: usize) -> bool {
        if let Some(config) = self.get_vm_configuration() {
            log::info!(
                "vm config ({size} bytes): {}",
                String::from_utf8_lossy(&config)
            );
        }
        true
    }

    fn on_configure(&mut self, _size: usize) -> bool {
        let bytes: Bytes = self.get_plugin_configuration().unwrap_or_default();
        let config: Config = match serde_json::from_slice(&bytes) {
            Ok(config) => config,
            Err(e) => {
                log::error!("probe: invalid configuration: {e}");
                return false;
            }
        };
        if config.reject {
            log::error!("probe: configuration rejected on purpose");
            return false;
        }
        if config.tick_ms > 0 {
            let _ = hostcalls::set_tick_period(Duration::from_millis(config.tick_ms));
        }
        if let Some(name) = &config.queue {
            self.queue = hostcalls::register_shared_queue(name).ok();
        }
        run(&config.on_configure, &Scope::Root);
        self.config = Rc::new(config);
        true
    }

    fn on_tick(&mut self) {
        let id = metric(MetricType::Counter, "probe.ticks");
        let _ = hostcalls::increment_metric(id, 1);
        run(&self.config.on_tick, &Scope::Root);
    }

    fn on_queue_ready(&mut self, queue_id: u32) {
        while let Ok(Some(item)) = hostcalls::dequeue_shared_queue(queue_id) {
            log::info!("queue item: {}", String::from_utf8_lossy(&item));
            let id = metric(MetricType::Counter, "probe.queue.items");
            let _ = hostcalls::increment_metric(id, 1);
            let _ = hostcalls::set_shared_data("probe.queue.last", Some(&item), None);
        }
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(ProbeHttp {
            config: self.config.clone(),
            paused: false,
            request_body: None,
        }))
    }
}

struct ProbeHttp {
    config: Rc<Config>,
    paused: bool,
    request_body: Option<Bytes>,
}

impl Context for ProbeHttp {
    fn on_http_call_response(
        &mut self,
        token: u32,
        headers: usize,
        body_size: usize,
        _trailers: usize,
    ) {
        // A failed call has no response header map (Envoy answers BadArgument, on which the
        // SDK panics): read it only when there are headers.
        let status = if headers == 0 {
            "none".to_string()
        } else {
            self.get_http_call_response_header(":status")
                .unwrap_or_else(|| "none".to_string())
        };
        let body = self
            .get_http_call_response_body(0, body_size)
            .unwrap_or_default();
        let all = if headers == 0 {
            Vec::new()
        } else {
            self.get_http_call_response_headers_bytes()
        };
        self.add_http_request_header("x-call-status", &status);
        self.add_http_request_header_bytes("x-call-body", &body);
        self.add_http_request_header("x-call-headers", &format!("{headers}/{}", all.len()));
        self.add_http_request_header("x-call-token", &token.to_string());
        if let Ok((code, message)) = hostcalls::get_grpc_status() {
            self.add_http_request_header(
                "x-call-error",
                &format!("{code}:{}", message.unwrap_or_default()),
            );
        }
        if self.paused {
            self.paused = false;
            self.resume_http_request();
        }
    }
}

impl HttpContext for ProbeHttp {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        match self.get_http_request_header("x-probe-trap").as_deref() {
            Some("unreachable") => trap(),
            Some("panic") => panic!("probe asked to panic"),
            _ => {}
        }
        let action = run(
            &self.config.request,
            &Scope::Http(MapType::HttpRequestHeaders),
        );
        self.paused = action == Action::Pause;
        action
    }

    fn on_http_request_body(&mut self, size: usize, _end_of_stream: bool) -> Action {
        if self.config.echo_request_body {
            self.request_body = self.get_http_request_body(0, size);
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        if let Some(body) = self.request_body.take() {
            self.add_http_response_header_bytes("x-request-body", &body);
        }
        run(
            &self.config.response,
            &Scope::Http(MapType::HttpResponseHeaders),
        )
    }

    fn on_http_response_body(&mut self, size: usize, _end_of_stream: bool) -> Action {
        if let Some(body) = &self.config.response_body {
            self.set_http_response_body(0, size, body.as_bytes());
        }
        Action::Continue
    }

    fn on_log(&mut self) {
        let id = metric(MetricType::Counter, "probe.logged");
        let _ = hostcalls::increment_metric(id, 1);
    }
}
