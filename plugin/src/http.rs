//! Per-request context: gather the facts the plan reads, run the core's pipeline, apply the
//! patch; on the response, hand the status to the core for stats and the canary guard.
use crate::abi::{self, HeaderMap};
use sluice_core::engine::Headers;
use sluice_core::pipeline::{Facts, Patch};
use sluice_core::plan::Plan;
use sluice_core::telemetry::parse_status;
use sluice_core::vm::{Routed, VmState};
use std::rc::Rc;

pub struct SluiceHttp {
    vm: Rc<VmState>,
    entropy: u64,
    /// Response headers decided at request time (cookies, debug).
    response_headers: Vec<(String, String)>,
    /// Where this request was routed, for response accounting.
    routed: Routed,
    responded: bool,
}

impl SluiceHttp {
    pub fn new(vm: Rc<VmState>, entropy: u64) -> Self {
        SluiceHttp {
            vm,
            entropy,
            response_headers: Vec::new(),
            routed: Routed::default(),
            responded: false,
        }
    }

    fn now_ms(&self) -> i64 {
        crate::host::now_ms()
    }

    #[inline(never)]
    pub fn on_request_headers(&mut self) {
        let vm = Rc::clone(&self.vm);
        let plan = &vm.plan;
        // One hostcall for every header, read in place.
        let map = abi::header_map_pairs(HeaderMap::Request);
        let source = if plan.reads_source_address {
            abi::property(b"source\0address")
        } else {
            None
        };
        let facts = Facts {
            headers: Headers::Serialized(&map),
            source: source.as_deref(),
            now_ms: if plan.reads_clock || !plan.routes.is_empty() {
                self.now_ms()
            } else {
                0
            },
            entropy: self.entropy,
        };
        let mut response_headers = Vec::new();
        vm.on_request_into(&facts, &mut self.routed, |plan, patch| {
            apply(plan, patch, &mut response_headers)
        });
        self.response_headers = response_headers;
    }

    #[inline(never)]
    pub fn on_response_headers(&mut self) {
        for (name, value) in std::mem::take(&mut self.response_headers) {
            abi::add_header(HeaderMap::Response, &name, &value);
        }
        if !self.vm.plan.goal_headers.is_empty() {
            self.take_goals();
        }
        if !self.routed.is_empty() && !self.responded {
            self.account_response();
        }
    }

    /// Experiment goals: counted for this request's variants, never shown to the client.
    #[inline(never)]
    fn take_goals(&self) {
        for (i, name) in self.vm.plan.goal_headers.iter().enumerate() {
            if let Some(value) = abi::header(HeaderMap::Response, name) {
                abi::remove_header(HeaderMap::Response, name);
                self.vm.on_goals(&self.routed, i, &value);
            }
        }
    }

    /// The response's status, for the stats and the canary guard.
    #[inline(never)]
    fn account_response(&mut self) {
        self.responded = true;
        let status = abi::header(HeaderMap::Response, ":status").map_or(0, |s| parse_status(&s));
        // Envoy marks its own replies (timeouts, no healthy upstream, …) with details
        // other than `via_upstream`.
        let local_reply = self.routed.counts_local_replies
            && status < 500
            && abi::property(b"response\0code_details").is_some_and(|d| d != b"via_upstream");
        self.vm
            .on_response(&self.routed, status, local_reply, self.now_ms());
    }

    /// The request's end (its context is deleted next). A stream reset before any response
    /// still counts, as a failure.
    pub fn on_end(&mut self) {
        if !self.routed.is_empty() && !self.responded {
            self.responded = true;
            self.vm.on_response(&self.routed, 0, true, self.now_ms());
        }
    }
}

/// The patch through hostcalls; the response headers kept for the response.
#[inline(never)]
fn apply(plan: &Plan, patch: &Patch, response_headers: &mut Vec<(String, String)>) {
    for name in patch.removals(plan) {
        abi::remove_header(HeaderMap::Request, name);
    }
    for (name, value) in patch.sets(plan) {
        abi::replace_header(HeaderMap::Request, name, value);
    }
    // No clear_route_cache call: for a filter of ABI 0.2.1 (what `exports` declares)
    // Envoy re-reads the route itself after a header change (a hostcall saved).
    response_headers.extend(
        patch
            .response_headers(plan)
            .map(|(name, value)| (name.to_string(), value.to_string())),
    );
}
