//! One poll scheduler for every polled flag source (Unleash today; the source-specific part is
//! the [`Source`] trait), as a state machine over the host traits. One VM polls a source per
//! interval (whoever wins the compare-and-swap on the schedule key); the answer it fetches goes
//! into shared data with a generation number, and every VM loads a new generation on its next
//! tick. A failed, oversized or invalid fetch keeps the last good answer; `Retry-After` on 429/503
//! postpones the shared schedule.
use crate::host::{HttpCalls, MetricKind, SetError, SharedData, Stats};
use crate::plan::{PollPlan, UsagePlan};
use crate::spring::{read_environment, SpringFlags};
use crate::telemetry;
use crate::usage::{self, UsageCounters, UsageKeys};
use crate::vm::VmState;
use log::{info, warn};
use sluice_primitives::murmur3_x86_32;
use sluice_unleash::{Engine, Payload};
use std::cell::RefMut;
use std::rc::Rc;

/// Per VM: the poll state of each source kind.
#[derive(Debug, Default)]
pub struct PollState {
    unleash: SourceState,
    spring: SourceState,
    /// The Spring Cloud Config flags in force (the Unleash engine lives in `VmState::unleash`).
    spring_flags: Option<Rc<SpringFlags>>,
}

/// One source's poll state in this VM.
#[derive(Debug, Default)]
struct SourceState {
    /// The dispatched call, while it is in flight.
    in_flight: Option<u32>,
    /// The generation of the shared answer this VM has loaded.
    loaded: u64,
    /// A fetched answer whose generation is not announced yet (its CAS race was lost): the
    /// ETag to announce it with on the next tick.
    pending_etag: Option<String>,
    /// The server asked to wait (429/503 with `Retry-After`): milliseconds, applied to the
    /// shared schedule on the next tick.
    retry_after_ms: Option<u64>,
    /// The source's shared-data keys, named once per plan (every tick uses them).
    keys: Option<Rc<Keys>>,
}

/// What differs between polled sources: how an answer is read, checked and put in force. The
/// scheduler does the rest (schedule, dispatch, statuses, shared data, generations, metrics).
trait Source {
    /// Names the shared-data keys and the log lines (`sluice: unleash poll failed: …`).
    const KIND: &'static str;
    type Loaded;
    fn state(poll: &mut PollState) -> &mut SourceState;
    /// Reads a fetched body; the error names the problem. `fresh`: fetched now (not taken from
    /// shared data), when warnings are worth a log line.
    fn read(vm: &VmState, body: &[u8], fresh: bool) -> Result<Self::Loaded, String>;
    /// Whether a fetched answer is what is already in force (for sources without ETags).
    fn unchanged(_vm: &VmState, _loaded: &Self::Loaded) -> bool {
        false
    }
    /// Puts an answer in force in this VM; says what it was, for the log.
    fn install(vm: &VmState, loaded: Self::Loaded) -> String;
}

/// A Spring Cloud Config Server's Environment (`sources.spring`).
struct Spring;

impl Source for Spring {
    const KIND: &'static str = "spring";
    type Loaded = SpringFlags;

    fn state(poll: &mut PollState) -> &mut SourceState {
        &mut poll.spring
    }

    #[inline(never)]
    fn read(vm: &VmState, body: &[u8], _fresh: bool) -> Result<SpringFlags, String> {
        let prefix = vm
            .plan
            .spring
            .as_ref()
            .map_or("features", |s| s.prefix.as_str());
        read_environment(body, prefix)
    }

    /// The Environment's `version` (a git commit for a git backend) says whether it changed.
    fn unchanged(vm: &VmState, loaded: &SpringFlags) -> bool {
        loaded.version.is_some()
            && vm.poll.borrow().spring_flags.as_ref().map(|f| &f.version) == Some(&loaded.version)
    }

