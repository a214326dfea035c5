//! `sluice-echo`: the upstream behind Envoy in Sluice's end-to-end tests, demo and load runs.
//!
//! Every instance stands for one version of a service (`v1`, `v2`, `blue`, ...). It answers every
//! request with status 200 (or 503 on a configured, deterministic fail rate), the header
//! `x-echo-version: <version>`, and a JSON body that tells where the request went and what it
//! carried:
//!
//! ```json
//! {"version":"v2","method":"GET","path":"/reviews?u=1","headers":{"x-sluice-flags":["checkout=on"]}}
//! ```
//!
//! A request header `x-echo-response-header: <name>: <value>` makes it answer with that response
//! header too: the service side of a conversion goal (`x-sluice-goal: purchase`) in the tests.
//!
//! It is a small threaded HTTP/1.1 server on `std::net` (one thread per connection, keep-alive,
//! `Content-Length` and chunked request bodies), enough for Envoy's upstream connections and for
//! `wrk` through Envoy. Use it as a library ([`EchoServer::start`]) inside tests, or as the
//! `sluice-echo` binary for the demo and benchmarks.
use std::collections::{BTreeMap, HashMap};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// The response header that names the version that answered.
pub const VERSION_HEADER: &str = "x-echo-version";

/// Request header naming one response header to add: `x-echo-response-header: name: value`.
pub const RESPONSE_HEADER_REQUEST: &str = "x-echo-response-header";

/// Largest request head (request line + headers) accepted, in bytes.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// How an echo instance behaves.
#[derive(Clone, Debug)]
pub struct EchoOptions {
    /// The version name it reports (`x-echo-version` and `"version"` in the body).
    pub version: String,
    /// Share of requests answered with 503, in `[0, 1]`. Deterministic: with 0.1 the 10th, 20th,
    /// 30th, ... request (counted across all connections) fails.
    pub fail_rate: f64,
    /// Delay before each response.
    pub delay: Duration,
    /// Call a downstream service before answering, as an app in a call chain does.
    pub forward: Option<Forward>,
}

/// Where an echo instance calls next: `GET <same path>` to `addr` (its outbound proxy) with
/// `Host: authority`, carrying only the incoming `baggage` header, as an app instrumented with
/// OpenTelemetry forwards it and nothing else. The downstream's JSON answer is put into this
/// instance's answer as `"downstream"` (a failed call: `"downstream_error"`).
#[derive(Clone, Debug)]
pub struct Forward {
    pub addr: SocketAddr,
    pub authority: String,
}

impl EchoOptions {
    /// A healthy, immediate instance of `version`.
    pub fn new(version: impl Into<String>) -> Self {
        EchoOptions {
            version: version.into(),
            fail_rate: 0.0,
            delay: Duration::ZERO,
            forward: None,
        }
    }

    /// Calls `authority` through `addr` before each answer (see [`Forward`]).
    pub fn forward(mut self, addr: SocketAddr, authority: &str) -> Self {
        self.forward = Some(Forward {
            addr,
            authority: authority.to_string(),
        });
        self
    }

    /// Answers this share of requests with 503 (see [`EchoOptions::fail_rate`]).
    pub fn fail_rate(mut self, rate: f64) -> Self {
        self.fail_rate = rate;
        self
    }

    /// Waits this long before each response.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// Counts requests and decides, deterministically, which ones fail.
#[derive(Debug)]
struct Counter {
    requests: AtomicU64,
    failures: AtomicU64,
    /// Fail rate in parts per million.
    fail_ppm: u64,
}

impl Counter {
    fn new(fail_rate: f64) -> Self {
        let rate = if fail_rate.is_finite() {
            fail_rate.clamp(0.0, 1.0)
        } else {
            0.0
        };
        Counter {
            requests: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            fail_ppm: (rate * 1_000_000.0).round() as u64,
        }
    }

