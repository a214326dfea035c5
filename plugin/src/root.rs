//! Root context: one per plugin config per VM. Compiles the pushed config into the core's
//! `VmState`, and on each tick has the core flush stats, run guards and poll.
use crate::abi::{self, Buffer, HeaderMap};
use crate::host::Envoy;
use crate::http::SluiceHttp;
use log::{error, info};
use sluice_core::host::{MetricKind, Stats};
use sluice_core::plan::Plan;
use sluice_core::poll::{PollCounters, PollResponse};
use sluice_core::telemetry::parse_status;
use sluice_core::vm::VmState;
use sluice_core::{compile, telemetry};
use std::rc::Rc;

/// The timer, in milliseconds: a polled payload another VM fetched is taken from shared data
/// within one tick, so a change reaches every worker within the poll interval + 2 ticks of its
/// source serving it.
const TICK_MS: u32 = 250;
/// Stats flush, guards and webhooks run once a second (every fourth tick): the guard's windows
/// and its sequential test are tuned to a look per second, and a tripped guard reaches every VM
/// within one second.
const TICKS_PER_SECOND: u32 = 1000 / TICK_MS;

#[derive(Default)]
pub struct SluiceRoot {
    vm: Option<Rc<VmState>>,
    counters: Option<RootCounters>,
    /// Ticks since the config was loaded, to run the once-a-second work on every fourth.
    ticks: u32,
}

/// Stats of the root itself, defined once per root context.
struct RootCounters {
    loaded: Option<u32>,
    rejected: Option<u32>,
    poll: PollCounters,
}

impl SluiceRoot {
    fn now_ms(&self) -> i64 {
        crate::host::now_ms()
    }

    fn counters(&mut self) -> &RootCounters {
        self.counters.get_or_insert_with(|| RootCounters {
            loaded: Envoy.define(MetricKind::Counter, telemetry::CONFIG_LOADED),
            rejected: Envoy.define(MetricKind::Counter, telemetry::CONFIG_REJECTED),
            poll: PollCounters::define(&Envoy),
        })
    }

    fn bump(id: Option<u32>) {
        if let Some(id) = id {
            Envoy.increment(id, 1);
        }
    }
}

impl SluiceRoot {
    /// Envoy retires this root context when a new config replaces it: hand over what was
    /// counted since the last tick first, so a push loses no counts.
    #[inline(never)]
    pub fn on_retire(&mut self) {
        if let Some(vm) = &self.vm {
            vm.flush_metrics(&Envoy);
        }
    }

    #[inline(never)]
    pub fn on_http_call_response(&mut self, token_id: u32, num_headers: usize, body_size: usize) {
        let Some(vm) = self.vm.clone() else { return };
        // Without response headers (Envoy reset the call, e.g. its answer outgrew the async
        // client's 32 MiB buffer, or the cluster went away) the header map does not exist and
        // Envoy answers BadArgument: ask only when there are headers.
        let status = (num_headers > 0).then(|| {
            abi::header(HeaderMap::CallResponse, ":status").map_or(0, |s| parse_status(&s))
        });
        // A guard's trip webhook, or else the Unleash poll.
        if vm.webhook_response(token_id, status, &Envoy, self.now_ms()) {
            return;
        }
        self.on_source_response(&vm, token_id, status, num_headers, body_size);
    }

    /// A polled source's answer (Unleash, Spring Cloud Config), read lazily from the host.
    #[inline(never)]
    fn on_source_response(
        &mut self,
        vm: &VmState,
        token_id: u32,
        status: Option<u32>,
        num_headers: usize,
        body_size: usize,
    ) {
        let header = |name: &str| {
            if num_headers == 0 {
                return None;
            }
            abi::header(HeaderMap::CallResponse, name).and_then(|v| String::from_utf8(v).ok())
        };
        let read_body = || abi::buffer(Buffer::HttpCallResponseBody, 0, body_size);
        let response = PollResponse {
            status,
            etag: header("etag"),
            body_size,
            retry_after: header("retry-after"),
            location: header("location"),
            read_body: &read_body,
        };
        let counters = self.counters();
        vm.source_response(token_id, &response, &Envoy, &counters.poll, &Envoy);
    }

    /// Returning false makes Envoy reject this config (and keep the previous one, or refuse to
    /// start on the first).
    #[inline(never)]
    pub fn on_configure(&mut self) -> bool {
        let (loaded, rejected) = {
            let c = self.counters();
            (c.loaded, c.rejected)
        };
        let Some((bytes, plan)) = Self::read_config() else {
            Self::bump(rejected);
            return false;
        };
        self.start(plan, &bytes);
        Self::bump(loaded);
        true
    }

    /// The pushed config, compiled; `None` (logged) when it is missing or invalid.
    #[inline(never)]
    fn read_config() -> Option<(Vec<u8>, Plan)> {
        let Some(bytes) = abi::buffer(Buffer::PluginConfiguration, 0, usize::MAX) else {
            error!("sluice: config rejected: config: no plugin configuration was given");
            return None;
        };
        match compile::load(&bytes) {
            Ok(plan) => Some((bytes, plan)),
            Err(err) => {
                error!("sluice: config rejected: {err}");
                None
            }
        }
    }

    /// The VM state for a newly loaded plan, in force from now on.
    #[inline(never)]
    fn start(&mut self, plan: Plan, bytes: &[u8]) {
        info!(
            "sluice: config loaded (revision `{}`): {} flags, {} routes",
            plan.revision,
            plan.flags.len(),
            plan.routes.len()
        );
        let plan_id = sluice_core::vm::plan_id(&plan, bytes);
        let seed = abi::now_nanos().unwrap_or(0);
        let vm = Rc::new(VmState::new(plan, plan_id, seed, &Envoy));
        // A re-pushed config must not reopen a canary that a guard already stopped, nor fall
        // back from the polled Unleash payload to defaults, even until the next tick.
        vm.run_guards(&Envoy, &Envoy, self.now_ms());
        vm.adopt_shared_sources(&Envoy);
        telemetry::announce_revision(&Envoy, &Envoy, &vm.plan_id);
        self.vm = Some(vm);
        self.ticks = 0;
        abi::set_tick_period_ms(TICK_MS);
    }

    #[inline(never)]
    pub fn on_tick(&mut self) {
        let Some(vm) = self.vm.clone() else { return };
        let now = self.now_ms();
        self.ticks = self.ticks.wrapping_add(1);
        if self.ticks.is_multiple_of(TICKS_PER_SECOND) {
            vm.flush_metrics(&Envoy);
            vm.run_guards(&Envoy, &Envoy, now);
            vm.tick_webhooks(&Envoy, &Envoy, now);
        }
        let counters = self.counters();
        vm.tick_sources(&Envoy, &Envoy, &counters.poll, &Envoy, now);
    }

    /// A request's context; `None` while no config is loaded (the request passes untouched).
    pub fn create_http_context(&self, context_id: u32) -> Option<SluiceHttp> {
        let vm = self.vm.clone()?;
        let entropy = vm.entropy(context_id);
        Some(SluiceHttp::new(vm, entropy))
    }
}
