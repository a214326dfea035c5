//! Which root context dispatched each HTTP call in flight, so its response reaches that root's
//! state (the Unleash poll, a guard's webhook) whatever context id the host names with it. Only
//! root contexts dispatch calls, never a request.
use std::cell::{Cell, RefCell};

thread_local! {
    /// The root context whose hook is running.
    static ACTIVE_ROOT: Cell<u32> = const { Cell::new(0) };
    /// `(token, root context id)` per call in flight: a handful at most (a poll and a webhook or
    /// two per root), so a list.
    static IN_FLIGHT: RefCell<Vec<(u32, u32)>> = const { RefCell::new(Vec::new()) };
}

/// A root context's hook starts: calls dispatched from now on are its own.
pub fn enter_root(context_id: u32) {
    ACTIVE_ROOT.with(|active| active.set(context_id));
}

/// Records a call the active root context dispatched. Out of line: inlined, it grows its
/// caller `dispatch_with_body` past the ~1.2 KB of wasm above which V8 keeps more memory.
#[inline(never)]
pub fn dispatched(token: u32) {
    let root = ACTIVE_ROOT.with(Cell::get);
    IN_FLIGHT.with(|calls| calls.borrow_mut().push((token, root)));
}

/// The root context that dispatched the call `token`, forgetting the call; `None` for a token
/// this VM never dispatched.
pub fn answered(token: u32) -> Option<u32> {
    IN_FLIGHT.with(|calls| {
        let mut calls = calls.borrow_mut();
        let at = calls.iter().position(|&(t, _)| t == token)?;
        Some(calls.swap_remove(at).1)
    })
}

/// A root context is gone: Envoy cancels its calls, so no answer will come for them.
pub fn forget_root(context_id: u32) {
    IN_FLIGHT.with(|calls| calls.borrow_mut().retain(|&(_, root)| root != context_id));
}
