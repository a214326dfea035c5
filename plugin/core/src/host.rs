//! What the core needs from its host, as small traits: the filter implements them with
//! proxy-wasm hostcalls, `local` implements them in memory for native tests and tools. Time is
//! not a trait: callers pass the clock's reading in.
use std::cell::{Cell, RefCell};
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricKind {
    Counter,
    Gauge,
    Histogram,
}

/// Envoy's stats. Ids come from `define`, once per VM per name: Envoy hands out a new id (and a
/// new map entry) on every call, so defining per use would grow the VM's metric map.
pub trait Stats {
    /// `None` when the host refuses the metric; the filter goes on without it.
    fn define(&self, kind: MetricKind, name: &str) -> Option<u32>;
    fn increment(&self, id: u32, delta: i64);
    fn record(&self, id: u32, value: u64);
}

/// Why a shared-data write did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetError {
    /// Another VM wrote the key since our read (compare-and-swap lost).
    CasMismatch,
    Failed,
}

/// Envoy's shared data: bytes per key, visible to every VM of the plugin, with a CAS number.
pub trait SharedData {
    /// The value and its CAS number; `None` when the host failed (not when the key is absent).
    fn get(&self, key: &str) -> Option<(Option<Vec<u8>>, Option<u32>)>;
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), SetError>;
}

/// An HTTP call through one of Envoy's clusters; the answer arrives later, by token.
pub trait HttpCalls {
    /// The call's token, or why it could not be made.
    fn dispatch(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        timeout_ms: u64,
    ) -> Result<u32, String>;

    /// The same with a request body (a POST). Hosts that only poll need not send bodies.
    fn dispatch_with_body(
        &self,
        cluster: &str,
        _headers: &[(&str, &str)],
        _body: &[u8],
        _timeout_ms: u64,
    ) -> Result<u32, String> {
        Err(format!(
            "this host cannot send a request body to `{cluster}`"
        ))
    }
}

/// In-memory hosts: one VM's view of shared data and stats, for native tests and tools.
pub mod local {
    use super::*;

    /// Shared data in memory with Envoy's CAS rules (a write with a stale CAS number fails).
    #[derive(Default)]
    pub struct LocalShared {
        entries: RefCell<HashMap<String, (Vec<u8>, u32)>>,
    }

    impl SharedData for LocalShared {
        fn get(&self, key: &str) -> Option<(Option<Vec<u8>>, Option<u32>)> {
            Some(match self.entries.borrow().get(key) {
                Some((value, cas)) => (Some(value.clone()), Some(*cas)),
                None => (None, None),
            })
        }

        fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), SetError> {
            let mut entries = self.entries.borrow_mut();
            let next = match entries.get(key) {
                Some((_, current)) if cas.is_some_and(|c| c != *current) => {
                    return Err(SetError::CasMismatch)
                }
                Some((_, current)) => current + 1,
                None => 1,
            };
            entries.insert(key.to_string(), (value.to_vec(), next));
            Ok(())
        }
    }

    /// Stats in memory, by name. Like Envoy, each `define` hands out a new id, so a caller that
    /// defines per use shows up in `definitions`.
    #[derive(Default)]
    pub struct LocalStats {
        ids: RefCell<Vec<(MetricKind, String)>>,
        values: RefCell<HashMap<String, i64>>,
        records: RefCell<HashMap<String, Vec<u64>>>,
        pub definitions: Cell<usize>,
    }

    impl LocalStats {
        /// A counter's or gauge's value by name (0 when never touched).
        pub fn value(&self, name: &str) -> i64 {
            self.values.borrow().get(name).copied().unwrap_or(0)
        }

        /// A histogram's recorded values by name.
        pub fn records(&self, name: &str) -> Vec<u64> {
            self.records.borrow().get(name).cloned().unwrap_or_default()
        }

        fn name(&self, id: u32) -> Option<String> {
            self.ids
                .borrow()
                .get(id as usize)
                .map(|(_, name)| name.clone())
        }
    }

    impl Stats for LocalStats {
        fn define(&self, kind: MetricKind, name: &str) -> Option<u32> {
            self.definitions.set(self.definitions.get() + 1);
            let mut ids = self.ids.borrow_mut();
            ids.push((kind, name.to_string()));
            Some((ids.len() - 1) as u32)
        }

        fn increment(&self, id: u32, delta: i64) {
            if let Some(name) = self.name(id) {
                *self.values.borrow_mut().entry(name).or_default() += delta;
            }
        }

        fn record(&self, id: u32, value: u64) {
            let Some((kind, name)) = self.ids.borrow().get(id as usize).cloned() else {
                return;
            };
            if kind == MetricKind::Histogram {
                self.records
                    .borrow_mut()
                    .entry(name)
                    .or_default()
                    .push(value);
            } else {
                self.values.borrow_mut().insert(name, value as i64);
            }
        }
    }
}
