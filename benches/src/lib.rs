//! Benchmarks live in benches/benches (filled in by the performance issue).