    #[inline(never)]
    fn install(vm: &VmState, flags: SpringFlags) -> String {
        let what = format!(
            "{} flags (version `{}`)",
            flags.flags.len(),
            flags.version.as_deref().unwrap_or("")
        );
        vm.poll.borrow_mut().spring_flags = Some(Rc::new(flags));
        what
    }
}

/// Unleash's `/api/client/features` payload.
struct Unleash;

impl Source for Unleash {
    const KIND: &'static str = "unleash";
    type Loaded = Engine;

    fn state(poll: &mut PollState) -> &mut SourceState {
        &mut poll.unleash
    }

    #[inline(never)]
    fn read(_vm: &VmState, body: &[u8], fresh: bool) -> Result<Engine, String> {
        let payload = Payload::from_slice(body).map_err(|err| format!("invalid payload: {err}"))?;
        let engine = Engine::new(payload);
        if !fresh {
            return Ok(engine);
        }
        // A strategy or operator this engine does not implement would silently turn flags
        // off: refuse the payload rather than serve it half-understood.
        let unknown: Vec<String> = engine
            .warnings()
            .iter()
            .filter(|w| w.unknown)
            .map(ToString::to_string)
            .collect();
        if let Some(first) = unknown.first() {
            return Err(format!(
                "payload refused: {first}{} (Sluice implements Unleash's built-in strategies and operators)",
                match unknown.len() {
                    1 => String::new(),
                    n => format!(" and {} more", n - 1),
                }
            ));
        }
        for w in engine.warnings().iter().take(5) {
            warn!("sluice: unleash payload: {w}");
        }
        Ok(engine)
    }

    fn install(vm: &VmState, engine: Engine) -> String {
        let what = format!("{} features", engine.len());
        *vm.unleash.borrow_mut() = Some(Rc::new(engine));
        what
    }
}

/// The longest `Retry-After` honoured; a longer one would silence the source for too long.
const MAX_RETRY_AFTER_MS: u64 = 3_600_000;

/// The answer to a poll, as the host read it.
pub struct PollResponse<'a> {
    /// `None`: no response at all (the call was reset, or the cluster went away).
    pub status: Option<u32>,
    pub etag: Option<String>,
    pub body_size: usize,
    /// `Retry-After` (honoured in seconds on 429 and 503).
    pub retry_after: Option<String>,
    /// `Location` of a redirect (named in the log; redirects are not followed).
    pub location: Option<String>,
    /// Reads the body; called only for a 200 within `max_body_bytes`.
    pub read_body: &'a dyn Fn() -> Option<Vec<u8>>,
}

/// Counters of the polls, defined once per VM.
pub struct PollCounters {
    unleash: SourceCounters,
    spring: SourceCounters,
    usage: UsageCounters,
}

struct SourceCounters {
    ok: Option<u32>,
    not_modified: Option<u32>,
    failed: Option<u32>,
    publish_retries: Option<u32>,
}

impl PollCounters {
    #[inline(never)]
    pub fn define(stats: &dyn Stats) -> PollCounters {
        let counter = |name| stats.define(MetricKind::Counter, name);
        PollCounters {
            unleash: SourceCounters {
                ok: counter(telemetry::UNLEASH_FETCH_OK),
                not_modified: counter(telemetry::UNLEASH_FETCH_NOT_MODIFIED),
                failed: counter(telemetry::UNLEASH_FETCH_FAILED),
                publish_retries: counter(telemetry::UNLEASH_PUBLISH_RETRIES),
            },
            spring: SourceCounters {
                ok: counter(telemetry::SPRING_FETCH_OK),
                not_modified: counter(telemetry::SPRING_FETCH_NOT_MODIFIED),
                failed: counter(telemetry::SPRING_FETCH_FAILED),
                publish_retries: counter(telemetry::SPRING_PUBLISH_RETRIES),
            },
            usage: UsageCounters::define(stats),
        }
    }
}

fn bump(stats: &dyn Stats, id: Option<u32>) {
    if let Some(id) = id {
        stats.increment(id, 1);
    }
}

