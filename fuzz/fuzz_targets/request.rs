//! The request path: arbitrary header maps (non-UTF-8, repeats, huge values, cookies, baggage,
//! override and token headers) through the filter's pipeline (`VmState::on_request`) for each
//! example config, then the response and the guards. Input layout: `sluice_fuzz::FuzzRequest`.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sluice_core::host::local::{LocalShared, LocalStats};
use sluice_core::vm::VmState;
use sluice_fuzz::{FuzzRequest, EXAMPLES};

struct Vm {
    vm: VmState,
    stats: LocalStats,
    shared: LocalShared,
}

thread_local! {
    // Compiled once: state (tallies, guards) carries over between inputs, as in a real VM.
    static VMS: Vec<Vm> = EXAMPLES
        .iter()
        .map(|(name, config)| {
            let stats = LocalStats::default();
            let shared = LocalShared::default();
            let Some(vm) = sluice_fuzz::vm_for(config, &stats, &shared) else {
                panic!("examples/{name}.json no longer compiles");
            };
            Vm { vm, stats, shared }
        })
        .collect();
}

fuzz_target!(|data: &[u8]| {
    let req = FuzzRequest::decode(data);
    let pairs: Vec<(&[u8], &[u8])> = req
        .headers
        .iter()
        .map(|(n, v)| (n.as_slice(), v.as_slice()))
        .collect();
    let serialized = sluice_fuzz::serialize(&pairs);
    VMS.with(|vms| {
        let vm = &vms[req.config];
        sluice_fuzz::drive(
            &vm.vm,
            &vm.stats,
            &vm.shared,
            &serialized,
            req.source.as_deref(),
            req.now_ms,
            req.entropy,
            req.status,
        );
    });
});