    /// Counts one request; true when it is one of the requests that must fail.
    fn next_fails(&self) -> bool {
        let n = self.requests.fetch_add(1, Ordering::Relaxed) + 1;
        let fails = (n * self.fail_ppm) / 1_000_000 > ((n - 1) * self.fail_ppm) / 1_000_000;
        if fails {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        fails
    }
}

struct Shared {
    options: EchoOptions,
    counter: Counter,
    stop: AtomicBool,
    /// Open connections, so that shutting down also ends keep-alive connections.
    connections: Mutex<HashMap<u64, TcpStream>>,
}

/// A running echo instance; dropping it stops it (listener and open connections).
pub struct EchoServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl EchoServer {
    /// Binds `listen` (use port 0 for a free port) and serves on background threads.
    pub fn start(listen: &str, options: EchoOptions) -> io::Result<EchoServer> {
        let listener = TcpListener::bind(listen)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            counter: Counter::new(options.fail_rate),
            options,
            stop: AtomicBool::new(false),
            connections: Mutex::new(HashMap::new()),
        });
        let accept_shared = Arc::clone(&shared);
        let acceptor = thread::Builder::new()
            .name(format!("echo-{}-accept", accept_shared.options.version))
            .spawn(move || accept_loop(listener, accept_shared))?;
        Ok(EchoServer {
            addr,
            shared,
            acceptor: Some(acceptor),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The version name this instance answers with.
    pub fn version(&self) -> &str {
        &self.shared.options.version
    }

    /// Requests answered so far (failed ones included).
    pub fn requests(&self) -> u64 {
        self.shared.counter.requests.load(Ordering::Relaxed)
    }

    /// Requests answered with 503 on purpose so far.
    pub fn failures(&self) -> u64 {
        self.shared.counter.failures.load(Ordering::Relaxed)
    }

    /// Blocks until the server stops (for the binary: forever, until killed).
    pub fn wait(mut self) {
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }

    fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept() with a connection of our own.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        if let Ok(mut connections) = self.shared.connections.lock() {
            for (_, stream) in connections.drain() {
                let _ = stream.shutdown(Shutdown::Both);
            }
        }
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut next_id = 0u64;
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        next_id += 1;
        let id = next_id;
        if let (Ok(clone), Ok(mut connections)) = (stream.try_clone(), shared.connections.lock()) {
            connections.insert(id, clone);
        }
        let conn_shared = Arc::clone(&shared);
        let spawned = thread::Builder::new()
            .name(format!("echo-{}-conn", shared.options.version))
            .spawn(move || {
                let _ = serve_connection(stream, &conn_shared);
                if let Ok(mut connections) = conn_shared.connections.lock() {
                    connections.remove(&id);
                }
            });
        if spawned.is_err() {
            if let Ok(mut connections) = shared.connections.lock() {
                if let Some(stream) = connections.remove(&id) {
                    let _ = stream.shutdown(Shutdown::Both);
                }
            }
        }
    }
}

/// One parsed request head.
struct Request {
    method: String,
    path: String,
    http10: bool,
    headers: Vec<(String, String)>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn keep_alive(&self) -> bool {
        let connection = self.header("connection").map(str::to_ascii_lowercase);
        match connection.as_deref() {
            Some(c) if c.contains("close") => false,
            Some(c) if c.contains("keep-alive") => true,
            _ => !self.http10,
        }
    }
}

fn serve_connection(stream: TcpStream, shared: &Shared) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    loop {
        let Some(request) = read_head(&mut reader)? else {
            return Ok(()); // the peer closed the connection between requests
        };
        let body_bytes = read_body(&mut reader, &request)?;
        if shared.stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        if !shared.options.delay.is_zero() {
            thread::sleep(shared.options.delay);
        }
        let keep_alive = request.keep_alive();
        let fails = shared.counter.next_fails();
        let downstream = shared
            .options
            .forward
            .as_ref()
            .map(|f| call_downstream(f, &request));
        let response = render(
            &shared.options.version,
            &request,
            body_bytes,
            fails,
            keep_alive,
            downstream,
        );
        writer.write_all(&response)?;
        if !keep_alive {
            return Ok(());
        }
    }
}

fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_string())
}

