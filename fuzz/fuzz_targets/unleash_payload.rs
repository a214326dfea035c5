//! An Unleash poll's answer: any body the Unleash server (or whatever answers on its cluster)
//! sends goes through the filter's poll path (`VmState::unleash_response`: parse, validate,
//! compile into an engine, publish to shared data), then requests are evaluated against it.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sluice_core::host::local::{LocalShared, LocalStats};
use sluice_core::host::HttpCalls;
use sluice_core::poll::{PollCounters, PollResponse};
use sluice_fuzz::EPOCH_MS;

/// The poll call always goes out, with token 1.
struct Calls;

impl HttpCalls for Calls {
    fn dispatch(&self, _: &str, _: &[(&str, &str)], _: u64) -> Result<u32, String> {
        Ok(1)
    }
}

const CONFIG: &[u8] = include_bytes!("../../examples/unleash.json");

fuzz_target!(|data: &[u8]| {
    let stats = LocalStats::default();
    let shared = LocalShared::default();
    let Some(vm) = sluice_fuzz::vm_for(CONFIG, &stats, &shared) else {
        panic!("examples/unleash.json no longer compiles");
    };
    let counters = PollCounters::define(&stats);
    vm.tick_unleash(&shared, &Calls, &counters, &stats, EPOCH_MS);
    let body = data.to_vec();
    let read = move || Some(body.clone());
    let response = PollResponse {
        status: Some(200),
        etag: Some("\"fuzz\"".to_string()),
        body_size: data.len(),
        read_body: &read,
    };
    vm.unleash_response(1, &response, &shared, &counters, &stats);
    sluice_fuzz::drive_fixed(&vm, &stats, &shared);
    // A second VM adopts what the first published, as Envoy's other workers do.
    let Some(other) = sluice_fuzz::vm_for(CONFIG, &stats, &shared) else {
        return;
    };
    sluice_fuzz::drive_fixed(&other, &stats, &shared);
});
