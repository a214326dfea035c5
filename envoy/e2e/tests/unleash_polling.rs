//! Unleash polling in a real Envoy: a tiny Unleash server on loopback serves
//! the payload through an Envoy cluster `unleash`; the test changes it while
//! traffic runs and the flags header at the upstream follows within a few
//! poll intervals, with no failed request. When the server then answers 500,
//! garbage, too late, a body over `max_body_bytes` or a 50 MB body (over Envoy's
//! 32 MiB async response buffer: Envoy resets the call), the last good payload
//! stays in force, and Envoy's stats count the fetches.
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::json;
use sluice_e2e::{paths, stack, Backends, EnvoyOptions, HttpClient, Stack};

const TOKEN: &str = "*:production.e2e-token";

/// What the fake Unleash server answers to `GET /api/client/features`.
#[derive(Clone, Debug)]
enum Answer {
    /// 200 with this payload and ETag (304 when `If-None-Match` has the ETag).
    Payload {
        body: String,
        etag: String,
    },
    Status(u16),
    Garbage,
    /// Answers 200 with the payload, but only after this long.
    Late(Duration, String),
    /// Answers 200 with a JSON body of this many bytes (a payload padded with spaces).
    Huge(usize),
}

/// One request the fake server received.
#[derive(Clone, Debug)]
struct Seen {
    path: String,
    authorization: Option<String>,
    if_none_match: Option<String>,
    status: u16,
}

#[derive(Default)]
struct State {
    answer: Option<Answer>,
    seen: Vec<Seen>,
}

/// A minimal HTTP/1.1 server (keep-alive, GET only) on a free loopback port.
struct FakeUnleash {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl FakeUnleash {
    fn start(answer: Answer) -> FakeUnleash {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State {
            answer: Some(answer),
            seen: Vec::new(),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (Arc::clone(&state), Arc::clone(&stop));
        let accept = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (s, st) = (Arc::clone(&s), Arc::clone(&st));
                std::thread::spawn(move || serve(conn, &s, &st));
            }
        });
        FakeUnleash {
            addr,
            state,
            stop,
            accept: Some(accept),
        }
    }

    fn set(&self, answer: Answer) {
        self.state.lock().unwrap().answer = Some(answer);
    }

    fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }
}

impl Drop for FakeUnleash {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr); // wakes the accept loop
        if let Some(handle) = self.accept.take() {
            let _ = handle.join();
        }
    }
}

fn serve(conn: TcpStream, state: &Mutex<State>, stop: &AtomicBool) {
    let _ = conn.set_read_timeout(Some(Duration::from_millis(200)));
    let mut writer = match conn.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let mut reader = BufReader::new(conn);
    while !stop.load(Ordering::SeqCst) {
        // Request line and headers (GET: no body).
        let mut head = Vec::new();
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    continue;
                }
                Err(_) => return,
            }
            let line = line.trim_end().to_string();
            if line.is_empty() {
                break;
            }
            head.push(line);
        }
        if head.is_empty() {
            continue;
        }
        let path = head[0].split(' ').nth(1).unwrap_or("").to_string();
        let header = |name: &str| {
            head[1..].iter().find_map(|h| {
                let (n, v) = h.split_once(':')?;
                n.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_string())
            })
        };
        let authorization = header("authorization");
        let if_none_match = header("if-none-match");
        let answer = state.lock().unwrap().answer.clone();
        let (status, etag, body, delay) = match answer {
            Some(Answer::Payload { body, etag }) => {
                if if_none_match.as_deref() == Some(etag.as_str()) {
                    (304, Some(etag), String::new(), Duration::ZERO)
                } else {
                    (200, Some(etag), body, Duration::ZERO)
                }
            }
            Some(Answer::Status(code)) => (code, None, "unleash is down".into(), Duration::ZERO),
            Some(Answer::Garbage) => (200, None, "<html>not json</html>".into(), Duration::ZERO),
            Some(Answer::Late(delay, body)) => (200, None, body, delay),
            Some(Answer::Huge(size)) => {
                let mut body = payload(0);
                body.push_str(&" ".repeat(size.saturating_sub(body.len())));
                (200, None, body, Duration::ZERO)
            }
            None => (404, None, String::new(), Duration::ZERO),
        };
        state.lock().unwrap().seen.push(Seen {
            path,
            authorization,
            if_none_match,
            status,
        });
        std::thread::sleep(delay);
        let mut response = format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\n", body.len());
        if status == 200 {
            response.push_str("content-type: application/json\r\n");
        }
        if let Some(etag) = etag {
            response.push_str(&format!("etag: {etag}\r\n"));
        }
        response.push_str("\r\n");
        response.push_str(&body);
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

fn payload(rollout: u32) -> String {
    json!({
        "version": 2,
        "features": [{
            "name": "checkout",
            "enabled": true,
            "strategies": [{
                "name": "flexibleRollout",
                "parameters": { "rollout": rollout.to_string(), "stickiness": "userId", "groupId": "checkout" }
            }]
        }]
    })
    .to_string()
}

