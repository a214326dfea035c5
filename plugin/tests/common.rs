//! Test helpers: a plan from JSON and requests from header pairs.
#![allow(dead_code)]
use sluice::decision::Decision;
use sluice::engine::{evaluate, Request};
use sluice::plan::Plan;

pub fn plan(json: &str) -> Plan {
    match sluice::compile::load(json.as_bytes()) {
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
    pub fn eval(&self, plan: &Plan) -> Decision {
        let mut req = Request::from_pairs(plan, &self.pairs);
        req.source = self.source.as_deref().map(str::as_bytes);
        req.now_ms = self.now_ms;
        req.entropy = self.entropy;
        evaluate(plan, &req)
    }
    /// The request headers the decision writes, as a map.
    pub fn headers(&self, plan: &Plan) -> std::collections::BTreeMap<String, String> {
        let decision = self.eval(plan);
        let baggage = self
            .pairs
            .iter()
            .find(|(n, _)| n == "baggage")
            .map(|(_, v)| v.as_slice());
        decision
            .request_headers(plan, baggage)
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.into_owned()))
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
