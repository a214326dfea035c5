//! Per-request context: strip spoofed headers, evaluate, write the outcome.
use crate::decision::Decision;
use crate::engine::{self, Request};
use crate::plan::Plan;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;
use std::rc::Rc;
use std::time::UNIX_EPOCH;

pub struct SluiceHttp {
    plan: Rc<Plan>,
    entropy: u64,
    /// Response headers decided at request time (cookies, debug).
    response_headers: Vec<(String, String)>,
}

impl SluiceHttp {
    pub fn new(plan: Rc<Plan>, entropy: u64) -> Self {
        SluiceHttp {
            plan,
            entropy,
            response_headers: Vec::new(),
        }
    }
}

impl Context for SluiceHttp {}

impl HttpContext for SluiceHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let plan = Rc::clone(&self.plan);
        // One hostcall for every header: cheaper than one per name the plan reads.
        let pairs = self.get_http_request_headers_bytes();
        let source = if plan.reads_source_address {
            self.get_property(vec!["source", "address"])
        } else {
            None
        };
        let mut req = Request::from_pairs(&plan, &pairs);
        req.source = source.as_deref();
        req.entropy = self.entropy;
        if plan.reads_clock {
            req.now_ms = self
                .get_current_time()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
        }
        let decision = engine::evaluate(&plan, &req);
        let baggage = plan
            .baggage_header
            .and_then(|i| req.headers.get(i).copied().flatten());
        let writes = decision.request_headers(&plan, baggage);

        let mut changed = false;
        for owned in &plan.owned_headers {
            let incoming = pairs.iter().any(|(name, _)| name == owned);
            if incoming && !writes.iter().any(|(name, _)| name == owned) {
                self.set_http_request_header(owned, None);
                changed = true;
            }
        }
        for (name, value) in &writes {
            let same = pairs
                .iter()
                .filter(|(n, _)| n == name)
                .map(|(_, v)| v.as_slice())
                .eq([value.as_bytes()]);
            if !same {
                self.set_http_request_header(name, Some(value));
                changed = true;
            }
        }
        if changed {
            // Envoy picked the route before this filter ran; make it look again.
            // Hosts without the function (or older ABIs) answer NotFound: ignore.
            let _ = self.call_foreign_function("clear_route_cache", None);
        }
        self.response_headers = response_headers(&plan, &decision);
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        for (name, value) in std::mem::take(&mut self.response_headers) {
            self.add_http_response_header(&name, &value);
        }
        Action::Continue
    }
}

fn response_headers(plan: &Plan, decision: &Decision) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = decision
        .set_cookies(plan)
        .into_iter()
        .map(|c| ("set-cookie".to_string(), c))
        .collect();
    if let (true, Some(name)) = (
        decision.tester,
        plan.overrides
            .as_ref()
            .and_then(|o| o.debug_header.as_ref()),
    ) {
        out.push((name.clone(), decision.explain(plan)));
    }
    out
}
