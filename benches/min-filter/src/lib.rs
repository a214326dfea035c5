//! The least any routing filter does per request: read the user header, hash it, set one routing
//! header, clear the route cache. In the Envoy load comparison it separates the cost of crossing
//! into the VM at all (the no-op filter) from the cost of the hostcalls every header-routing
//! filter needs, so Sluice's own cost can be read off above it.
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(MinRoot) });
}}

struct MinRoot;
impl Context for MinRoot {}
impl RootContext for MinRoot {
    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(MinHttp))
    }
}

struct MinHttp;
impl Context for MinHttp {}
impl HttpContext for MinHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let user = self.get_http_request_header_bytes("x-user-id");
        let hash = user.unwrap_or_default().iter().fold(5381u32, |h, b| {
            h.wrapping_mul(33).wrapping_add(u32::from(*b))
        });
        let version = if hash % 10_000 < 1_000 { "v2" } else { "v1" };
        self.set_http_request_header("x-route-reviews", Some(version));
        let _ = self.call_foreign_function("clear_route_cache", None);
        Action::Continue
    }
}
