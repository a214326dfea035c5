//! The proxy-wasm glue: thin on purpose. The root context compiles pushed
//! config into a plan; each HTTP context gathers the request facts the plan
//! needs, asks the engine, and applies the decision.
mod headers;
mod http;
mod root;
mod unleash_poll;
mod worker;

use proxy_wasm::traits::RootContext;
use proxy_wasm::types::LogLevel;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(root::SluiceRoot::default()) });
}}
