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
//! Envoy applies by removing every header and adding each pair). `add8` writes the eight with
//! `proxy_add_header_map_value` (for headers known to be absent, no removal first), and `set4`
//! sets the first four of them, as many as Sluice writes for examples/demo.json.
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        Box::new(MinRoot { variant: Variant::GetSetClear })
    });
}}

/// What the filter does after reading `x-user-id` and hashing it (the plugin configuration).
#[derive(Clone, Copy, PartialEq)]
enum Variant {
    /// `get`: nothing more.
    Get,
    /// `get-set`: sets `x-route-reviews`.
    GetSet,
    /// anything else: sets it and clears the route cache.
    GetSetClear,
    /// `set8`, `set4`, `add8`: reads the whole map (as Sluice does), then writes the first
    /// `count` of `EIGHT`, one call each: replacing (`proxy_replace_header_map_value`) or, with
    /// `add`, adding (`proxy_add_header_map_value`).
    WriteEach { count: usize, add: bool },
    /// `pairs8`: reads the whole map and writes it back with the eight headers added.
    Pairs8,
}

struct MinRoot {
    variant: Variant,
}

/// The headers `set8`, `add8` and `pairs8` write (`set4` the first four).
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
        self.variant = match self.get_plugin_configuration().as_deref() {
            Some(b"get") => Variant::Get,
            Some(b"get-set") => Variant::GetSet,
            Some(b"set8") => Variant::WriteEach {
                count: 8,
                add: false,
            },
            Some(b"set4") => Variant::WriteEach {
                count: 4,
                add: false,
            },
            Some(b"add8") => Variant::WriteEach {
                count: 8,
                add: true,
            },
            Some(b"pairs8") => Variant::Pairs8,
            _ => Variant::GetSetClear,
        };
        true
    }
    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(MinHttp {
            variant: self.variant,
        }))
    }
}

struct MinHttp {
    variant: Variant,
}

impl Context for MinHttp {}
impl HttpContext for MinHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let user = self.get_http_request_header_bytes("x-user-id");
        let hash = user.unwrap_or_default().iter().fold(5381u32, |h, b| {
            h.wrapping_mul(33).wrapping_add(u32::from(*b))
        });
        let version = if hash % 10_000 < 1_000 { "v2" } else { "v1" };
        match self.variant {
            Variant::Get => {}
            Variant::GetSet => self.set_http_request_header("x-route-reviews", Some(version)),
            Variant::GetSetClear => {
                self.set_http_request_header("x-route-reviews", Some(version));
                let _ = self.call_foreign_function("clear_route_cache", None);
            }
            Variant::WriteEach { count, add } => {
                let _ = self.get_http_request_headers_bytes();
                for name in EIGHT.iter().take(count) {
                    if add {
                        self.add_http_request_header(name, version);
                    } else {
                        self.set_http_request_header(name, Some(version));
                    }
                }
            }
            Variant::Pairs8 => {
                let mut pairs = self.get_http_request_headers();
                pairs.extend(EIGHT.iter().map(|n| (n.to_string(), version.to_string())));
                let pairs: Vec<(&str, &str)> = pairs
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_str()))
                    .collect();
                self.set_http_request_headers(pairs);
            }
        }
        Action::Continue
    }
}