#[derive(Debug)]
struct Keys {
    schedule: String,
    state: String,
    payload: String,
    usage: UsageKeys,
}

/// Named by where the payload comes from, not by the config revision: a config pushed again, or
/// a new revision that polls the same source, keeps the payload in force and the poll schedule.
#[inline(never)]
fn keys(kind: &str, poll: &PollPlan) -> Keys {
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
        schedule: format!("sluice.{kind}.{id}.next_poll"),
        state: format!("sluice.{kind}.{id}.state"),
        payload: format!("sluice.{kind}.{id}.payload"),
        usage: UsageKeys {
            state: format!("sluice.{kind}.{id}.usage"),
            schedule: format!("sluice.{kind}.{id}.usage.next"),
        },
    }
}

/// The shared state: `generation (u64 LE) + etag`, and its CAS number.
#[inline(never)]
fn read_state(shared: &dyn SharedData, key: &str) -> (u64, Option<String>, Option<u32>) {
    match shared.get(key) {
        Some((Some(bytes), cas)) => match bytes.get(..8).and_then(|b| b.try_into().ok()) {
            Some(word) => {
                let etag = String::from_utf8(bytes[8..].to_vec())
                    .ok()
                    .filter(|e| !e.is_empty());
                (u64::from_le_bytes(word), etag, cas)
            }
            None => (0, None, cas),
        },
        Some((None, cas)) => (0, None, cas),
        None => (0, None, None),
    }
}

impl VmState {
    fn unleash_poll_plan(&self) -> Option<&PollPlan> {
        self.plan.unleash.as_ref().and_then(|u| u.poll.as_ref())
    }

    fn usage_plan(&self) -> Option<&UsagePlan> {
        self.plan.unleash.as_ref().and_then(|u| u.metrics.as_ref())
    }

    fn spring_poll_plan(&self) -> Option<&PollPlan> {
        self.plan.spring.as_ref().map(|s| &s.poll)
    }

    /// The Spring Cloud Config flags in force, once a first Environment arrived (per request).
    pub fn spring_flags(&self) -> Option<Rc<SpringFlags>> {
        self.poll.borrow().spring_flags.clone()
    }

    /// At configure time: take what other VMs (or this VM's previous config) already fetched
    /// from the same sources.
    #[inline(never)]
    pub fn adopt_shared_sources(&self, shared: &dyn SharedData) {
        if let Some(poll) = self.unleash_poll_plan() {
            load_shared::<Unleash>(self, shared, &source_keys::<Unleash>(self, poll));
        }
        if let Some(poll) = self.spring_poll_plan() {
            load_shared::<Spring>(self, shared, &source_keys::<Spring>(self, poll));
        }
    }

    /// Runs `f` with the usage reports' bundle, when Unleash is polled with metrics on.
    #[inline(never)]
    fn with_usage_reports<R>(
        &self,
        shared: &dyn SharedData,
        counters: &PollCounters,
        stats: &dyn Stats,
        f: impl FnOnce(&usage::Reports, &PollPlan) -> R,
    ) -> Option<R> {
        let (poll, plan) = (self.unleash_poll_plan()?, self.usage_plan()?);
        let keys = source_keys::<Unleash>(self, poll);
        let reports = usage::Reports {
            usage: &self.usage,
            plan,
            keys: &keys.usage,
            shared,
            counters: &counters.usage,
            stats,
        };
        Some(f(&reports, poll))
    }

    /// On each tick, per source: load a newer shared answer, then poll if it is time.
    #[inline(never)]
    pub fn tick_sources(
        &self,
        shared: &dyn SharedData,
        calls: &dyn HttpCalls,
        counters: &PollCounters,
        stats: &dyn Stats,
        now_ms: i64,
    ) {
        if let Some(poll) = self.unleash_poll_plan() {
            tick::<Unleash>(self, poll, shared, calls, &counters.unleash, stats, now_ms);
            self.with_usage_reports(shared, counters, stats, |reports, poll| {
                usage::tick(reports, poll, self.seed, calls, now_ms)
            });
        }
        if let Some(poll) = self.spring_poll_plan() {
            tick::<Spring>(self, poll, shared, calls, &counters.spring, stats, now_ms);
        }
    }

