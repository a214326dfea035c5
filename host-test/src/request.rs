//! One HTTP request: what the client sends and how the upstream answers
//! ([`Request`]), and what came out of the filter ([`Outcome`]). [`Host::send`]
//! drives it through the filter chain.

use crate::headers::HeaderMap;
use crate::host::Host;
use crate::types::*;
use anyhow::{bail, Result};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

/// One request and its upstream's answer. Defaults:
/// `GET /` to authority `example.com`, scheme `http`, from `203.0.113.7:40000` (a
/// documentation address outside private ranges) to
/// `10.0.0.1:8080`; the upstream answers `200` with no body. Build it with the
/// methods below, send it with [`Host::send`] (or through [`Host::request`]).
#[derive(Clone, Debug)]
pub struct Request {
    pub(crate) method: Vec<u8>,
    pub(crate) path: Vec<u8>,
    pub(crate) authority: Vec<u8>,
    pub(crate) scheme: Vec<u8>,
    pub(crate) headers: Vec<(Vec<u8>, Vec<u8>)>,
    pub(crate) body: Vec<u8>,
    pub(crate) trailers: HeaderMap,
    pub(crate) source: String,
    pub(crate) destination: String,
    pub(crate) properties: HashMap<String, Vec<u8>>,
    pub(crate) at: Option<SystemTime>,
    pub(crate) upstream: HeaderMap,
    pub(crate) upstream_body: Vec<u8>,
    pub(crate) upstream_details: String,
    pub(crate) upstream_latency: Duration,
    pub(crate) reset_before_response: bool,
}

impl Default for Request {
    fn default() -> Self {
        Self {
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
            reset_before_response: false,
        }
    }
}

impl Request {
    /// `GET /` with the defaults above.
    pub fn new() -> Self {
        Self::default()
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

    /// The stream is reset (client gone, upstream connection lost) after the request phase and
    /// before any response: the filter sees no response hooks, only the request's end.
    pub fn reset_before_response(mut self) -> Self {
        self.reset_before_response = true;
        self
    }
}

/// A [`Request`] bound to a host and a worker VM: `host.request().header(..).send()`.
pub struct RequestBuilder<'h> {
    host: &'h mut Host,
    worker: usize,
    request: Request,
}

/// The builder's methods are the request's.
macro_rules! delegate {
    ($($(#[$doc:meta])* $name:ident($($arg:ident: $ty:ty),*);)*) => {$(
        $(#[$doc])*
        pub fn $name(mut self, $($arg: $ty),*) -> Self {
            self.request = self.request.$name($($arg),*);
            self
        }
    )*};
}

impl<'h> RequestBuilder<'h> {
    pub(crate) fn new(host: &'h mut Host, worker: usize) -> Self {
        Self {
            host,
            worker,
            request: Request::default(),
        }
    }

    delegate! {
        header(name: impl AsRef<[u8]>, value: impl AsRef<[u8]>);
        method(method: impl AsRef<[u8]>);
        path(path: impl AsRef<[u8]>);
        authority(authority: impl AsRef<[u8]>);
        scheme(scheme: impl AsRef<[u8]>);
        body(body: impl AsRef<[u8]>);
        trailer(name: impl AsRef<[u8]>, value: impl AsRef<[u8]>);
        source(address: &str);
        destination(address: &str);
        property(name: &str, value: impl AsRef<[u8]>);
        at(at: SystemTime);
        upstream_status(status: u16);
        upstream_header(name: impl AsRef<[u8]>, value: impl AsRef<[u8]>);
        response_code_details(details: &str);
        upstream_latency(latency: Duration);
        upstream_body(body: impl AsRef<[u8]>);
        reset_before_response();
    }

    /// Sends the request: [`Host::send`].
    pub fn send(self) -> Result<Outcome> {
        self.host.send(self.worker, &self.request)
    }
}

/// What Envoy's HTTP codecs let through to filters: header names are tokens
/// (RFC 9110), values have no NUL, CR or LF. Anything else is refused before a
/// filter could see it, so a request carrying it is an error here.
pub(crate) fn validate(headers: &HeaderMap) -> Result<()> {
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
pub(crate) fn local_reply_response(reply: &LocalReply) -> (HeaderMap, Vec<u8>) {
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
    /// The metrics that moved during the request, by how much (counters and gauges: value;
    /// histograms: samples added). [`Host::metrics`] has every value.
    pub metric_deltas: BTreeMap<String, i64>,
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
        self.metric_deltas.get(name).copied().unwrap_or(0)
    }

    /// Whether the filter called the foreign function `name`.
    pub fn called_foreign(&self, name: &str) -> bool {
        self.foreign_calls.iter().any(|c| c.name == name)
    }
}
