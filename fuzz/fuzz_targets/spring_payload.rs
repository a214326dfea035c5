//! A Spring Cloud Config server's answer (an Environment): any body goes through the filter's
//! poll path (`VmState::source_response`), then requests are evaluated against its flags.
#![no_main]
use libfuzzer_sys::fuzz_target;

const CONFIG: &[u8] = include_bytes!("../../examples/spring.json");

fuzz_target!(|data: &[u8]| {
    sluice_fuzz::answer_poll(CONFIG, data);
});
