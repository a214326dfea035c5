//! Root context: one per plugin per worker VM. Owns the compiled plan.
use super::http::SluiceHttp;
use crate::compile;
use crate::plan::Plan;
use log::{error, info};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;
use std::rc::Rc;

#[derive(Default)]
pub struct SluiceRoot {
    plan: Option<Rc<Plan>>,
    /// Seed for per-request entropy, from the clock at configure time.
    seed: u64,
}

impl Context for SluiceRoot {}

impl RootContext for SluiceRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let Some(bytes) = self.get_plugin_configuration() else {
            error!("sluice: config rejected: config: no plugin configuration was given");
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
                self.plan = Some(Rc::new(plan));
                self.seed = self
                    .get_current_time()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64);
                true
            }
            Err(err) => {
                // Returning false makes Envoy reject this config (and keep the
                // previous one, or refuse to start on the first).
                error!("sluice: config rejected: {err}");
                false
            }
        }
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        let plan = self.plan.clone()?;
        Some(Box::new(SluiceHttp::new(
            plan,
            self.seed ^ u64::from(context_id).wrapping_mul(0x9e37_79b9_7f4a_7c15),
        )))
    }
}
