//! A loop over one config's per-request work, for `perf record`:
//! `cargo run --release -p sluice-benches --example profile -- examples/flags.json 3`
//! With `SLUICE_ITERATIONS=N` it handles exactly N × 64 requests instead (for instruction counts
//! under `valgrind --tool=callgrind`, which a loaded machine does not disturb).
use sluice_benches::{borrow_pairs, handle, request_pairs};
use std::hint::black_box;
use std::time::{Duration, Instant};

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .unwrap_or_else(|| "examples/flags.json".to_string());
    let seconds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(3);
    let authority = args
        .next()
        .unwrap_or_else(|| "www.acme-shop.example".to_string());
    let json = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let plan = sluice_core::compile::load(json.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let owned: Vec<_> = (0..64).map(|u| request_pairs(u, &authority)).collect();
    let requests: Vec<_> = owned.iter().map(|p| borrow_pairs(p)).collect();
    let source: Option<&[u8]> = plan.reads_source_address.then_some(&b"10.1.2.3:51234"[..]);
    if let Some(rounds) = std::env::var("SLUICE_ITERATIONS")
        .ok()
        .and_then(|n| n.parse::<u64>().ok())
    {
        for _ in 0..rounds {
            for pairs in &requests {
                black_box(handle(&plan, pairs, source));
            }
        }
        return;
    }
    let end = Instant::now() + Duration::from_secs(seconds);
    let mut n = 0u64;
    while Instant::now() < end {
        for pairs in &requests {
            black_box(handle(&plan, pairs, source));
        }
        n += 64;
    }
    println!("{:.0} ns/request", seconds as f64 * 1e9 / n as f64);
}
