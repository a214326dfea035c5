//! One HTTP request through the filter, as Envoy's filter chain drives it, and
//! what came out.

use crate::headers::HeaderMap;
use crate::host::Host;
use crate::state::{RequestInfo, Stream};
use crate::types::*;
use anyhow::{bail, Context as _, Result};
use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Builds and sends one request (see [`Host::request`]). Defaults:
/// `GET /` to authority `example.com`, scheme `http`, from `203.0.113.7:40000` (a
/// documentation address outside private ranges) to
/// `10.0.0.1:8080`; the upstream answers `200` with no body.
pub struct RequestBuilder<'h> {
    host: &'h mut Host,
    worker: usize,
    method: Vec<u8>,
    path: Vec<u8>,
    authority: Vec<u8>,
    scheme: Vec<u8>,
    headers: Vec<(Vec<u8>, Vec<u8>)>,
    body: Vec<u8>,
    trailers: HeaderMap,
    source: String,
    destination: String,
    properties: HashMap<String, Vec<u8>>,
    at: Option<SystemTime>,
    upstream: HeaderMap,
    upstream_body: Vec<u8>,
    upstream_details: String,
    upstream_latency: Duration,
}

impl<'h> RequestBuilder<'h> {
    pub(crate) fn new(host: &'h mut Host, worker: usize) -> Self {
        Self {
            host,
            worker,
            method: b"GET".to_vec(),
            path: b"/".to_vec(),
            authority: b"example.com".to_vec(),
            scheme: b"http".to_vec(),
            headers: Vec::new(),
            body: Vec::new(),
            trailers: HeaderMap::new(),
            source: "203.0.113.7:40000".to_string(),
            destination: "10.0.0.1:8080".to_string(),
            properties: HashMap::new(),
            at: None,
            upstream: HeaderMap::from_pairs([(":status", "200")]),
            upstream_body: Vec::new(),
            upstream_details: "via_upstream".to_string(),
            upstream_latency: Duration::ZERO,
        }
    }

