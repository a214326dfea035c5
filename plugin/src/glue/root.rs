//! Root context: one per plugin config per worker VM. Compiles the pushed
//! config, defines stats, and on each tick flushes stats and runs guards.
use super::http::SluiceHttp;
use super::worker::{add_to_gauge, bump_counter, Worker};
use crate::compile;
use crate::telemetry;
use log::{error, info};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

/// Stats flush and guard cadence: a tripped guard reaches every worker
/// within one tick.
const TICK: Duration = Duration::from_secs(1);

#[derive(Default)]
pub struct SluiceRoot {
    worker: Option<Rc<Worker>>,
}

impl SluiceRoot {
    fn now_ms(&self) -> i64 {
        self.get_current_time()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    }
}

impl Context for SluiceRoot {
    fn on_done(&mut self) -> bool {
        // Envoy retires this root context when a new config replaces it.
        if let Some(worker) = &self.worker {
            add_to_gauge(&telemetry::active_revision(&worker.plan_id), -1);
        }
        true
    }

    fn on_http_call_response(
        &mut self,
        token_id: u32,
        num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        if let Some(worker) = &self.worker {
            worker.unleash_response(token_id, num_headers, body_size);
        }
    }
}

impl RootContext for SluiceRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let Some(bytes) = self.get_plugin_configuration() else {
            error!("sluice: config rejected: config: no plugin configuration was given");
            bump_counter(telemetry::CONFIG_REJECTED);
            return false;
        };
        match compile::load(&bytes) {
            Ok(plan) => {
                info!(
                    "sluice: config loaded (revision `{}`): {} flags, {} routes",
                    plan.revision,
                    plan.flags.len(),
                    plan.routes.len()
                );
                let plan_id = if plan.revision.is_empty() {
                    format!("{:08x}", sluice_primitives::murmur3_x86_32(&bytes, 0))
                } else {
                    plan.revision.clone()
                };
                let seed = self
                    .get_current_time()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64);
                let worker = Rc::new(Worker::new(plan, plan_id, seed));
                // A re-pushed config must not reopen a canary that a guard
                // already stopped, nor fall back from the polled Unleash
                // payload to defaults, even until the next tick.
                worker.run_guards(self.now_ms());
                worker.adopt_shared_unleash();
                // Some hosts configure the same root again: the old config leaves.
                if let Some(old) = &self.worker {
                    add_to_gauge(&telemetry::active_revision(&old.plan_id), -1);
                }
                add_to_gauge(&telemetry::active_revision(&worker.plan_id), 1);
                self.worker = Some(worker);
                bump_counter(telemetry::CONFIG_LOADED);
                self.set_tick_period(TICK);
                true
            }
            Err(err) => {
                // Returning false makes Envoy reject this config (and keep the
                // previous one, or refuse to start on the first).
                error!("sluice: config rejected: {err}");
                bump_counter(telemetry::CONFIG_REJECTED);
                false
            }
        }
    }

    fn on_tick(&mut self) {
        if let Some(worker) = &self.worker {
            worker.flush_metrics();
            let now = self.now_ms();
            worker.run_guards(now);
            worker.tick_unleash(now);
        }
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        let worker = self.worker.clone()?;
        let entropy = worker.seed ^ u64::from(context_id).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        Some(Box::new(SluiceHttp::new(worker, entropy)))
    }
}
