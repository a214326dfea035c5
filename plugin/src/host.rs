//! The core's host traits, implemented with proxy-wasm hostcalls.
use fnv::FnvHashMap;
use proxy_wasm::hostcalls;
use proxy_wasm::types::{MetricType, Status};
use sluice_core::host::{HttpCalls, MetricKind, SetError, SharedData, Stats};
use std::cell::RefCell;
use std::time::Duration;

/// Envoy, as the core sees it.
pub struct Envoy;

thread_local! {
    /// Metric ids this VM was handed, by kind and name. Envoy's defineMetric gives a new id (and a
    /// new entry in the VM's metric map) on every call, even for a name it has seen: without this,
    /// each config push would add a full set of entries.
    /// One map per kind, so a lookup borrows the name instead of building a key.
    static METRIC_IDS: RefCell<[FnvHashMap<String, u32>; 3]> = RefCell::new(Default::default());
}

impl Stats for Envoy {
    fn define(&self, kind: MetricKind, name: &str) -> Option<u32> {
        let (map, kind) = match kind {
            MetricKind::Counter => (0, MetricType::Counter),
            MetricKind::Gauge => (1, MetricType::Gauge),
            MetricKind::Histogram => (2, MetricType::Histogram),
        };
        let known = METRIC_IDS.with(|ids| ids.borrow()[map].get(name).copied());
        if known.is_some() {
            return known;
        }
        let id = hostcalls::define_metric(kind, name).ok()?;
        METRIC_IDS.with(|ids| ids.borrow_mut()[map].insert(name.to_string(), id));
        Some(id)
    }

    fn increment(&self, id: u32, delta: i64) {
        let _ = hostcalls::increment_metric(id, delta);
    }

    fn record(&self, id: u32, value: u64) {
        let _ = hostcalls::record_metric(id, value);
    }
}

impl SharedData for Envoy {
    fn get(&self, key: &str) -> Option<(Option<Vec<u8>>, Option<u32>)> {
        hostcalls::get_shared_data(key).ok()
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), SetError> {
        match hostcalls::set_shared_data(key, Some(value), cas) {
            Ok(()) => Ok(()),
            Err(Status::CasMismatch) => Err(SetError::CasMismatch),
            Err(_) => Err(SetError::Failed),
        }
    }
}

impl HttpCalls for Envoy {
    fn dispatch(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        timeout_ms: u64,
    ) -> Result<u32, String> {
        hostcalls::dispatch_http_call(
            cluster,
            headers.to_vec(),
            None,
            vec![],
            Duration::from_millis(timeout_ms),
        )
        .map_err(|status| format!("{status:?}"))
    }

    fn dispatch_with_body(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        timeout_ms: u64,
    ) -> Result<u32, String> {
        hostcalls::dispatch_http_call(
            cluster,
            headers.to_vec(),
            Some(body),
            vec![],
            Duration::from_millis(timeout_ms),
        )
        .map_err(|status| format!("{status:?}"))
    }
}

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_current_time_nanoseconds(return_time: *mut u64) -> Status;
}

/// The proxy's clock in Unix millis, straight from the hostcall: the SDK's `SystemTime` route
/// costs a few hundred wasm instructions of time arithmetic per read.
pub fn now_ms() -> i64 {
    let mut nanos = 0u64;
    // SAFETY: the host writes one u64 at the pointer we pass, which points at a local.
    match unsafe { proxy_get_current_time_nanoseconds(&mut nanos) } {
        Status::Ok => (nanos / 1_000_000) as i64,
        _ => 0,
    }
}
