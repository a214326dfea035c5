//! What the fuzz targets share: the examples as configs, the request input format, and the
//! driver that runs one request the way the filter does (`VmState::on_request`, then the
//! response and the guards' tick), checking what the filter hands to Envoy.
use sluice_core::engine::Headers;
use sluice_core::host::local::{LocalShared, LocalStats};
use sluice_core::host::HttpCalls;
use sluice_core::pipeline::{Facts, Patch};
use sluice_core::plan::Plan;
use sluice_core::poll::{PollCounters, PollResponse};
use sluice_core::vm::VmState;

/// The example configs (what operators start from): the request target runs against these.
pub const EXAMPLES: &[(&str, &[u8])] = &[
    ("demo", include_bytes!("../../examples/demo.json")),
    ("canary", include_bytes!("../../examples/canary.json")),
    ("ab-split", include_bytes!("../../examples/ab-split.json")),
    (
        "blue-green",
        include_bytes!("../../examples/blue-green.json"),
    ),
    ("flags", include_bytes!("../../examples/flags.json")),
    (
        "pins-overrides",
        include_bytes!("../../examples/pins-overrides.json"),
    ),
    ("unleash", include_bytes!("../../examples/unleash.json")),
    ("chain", include_bytes!("../../examples/chain.json")),
    ("spring", include_bytes!("../../examples/spring.json")),
    (
        "unleash-pushed",
        include_bytes!("../../examples/unleash-pushed.json"),
    ),
];

/// A 2026 clock; inputs add up to ~136 years of seconds to it (schedules, ramps, cookies).
pub const EPOCH_MS: i64 = 1_767_225_600_000;

/// Requests the config and payload targets send through every plan they load: identities by
/// header and cookie, the examples' routes, override and baggage headers.
pub const REQUESTS: &[&[(&str, &str)]] = &[
    &[
        (":path", "/"),
        (":method", "GET"),
        (":authority", "example.com"),
    ],
    &[
        (":path", "/checkout?variant=b&x=1"),
        (":method", "POST"),
        (":authority", "shop.example.com"),
        ("x-user-id", "u-42"),
        ("cookie", "uid=u-42; sid=s-1; tier=gold"),
        ("x-country", "DE"),
        ("baggage", "shop.plan=pro,other=1"),
        ("x-sluice-debug", "1"),
    ],
    &[
        (":path", "/api/cart"),
        (":method", "GET"),
        (":authority", "api.example.com"),
        ("x-user-id", "user-7"),
        ("x-user-id", "user-8"),
        ("cookie", "sid=abc"),
        ("cookie", "uid=zz"),
        ("user-agent", "Mozilla/5.0 (iPhone)"),
        ("x-sluice-override", "checkout=v2"),
    ],
];

/// One fuzzed request. Layout: byte 0 picks the example, bytes 1..5 the clock (seconds after
/// `EPOCH_MS`), bytes 5..13 the entropy, byte 13 the response status class, then header lines
/// split on `\n`, each `name:value` (a leading `:` belongs to the name, for pseudo-headers).
/// A line named `@source` is the peer address instead. A value starting with 0xFF, N repeats
/// the rest N * 16 times, up to 64 KiB (Envoy's default limit is 60 KiB for all headers): huge
/// values without huge inputs.
const HUGE: usize = 64 * 1024;

pub struct FuzzRequest {
    pub config: usize,
    pub now_ms: i64,
    pub entropy: u64,
    pub status: u32,
    pub source: Option<Vec<u8>>,
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
}

impl FuzzRequest {
    pub fn decode(data: &[u8]) -> FuzzRequest {
        let byte = |i: usize| data.get(i).copied().unwrap_or(0);
        let secs = u32::from_le_bytes([byte(1), byte(2), byte(3), byte(4)]);
        let mut entropy = [0u8; 8];
        for (i, b) in entropy.iter_mut().enumerate() {
            *b = byte(5 + i);
        }
        const STATUSES: [u32; 8] = [200, 204, 302, 404, 500, 503, 504, 0];
        let mut req = FuzzRequest {
            config: byte(0) as usize % EXAMPLES.len(),
            now_ms: EPOCH_MS + i64::from(secs) * 1000,
            entropy: u64::from_le_bytes(entropy),
            status: STATUSES[byte(13) as usize % STATUSES.len()],
            source: None,
            headers: Vec::new(),
        };
        for line in data.get(14..).unwrap_or_default().split(|b| *b == b'\n') {
            let colon = line.iter().skip(1).position(|b| *b == b':').map(|p| p + 1);
            let (name, value) = match colon {
                Some(at) => (&line[..at], &line[at + 1..]),
                None => (line, &[][..]),
            };
            let value = match value {
                [0xff, n, rest @ ..] => {
                    let mut v = rest.repeat(usize::from(*n) * 16);
                    v.truncate(HUGE);
                    v
                }
                v => v.to_vec(),
            };
            if name == b"@source" {
                req.source = Some(value);
            } else {
                req.headers.push((name.to_vec(), value));
            }
        }
        req
    }
}

