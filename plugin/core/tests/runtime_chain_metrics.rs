//! The chain's stats as a VM hands them to Envoy: decision tokens signed, accepted and rejected
//! by reason (`sluice.decisions.*`), and incoming baggage not read whole
//! (`sluice.baggage.rejected.*`), counted per request and flushed on each tick.
// A test crate: clippy.toml allows these in #[test] functions only, not in their helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;
use sluice_core::engine::Headers;
use sluice_core::host::local::LocalStats;
use sluice_core::pipeline::Facts;
use sluice_core::vm::VmState;

const NOW_MS: i64 = 1_780_000_000_000;

fn config(chain: bool) -> String {
    let chain = if chain {
        r#", "chain": {"keys": [{"id": "k1", "secret": "k1-0123456789abcdef0123456789abcdef"}], "ttl": "5m"}"#
    } else {
        ""
    };
    format!(
        r#"{{"version": 1, "revision": "r1",
  "identity": {{"user": [{{"baggage": "userId"}}, {{"header": "x-user-id"}}]}},
  "flags": {{"checkout": {{"rules": [{{"rollout": {{"on": 50, "off": 50}}}}]}}}},
  "outputs": {{"baggage": {{"prefix": "sluice."}}}}{chain}}}"#
    )
}

/// One request through the VM: the baggage it passes on.
fn hop(vm: &VmState, headers: &[(&str, &str)]) -> String {
    let pairs: Vec<(&str, &[u8])> = headers.iter().map(|(k, v)| (*k, v.as_bytes())).collect();
    let facts = Facts {
        headers: Headers::Pairs(&pairs),
        now_ms: NOW_MS,
        ..Facts::default()
    };
    let mut baggage = String::new();
    vm.on_request(&facts, |plan, patch| {
        baggage = patch
            .apply(plan, &pairs)
            .into_iter()
            .find(|(n, _)| n == "baggage")
            .map(|(_, v)| String::from_utf8(v).unwrap())
            .unwrap_or_default();
    });
    baggage
}

fn token_of(baggage: &str) -> String {
    baggage
        .split(',')
        .find_map(|m| m.trim().strip_prefix("sluice.token="))
        .expect("a signed token in the baggage")
        .to_string()
}

#[test]
fn tokens_signed_accepted_and_rejected_are_counted_by_reason() {
    let stats = LocalStats::default();
    let vm = VmState::new(common::plan(&config(true)), "r1".into(), 1, &stats);
    let stat = |name: &str| stats.value(&format!("sluice.decisions.{name}"));

    // The first hop decides and signs.
    let first = hop(&vm, &[("x-user-id", "u-1")]);
    let token = token_of(&first);
    // Two later hops carry the token on: accepted, passed on unchanged (not signed again).
    let later = hop(&vm, &[("baggage", &first)]);
    hop(&vm, &[("baggage", &later)]);
    // A forged token: its signature does not match.
    let at = token.find('.').unwrap() + 3;
    let flipped = if &token[at..=at] == "A" { "B" } else { "A" };
    let forged = format!("{}{flipped}{}", &token[..at], &token[at + 1..]);
    hop(
        &vm,
        &[
            ("x-user-id", "u-1"),
            ("baggage", &format!("sluice.token={forged}")),
        ],
    );
    hop(
        &vm,
        &[
            ("x-user-id", "u-1"),
            ("baggage", "sluice.token=not-a-token"),
        ],
    );
    hop(
        &vm,
        &[
            ("x-user-id", "u-1"),
            ("baggage", "sluice.token=also.not.one"),
        ],
    );

    assert_eq!(stat("signed"), 0, "counted on the tick, not before");
    vm.flush_metrics(&stats);
    assert_eq!(stat("accepted"), 2);
    assert_eq!(stat("rejected.signature"), 1);
    assert_eq!(stat("rejected.malformed"), 2);
    assert_eq!(stat("rejected.expired"), 0);
    // Signed: the first hop, and the three whose token was refused (they decide afresh).
    assert_eq!(stat("signed"), 4);

    // Each flush adds what came since.
    hop(&vm, &[("x-user-id", "u-2")]);
    vm.flush_metrics(&stats);
    vm.flush_metrics(&stats);
    assert_eq!(stat("signed"), 5);
    assert_eq!(stat("accepted"), 2);
    assert_eq!(stat("rejected.malformed"), 2);
}

#[test]
fn baggage_not_read_whole_is_counted_by_flaw() {
    for chain in [false, true] {
        let stats = LocalStats::default();
        let vm = VmState::new(common::plan(&config(chain)), "r1".into(), 1, &stats);
        let stat = |name: &str| stats.value(&format!("sluice.baggage.rejected.{name}"));
        hop(&vm, &[("baggage", "userId=u-1,broken,other=x")]);
        hop(&vm, &[("baggage", "=nokey")]);
        hop(&vm, &[("baggage", "userId=%zz")]);
        let many: Vec<String> = (0..200).map(|i| format!("m{i}=v")).collect();
        hop(&vm, &[("baggage", &many.join(","))]);
        hop(&vm, &[("baggage", "userId=u%2D1")]);
        vm.flush_metrics(&stats);
        assert_eq!(stat("malformed"), 2, "chain {chain}");
        assert_eq!(stat("bad_encoding"), 1, "chain {chain}");
        assert_eq!(stat("too_many_members"), 1, "chain {chain}");
        if !chain {
            assert_eq!(
                stats.value("sluice.decisions.signed"),
                0,
                "no token stats without a chain"
            );
        }
    }
}