    /// A poll's answer (or a usage report's): kept if it is good, else logged and counted.
    /// Answers to calls this VM is not waiting for are ignored.
    #[inline(never)]
    pub fn source_response(
        &self,
        token: u32,
        response: &PollResponse,
        shared: &dyn SharedData,
        counters: &PollCounters,
        stats: &dyn Stats,
    ) {
        let ours = self.with_usage_reports(shared, counters, stats, |reports, _| {
            usage::respond(reports, token, response.status)
        });
        if ours == Some(true) {
            return;
        }
        if let Some(poll) = self.unleash_poll_plan() {
            respond::<Unleash>(
                self,
                poll,
                token,
                response,
                shared,
                &counters.unleash,
                stats,
            );
        }
        if let Some(poll) = self.spring_poll_plan() {
            respond::<Spring>(self, poll, token, response, shared, &counters.spring, stats);
        }
    }
}

fn state<S: Source>(vm: &VmState) -> RefMut<'_, SourceState> {
    RefMut::map(vm.poll.borrow_mut(), S::state)
}

/// The source's shared-data keys, named on first use.
#[inline(never)]
fn source_keys<S: Source>(vm: &VmState, poll: &PollPlan) -> Rc<Keys> {
    Rc::clone(
        state::<S>(vm)
            .keys
            .get_or_insert_with(|| Rc::new(keys(S::KIND, poll))),
    )
}

/// Loads a newer shared generation, retries a pending publish, and polls if it is time.
#[inline(never)]
fn tick<S: Source>(
    vm: &VmState,
    poll: &PollPlan,
    shared: &dyn SharedData,
    calls: &dyn HttpCalls,
    counters: &SourceCounters,
    stats: &dyn Stats,
    now_ms: i64,
) {
    let keys = source_keys::<S>(vm, poll);
    load_shared::<S>(vm, shared, &keys);
    publish_pending::<S>(vm, shared, &keys, counters, stats);
    if state::<S>(vm).in_flight.is_some() {
        return;
    }
    let wait = state::<S>(vm).retry_after_ms.take();
    if let Some(wait) = wait {
        postpone(shared, &keys.schedule, now_ms.saturating_add(wait as i64));
    }
    if !claim_round(shared, &keys.schedule, now_ms, poll.interval_ms) {
        return;
    }
    let (_, etag, _) = read_state(shared, &keys.state);
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
    match calls.dispatch(&poll.cluster, &headers, poll.timeout_ms) {
        Ok(token) => state::<S>(vm).in_flight = Some(token),
        Err(why) => {
            warn!(
                "sluice: {} poll: cannot call cluster `{}` ({why}); is it defined?",
                S::KIND,
                poll.cluster
            );
            bump(stats, counters.failed);
        }
    }
}

/// A poll's answer: put it in force and publish it if it is good, else say why not.
#[inline(never)]
fn respond<S: Source>(
    vm: &VmState,
    poll: &PollPlan,
    token: u32,
    response: &PollResponse,
    shared: &dyn SharedData,
    counters: &SourceCounters,
    stats: &dyn Stats,
) {
    if state::<S>(vm).in_flight != Some(token) {
        return;
    }
    state::<S>(vm).in_flight = None;
    let failed = |why: String| {
        warn!(
            "sluice: {} poll failed: {why}; keeping the last good payload",
            S::KIND
        );
        bump(stats, counters.failed);
    };
    match response.status {
        Some(304) => return bump(stats, counters.not_modified),
        Some(200) => {}
        Some(429 | 503) => {
            let wait = retry_after_ms(response);
            state::<S>(vm).retry_after_ms = wait;
            return failed(status_failure(response, poll, wait));
        }
        _ => return failed(status_failure(response, poll, None)),
    }
    let body = match read_body(response, poll) {
        Ok(body) => body,
        Err(why) => return failed(why),
    };
    let loaded = match S::read(vm, &body, true) {
        Ok(loaded) => loaded,
        Err(why) => return failed(why),
    };
    if S::unchanged(vm, &loaded) {
        return bump(stats, counters.not_modified);
    }
    let keys = source_keys::<S>(vm, poll);
    // The answer first, then the generation that announces it.
    if shared.set(&keys.payload, &body, None).is_err() {
        return failed("could not store the payload in shared data".to_string());
    }
    let what = S::install(vm, loaded);
    bump(stats, counters.ok);
    let etag = response.etag.clone().unwrap_or_default();
    announce::<S>(vm, shared, &keys, etag, &what, counters, stats);
}