/// proxy-wasm's serialized header map, as Envoy hands it to the filter (the engine's writer;
/// its tests pin the format).
pub use sluice_core::header_map::serialize;

/// A compiled example's VM, as the filter builds it on configure.
pub fn vm_for(config: &[u8], stats: &LocalStats, shared: &LocalShared) -> Option<VmState> {
    // The filter reads signing keys (`chain.keys[].env`) from its environment; here each
    // such variable holds a test secret, as in the core's example tests.
    let env = |name: &str| {
        name.starts_with("SLUICE_CHAIN_KEY_")
            .then(|| "fuzz-secret-0123456789abcdef0123456789".to_string())
    };
    let plan = sluice_core::compile::load_with_env(config, &env).ok()?;
    let id = sluice_core::vm::plan_id(&plan, config);
    let vm = VmState::new(plan, id, 0x5eed, stats);
    vm.run_guards(shared, stats, EPOCH_MS);
    vm.adopt_shared_sources(shared);
    Some(vm)
}

/// One request and its response through the VM, as the filter's HTTP context runs them; panics
/// (a crash for libFuzzer) when the patch would hand Envoy a header it must not get.
#[allow(clippy::too_many_arguments)]
pub fn drive(
    vm: &VmState,
    stats: &LocalStats,
    shared: &LocalShared,
    serialized: &[u8],
    source: Option<&[u8]>,
    now_ms: i64,
    entropy: u64,
    status: u32,
) {
    let facts = Facts {
        headers: Headers::Serialized(serialized),
        source,
        now_ms,
        entropy,
    };
    let routed = vm.on_request(&facts, check_patch);
    vm.on_response(&routed, status, status == 0 || status == 504, now_ms + 20);
    vm.run_guards(shared, stats, now_ms + 1_000);
    vm.flush_metrics(stats);
}

/// A header value Envoy accepts: no NUL, CR or LF (a CR LF copied from a request into a header
/// would be header injection; Envoy rejects such a value).
fn legal_value(value: &str) -> bool {
    !value.bytes().any(|b| b == 0 || b == b'\r' || b == b'\n')
}

fn legal_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b.is_ascii_uppercase())
}

pub fn check_patch(plan: &Plan, patch: &Patch) {
    for name in patch.removals(plan) {
        assert!(legal_name(name), "removes an illegal header name {name:?}");
    }
    for (name, value) in patch.sets(plan).chain(patch.response_headers(plan)) {
        assert!(legal_name(name), "sets an illegal header name {name:?}");
        assert!(
            legal_value(value),
            "sets {name} to an illegal value {value:?}"
        );
    }
}

/// The fixed requests, through a VM.
pub fn drive_fixed(vm: &VmState, stats: &LocalStats, shared: &LocalShared) {
    for (i, pairs) in REQUESTS.iter().enumerate() {
        let pairs: Vec<(&[u8], &[u8])> = pairs
            .iter()
            .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
            .collect();
        let source: &[u8] = b"10.1.2.3:51000";
        drive(
            vm,
            stats,
            shared,
            &serialize(&pairs),
            Some(source),
            EPOCH_MS + i as i64 * 86_400_000,
            i as u64,
            [200, 503, 0][i % 3],
        );
    }
}

/// The poll call always goes out, with token 1.
struct Calls;

impl HttpCalls for Calls {
    fn dispatch(&self, _: &str, _: &[(&str, &str)], _: u64) -> Result<u32, String> {
        Ok(1)
    }
}

/// A poll answer through the filter's poll path: `config` loaded (it polls one source), the
/// tick sends the poll, `body` (plus a retry-after and a location the first bytes choose) is
/// the 200 answer (`source_response`: parse, validate, compile, publish to shared data); then
/// the fixed requests, and a second VM that adopts the published payload as another worker does.
pub fn answer_poll(config: &[u8], body: &[u8]) {
    let stats = LocalStats::default();
    let shared = LocalShared::default();
    let Some(vm) = vm_for(config, &stats, &shared) else {
        panic!("the example config no longer compiles");
    };
    let counters = PollCounters::define(&stats);
    vm.tick_sources(&shared, &Calls, &counters, &stats, EPOCH_MS);
    let owned = body.to_vec();
    let read = move || Some(owned.clone());
    let response = PollResponse {
        status: Some(200),
        etag: Some("\"fuzz\"".to_string()),
        body_size: body.len(),
        retry_after: None,
        location: None,
        read_body: &read,
    };
    vm.source_response(1, &response, &shared, &counters, &stats);
    drive_fixed(&vm, &stats, &shared);
    vm.tick_sources(&shared, &Calls, &counters, &stats, EPOCH_MS + 60_000);
    if let Some(other) = vm_for(config, &stats, &shared) {
        drive_fixed(&other, &stats, &shared);
    }
}
