//! The proxy-wasm ABI 0.2.1 callbacks Envoy calls (exactly those in the Makefile's
//! `WASM_EXPORTS_sluice`), and the table of contexts they act on.
//!
//! Sluice speaks the ABI itself instead of through the Rust SDK: the SDK's dispatcher keeps every
//! context behind `dyn` in SipHash maps and looks a context up in up to three of them per
//! callback. Here root contexts are a short list (one per plugin config sharing the VM) and
//! requests a table indexed by context id (`table`): a demo.json request costs 10 948 wasm
//! instructions instead of 11 776 (bench-host), the hooks other than the header ones 655
//! instead of 1 331.
use crate::calls;
use crate::http::SluiceHttp;
use crate::root::SluiceRoot;
use crate::table::IdTable;
use crate::{abi, logger};
use std::cell::RefCell;

/// `Action::Continue`: Sluice never pauses a stream.
const CONTINUE: u32 = 0;

struct Contexts {
    /// Root contexts by id: one per plugin config in this VM; Envoy creates a new one for a
    /// pushed config and retires the old one.
    roots: Vec<(u32, SluiceRoot)>,
    /// HTTP contexts by id. Boxed: moving a request's state into the table by value costs more
    /// than the allocation (other hooks 924 wasm instructions per request unboxed, 524 boxed;
    /// bench-host, demo.json, measured again after `Routed` shrank).
    requests: IdTable<Box<SluiceHttp>>,
}

impl Contexts {
    fn root(&mut self, context_id: u32) -> Option<&mut SluiceRoot> {
        self.roots
            .iter_mut()
            .find(|(id, _)| *id == context_id)
            .map(|(_, root)| root)
    }

    /// A new root context (one per plugin config), replacing one of the same id.
    #[inline(never)]
    fn create_root(&mut self, context_id: u32) {
        self.roots.retain(|(id, _)| *id != context_id);
        self.roots.push((context_id, SluiceRoot::default()));
    }
}

thread_local! {
    static CONTEXTS: RefCell<Contexts> = const {
        RefCell::new(Contexts {
            roots: Vec::new(),
            requests: IdTable::new(),
        })
    };
}

/// Runs `f` on the table; `otherwise` if it is in use. Envoy never calls back into the module
/// from a hostcall (it defers an HTTP call's inline failure to its event loop), so it never is,
/// but a nested callback must not trap.
fn with_contexts<R>(otherwise: R, f: impl FnOnce(&mut Contexts) -> R) -> R {
    CONTEXTS.with(|contexts| match contexts.try_borrow_mut() {
        Ok(mut contexts) => f(&mut contexts),
        Err(_) => otherwise,
    })
}

/// A root context's callback: calls it dispatches are its own.
fn with_root<R>(context_id: u32, otherwise: R, f: impl FnOnce(&mut SluiceRoot) -> R) -> R {
    calls::enter_root(context_id);
    with_contexts(None, |contexts| contexts.root(context_id).map(f)).unwrap_or(otherwise)
}

/// A request's callback; nothing for a request that has no context (no config was loaded when it
/// started).
fn with_request(context_id: u32, f: impl FnOnce(&mut SluiceHttp)) {
    with_contexts((), |contexts| {
        if let Some(request) = contexts.requests.get_mut(context_id) {
            f(request);
        }
    });
}

#[cfg(target_os = "wasi")]
extern "C" {
    /// The linker's constructor list (wasi-libc's and any static initialisers).
    fn __wasm_call_ctors();
}

/// The reactor's entry point, run once when the VM starts.
#[no_mangle]
pub extern "C" fn _initialize() {
    // SAFETY: called once, first, as the wasi reactor model requires.
    #[cfg(target_os = "wasi")]
    unsafe {
        __wasm_call_ctors()
    };
    logger::install();
}

/// Declares the ABI version: 0.2.1, for which Envoy re-selects the route after a filter changed
/// request headers (`http.rs`).
#[no_mangle]
pub extern "C" fn proxy_abi_version_0_2_1() {}

/// Memory for a value the host hands over; the filter frees it as a `Vec<u8>` of `size` bytes
/// (`abi`), so it comes from the global allocator with that layout.
#[no_mangle]
pub extern "C" fn proxy_on_memory_allocate(size: usize) -> *mut u8 {
    match std::alloc::Layout::from_size_align(size, 1) {
        // SAFETY: the layout has a non-zero size.
        Ok(layout) if size > 0 => unsafe { std::alloc::alloc(layout) },
        // What an empty `Vec` holds: never dereferenced, never freed.
        Ok(_) => std::ptr::NonNull::<u8>::dangling().as_ptr(),
        Err(_) => std::ptr::null_mut(),
    }
}

/// Nothing to do per VM: each root context loads its own config in `proxy_on_configure`.
#[no_mangle]
pub extern "C" fn proxy_on_vm_start(_root_context_id: u32, _vm_configuration_size: usize) -> bool {
    true
}

#[no_mangle]
pub extern "C" fn proxy_on_context_create(context_id: u32, root_context_id: u32) {
    with_contexts((), |contexts| {
        if root_context_id == 0 {
            contexts.create_root(context_id);
        } else if let Some(request) = contexts
            .root(root_context_id)
            .and_then(|root| root.create_http_context(context_id))
        {
            contexts.requests.insert(context_id, Box::new(request));
        }
    });
}

#[no_mangle]
pub extern "C" fn proxy_on_configure(root_context_id: u32, _configuration_size: usize) -> bool {
    with_root(root_context_id, false, SluiceRoot::on_configure)
}

#[no_mangle]
pub extern "C" fn proxy_on_tick(root_context_id: u32) {
    with_root(root_context_id, (), SluiceRoot::on_tick);
}

/// Routed by token to the root context that dispatched the call, made the effective context
/// first if the host named another.
#[no_mangle]
pub extern "C" fn proxy_on_http_call_response(
    context_id: u32,
    token: u32,
    num_headers: usize,
    body_size: usize,
    _num_trailers: usize,
) {
    let Some(root_id) = calls::answered(token) else {
        return;
    };
    if root_id != context_id {
        abi::set_effective_context(root_id);
    }
    with_root(root_id, (), |root| {
        root.on_http_call_response(token, num_headers, body_size);
    });
}

#[no_mangle]
pub extern "C" fn proxy_on_request_headers(
    context_id: u32,
    _num_headers: usize,
    _end_of_stream: u32,
) -> u32 {
    with_request(context_id, SluiceHttp::on_request_headers);
    CONTINUE
}

#[no_mangle]
pub extern "C" fn proxy_on_response_headers(
    context_id: u32,
    _num_headers: usize,
    _end_of_stream: u32,
) -> u32 {
    with_request(context_id, SluiceHttp::on_response_headers);
    CONTINUE
}

/// The end of a context, and the only callback at a request's end: Envoy calls `proxy_on_log`
/// (access log), then `proxy_on_done` and `proxy_on_delete` (filter destroyed) for every
/// request, and Sluice exports only this one. Two VM entries fewer per request; a missing
/// `proxy_on_done` reads as "done" (proxy-wasm-cpp-host `ContextBase::onDone`). A root context
/// (retired by a config push, or at shutdown) hands over its counts first.
#[no_mangle]
pub extern "C" fn proxy_on_delete(context_id: u32) {
    with_contexts((), |contexts| {
        if let Some(mut request) = contexts.requests.remove(context_id) {
            request.on_end();
        } else if let Some(at) = contexts.roots.iter().position(|(id, _)| *id == context_id) {
            let (_, mut root) = contexts.roots.remove(at);
            root.on_retire();
            calls::forget_root(context_id);
        }
    });
}