/// Publishes the generation of an answer stored and put in force here (`what`: the answer, for
/// the log), or keeps its ETag to publish it on the next tick.
#[inline(never)]
fn announce<S: Source>(
    vm: &VmState,
    shared: &dyn SharedData,
    keys: &Keys,
    etag: String,
    what: &str,
    counters: &SourceCounters,
    stats: &dyn Stats,
) {
    match publish(shared, keys, &etag) {
        Some(generation) => {
            state::<S>(vm).loaded = generation;
            info!(
                "sluice: {} payload generation {generation} loaded: {what} (etag `{etag}`)",
                S::KIND
            );
        }
        None => {
            // The answer is stored and in force here; other VMs learn of it when the
            // generation is published, retried on the next tick.
            warn!(
                "sluice: {} payload stored, but its generation could not be published (shared state kept changing); retrying next tick",
                S::KIND
            );
            bump(stats, counters.publish_retries);
            state::<S>(vm).pending_etag = Some(etag);
        }
    }
}

/// Why an answer other than 200 or 304 (or none) is a failed poll; `retry_after_ms`: the wait
/// a 429 or 503 asked for.
#[inline(never)]
fn status_failure(response: &PollResponse, poll: &PollPlan, retry_after_ms: Option<u64>) -> String {
    let Some(status) = response.status else {
        // Envoy resets a call whose answer outgrows its async client buffer (32 MiB by default,
        // runtime key `http.async_response_buffer_limit`), as well as one it cannot connect.
        return format!(
            "no response from cluster `{}` (the call was reset: the server is unreachable, or its answer was over Envoy's response buffer limit, 32 MiB by default)",
            poll.cluster
        );
    };
    match status {
        // Envoy answers a call that timed out with its own 504.
        504 => format!(
            "HTTP 504 from cluster `{}` (Envoy answers 504 when the poll times out after {}ms)",
            poll.cluster, poll.timeout_ms
        ),
        401 | 403 => format!(
            "HTTP {status} from cluster `{}`: the credentials in poll.authorization were refused",
            poll.cluster
        ),
        429 | 503 => match retry_after_ms {
            Some(ms) => format!(
                "HTTP {status} from cluster `{}`; next poll after Retry-After {}s",
                poll.cluster,
                ms / 1000
            ),
            None => format!(
                "HTTP {status} from cluster `{}` without Retry-After in seconds; polling at the interval",
                poll.cluster
            ),
        },
        300..=399 => format!(
            "HTTP {status} redirect from cluster `{}` to `{}` not followed; point poll.authority and poll.path at the final address",
            poll.cluster,
            response.location.as_deref().unwrap_or("?")
        ),
        other => format!("HTTP {other} from cluster `{}`", poll.cluster),
    }
}

/// `Retry-After` in seconds, as milliseconds (at most [`MAX_RETRY_AFTER_MS`]).
#[inline(never)]
fn retry_after_ms(response: &PollResponse) -> Option<u64> {
    response
        .retry_after
        .as_deref()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|secs| secs.saturating_mul(1000).min(MAX_RETRY_AFTER_MS))
}

