//! Polling Unleash through an Envoy cluster. One worker polls per interval
//! (whoever wins the compare-and-swap on the schedule key); the payload it
//! fetches goes into shared data with a generation number, and every worker
//! loads a new generation on its next tick. A failed, oversized or invalid
//! fetch keeps the last good payload.
use super::worker::{bump_counter, Worker};
use crate::telemetry;
use crate::unleash::PollPlan;
use log::{info, warn};
use proxy_wasm::hostcalls;
use proxy_wasm::types::{MapType, Status};
use sluice_primitives::murmur3_x86_32;
use sluice_unleash::{Engine, Payload};
use std::rc::Rc;
use std::time::Duration;

#[derive(Default)]
pub struct PollState {
    /// The dispatched call, while it is in flight.
    in_flight: Option<u32>,
    /// The generation of the shared payload this worker has loaded.
    loaded: u64,
}

struct Keys {
    schedule: String,
    state: String,
    payload: String,
}

/// Named by where the payload comes from, not by the config revision: a
/// config pushed again, or a new revision that polls the same source, keeps
/// the payload in force and the poll schedule.
fn keys(poll: &PollPlan) -> Keys {
    let source = format!(
        "{}\n{}\n{}\n{}",
        poll.cluster,
        poll.authority,
        poll.path,
        poll.authorization.as_deref().unwrap_or_default()
    );
    let id = format!(
        "{:08x}{:08x}",
        murmur3_x86_32(source.as_bytes(), 0),
        murmur3_x86_32(source.as_bytes(), 1)
    );
    Keys {
        schedule: format!("sluice.unleash.{id}.next_poll"),
        state: format!("sluice.unleash.{id}.state"),
        payload: format!("sluice.unleash.{id}.payload"),
    }
}

/// `generation (u64 LE) + etag`.
fn read_state(key: &str) -> (u64, Option<String>, Option<u32>) {
    match hostcalls::get_shared_data(key) {
        Ok((Some(bytes), cas)) if bytes.len() >= 8 => {
            let generation = u64::from_le_bytes(bytes[..8].try_into().unwrap_or([0; 8]));
            let etag = String::from_utf8(bytes[8..].to_vec())
                .ok()
                .filter(|e| !e.is_empty());
            (generation, etag, cas)
        }
        Ok((_, cas)) => (0, None, cas),
        Err(_) => (0, None, None),
    }
}

impl Worker {
    /// At configure time: take the payload other workers (or this worker's
    /// previous config) already fetched from the same source.
    pub fn adopt_shared_unleash(&self) {
        if let Some(poll) = self.plan.unleash.as_ref().and_then(|u| u.poll.as_ref()) {
            self.load_shared_payload(&keys(poll));
        }
    }

