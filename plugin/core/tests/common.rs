//! Test helpers: a plan from JSON and requests from header pairs.
// A test crate: clippy.toml allows these in #[test] functions only, not in their helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(dead_code)]
use sluice_core::decision::Decision;
use sluice_core::engine::Headers;
use sluice_core::pipeline::{self, Facts, Live, Scratch};
use sluice_core::plan::Plan;
use std::sync::Mutex;

/// What a VM holds beside the plan, before any guard or poll: the config's own Unleash payload.
pub fn live(plan: &Plan) -> Live<'_> {
    Live {
        controls: &[],
        unleash: plan.unleash.as_ref().and_then(|u| u.initial.as_deref()),
        // No polled source outside the proxy.
        spring: None,
    }
}

/// Hex SHA-256 of the tester secret `let-me-test`, as an operator stores it.
pub fn secret_hash() -> String {
    use sha2::Digest;
    sha2::Sha256::digest(b"let-me-test")
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn plan(json: &str) -> Plan {
    match sluice_core::compile::load(json.as_bytes()) {
        Ok(plan) => plan,
        Err(err) => panic!("test config rejected: {err}"),
    }
}

/// A request: header pairs (`:path`, `:authority`, … included), source, time.
pub struct Req {
    pub pairs: Vec<(String, Vec<u8>)>,
    pub source: Option<String>,
    pub now_ms: i64,
    pub entropy: u64,
}

impl Default for Req {
    fn default() -> Self {
        Req::new()
    }
}

impl Req {
    pub fn new() -> Req {
        Req {
            pairs: vec![
                (":method".into(), b"GET".to_vec()),
                (":path".into(), b"/".to_vec()),
                (":authority".into(), b"shop.example.com".to_vec()),
            ],
            source: None,
            now_ms: 0,
            entropy: 0,
        }
    }
    pub fn user(self, id: &str) -> Req {
        self.header("x-user-id", id)
    }
    pub fn header(mut self, name: &str, value: &str) -> Req {
        self.pairs
            .push((name.to_string(), value.as_bytes().to_vec()));
        self
    }
    pub fn set(mut self, name: &str, value: &str) -> Req {
        self.pairs.retain(|(n, _)| n != name);
        self.header(name, value)
    }
    pub fn source(mut self, addr: &str) -> Req {
        self.source = Some(addr.to_string());
        self
    }
    pub fn at(mut self, rfc3339: &str) -> Req {
        self.now_ms = sluice_primitives::time::parse_rfc3339_millis(rfc3339).unwrap();
        self
    }
    pub fn entropy(mut self, e: u64) -> Req {
        self.entropy = e;
        self
    }
    /// The request through the pipeline the filter runs (no guard, the config's own Unleash
    /// payload): the decision and the header patch.
    pub fn run(&self, plan: &Plan) -> Scratch {
        let mut scratch = Scratch::default();
        self.run_into(plan, live(plan), &mut scratch);
        scratch
    }
    /// [`Req::run`] with the given live state (guard controls), into a `Scratch` the caller
    /// keeps from request to request, as a VM does.
    pub fn run_into(&self, plan: &Plan, live: Live, scratch: &mut Scratch) {
        let pairs = self.borrowed();
        let facts = Facts {
            headers: Headers::Pairs(&pairs),
            source: self.source.as_deref().map(str::as_bytes),
            now_ms: self.now_ms,
            entropy: self.entropy,
        };
        pipeline::run(plan, live, &facts, scratch);
    }
    pub fn eval(&self, plan: &Plan) -> Decision {
        self.run(plan).decision
    }
    fn borrowed(&self) -> Vec<(&str, &[u8])> {
        self.pairs
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .collect()
    }
    /// The headers Sluice writes (owned headers and baggage) as the upstream receives them.
    pub fn headers(&self, plan: &Plan) -> std::collections::BTreeMap<String, String> {
        self.run(plan)
            .patch
            .apply(plan, &self.borrowed())
            .into_iter()
            .filter(|(name, _)| name == "baggage" || plan.owned_headers.contains(name))
            .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
            .collect()
    }
}

/// The variant name a flag got.
pub fn variant<'p>(plan: &'p Plan, decision: &Decision, flag: &str) -> &'p str {
    let i = plan
        .flags
        .iter()
        .position(|f| f.name == flag)
        .expect("flag in plan");
    &plan.flags[i].variant_names[decision.flags[i].variant]
}

/// The version a route wrote, if it matched.
pub fn version<'p>(plan: &'p Plan, decision: &Decision, route: &str) -> Option<&'p str> {
    let i = plan
        .routes
        .iter()
        .position(|r| r.name == route)
        .expect("route in plan");
    decision
        .routes
        .iter()
        .find(|r| r.route == i)
        .map(|r| plan.routes[i].versions[r.version].as_str())
}

/// What the code under test logged, one entry per record (see `capture_logs`).
static LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;
impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, record: &log::Record) {
        LOG.lock().unwrap().push(record.args().to_string());
    }
    fn flush(&self) {}
}

/// Keeps this test binary's log records (info and above) for `logged`; once per binary, so
/// later calls do nothing.
pub fn capture_logs() {
    let _ = log::set_logger(&Capture);
    log::set_max_level(log::LevelFilter::Info);
}

/// Whether some record logged so far contains `needle`.
pub fn logged(needle: &str) -> bool {
    LOG.lock().unwrap().iter().any(|l| l.contains(needle))
}

/// Every record logged so far, one per line (for failure messages).
pub fn log_text() -> String {
    LOG.lock().unwrap().join("\n")
}
