//! An Unleash poll's answer: any body the Unleash server (or whatever answers on its cluster)
//! sends goes through the filter's poll path (`VmState::source_response`), then requests are
//! evaluated against it.
#![no_main]
use libfuzzer_sys::fuzz_target;

const CONFIG: &[u8] = include_bytes!("../../examples/unleash.json");

fuzz_target!(|data: &[u8]| {
    sluice_fuzz::answer_poll(CONFIG, data);
});
