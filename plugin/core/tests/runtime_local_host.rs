//! The in-memory hosts the native tests, the fuzzers and the guard simulator run on: shared data
//! with Envoy's compare-and-swap rules, and stats by name (counters add, gauges are set,
//! histograms keep every sample; each `define` hands out a new id, as Envoy does).
// A test crate: clippy.toml allows these in #[test] functions only, not in their helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use sluice_core::host::local::{LocalShared, LocalStats};
use sluice_core::host::{MetricKind, SetError, SharedData, Stats};

#[test]
fn shared_data_refuses_a_write_with_a_stale_cas_number() {
    let shared = LocalShared::default();
    assert_eq!(
        shared.get("k"),
        Some((None, None)),
        "absent, not a host failure"
    );
    shared.set("k", b"one", None).unwrap();
    let (value, first) = shared.get("k").unwrap();
    assert_eq!(value.as_deref(), Some(&b"one"[..]));
    // Two VMs read the same version; the first write wins, the second is refused.
    shared.set("k", b"two", first).unwrap();
    assert_eq!(shared.set("k", b"three", first), Err(SetError::CasMismatch));
    let (value, second) = shared.get("k").unwrap();
    assert_eq!(value.as_deref(), Some(&b"two"[..]));
    assert_ne!(second, first);
    // Each write moves the number on: the one read before the last write is stale too.
    shared.set("k", b"four", second).unwrap();
    assert_eq!(shared.set("k", b"five", second), Err(SetError::CasMismatch));
    // Without a CAS number a write always lands.
    shared.set("k", b"six", None).unwrap();
    assert_eq!(shared.get("k").unwrap().0.as_deref(), Some(&b"six"[..]));
    // Keys are independent.
    assert_eq!(shared.get("other"), Some((None, None)));
}

#[test]
fn stats_add_counters_set_gauges_and_keep_histogram_samples() {
    let stats = LocalStats::default();
    let counter = stats.define(MetricKind::Counter, "c").unwrap();
    let gauge = stats.define(MetricKind::Gauge, "g").unwrap();
    let histogram = stats.define(MetricKind::Histogram, "h").unwrap();
    assert_eq!(stats.definitions.get(), 3);
    assert_eq!(
        [counter, gauge, histogram]
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        3,
        "one id per definition"
    );
    stats.increment(counter, 2);
    stats.increment(counter, 3);
    stats.record(gauge, 7);
    stats.record(gauge, 4);
    stats.record(histogram, 10);
    stats.record(histogram, 30);
    assert_eq!(stats.value("c"), 5);
    assert_eq!(stats.value("g"), 4, "a gauge holds the last value");
    assert_eq!(stats.records("h"), [10, 30]);
    assert_eq!(stats.value("h"), 0, "histogram samples are not a value");
    assert!(stats.records("g").is_empty());
    assert_eq!(stats.value("never"), 0);
    // Defining the same name again is a new id for the same stat.
    let again = stats.define(MetricKind::Counter, "c").unwrap();
    assert_ne!(again, counter);
    stats.increment(again, 1);
    assert_eq!(stats.value("c"), 6);
    assert_eq!(stats.definitions.get(), 4);
    // An id nobody defined is ignored.
    stats.increment(99, 1);
    stats.record(99, 1);
}
