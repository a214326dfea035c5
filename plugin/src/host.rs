//! The core's host traits, implemented with proxy-wasm hostcalls.
use crate::abi::{self, MetricType, SetSharedError};
use crate::calls;
use fnv::FnvHashMap;
use sluice_core::host::{HttpCalls, MetricKind, SetError, SharedData, Stats};
use std::cell::RefCell;

/// Envoy, as the core sees it.
pub struct Envoy;

thread_local! {
    /// Metric ids this VM was handed, by kind and name. Envoy's defineMetric gives a new id (and a
    /// new entry in the VM's metric map) on every call, even for a name it has seen: without this,
    /// each config push would add a full set of entries.
    /// One map per kind, so a lookup borrows the name instead of building a key. Its own map
    /// type rather than `sluice_primitives::names::OwnedNameIndex`: sharing that one saved 2 KB
    /// of code but made the 1000-flag config load 2% slower (47.0 M -> 47.9 M wasm instructions).
    static METRIC_IDS: RefCell<[FnvHashMap<String, u32>; 3]> = RefCell::new(Default::default());
}

#[inline(never)]
fn known_metric(map: usize, name: &str) -> Option<u32> {
    METRIC_IDS.with(|ids| ids.borrow()[map].get(name).copied())
}

#[inline(never)]
fn remember_metric(map: usize, name: &str, id: u32) {
    METRIC_IDS.with(|ids| ids.borrow_mut()[map].insert(name.to_string(), id));
}

impl Stats for Envoy {
    fn define(&self, kind: MetricKind, name: &str) -> Option<u32> {
        let (map, kind) = match kind {
            MetricKind::Counter => (0, MetricType::Counter),
            MetricKind::Gauge => (1, MetricType::Gauge),
            MetricKind::Histogram => (2, MetricType::Histogram),
        };
        if let Some(id) = known_metric(map, name) {
            return Some(id);
        }
        let id = abi::define_metric(kind, name)?;
        remember_metric(map, name, id);
        Some(id)
    }

    fn increment(&self, id: u32, delta: i64) {
        abi::increment_metric(id, delta);
    }

    fn record(&self, id: u32, value: u64) {
        abi::record_metric(id, value);
    }
}

impl SharedData for Envoy {
    fn get(&self, key: &str) -> Option<(Option<Vec<u8>>, Option<u32>)> {
        abi::shared_data(key)
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), SetError> {
        abi::set_shared_data(key, value, cas).map_err(|err| match err {
            SetSharedError::CasMismatch => SetError::CasMismatch,
            SetSharedError::Other => SetError::Failed,
        })
    }
}

impl HttpCalls for Envoy {
    fn dispatch(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        timeout_ms: u64,
    ) -> Result<u32, String> {
        self.dispatch_with_body(cluster, headers, &[], timeout_ms)
    }

    fn dispatch_with_body(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        timeout_ms: u64,
    ) -> Result<u32, String> {
        let token = abi::http_call(cluster, headers, body, timeout_ms)?;
        calls::dispatched(token);
        Ok(token)
    }
}

/// The proxy's clock in Unix millis, straight from the hostcall: the SDK's `SystemTime` route
/// costs a few hundred wasm instructions of time arithmetic per read.
pub fn now_ms() -> i64 {
    abi::now_nanos().map_or(0, |nanos| (nanos / 1_000_000) as i64)
}
