//! The least any routing filter does per request: read the user header, hash it, set one routing
//! header, clear the route cache. In the Envoy load comparison it separates the cost of crossing
//! into the VM at all (the no-op filter) from the cost of the hostcalls every header-routing
//! filter needs, so Sluice's own cost can be read off above it.
//!
//! Its plugin configuration picks a variant, to price each hostcall (bench-envoy's `min-*`
//! setups): `get` only reads the header; `get-set` reads and sets it without clearing the route
//! cache; anything else (`{}`) does all three. `set8` and `pairs8` price the two ways of writing
//! eight headers, as Sluice does for examples/flags.json: eight `proxy_replace_header_map_value`
//! calls, or reading the whole map and writing it back with `proxy_set_header_map_pairs` (which
//! Envoy applies by removing every header and adding each pair).
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(MinRoot { steps: 3 }) });
}}

struct MinRoot {
    /// 1: get; 2: get + set; 3: get + set + clear_route_cache; 4: get + the whole map read +
    /// 8 sets; 5: get + the whole map read and written back with 8 headers more.
    steps: u8,
}

/// The headers `set8` and `pairs8` write.
const EIGHT: [&str; 8] = [
    "x-route-reviews",
    "x-features",
    "x-flag-1",
    "x-flag-2",
    "x-flag-3",
    "x-flag-4",
    "x-flag-5",
    "baggage",
];

impl Context for MinRoot {}
impl RootContext for MinRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        self.steps = match self.get_plugin_configuration().as_deref() {
            Some(b"get") => 1,
            Some(b"get-set") => 2,
            Some(b"set8") => 4,
            Some(b"pairs8") => 5,
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
        if self.steps == 4 {
            // The whole map read as Sluice reads it, so only the writes differ from `pairs8`.
            let _ = self.get_http_request_headers_bytes();
            for name in EIGHT {
                self.set_http_request_header(name, Some(version));
            }
            return Action::Continue;
        }
        if self.steps == 5 {
            let mut pairs = self.get_http_request_headers();
            pairs.extend(EIGHT.iter().map(|n| (n.to_string(), version.to_string())));
            let pairs: Vec<(&str, &str)> = pairs
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            self.set_http_request_headers(pairs);
            return Action::Continue;
        }
        if self.steps >= 2 {
            self.set_http_request_header("x-route-reviews", Some(version));
        }
        if self.steps >= 3 {
            let _ = self.call_foreign_function("clear_route_cache", None);
        }
        Action::Continue
    }
}