fn config() -> String {
    json!({
        "version": 1,
        "revision": "unleash-e2e-1",
        "identity": { "user": [{ "header": "x-user" }] },
        "unleash": {
            "poll": {
                "cluster": "unleash",
                "authority": "unleash.local",
                "authorization": TOKEN,
                "interval": "1s",
                "timeout": "800ms",
                "max_body_bytes": 65536
            },
            "features": ["checkout"],
            "headers": { "checkout": "x-feature-checkout" }
        }
    })
    .to_string()
}

/// `envoy/envoy.yaml` plus a cluster `unleash` pointing at the fake server.
fn envoy_yaml(backends: &Backends, unleash: SocketAddr) -> String {
    let yaml = stack::envoy_yaml(&paths::sluice_wasm(), &config(), backends);
    let cluster = format!(
        "  - name: unleash\n    type: STATIC\n    connect_timeout: 1s\n    load_assignment:\n      cluster_name: unleash\n      endpoints:\n      - lb_endpoints:\n        - endpoint: {{ address: {{ socket_address: {{ address: \"{}\", port_value: {} }} }} }}\n",
        unleash.ip(),
        unleash.port()
    );
    let at = yaml
        .find("  clusters:\n")
        .expect("the template has clusters")
        + "  clusters:\n".len();
    let yaml = format!("{}{cluster}{}", &yaml[..at], &yaml[at..]);
    // The test needs traffic on both workers. The kernel spreads connections over the workers'
    // sockets by their addresses, so 6 connections can all land on one (about 1 run in 32);
    // Envoy's exact balancer hands each new connection to the worker with the fewest.
    let listener = "  - name: ingress\n";
    let at = yaml
        .find(listener)
        .expect("the template has the ingress listener")
        + listener.len();
    format!(
        "{}    connection_balance_config: {{ exact_balance: {{}} }}\n{}",
        &yaml[..at],
        &yaml[at..]
    )
}

/// Requests on several keep-alive connections (spread over Envoy's workers),
/// each outcome with the flags header the upstream received.
struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<Vec<Sample>>>,
    started: Instant,
}

#[derive(Clone, Debug)]
struct Sample {
    at: Duration,
    connection: usize,
    /// The flags header at the upstream, or why the request failed.
    flags: Result<Option<String>, String>,
}

impl Load {
    fn start(addr: SocketAddr, connections: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let threads = (0..connections)
            .map(|c| {
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || {
                    let mut client = HttpClient::new(addr);
                    let mut samples = Vec::new();
                    let mut i = 0u64;
                    while !stop.load(Ordering::SeqCst) {
                        let user = format!("user-{}", (i * 7 + c as u64) % 500);
                        let at = started.elapsed();
                        let flags = match client.get("/reviews", &[("x-user", &user)]) {
                            Ok(r) if r.status == 200 => r
                                .echo()
                                .map(|e| e.header("x-sluice-flags").map(str::to_string))
                                .ok_or_else(|| "not an echo".to_string()),
                            Ok(r) => Err(format!("HTTP {}", r.status)),
                            Err(e) => Err(e.to_string()),
                        };
                        samples.push(Sample {
                            at,
                            connection: c,
                            flags,
                        });
                        i += 1;
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    samples
                })
            })
            .collect();
        Load {
            stop,
            threads,
            started,
        }
    }

    fn now(&self) -> Duration {
        self.started.elapsed()
    }

    fn stop(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::SeqCst);
        self.threads
            .into_iter()
            .flat_map(|t| t.join().unwrap_or_default())
            .collect()
    }
}

const OFF: &str = "checkout=off";
const ON: &str = "checkout=on";

