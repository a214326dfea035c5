//! The request pipeline, written once: the request's facts in, a header patch out. The filter
//! applies the patch with hostcalls; the tests, the benches and the CLI call the same function.
use crate::decision::Decision;
use crate::engine::{self, Request, RouteControl};
use crate::plan::Plan;
use std::borrow::Cow;

/// What the host knows about one request, as the filter gathered it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Facts<'a> {
    /// Every request header as `(lower-case name, value)`, pseudo-headers included, repeats kept.
    pub headers: &'a [(&'a str, &'a [u8])],
    /// The peer address (`ip:port`), read only when `plan.reads_source_address`.
    pub source: Option<&'a [u8]>,
    /// The proxy's clock in Unix millis, read only when `plan.reads_clock()`.
    pub now_ms: i64,
    /// Per-request randomness (random rollouts, minted sticky-cookie keys).
    pub entropy: u64,
}

/// What Sluice's state outside the config says about this request: the guards' verdicts and the
/// Unleash payload in force.
#[derive(Clone, Copy, Default)]
pub struct Live<'a> {
    /// Per route, indexed like `plan.routes`; missing entries are `Normal`.
    pub controls: &'a [RouteControl],
    /// The Unleash payload in force, if the config has an `unleash` source and one arrived.
    pub unleash: Option<&'a sluice_unleash::Engine>,
}

/// The changes to make to the request and its response. Only real changes: an owned header is
/// removed only when the request carries it, a header is set only when its value differs.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Patch<'p> {
    /// Request headers to remove (incoming copies of headers Sluice owns).
    pub remove: Vec<&'p str>,
    /// Request headers to set (replacing every incoming copy).
    pub set: Vec<(&'p str, Cow<'p, str>)>,
    /// Response headers to add (sticky cookies, the debug header).
    pub response: Vec<(&'p str, String)>,
}

impl Patch<'_> {
    pub fn is_empty(&self) -> bool {
        self.remove.is_empty() && self.set.is_empty() && self.response.is_empty()
    }

    /// Whether the request headers change (routing must look again).
    pub fn changes_request(&self) -> bool {
        !self.remove.is_empty() || !self.set.is_empty()
    }

    /// The request headers after the patch, in order: what the router and the upstream see.
    pub fn apply(&self, headers: &[(&str, &[u8])]) -> Vec<(String, Vec<u8>)> {
        let mut out: Vec<(String, Vec<u8>)> = headers
            .iter()
            .filter(|(name, _)| {
                !self.remove.contains(name) && !self.set.iter().any(|(n, _)| n == name)
            })
            .map(|(n, v)| (n.to_string(), v.to_vec()))
            .collect();
        out.extend(
            self.set
                .iter()
                .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec())),
        );
        out
    }
}

/// One request through Sluice: pick the plan's facts, evaluate, and turn the decision into the
/// patch. The decision is returned too, for stats and response accounting.
pub fn run<'p>(plan: &'p Plan, live: Live, facts: &Facts) -> (Decision, Patch<'p>) {
    let mut req = Request::from_pairs(plan, facts.headers);
    req.source = facts.source;
    req.now_ms = facts.now_ms;
    req.entropy = facts.entropy;
    let decision = engine::evaluate_with(plan, &req, live.controls, live.unleash);
    let patch = patch(plan, &decision, &req, facts.headers);
    (decision, patch)
}

fn patch<'p>(
    plan: &'p Plan,
    decision: &Decision,
    req: &Request,
    incoming: &[(&str, &[u8])],
) -> Patch<'p> {
    let baggage = plan
        .baggage_header
        .and_then(|i| req.headers.get(i).copied().flatten());
    let writes = decision.request_headers(plan, baggage);
    let mut out = Patch::default();
    for owned in &plan.owned_headers {
        let present = incoming.iter().any(|(name, _)| *name == owned.as_str());
        if present && !writes.iter().any(|(name, _)| *name == owned.as_str()) {
            out.remove.push(owned.as_str());
        }
    }
    for (name, value) in writes {
        let unchanged = incoming
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| *v)
            .eq([value.as_bytes()]);
        if !unchanged {
            out.set.push((name, value));
        }
    }
    for cookie in decision.set_cookies(plan) {
        out.response.push(("set-cookie", cookie));
    }
    if let (true, Some(name)) = (
        decision.tester,
        plan.overrides
            .as_ref()
            .and_then(|o| o.debug_header.as_ref()),
    ) {
        out.response.push((name.as_str(), decision.explain(plan)));
    }
    out
}