    /// On each tick: load a newer shared payload, then poll if it is time.
    pub fn tick_unleash(&self, now_ms: i64) {
        let Some(poll) = self.plan.unleash.as_ref().and_then(|u| u.poll.as_ref()) else {
            return;
        };
        let keys = keys(poll);
        self.load_shared_payload(&keys);
        if self.poll_state.borrow().in_flight.is_some() {
            return;
        }
        let (next, cas) = match hostcalls::get_shared_data(&keys.schedule) {
            Ok((bytes, cas)) => {
                let next = bytes.and_then(|b| {
                    b.get(..8)
                        .map(|b| i64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
                });
                (next.unwrap_or(0), cas)
            }
            Err(_) => return,
        };
        if now_ms < next {
            return;
        }
        let claim = (now_ms + poll.interval_ms as i64).to_le_bytes();
        // Losing this race means another worker polls this round.
        if hostcalls::set_shared_data(&keys.schedule, Some(&claim), cas).is_err() {
            return;
        }
        self.dispatch(poll, &keys);
    }

    fn dispatch(&self, poll: &PollPlan, keys: &Keys) {
        let (_, etag, _) = read_state(&keys.state);
        let mut headers: Vec<(&str, &str)> = vec![
            (":method", "GET"),
            (":path", &poll.path),
            (":authority", &poll.authority),
            ("accept", "application/json"),
        ];
        if let Some(token) = &poll.authorization {
            headers.push(("authorization", token));
        }
        if let Some(etag) = &etag {
            headers.push(("if-none-match", etag));
        }
        match hostcalls::dispatch_http_call(
            &poll.cluster,
            headers,
            None,
            vec![],
            Duration::from_millis(poll.timeout_ms),
        ) {
            Ok(token) => self.poll_state.borrow_mut().in_flight = Some(token),
            Err(status) => {
                warn!(
                    "sluice: unleash poll: cannot call cluster `{}` ({status:?}); is it defined?",
                    poll.cluster
                );
                bump_counter(telemetry::UNLEASH_FETCH_FAILED);
            }
        }
    }

    /// The poll's answer: keep it if it is a good payload, else say why not.
    pub fn unleash_response(&self, token: u32, num_headers: usize, body_size: usize) {
        if self.poll_state.borrow().in_flight != Some(token) {
            return;
        }
        self.poll_state.borrow_mut().in_flight = None;
        let Some(poll) = self.plan.unleash.as_ref().and_then(|u| u.poll.as_ref()) else {
            return;
        };
        let failed = |why: String| {
            warn!("sluice: unleash poll failed: {why}; keeping the last good payload");
            bump_counter(telemetry::UNLEASH_FETCH_FAILED);
        };
        // Envoy answers a call that timed out with its own 504; no headers
        // at all means the stream was reset (or the cluster went away).
        if num_headers == 0 {
            return failed(format!(
                "no response from cluster `{}` (the call was reset)",
                poll.cluster
            ));
        }
        let header = |name: &str| {
            hostcalls::get_map_value_bytes(MapType::HttpCallResponseHeaders, name)
                .ok()
                .flatten()
                .and_then(|v| String::from_utf8(v).ok())
        };
        let status = header(":status")
            .and_then(|s| s.parse::<u32>().ok())
            .unwrap_or(0);
        match status {
            304 => {
                bump_counter(telemetry::UNLEASH_FETCH_NOT_MODIFIED);
                return;
            }
            200 => {}
            504 => {
                return failed(format!(
                "HTTP 504 from cluster `{}` (Envoy answers 504 when the poll times out after {}ms)",
                poll.cluster, poll.timeout_ms
            ))
            }
            other => return failed(format!("HTTP {other} from cluster `{}`", poll.cluster)),
        }
        if body_size as u64 > poll.max_body_bytes {
            return failed(format!(
                "payload of {body_size} bytes is over max_body_bytes {}",
                poll.max_body_bytes
            ));
        }
        let body = match hostcalls::get_buffer(
            proxy_wasm::types::BufferType::HttpCallResponseBody,
            0,
            body_size,
        ) {
            Ok(Some(body)) => body,
            _ => return failed("empty body".to_string()),
        };
        let payload = match Payload::from_slice(&body) {
            Ok(p) => p,
            Err(err) => return failed(format!("invalid payload: {err}")),
        };
        let keys = keys(poll);
        let etag = header("etag").unwrap_or_default();
        let features = payload.features.len();
        // Payload first, then the generation that announces it.
        if hostcalls::set_shared_data(&keys.payload, Some(&body), None).is_err() {
            return failed("could not store the payload in shared data".to_string());
        }
        let mut generation = 0;
        for _ in 0..8 {
            let (current, _, cas) = read_state(&keys.state);
            generation = current + 1;
            let mut state = generation.to_le_bytes().to_vec();
            state.extend_from_slice(etag.as_bytes());
            match hostcalls::set_shared_data(&keys.state, Some(&state), cas) {
                Ok(()) => break,
                Err(Status::CasMismatch) => continue,
                Err(_) => return failed("could not store the payload state".to_string()),
            }
        }
        *self.unleash.borrow_mut() = Some(Rc::new(Engine::new(payload)));
        self.poll_state.borrow_mut().loaded = generation;
        bump_counter(telemetry::UNLEASH_FETCH_OK);
        info!("sluice: unleash payload generation {generation} loaded: {features} features (etag `{etag}`)");
    }

    fn load_shared_payload(&self, keys: &Keys) {
        let (generation, _, _) = read_state(&keys.state);
        if generation == 0 || generation == self.poll_state.borrow().loaded {
            return;
        }
        let Ok((Some(body), _)) = hostcalls::get_shared_data(&keys.payload) else {
            return;
        };
        match Payload::from_slice(&body) {
            Ok(payload) => {
                *self.unleash.borrow_mut() = Some(Rc::new(Engine::new(payload)));
                info!("sluice: unleash payload generation {generation} taken from shared data");
            }
            Err(err) => {
                warn!("sluice: shared unleash payload generation {generation} unreadable: {err}")
            }
        }
        self.poll_state.borrow_mut().loaded = generation;
    }
}
