//! Steady traffic on a background thread, every outcome recorded: to watch a config push, a
//! rollback or a switch happen while requests keep flowing.
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::http::HttpClient;

/// What one request looks like: path and headers.
#[derive(Clone, Debug, Default)]
pub struct RequestSpec {
    pub path: String,
    pub headers: Vec<(String, String)>,
}

impl RequestSpec {
    pub fn get(path: &str) -> RequestSpec {
        RequestSpec {
            path: path.to_string(),
            headers: Vec::new(),
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> RequestSpec {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}

/// The outcome of one request.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Request number (0-based) and when it was sent, since traffic started.
    pub index: u64,
    pub at: Duration,
    /// `Ok(status)`, or the transport error.
    pub status: Result<u16, String>,
    /// The version that answered (`x-echo-version`), if a backend did.
    pub version: Option<String>,
}

impl Outcome {
    /// A 2xx response.
    pub fn ok(&self) -> bool {
        matches!(self.status, Ok(s) if (200..300).contains(&s))
    }
}

/// Requests sent one after the other on one keep-alive connection, until stopped.
pub struct Traffic {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    handle: Option<JoinHandle<Vec<Outcome>>>,
}

impl Traffic {
    /// Starts sending `make(i)` for i = 0, 1, 2, ... to `addr`.
    pub fn start(
        addr: SocketAddr,
        mut make: impl FnMut(u64) -> RequestSpec + Send + 'static,
    ) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let (thread_stop, thread_sent) = (Arc::clone(&stop), Arc::clone(&sent));
        let handle = std::thread::spawn(move || {
            let mut client = HttpClient::new(addr);
            let mut outcomes = Vec::new();
            let started = Instant::now();
            let mut index = 0u64;
            while !thread_stop.load(Ordering::SeqCst) {
                let spec = make(index);
                let headers: Vec<(&str, &str)> = spec
                    .headers
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_str()))
                    .collect();
                let at = started.elapsed();
                let outcome = match client.get(&spec.path, &headers) {
                    Ok(response) => Outcome {
                        index,
                        at,
                        status: Ok(response.status),
                        version: response
                            .header(sluice_echo::VERSION_HEADER)
                            .map(str::to_string),
                    },
                    Err(err) => Outcome {
                        index,
                        at,
                        status: Err(err.to_string()),
                        version: None,
                    },
                };
                outcomes.push(outcome);
                index += 1;
                thread_sent.store(index, Ordering::SeqCst);
            }
            outcomes
        });
        Traffic {
            stop,
            sent,
            handle: Some(handle),
        }
    }

    /// Requests completed so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` more requests than now have completed; false on timeout.
    pub fn wait_more(&self, n: u64, timeout: Duration) -> bool {
        let target = self.sent() + n;
        crate::wait_until(timeout, || self.sent() >= target)
    }

    /// Stops and returns every outcome, in order.
    pub fn stop(mut self) -> Vec<Outcome> {
        self.finish()
    }

    fn finish(&mut self) -> Vec<Outcome> {
        self.stop.store(true, Ordering::SeqCst);
        match self.handle.take() {
            Some(handle) => handle.join().unwrap_or_default(),
            None => Vec::new(),
        }
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.finish();
    }
}