#[test]
fn the_flags_header_follows_the_polled_payload_and_survives_a_failing_server() {
    let unleash = FakeUnleash::start(Answer::Payload {
        body: payload(0),
        etag: "\"r0\"".into(),
    });
    let backends = Backends::start(&stack::VERSIONS).expect("backends");
    let yaml = envoy_yaml(&backends, unleash.addr);
    let envoy = sluice_e2e::Envoy::start_with(&yaml, EnvoyOptions::default().concurrency(2))
        .expect("envoy with an unleash cluster");
    let stack = Stack { envoy, backends };
    let stat = |name: &str| {
        stack
            .envoy
            .stat(&format!("wasmcustom.sluice.unleash.fetch.{name}"))
            .unwrap_or(0)
    };

    // The first payload: rollout 0, everyone `checkout=off`.
    assert!(
        sluice_e2e::wait_until(Duration::from_secs(10), || stat("ok") >= 1),
        "no successful poll; log:\n{}",
        stack.envoy.log()
    );
    let load = Load::start(stack.envoy.addr(), 6);
    std::thread::sleep(Duration::from_secs(2));

    // Roll `checkout` out to everyone while the traffic runs.
    let changed = load.now();
    unleash.set(Answer::Payload {
        body: payload(100),
        etag: "\"r100\"".into(),
    });
    std::thread::sleep(Duration::from_secs(5));

    // The server fails: 500, then garbage, then answers after the 1s timeout, then a 1 MB body
    // (over max_body_bytes), then a 50 MB body (over Envoy's response buffer).
    let failed_before = stat("failed");
    let failing_from = load.now();
    for answer in [
        Answer::Status(500),
        Answer::Garbage,
        Answer::Late(Duration::from_millis(1500), payload(0)),
        Answer::Huge(1 << 20),
        Answer::Huge(50 << 20),
    ] {
        unleash.set(answer.clone());
        let target = stat("failed") + 2;
        assert!(
            sluice_e2e::wait_until(Duration::from_secs(10), || stat("failed") >= target),
            "{answer:?}: no failed polls counted"
        );
    }
    let failing_until = load.now();
    let samples = load.stop();

    // Zero failed requests, and the header follows the payload.
    let errors: Vec<_> = samples.iter().filter(|s| s.flags.is_err()).collect();
    assert!(errors.is_empty(), "failed requests: {errors:?}");
    let flags = |s: &Sample| s.flags.clone().unwrap();
    let before: Vec<_> = samples.iter().filter(|s| s.at < changed).collect();
    assert!(before.len() > 50);
    assert!(before.iter().all(|s| flags(s).as_deref() == Some(OFF)));
    let last_off = samples
        .iter()
        .filter(|s| flags(s).as_deref() == Some(OFF))
        .map(|s| s.at)
        .max()
        .unwrap();
    let first_on = samples
        .iter()
        .filter(|s| flags(s).as_deref() == Some(ON))
        .map(|s| s.at)
        .min()
        .expect("the new payload reached the upstream");
    let connections = samples
        .iter()
        .filter(|s| s.at > last_off)
        .map(|s| s.connection)
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    println!(
        "payload changed at {changed:?}: first request with it at +{:?}, last with the old one at +{:?} \
         ({} requests, {connections} connections, poll interval 1s)",
        first_on.saturating_sub(changed),
        last_off.saturating_sub(changed),
        samples.len()
    );
    assert!(
        last_off.saturating_sub(changed) < Duration::from_secs(4),
        "every worker follows within a few poll intervals"
    );
    assert!(samples
        .iter()
        .filter(|s| s.at > last_off)
        .all(|s| flags(s).as_deref() == Some(ON)));
    // While the server failed, the last good payload stayed in force.
    let during: Vec<_> = samples
        .iter()
        .filter(|s| s.at >= failing_from && s.at <= failing_until)
        .collect();
    assert!(during.len() > 50, "{}", during.len());
    assert!(during.iter().all(|s| flags(s).as_deref() == Some(ON)));

    // Both Envoy workers served the traffic, so both VMs followed the payload.
    let busy_workers = stack
        .envoy
        .stats()
        .into_iter()
        .filter(|(name, value)| {
            name.starts_with("listener.")
                && name.contains(".worker_")
                && name.ends_with(".downstream_cx_total")
                && value.parse::<u64>().unwrap_or(0) > 0
        })
        .count();
    assert_eq!(busy_workers, 2, "connections on both workers");

    // What the server saw: the token, the path, the ETag on later polls.
    let seen = unleash.seen();
    assert!(seen.iter().all(|s| s.path == "/api/client/features"));
    assert!(seen
        .iter()
        .all(|s| s.authorization.as_deref() == Some(TOKEN)));
    assert!(seen
        .iter()
        .any(|s| s.if_none_match.as_deref() == Some("\"r100\"") && s.status == 304));
    // Envoy's stats.
    assert!(stat("ok") >= 2, "ok {}", stat("ok"));
    assert!(stat("not_modified") >= 1);
    assert!(stat("failed") >= failed_before + 10);
    let log = stack.envoy.log();
    for why in [
        "HTTP 500 from cluster `unleash`",
        "invalid payload",
        "HTTP 504 from cluster `unleash` (Envoy answers 504 when the poll times out after 800ms)",
        "payload of 1048576 bytes is over max_body_bytes 65536",
        "no response from cluster `unleash` (the call was reset: the server is unreachable, or its \
         answer was over Envoy's response buffer limit, 32 MiB by default)",
    ] {
        assert!(
            log.contains(&format!("unleash poll failed: {why}")),
            "{why} not logged:\n{log}"
        );
    }
    // Envoy's side of the 50 MB answer: its async client stops buffering at the limit.
    assert!(
        log.contains("the buffer size limit for async client response body has been exceeded"),
        "Envoy did not log its response buffer limit:\n{log}"
    );
    println!(
        "polls seen by the server: {}; fetch ok {} not_modified {} failed {}",
        seen.len(),
        stat("ok"),
        stat("not_modified"),
        stat("failed")
    );
}
