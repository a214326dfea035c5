//! Criterion benches of the pure engine, natively:
//! - `request/*`: one request end to end as the filter handles it (facts picked out of the header
//!   pairs, evaluation, request headers built), against generated configs of 10/100/1000 flags ×
//!   1/10/50 routes and the example configs `flags.json` and `demo.json`;
//! - `load/*`: config JSON → plan (parse + compile) for 10/100/1000 flags and the examples;
//! - `bucket/*`: the bucketing hash (murmur3 of `salt:key`, mod 10 000).
//!
//! `make bench` runs them; `request/*` cycles through 64 different users.
use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion};
use sluice_benches::{borrow_pairs, config, handle, request_pairs};
use sluice_core::plan::Plan;
use std::hint::black_box;
use std::time::Duration;

fn example(name: &str) -> String {
    let path = format!("{}/../examples/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn load(json: &str) -> Plan {
    sluice_core::compile::load(json.as_bytes()).unwrap_or_else(|e| panic!("config rejected: {e}"))
}

const USERS: usize = 64;

fn bench_request(group: &mut BenchmarkGroup<'_, WallTime>, id: &str, plan: &Plan, authority: &str) {
    let owned: Vec<_> = (0..USERS).map(|u| request_pairs(u, authority)).collect();
    let requests: Vec<_> = owned.iter().map(|p| borrow_pairs(p)).collect();
    let source: Option<&[u8]> = plan.reads_source_address.then_some(&b"10.1.2.3:51234"[..]);
    let mut next = 0;
    group.bench_function(id, |b| {
        b.iter(|| {
            next = (next + 1) % USERS;
            black_box(handle(black_box(plan), black_box(&requests[next]), source))
        })
    });
}

fn requests(c: &mut Criterion) {
    let mut group = c.benchmark_group("request");
    for (name, authority) in [
        ("flags.json", "www.acme-shop.example"),
        ("demo.json", "reviews"),
    ] {
        bench_request(&mut group, name, &load(&example(name)), authority);
    }
    for flags in [10, 100, 1000] {
        for routes in [1, 10, 50] {
            let plan = load(&config(flags, routes));
            bench_request(
                &mut group,
                &format!("{flags}f-{routes}r"),
                &plan,
                "svc-0.shop.svc.cluster.local",
            );
        }
    }
    group.finish();
}

fn loading(c: &mut Criterion) {
    let mut group = c.benchmark_group("load");
    let mut inputs = vec![
        ("flags.json".to_string(), example("flags.json")),
        ("demo.json".to_string(), example("demo.json")),
    ];
    for flags in [10, 100, 1000] {
        inputs.push((format!("{flags}f-10r"), config(flags, 10)));
    }
    for (name, json) in &inputs {
        group.bench_function(name.as_str(), |b| {
            b.iter(|| black_box(load(black_box(json))).flags.len())
        });
    }
    group.finish();
}

fn bucketing(c: &mut Criterion) {
    let mut group = c.benchmark_group("bucket");
    let keys: Vec<String> = (0..USERS)
        .map(|u| format!("user-{:08}", u * 7919))
        .collect();
    let mut next = 0;
    group.bench_function("bucket(feature-0042, user id)", |b| {
        b.iter(|| {
            next = (next + 1) % USERS;
            sluice_core::bucket::bucket(black_box("feature-0042"), black_box(keys[next].as_bytes()))
        })
    });
    let long = "k".repeat(300);
    group.bench_function("bucket(salt, 300-byte key)", |b| {
        b.iter(|| {
            sluice_core::bucket::bucket(black_box("feature-0042"), black_box(long.as_bytes()))
        })
    });
    group.bench_function("murmur3_x86_32(22 bytes)", |b| {
        b.iter(|| sluice_core::bucket::murmur3_x86_32(black_box(b"feature-0042:user-0042"), 0))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    // Short runs: the whole set stays well under three minutes.
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50);
    targets = requests, loading, bucketing
}
criterion_main!(benches);
