//! Sluice as a proxy-wasm filter: thin on purpose. The root context compiles the pushed config
//! into a `sluice_core::vm::VmState`; each HTTP context gathers the facts the plan reads, runs the
//! core's request pipeline and applies the header patch it returns. Everything else (stats,
//! guards, polling) is the core's, reached through the host traits implemented in `host`.

#[cfg(target_arch = "wasm32")]
mod headers;
#[cfg(target_arch = "wasm32")]
mod host;
#[cfg(target_arch = "wasm32")]
mod http;
#[cfg(target_arch = "wasm32")]
mod root;

/// Small blocks from per-size free lists: dlmalloc's own bookkeeping cost more than a request's
/// header lookups (see `sluice_primitives::pool`).
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: sluice_primitives::pool::Pool<std::alloc::System> =
    sluice_primitives::pool::Pool::new(std::alloc::System);

#[cfg(target_arch = "wasm32")]
proxy_wasm::main! {{
    proxy_wasm::set_log_level(proxy_wasm::types::LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn proxy_wasm::traits::RootContext> {
        Box::new(root::SluiceRoot::default())
    });
}}
