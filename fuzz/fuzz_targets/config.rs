//! The config loader: any bytes pushed as the plugin configuration are either rejected with an
//! error or compiled into a plan the filter can run requests through; never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sluice_core::host::local::{LocalShared, LocalStats};

fuzz_target!(|data: &[u8]| {
    let stats = LocalStats::default();
    let shared = LocalShared::default();
    // The filter's on_configure: compile::load, plan_id, VmState::new, guards, shared payload.
    let Some(vm) = sluice_fuzz::vm_for(data, &stats, &shared) else {
        return;
    };
    sluice_fuzz::drive_fixed(&vm, &stats, &shared);
});
