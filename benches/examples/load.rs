//! Loads a generated config of N flags in a loop, for `perf record`:
//! `cargo run --release -p sluice-benches --example load -- 1000 20`
use sluice_benches::config;
use std::hint::black_box;

fn main() {
    let mut args = std::env::args().skip(1);
    let flags: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(1000);
    let times: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(20);
    let json = config(flags, 10);
    let began = std::time::Instant::now();
    for _ in 0..times {
        let plan = sluice_core::compile::load(json.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        black_box(plan);
    }
    println!(
        "{:.2} ms per load",
        began.elapsed().as_secs_f64() * 1e3 / times as f64
    );
}
