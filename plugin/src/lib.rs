//! Sluice as a proxy-wasm filter: thin on purpose. The root context compiles the pushed config
//! into a `sluice_core::vm::VmState`; each HTTP context gathers the facts the plan reads, runs the
//! core's request pipeline and applies the header patch it returns. Everything else (stats,
//! guards, polling) is the core's, reached through the host traits implemented in `host`.
//!
//! The filter speaks the proxy-wasm ABI itself (`abi`: the hostcalls it makes, `exports`: the
//! callbacks and its context table) rather than through the Rust SDK, whose dispatcher cost
//! ~830 of a demo.json request's 11 776 wasm instructions (BENCHMARKS.md).

#[cfg(target_arch = "wasm32")]
mod abi;
#[cfg(target_arch = "wasm32")]
mod calls;
#[cfg(target_arch = "wasm32")]
mod exports;
#[cfg(target_arch = "wasm32")]
mod host;
#[cfg(target_arch = "wasm32")]
mod http;
#[cfg(target_arch = "wasm32")]
mod logger;
#[cfg(target_arch = "wasm32")]
mod root;
#[cfg(any(target_arch = "wasm32", test))]
mod table;

/// Small blocks from per-size free lists: dlmalloc's own bookkeeping cost more than a request's
/// header lookups (see `sluice_primitives::pool`).
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: sluice_primitives::pool::Pool<std::alloc::System> =
    sluice_primitives::pool::Pool::new(std::alloc::System);

/// The module's `memcmp` (and so `bcmp`, which wasi-libc forwards to it): string equality and
/// ordering call it constantly, and wasi-libc's compares a byte per loop turn; this one eight.
///
/// # Safety
/// As C's `memcmp`: `a` and `b` are readable for `n` bytes.
#[cfg(target_arch = "wasm32")]
#[no_mangle]
#[inline(never)] // one copy, not one per string comparison
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    sluice_primitives::compare_bytes(
        core::slice::from_raw_parts(a, n),
        core::slice::from_raw_parts(b, n),
    )
}