/// Reads a request line and headers; `None` on a clean end of stream before a request.
fn read_head(reader: &mut BufReader<TcpStream>) -> io::Result<Option<Request>> {
    let mut line = String::new();
    let mut total = 0usize;
    // Tolerate empty lines before a request line (RFC 9112 §2.2).
    loop {
        line.clear();
        let n = reader.read_line(&mut line)?;
        if n == 0 {
            return Ok(None);
        }
        total += n;
        if !line.trim().is_empty() {
            break;
        }
        if total > MAX_HEAD_BYTES {
            return Err(invalid("request head too large"));
        }
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(path), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid("malformed request line"));
    };
    let mut request = Request {
        method: method.to_string(),
        path: path.to_string(),
        http10: version == "HTTP/1.0",
        headers: Vec::new(),
    };
    loop {
        line.clear();
        let n = reader.read_line(&mut line)?;
        if n == 0 {
            return Err(invalid("connection closed inside the request head"));
        }
        total += n;
        if total > MAX_HEAD_BYTES {
            return Err(invalid("request head too large"));
        }
        let trimmed = line.trim_end_matches(['\r', '\n']);
        if trimmed.is_empty() {
            return Ok(Some(request));
        }
        let Some((name, value)) = trimmed.split_once(':') else {
            return Err(invalid("malformed header line"));
        };
        request
            .headers
            .push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
}

/// Reads and discards the request body; returns its length.
fn read_body(reader: &mut BufReader<TcpStream>, request: &Request) -> io::Result<u64> {
    let chunked = request
        .header("transfer-encoding")
        .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
    if chunked {
        let mut total = 0u64;
        let mut line = String::new();
        loop {
            line.clear();
            reader.read_line(&mut line)?;
            let size_text = line.trim().split(';').next().unwrap_or("");
            let size = u64::from_str_radix(size_text, 16).map_err(|_| invalid("bad chunk size"))?;
            if size == 0 {
                // Trailers, up to the empty line.
                loop {
                    line.clear();
                    if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
                        return Ok(total);
                    }
                }
            }
            total += io::copy(&mut reader.by_ref().take(size), &mut io::sink())?;
            line.clear();
            reader.read_line(&mut line)?; // CRLF after the chunk
        }
    }
    let length = match request.header("content-length") {
        Some(value) => value
            .parse::<u64>()
            .map_err(|_| invalid("bad content-length"))?,
        None => 0,
    };
    let copied = io::copy(&mut reader.by_ref().take(length), &mut io::sink())?;
    if copied < length {
        return Err(invalid("connection closed inside the request body"));
    }
    Ok(copied)
}

/// The JSON body: version, method, path, headers (name → values, in arrival order).
pub fn echo_body(version: &str, method: &str, path: &str, headers: &[(String, String)]) -> String {
    let mut map: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (name, value) in headers {
        map.entry(name.as_str()).or_default().push(value.as_str());
    }
    serde_json::json!({
        "version": version,
        "method": method,
        "path": path,
        "headers": map,
    })
    .to_string()
}

