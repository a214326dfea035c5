//! The no-op filter (benches/noop-filter) loads and passes requests through.
mod common;

use sluice_wasm_host::{Action, Host};

#[test]
fn noop_filter_passes_requests_and_responses_through_unchanged() {
    let mut host = common::plugin("noop.wasm").host().build().unwrap();
    let out = host
        .request()
        .path("/a?b=c")
        .header("x-user-id", "42")
        .header("x-dup", "1")
        .header("x-dup", "2")
        .send()
        .unwrap();
    assert!(out.forwarded);
    assert_eq!(out.request_headers, out.sent_headers);
    assert!(out.request_changes().is_empty());
    assert_eq!(out.status(), Some(200));
    assert!(out.local_reply.is_none());
    assert_eq!(
        out.actions,
        vec![
            ("proxy_on_request_headers", Action::Continue),
            ("proxy_on_response_headers", Action::Continue)
        ]
    );
    assert!(out.logs.is_empty(), "{:?}", out.logs);
}

#[test]
fn noop_fuel_is_deterministic_and_small() {
    let fuel_of = |host: &mut Host, worker: usize| {
        let fuel = host
            .request_on(worker)
            .header("x-user-id", "1")
            .send()
            .unwrap()
            .fuel;
        fuel.hooks
            .iter()
            .map(|h| (h.hook, h.fuel))
            .collect::<Vec<_>>()
    };
    let total = |fuel: &[(&str, u64)]| fuel.iter().map(|(_, f)| f).sum::<u64>();
    let mut host = common::plugin("noop.wasm")
        .host()
        .workers(2)
        .build()
        .unwrap();
    let first = fuel_of(&mut host, 0);
    let steady = fuel_of(&mut host, 0);
    let steady_again = fuel_of(&mut host, 0);
    let first_on_worker1 = fuel_of(&mut host, 1);
    let mut fresh = common::plugin("noop.wasm").host().build().unwrap();
    assert_eq!(
        fuel_of(&mut fresh, 0),
        first,
        "a fresh host repeats the same count"
    );
    assert_eq!(first_on_worker1, first, "each worker VM starts alike");
    assert_eq!(steady, steady_again);
    let hooks: Vec<&str> = steady.iter().map(|h| h.0).collect();
    assert_eq!(
        hooks,
        [
            "proxy_on_context_create",
            "proxy_on_request_headers",
            "proxy_on_response_headers",
            "proxy_on_log",
            "proxy_on_done",
            "proxy_on_delete"
        ]
    );
    assert!(
        total(&steady) > 0 && total(&steady) < 20_000,
        "noop fuel per request: {steady:?}"
    );
    println!(
        "noop filter: first request {} fuel, then {} per request: {steady:?}",
        total(&first),
        total(&steady)
    );
}

#[test]
fn requests_envoy_codecs_would_refuse_are_errors() {
    let mut host = common::plugin("noop.wasm").host().build().unwrap();
    let bad_name = host
        .request()
        .header([b'x', 0xff], "v")
        .send()
        .unwrap_err()
        .to_string();
    assert!(
        bad_name.contains("invalid header name \"x\\xff\""),
        "{bad_name}"
    );
    let bad_value = host
        .request()
        .header("x-a", "a\r\nx-b: c")
        .send()
        .unwrap_err()
        .to_string();
    assert!(
        bad_value.contains("header x-a has NUL, CR or LF"),
        "{bad_value}"
    );
    assert!(
        host.request()
            .header("x-a", [0xff, b' ', b'"'])
            .send()
            .unwrap()
            .forwarded,
        "obs-text values are fine"
    );
}