    /// Adds a request header (repeat for duplicates; any bytes).
    pub fn header(mut self, name: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Self {
        self.headers
            .push((name.as_ref().to_vec(), value.as_ref().to_vec()));
        self
    }

    pub fn method(mut self, method: impl AsRef<[u8]>) -> Self {
        self.method = method.as_ref().to_vec();
        self
    }

    /// `:path`, query included.
    pub fn path(mut self, path: impl AsRef<[u8]>) -> Self {
        self.path = path.as_ref().to_vec();
        self
    }

    /// `:authority`.
    pub fn authority(mut self, authority: impl AsRef<[u8]>) -> Self {
        self.authority = authority.as_ref().to_vec();
        self
    }

    pub fn scheme(mut self, scheme: impl AsRef<[u8]>) -> Self {
        self.scheme = scheme.as_ref().to_vec();
        self
    }

    /// Request body (delivered in one `proxy_on_request_body`).
    pub fn body(mut self, body: impl AsRef<[u8]>) -> Self {
        self.body = body.as_ref().to_vec();
        self
    }

    pub fn trailer(mut self, name: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Self {
        self.trailers.add(name, value);
        self
    }

    /// Downstream peer `ip:port` (`source.address`).
    pub fn source(mut self, address: &str) -> Self {
        self.source = address.to_string();
        self
    }

    /// Local address `ip:port` (`destination.address`).
    pub fn destination(mut self, address: &str) -> Self {
        self.destination = address.to_string();
        self
    }

    /// A property only this request sees (dotted name).
    pub fn property(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.properties
            .insert(name.to_string(), value.as_ref().to_vec());
        self
    }

    /// Sends the request at virtual time `at`: the clock advances to it first
    /// (firing ticks on the way). Earlier than now is an error.
    pub fn at(mut self, at: SystemTime) -> Self {
        self.at = Some(at);
        self
    }

    /// The upstream's response status (default 200).
    pub fn upstream_status(mut self, status: u16) -> Self {
        self.upstream.replace(":status", status.to_string());
        self
    }

    /// Adds an upstream response header.
    pub fn upstream_header(mut self, name: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Self {
        self.upstream.add(name, value);
        self
    }

    /// `response.code_details` of the response (default `via_upstream`). Use
    /// Envoy's own details to stand for a reply Envoy generated instead of the
    /// upstream, e.g. `upstream_status(504).response_code_details("upstream_response_timeout")`.
    pub fn response_code_details(mut self, details: &str) -> Self {
        self.upstream_details = details.to_string();
        self
    }

    /// Virtual time the upstream takes to answer: the shared clock advances this
    /// much between the request and the response phase (ticks due meanwhile fire).
    pub fn upstream_latency(mut self, latency: Duration) -> Self {
        self.upstream_latency = latency;
        self
    }

    pub fn upstream_body(mut self, body: impl AsRef<[u8]>) -> Self {
        self.upstream_body = body.as_ref().to_vec();
        self
    }

    /// Runs the request through the filter: context create, request headers
    /// (body, trailers), the upstream response or the filter's local reply through
    /// response headers (body), then `proxy_on_done`, `proxy_on_log`,
    /// `proxy_on_delete`. A hook that returns `Pause` waits for the filter to
    /// resume (`proxy_continue_stream`) or reply; pending HTTP calls of the request
    /// are driven to their response on the virtual clock; if nothing can resume it
    /// the request fails.
    pub fn send(self) -> Result<Outcome> {
        let Self {
            host,
            worker: w,
            method,
            path,
            authority,
            scheme,
            headers,
            body,
            trailers,
            source,
            destination,
            properties,
            at,
            upstream,
            upstream_body,
            upstream_details,
            upstream_latency,
        } = self;
        if let Some(at) = at {
            let target = at.duration_since(UNIX_EPOCH).unwrap_or_default();
            let now = host.shared().now;
            if target < now {
                bail!("cannot send a request at {at:?}: the virtual clock is already past it");
            }
            host.advance_to(target)?;
        }
        let mut sent = HeaderMap::from_pairs([
            (":authority", authority),
            (":path", path),
            (":method", method),
            (":scheme", scheme),
        ]);
        for (k, v) in headers {
            sent.add(k, v);
        }
        validate(&sent)?;

        let marks = Marks::take(host);
        let root = host.workers[w].root_id();
        let ctx = host.workers[w].new_context_id();
        let start = host.shared().now;
        let info = RequestInfo {
            source,
            destination,
            start,
            properties,
            code_details: String::new(),
        };
        let mut stream = Stream::new(info);
        stream.request_headers = Some(sent.clone());
        host.workers[w].state_mut().streams.insert(ctx, stream);

        let mut run = Run {
            host,
            w,
            ctx,
            actions: Vec::new(),
        };
        run.hook("proxy_on_context_create", &[ctx as i32, root as i32])?;
        let eos = body.is_empty() && trailers.is_empty();
        run.phase(
            "proxy_on_request_headers",
            &[ctx as i32, sent.len() as i32, eos as i32],
            Phase::Request,
        )?;
        if !run.stopped() && !body.is_empty() {
            run.stream().request_body = Some(body.clone());
            run.phase(
                "proxy_on_request_body",
                &[ctx as i32, body.len() as i32, trailers.is_empty() as i32],
                Phase::Request,
            )?;
        }
        if !run.stopped() && !trailers.is_empty() {
            run.stream().request_trailers = Some(trailers.clone());
            run.phase(
                "proxy_on_request_trailers",
                &[ctx as i32, trailers.len() as i32],
                Phase::Request,
            )?;
        }
        let forwarded = !run.stopped();
        let request_headers = run.stream().request_headers.clone().unwrap_or_default();

        let (mut response_headers, mut response_body) = match run.stream().local_reply.clone() {
            Some(reply) => {
                run.stream().info.code_details = reply.details.clone();
                local_reply_response(&reply)
            }
            None => {
                run.stream().info.code_details = upstream_details;
                if !run.stream().reset && !upstream_latency.is_zero() {
                    let target = run.host.shared().now + upstream_latency;
                    run.host.advance_to(target)?;
                }
                (upstream, upstream_body)
            }
        };
        let received_headers = response_headers.clone();
        if !run.stream().reset {
            let local_before = run.stream().local_reply.is_some();
            let eos = response_body.is_empty();
            run.stream().response_headers = Some(response_headers.clone());
            run.phase(
                "proxy_on_response_headers",
                &[ctx as i32, response_headers.len() as i32, eos as i32],
                Phase::Response,
            )?;
            if !run.stopped() && !response_body.is_empty() {
                run.stream().response_body = Some(response_body.clone());
                run.phase(
                    "proxy_on_response_body",
                    &[ctx as i32, response_body.len() as i32, 1],
                    Phase::Response,
                )?;
            }
            let stream = run.stream();
            match (&stream.local_reply, local_before) {
                // A local reply sent while the response was processed replaces it.
                (Some(reply), false) => {
                    (response_headers, response_body) = local_reply_response(reply)
                }
                _ => {
                    response_headers = stream.response_headers.clone().unwrap_or_default();
                    if let Some(body) = &stream.response_body {
                        response_body = body.clone();
                    }
                }
            }
        }
        let local_reply = run.stream().local_reply.clone();
        let reset = run.stream().reset;
        run.hook("proxy_on_done", &[ctx as i32])?;
        run.hook("proxy_on_log", &[ctx as i32])?;
        run.hook("proxy_on_delete", &[ctx as i32])?;
        let Run { host, actions, .. } = run;
        let state = host.workers[w].state_mut();
        state.streams.remove(&ctx);
        state.pending_calls.retain(|c| c.context_id != ctx);
        state.current = state.root_id;

        let shared = host.shared();
        let fuel = Fuel {
            hooks: shared.hook_fuel[marks.fuel..].to_vec(),
        };
        Ok(Outcome {
            worker: w,
            context_id: ctx,
            sent_headers: sent,
            request_headers,
            forwarded,
            received_headers,
            response_headers,
            response_body,
            local_reply,
            reset,
            actions,
            logs: shared.logs[marks.logs..].to_vec(),
            foreign_calls: shared.foreign_calls[marks.foreign..].to_vec(),
            http_calls: shared.http_calls[marks.http..].to_vec(),
            metrics_before: marks.metrics,
            metrics: shared.metrics_snapshot(),
            fuel,
        })
    }
}

/// What Envoy's HTTP codecs let through to filters: header names are tokens
/// (RFC 9110), values have no NUL, CR or LF. Anything else is refused before a
/// filter could see it, so a request carrying it is an error here.
fn validate(headers: &HeaderMap) -> Result<()> {
    let token = |b: &u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b);
    for (name, value) in headers.iter() {
        let bare = name.strip_prefix(b":").unwrap_or(name);
        if bare.is_empty() || !bare.iter().all(token) {
            bail!(
                "invalid header name \"{}\": Envoy rejects the request before any filter runs",
                name.escape_ascii()
            );
        }
        if value.iter().any(|b| matches!(b, 0 | b'\r' | b'\n')) {
            bail!(
                "header {} has NUL, CR or LF in its value: Envoy rejects the request before any filter runs",
                String::from_utf8_lossy(name)
            );
        }
    }
    Ok(())
}

/// The response Envoy sends for a local reply: `:status`, `content-length` and
/// `content-type: text/plain` when there is a body, then the filter's headers.
fn local_reply_response(reply: &LocalReply) -> (HeaderMap, Vec<u8>) {
    let mut headers = HeaderMap::from_pairs([(":status", reply.status.to_string())]);
    if !reply.body.is_empty() {
        headers.add("content-length", reply.body.len().to_string());
        if !reply.headers.contains("content-type") {
            headers.add("content-type", "text/plain");
        }
    }
    for (k, v) in reply.headers.iter() {
        headers.add(k, v);
    }
    (headers, reply.body.clone())
}

struct Marks {
    logs: usize,
    foreign: usize,
    http: usize,
    fuel: usize,
    metrics: Metrics,
}

impl Marks {
    fn take(host: &Host) -> Self {
        let shared = host.shared();
        Self {
            logs: shared.logs.len(),
            foreign: shared.foreign_calls.len(),
            http: shared.http_calls.len(),
            fuel: shared.hook_fuel.len(),
            metrics: shared.metrics_snapshot(),
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Phase {
    Request,
    Response,
}

struct Run<'h> {
    host: &'h mut Host,
    w: usize,
    ctx: u32,
    actions: Vec<(&'static str, Action)>,
}

impl Run<'_> {
    fn stream(&mut self) -> &mut Stream {
        let ctx = self.ctx;
        self.host.workers[self.w]
            .state_mut()
            .streams
            .get_mut(&ctx)
            .expect("the request's stream lives until send returns")
    }

    fn stopped(&mut self) -> bool {
        let stream = self.stream();
        stream.local_reply.is_some() || stream.reset
    }

    fn hook(&mut self, hook: &'static str, args: &[i32]) -> Result<Option<i32>> {
        let result = self.host.workers[self.w].call(hook, self.ctx, args)?;
        self.host.run_pending()?;
        Ok(result)
    }

    /// Runs a hook that returns an Action and waits while it pauses.
    fn phase(&mut self, hook: &'static str, args: &[i32], phase: Phase) -> Result<()> {
        {
            let stream = self.stream();
            stream.continued_request = false;
            stream.continued_response = false;
        }
        let action = match self.hook(hook, args)? {
            Some(0) | None => Action::Continue,
            Some(1) => Action::Pause,
            Some(other) => Action::Other(other),
        };
        self.actions.push((hook, action));
        if action == Action::Continue {
            return Ok(());
        }
        loop {
            let stream = self.stream();
            let resumed = match phase {
                Phase::Request => stream.continued_request,
                Phase::Response => stream.continued_response,
            };
            if resumed || stream.local_reply.is_some() || stream.reset {
                return Ok(());
            }
            let ctx = self.ctx;
            let next = self.host.workers[self.w]
                .state()
                .pending_calls
                .iter()
                .filter(|c| c.context_id == ctx)
                .map(|c| c.due)
                .min();
            match next {
                Some(due) if due != Duration::MAX => self.host.advance_to(due).with_context(|| format!("while {hook} waited for its HTTP call"))?,
                _ => bail!("{hook} paused the request and nothing can resume it (no HTTP call of this request is pending)"),
            }
        }
    }
}

fn changes(before: &HeaderMap, after: &HeaderMap) -> Vec<HeaderChange> {
    let mut names: Vec<&[u8]> = Vec::new();
    for (k, _) in before.iter().chain(after.iter()) {
        if !names.contains(&k) {
            names.push(k);
        }
    }
    let mut changes = Vec::new();
    for name in names {
        let was = before.get_all(name);
        let now = after.get_all(name);
        let name = String::from_utf8_lossy(name).into_owned();
        if now.is_empty() {
            changes.push(HeaderChange::Removed { name });
        } else if was != now {
            changes.push(HeaderChange::Set {
                name,
                values: now.iter().map(|v| v.to_vec()).collect(),
            });
        }
    }
    changes
}

/// What a hook returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Continue,
    Pause,
    Other(i32),
}

/// What came out of a request.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub worker: usize,
    pub context_id: u32,
    /// The headers the client sent.
    pub sent_headers: HeaderMap,
    /// The request headers after the request phase: what the upstream got if
    /// `forwarded`.
    pub request_headers: HeaderMap,
    /// Whether the request reached the upstream (no local reply, no reset).
    pub forwarded: bool,
    /// The response headers the client got.
    /// The response headers the filter received (the upstream's, or its local reply's).
    pub received_headers: HeaderMap,
    pub response_headers: HeaderMap,
    pub response_body: Vec<u8>,
    pub local_reply: Option<LocalReply>,
    /// The filter reset the stream (`proxy_close_stream`).
    pub reset: bool,
    /// What each header/body hook returned, in order.
    pub actions: Vec<(&'static str, Action)>,
    /// Log lines written while the request ran (every worker).
    pub logs: Vec<LogEntry>,
    pub foreign_calls: Vec<ForeignCall>,
    pub http_calls: Vec<HttpCall>,
    pub metrics_before: Metrics,
    /// Every metric after the request.
    pub metrics: Metrics,
    /// Fuel per hook of this request (and of events delivered meanwhile).
    pub fuel: Fuel,
}

/// A change the filter made to the request headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderChange {
    /// The header now has these values (it was absent or different).
    Set {
        name: String,
        values: Vec<Vec<u8>>,
    },
    Removed {
        name: String,
    },
}

impl Outcome {
    /// First value of a request header after the filter ran, as text.
    pub fn request_header(&self, name: &str) -> Option<String> {
        self.request_headers.get_str(name)
    }

    /// First value of a response header the client got, as text.
    pub fn response_header(&self, name: &str) -> Option<String> {
        self.response_headers.get_str(name)
    }

    /// The response status the client got.
    pub fn status(&self) -> Option<u16> {
        self.response_header(":status")?.parse().ok()
    }

    /// Request headers the filter set, changed or removed, by name.
    pub fn request_changes(&self) -> Vec<HeaderChange> {
        changes(&self.sent_headers, &self.request_headers)
    }

    /// Response headers the filter set, changed or removed (against what it received).
    pub fn response_changes(&self) -> Vec<HeaderChange> {
        changes(&self.received_headers, &self.response_headers)
    }

    /// How much a counter or gauge moved during the request (histograms: new samples).
    pub fn metric_delta(&self, name: &str) -> i64 {
        let value = |m: &Metrics| m.get(name).map_or(0, |v| v.value() as i64);
        value(&self.metrics) - value(&self.metrics_before)
    }

    /// Log lines at `level` or above.
    pub fn logs_at_least(&self, level: LogLevel) -> Vec<&LogEntry> {
        self.logs.iter().filter(|l| l.level >= level).collect()
    }

    /// Whether the filter called the foreign function `name`.
    pub fn called_foreign(&self, name: &str) -> bool {
        self.foreign_calls.iter().any(|c| c.name == name)
    }
}
