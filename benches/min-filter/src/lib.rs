//! The least any routing filter does per request: read the user header, hash it, set one routing
//! header, clear the route cache. In the Envoy load comparison it separates the cost of crossing
//! into the VM at all (the no-op filter) from the cost of the hostcalls every header-routing
//! filter needs, so Sluice's own cost can be read off above it.
//!
//! Its plugin configuration picks a variant, to price each hostcall (bench-envoy's `min-*`
//! setups): `get` only reads the header; `get-set` reads and sets it without clearing the route
//! cache; anything else (`{}`) does all three.
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(MinRoot { steps: 3 }) });
}}

struct MinRoot {
    /// 1: get; 2: get + set; 3: get + set + clear_route_cache.
    steps: u8,
}

impl Context for MinRoot {}
impl RootContext for MinRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        self.steps = match self.get_plugin_configuration().as_deref() {
            Some(b"get") => 1,
            Some(b"get-set") => 2,
            _ => 3,
        };
        true
    }
    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(MinHttp { steps: self.steps }))
    }
}

struct MinHttp {
    steps: u8,
}

impl Context for MinHttp {}
impl HttpContext for MinHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let user = self.get_http_request_header_bytes("x-user-id");
        let hash = user.unwrap_or_default().iter().fold(5381u32, |h, b| {
            h.wrapping_mul(33).wrapping_add(u32::from(*b))
        });
        let version = if hash % 10_000 < 1_000 { "v2" } else { "v1" };
        if self.steps >= 2 {
            self.set_http_request_header("x-route-reviews", Some(version));
        }
        if self.steps >= 3 {
            let _ = self.call_foreign_function("clear_route_cache", None);
        }
        Action::Continue
    }
}