/// One `GET` to the downstream, `Connection: close`; its JSON body, or why there is none.
fn call_downstream(forward: &Forward, request: &Request) -> Result<String, String> {
    let mut stream = TcpStream::connect_timeout(&forward.addr, Duration::from_secs(5))
        .map_err(|e| format!("connect {}: {e}", forward.addr))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let mut head = format!(
        "GET {} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n",
        request.path, forward.authority
    );
    for (name, value) in request.headers.iter().filter(|(n, _)| n == "baggage") {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream
        .write_all(head.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&answer);
    let (status_line, rest) = text.split_once("\r\n").unwrap_or((&text, ""));
    let body = rest.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    if !status_line.contains(" 200 ") {
        return Err(format!("{status_line}: {body}"));
    }
    Ok(body.to_string())
}

fn render(
    version: &str,
    request: &Request,
    body_bytes: u64,
    fails: bool,
    keep_alive: bool,
    downstream: Option<Result<String, String>>,
) -> Vec<u8> {
    let mut body = echo_body(version, &request.method, &request.path, &request.headers);
    if body_bytes > 0 {
        // Keep the body one JSON object: add the size of what was received.
        body.pop();
        body.push_str(&format!(",\"body_bytes\":{body_bytes}}}"));
    }
    match downstream {
        Some(Ok(json)) if serde_json::from_str::<serde_json::Value>(&json).is_ok() => {
            body.pop();
            body.push_str(&format!(",\"downstream\":{json}}}"));
        }
        Some(Ok(text)) | Some(Err(text)) => {
            body.pop();
            let error = serde_json::Value::String(text).to_string();
            body.push_str(&format!(",\"downstream_error\":{error}}}"));
        }
        None => {}
    }
    let status = if fails {
        "503 Service Unavailable"
    } else {
        "200 OK"
    };
    let connection = if keep_alive { "keep-alive" } else { "close" };
    let head_only = request.method.eq_ignore_ascii_case("HEAD");
    // Asked for by the client (see `RESPONSE_HEADER_REQUEST`); a value without `name:` is ignored.
    let extra = request
        .header(RESPONSE_HEADER_REQUEST)
        .and_then(|v| v.split_once(':'))
        .map(|(n, v)| (n.trim(), v.trim()))
        .filter(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_graphic()))
        .map(|(n, v)| format!("{n}: {v}\r\n"))
        .unwrap_or_default();
    let mut out = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         {VERSION_HEADER}: {version}\r\n{extra}connection: {connection}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_rate_is_deterministic_by_request_count() {
        let counter = Counter::new(0.1);
        let failed: Vec<u64> = (1..=30).filter(|_| counter.next_fails()).collect();
        assert_eq!(failed.len(), 3);
        let counter = Counter::new(0.1);
        let positions: Vec<u64> = (1..=30).filter(|_| counter.next_fails()).collect();
        assert_eq!(positions, failed);
        let none = Counter::new(0.0);
        assert!((0..1000).all(|_| !none.next_fails()));
        let all = Counter::new(1.0);
        assert!((0..1000).all(|_| all.next_fails()));
    }

    #[test]
    fn body_groups_repeated_headers() {
        let headers = vec![
            ("x-a".to_string(), "1".to_string()),
            ("x-b".to_string(), "2".to_string()),
            ("x-a".to_string(), "3".to_string()),
        ];
        let body: serde_json::Value =
            serde_json::from_str(&echo_body("v2", "GET", "/p?q=1", &headers)).unwrap();
        assert_eq!(body["version"], "v2");
        assert_eq!(body["path"], "/p?q=1");
        assert_eq!(body["headers"]["x-a"], serde_json::json!(["1", "3"]));
        assert_eq!(body["headers"]["x-b"], serde_json::json!(["2"]));
    }

    #[test]
    fn answers_with_the_response_header_the_client_asks_for() {
        let request = |value: &str| Request {
            method: "GET".into(),
            path: "/".into(),
            http10: false,
            headers: vec![(RESPONSE_HEADER_REQUEST.into(), value.into())],
        };
        let head = |value: &str| {
            let out =
                String::from_utf8(render("v1", &request(value), 0, false, true, None)).unwrap();
            out.split("\r\n\r\n").next().unwrap().to_string()
        };
        assert!(
            head("x-sluice-goal: purchase, signup")
                .contains("\r\nx-sluice-goal: purchase, signup\r\n"),
            "{}",
            head("x-sluice-goal: purchase, signup")
        );
        // Not `name: value`: nothing added.
        assert_eq!(head("purchase").lines().count(), 5, "{}", head("purchase"));
    }

    #[test]
    fn serves_keep_alive_requests_and_stops_on_drop() {
        let server = EchoServer::start("127.0.0.1:0", EchoOptions::new("v1")).unwrap();
        let addr = server.addr();
        let mut stream = TcpStream::connect(addr).unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        for i in 0..3 {
            write!(
                stream,
                "POST /x/{i} HTTP/1.1\r\nhost: a\r\nx-t: {i}\r\ncontent-length: 2\r\n\r\nhi"
            )
            .unwrap();
            let mut status = String::new();
            reader.read_line(&mut status).unwrap();
            assert!(status.starts_with("HTTP/1.1 200"), "{status}");
            let mut length = 0usize;
            let mut version = String::new();
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line.trim().is_empty() {
                    break;
                }
                let (n, v) = line.split_once(':').unwrap();
                match n {
                    "content-length" => length = v.trim().parse().unwrap(),
                    VERSION_HEADER => version = v.trim().to_string(),
                    _ => {}
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(version, "v1");
            assert_eq!(body["path"], format!("/x/{i}"));
            assert_eq!(body["headers"]["x-t"][0], i.to_string());
            assert_eq!(body["body_bytes"], 2);
        }
        assert_eq!(server.requests(), 3);
        drop(server);
        // The kept-alive connection is closed by the shutdown.
        let mut rest = Vec::new();
        let n = reader.read_to_end(&mut rest).unwrap_or(0);
        assert_eq!(n, 0);
    }
}