/// A 200's body, within `max_body_bytes`.
#[inline(never)]
fn read_body(response: &PollResponse, poll: &PollPlan) -> Result<Vec<u8>, String> {
    if response.body_size as u64 > poll.max_body_bytes {
        return Err(format!(
            "payload of {} bytes is over max_body_bytes {}",
            response.body_size, poll.max_body_bytes
        ));
    }
    (response.read_body)().ok_or_else(|| "empty body".to_string())
}

/// Retries publishing a generation that lost its compare-and-swap race last time.
#[inline(never)]
fn publish_pending<S: Source>(
    vm: &VmState,
    shared: &dyn SharedData,
    keys: &Keys,
    counters: &SourceCounters,
    stats: &dyn Stats,
) {
    let Some(etag) = state::<S>(vm).pending_etag.take() else {
        return;
    };
    match publish(shared, keys, &etag) {
        Some(generation) => state::<S>(vm).loaded = generation,
        None => {
            bump(stats, counters.publish_retries);
            state::<S>(vm).pending_etag = Some(etag);
        }
    }
}

#[inline(never)]
fn load_shared<S: Source>(vm: &VmState, shared: &dyn SharedData, keys: &Keys) {
    let (generation, _, _) = read_state(shared, &keys.state);
    if generation == 0 || generation == state::<S>(vm).loaded {
        return;
    }
    let Some((Some(body), _)) = shared.get(&keys.payload) else {
        return;
    };
    match S::read(vm, &body, false) {
        Ok(loaded) => {
            S::install(vm, loaded);
            info!(
                "sluice: {} payload generation {generation} taken from shared data",
                S::KIND
            );
        }
        Err(err) => warn!(
            "sluice: shared {} payload generation {generation} unreadable: {err}",
            S::KIND
        ),
    }
    state::<S>(vm).loaded = generation;
}

/// The one-VM-per-interval rule of every scheduled job (polls, usage reports): `true` for the VM
/// that moves the shared schedule at `key` from a time already past to `now + interval`; the
/// others lose the compare-and-swap and skip this round.
#[inline(never)]
pub(crate) fn claim_round(
    shared: &dyn SharedData,
    key: &str,
    now_ms: i64,
    interval_ms: u64,
) -> bool {
    let Some((bytes, cas)) = shared.get(key) else {
        return false;
    };
    let next = bytes
        .and_then(|b| b.get(..8).and_then(|b| b.try_into().ok()))
        .map_or(0, i64::from_le_bytes);
    if now_ms < next {
        return false;
    }
    let claim = now_ms.saturating_add(interval_ms as i64).to_le_bytes();
    shared.set(key, &claim, cas).is_ok()
}

/// Moves the shared schedule to `not_before` unless it is already later (whichever VM claims
/// next then waits too).
#[inline(never)]
fn postpone(shared: &dyn SharedData, key: &str, not_before: i64) {
    for _ in 0..4 {
        let Some((bytes, cas)) = shared.get(key) else {
            return;
        };
        let next = bytes
            .and_then(|b| b.get(..8).and_then(|b| b.try_into().ok()))
            .map_or(0, i64::from_le_bytes);
        if next >= not_before || shared.set(key, &not_before.to_le_bytes(), cas).is_ok() {
            return;
        }
    }
}

/// Announces the stored payload with the next generation number; `None` when the state kept
/// changing under us (or the host failed).
#[inline(never)]
fn publish(shared: &dyn SharedData, keys: &Keys, etag: &str) -> Option<u64> {
    for _ in 0..8 {
        let (current, _, cas) = read_state(shared, &keys.state);
        let generation = current + 1;
        let mut state = generation.to_le_bytes().to_vec();
        state.extend_from_slice(etag.as_bytes());
        match shared.set(&keys.state, &state, cas) {
            Ok(()) => return Some(generation),
            Err(SetError::CasMismatch) => continue,
            Err(SetError::Failed) => return None,
        }
    }
    None
}
