//! Differential: one fixed list of ~200 requests goes through Sluice in a real Envoy 1.40 and
//! through host-test (`sluice_wasm_host`, the wasmtime host running the same `build/sluice.wasm`). Every
//! request must come out the same: the routing and flag headers the upstream receives, the headers a
//! client must not smuggle through (stripped in both), the debug and sticky-cookie response
//! headers; and Envoy must route each request to the version Sluice wrote.
//!
//! The requests cover users identified by header, cookie and query parameter, sessions, anonymous
//! visitors, sticky cookies (valid, invalid, minted), pins, blue-green previews, tester overrides
//! with the right secret, a wrong one and none, spoofed route/flag/baggage headers, attributes
//! (country lists, semver, numbers, presence), hosts with ports and in capitals, path prefixes,
//! methods, repeated headers and mixed-case header names.
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::SystemTime;

use serde_json::{json, Value};
use sluice_e2e::{paths, HttpClient, Stack};
use sluice_wasm_host::{Host, Plugin};

/// The tester secret and its SHA-256 (what the config holds).
const SECRET: &str = "letmein";
const SECRET_SHA256: &str = "1c8bfe8f801d79745c4631d09fff36c82aa37fc4cce4fc946683d7b336b63032";

/// Request headers compared upstream: every header Sluice writes, and the ones it must remove.
const REQUEST_HEADERS: [&str; 11] = [
    "x-route-reviews",
    "x-route-ratings",
    "x-route-web",
    "x-route-search",
    "x-sluice-flags",
    "x-theme",
    "x-pricing",
    "baggage",
    "x-sluice-override",
    "x-sluice-secret",
    "x-user-id",
];
/// Response headers compared at the client.
const RESPONSE_HEADERS: [&str; 2] = ["x-sluice-debug", "set-cookie"];
/// The sticky route's name (its version also travels in baggage as `sluice.route.<name>`).
const STICKY_ROUTE: &str = "search";
/// The route with a sticky cookie: a request without identity or cookie gets a fresh random key,
/// so its version is random in both (checked to be a valid version, not compared).
const STICKY_ROUTE_HEADER: &str = "x-route-search";
const STICKY_COOKIE: &str = "sluice_search";

/// Routes matching on `envoy/envoy.yaml`'s table (`web` under /web, `reviews` elsewhere) so that
/// Envoy's routing can be checked too, plus a split routed by nothing but compared all the same.
fn config() -> Value {
    json!({
        "version": 1,
        "revision": "differential-1",
        "identity": {
            "user": [{ "header": "x-user-id" }, { "cookie": "uid" }, { "query": "user" }],
            "session": [{ "cookie": "sid" }]
        },
        "attributes": {
            "country": { "header": "x-country" },
            "app_version": { "header": "x-app-version" },
            "plan": { "cookie": "plan" }
        },
        "segments": {
            "office": { "all": [
                { "header": "x-office", "equals": "1" },
                { "attr": "source_address", "cidr": ["127.0.0.0/8", "::1/128"] }
            ] },
            "employees": { "any": [
                { "header": "x-user-email", "suffix": "@acme-shop.example", "ignore_case": true },
                { "segment": "office" }
            ] },
            "modern-app": { "attr": "app_version", "semver_gte": "2.0.0" },
            "eu": { "attr": "country", "in": ["de", "fr", "nl"], "ignore_case": true }
        },
        "flags": {
            "checkout": { "rules": [
                { "when": { "segment": "employees" }, "serve": "on" },
                { "rollout": { "on": 50, "off": 50 } }
            ] },
            "theme": {
                "variants": { "light": "light", "dark": "dark", "contrast": "high-contrast" },
                "default": "light",
                "rules": [
                    { "when": { "segment": "eu" }, "serve": "dark" },
                    { "rollout": { "light": 50, "dark": 40, "contrast": 10 } }
                ],
                "header": "x-theme"
            },
            "pricing": {
                "variants": { "control": { "algo": "base" }, "dynamic": { "algo": "dyn", "max": 1.5 } },
                "default": "control",
                "prerequisites": [{ "flag": "checkout", "variants": ["on"] }],
                "rules": [{ "when": { "segment": "modern-app" }, "rollout": { "control": 30, "dynamic": 70 } }],
                "header": "x-pricing"
            },
            "legacy-banner": { "enabled": false, "rules": [{ "serve": "on" }] },
            "per-session": { "bucket_by": "session", "rules": [{ "rollout": { "on": 25, "off": 75 } }] },
            "new-search": {
                "schedule": { "ramp": { "start": "2026-11-01T00:00:00Z", "duration": "365d", "from": 10, "to": 100 } },
                "rules": [{ "serve": "on" }]
            },
            "premium": { "rules": [
                { "when": { "attr": "plan", "equals": "gold" }, "serve": "on" },
                { "when": { "query": "promo", "present": true }, "serve": "on" }
            ] },
            "big-cart": { "rules": [{ "when": { "header": "x-cart-items", "num_gte": 10 }, "serve": "on" }] }
        },
        "routes": {
            "web": {
                "match": { "path_prefix": "/web" },
                "header": "x-route-web",
                "versions": ["blue", "green"],
                "blue_green": {
                    "active": "blue",
                    "preview": { "any": [
                        { "header": "x-preview", "equals": "1" },
                        { "cookie": "preview", "equals": "yes" }
                    ] }
                }
            },
            "reviews": {
                "match": { "authority": ["reviews", "reviews.shop.svc.cluster.local", "*.acme-shop.example"] },
                "header": "x-route-reviews",
                "versions": ["v1", "v2"],
                "canary": { "stable": "v1", "canary": "v2", "weight": 20 },
                "pins": [
                    { "when": { "header": "x-beta", "equals": "1" }, "version": "v2" },
                    { "when": { "segment": "employees" }, "version": "v2" },
                    { "when": { "cookie": "reviews_version", "in": ["v1", "stable"] }, "version": "v1" }
                ]
            },
            "search": {
                "match": { "authority": ["search"], "methods": ["GET"] },
                "header": "x-route-search",
                "versions": ["control", "hybrid", "semantic"],
                "split": { "control": 50, "hybrid": 25, "semantic": 25 },
                "sticky_cookie": { "name": STICKY_COOKIE, "max_age": "7d" }
            }
        },
        "overrides": { "secret_sha256": SECRET_SHA256, "debug_header": "x-sluice-debug" },
        "outputs": { "baggage": { "prefix": "sluice." } }
    })
}

/// One request of the list.
#[derive(Clone, Debug)]
struct Case {
    label: String,
    method: &'static str,
    authority: String,
    path: String,
    headers: Vec<(String, String)>,
}

impl Case {
    fn new(label: impl Into<String>, authority: &str, path: &str) -> Case {
        Case {
            label: label.into(),
            method: "GET",
            authority: authority.to_string(),
            path: path.to_string(),
            headers: Vec::new(),
        }
    }

    fn h(mut self, name: &str, value: &str) -> Case {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    fn method(mut self, method: &'static str) -> Case {
        self.method = method;
        self
    }
}

const HOSTS: [&str; 6] = [
    "reviews",
    "reviews.shop.svc.cluster.local",
    "www.acme-shop.example",
    "search",
    "shop.example",
    "reviews:8080",
];
const PATHS: [&str; 6] = [
    "/",
    "/reviews/7",
    "/web/home",
    "/search?q=shoes",
    "/web",
    "/reviews/7?page=2",
];

/// The fixed list (about 200 requests).
fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    // Users identified by header, over hosts and paths.
    for i in 0..48 {
        let (host, path) = (HOSTS[i % 6], PATHS[(i / 6 + i) % 6]);
        cases.push(
            Case::new(format!("header user {i}"), host, path).h("x-user-id", &format!("u-{i}")),
        );
    }
    // Users identified by cookie, some with other cookies around.
    for i in 0..24 {
        let (host, path) = (HOSTS[(i + 2) % 6], PATHS[i % 6]);
        let cookie = match i % 3 {
            0 => format!("uid=c-{i}"),
            1 => format!("lang=en; uid=c-{i}; plan=gold"),
            _ => format!("sid=s-{i}; uid=\"c-{i}\""),
        };
        cases.push(Case::new(format!("cookie user {i}"), host, path).h("cookie", &cookie));
    }
    // Users identified by query parameter.
    for i in 0..10 {
        let path = if i % 2 == 0 {
            format!("/search?user=q-{i}&q=boots")
        } else {
            format!("/web/list?user=q-{i}")
        };
        cases.push(Case::new(format!("query user {i}"), HOSTS[i % 4], &path));
    }
    // Sessions only (the per-session flag; routes fall back to the session key).
    for i in 0..8 {
        cases.push(
            Case::new(format!("session only {i}"), HOSTS[i % 6], PATHS[i % 6])
                .h("cookie", &format!("sid=sess-{i}")),
        );
    }
    // The same user twice, once by header, once by cookie: same decisions.
    for i in 0..4 {
        cases.push(
            Case::new(format!("same user by header {i}"), "reviews", "/")
                .h("x-user-id", &format!("twice-{i}")),
        );
        cases.push(
            Case::new(format!("same user by cookie {i}"), "reviews", "/")
                .h("cookie", &format!("uid=twice-{i}")),
        );
    }
    // Anonymous visitors.
    for (i, (host, path)) in HOSTS.iter().zip(PATHS).enumerate() {
        cases.push(Case::new(format!("anonymous {i}"), host, path));
        cases.push(
            Case::new(format!("anonymous with lang cookie {i}"), host, path).h("cookie", "lang=de"),
        );
    }
    // Sticky cookies of the search split: valid keys are honoured, others replaced.
    for (i, key) in [
        "0123456789abcdef",
        "fedcba9876543210",
        "00000000000000ff",
        "a1b2c3d4e5f60718",
    ]
    .iter()
    .enumerate()
    {
        cases.push(
            Case::new(format!("valid sticky cookie {i}"), "search", "/search?q=x")
                .h("cookie", &format!("{STICKY_COOKIE}={key}")),
        );
    }
    for (i, key) in ["short", "0123456789ABCDEF", "0123456789abcdef0", ""]
        .iter()
        .enumerate()
    {
        cases.push(
            Case::new(
                format!("invalid sticky cookie {i}"),
                "search",
                "/search?q=x",
            )
            .h("cookie", &format!("{STICKY_COOKIE}={key}")),
        );
    }
    cases.push(
        Case::new("sticky cookie and a user id", "search", "/search")
            .h("x-user-id", "u-3")
            .h("cookie", &format!("{STICKY_COOKIE}=0123456789abcdef")),
    );
    // Pins.
    let pins: [(&str, &str, &str); 10] = [
        ("beta header", "x-beta", "1"),
        ("beta header off", "x-beta", "0"),
        ("employee email", "x-user-email", "ann@acme-shop.example"),
        (
            "employee email in capitals",
            "x-user-email",
            "ANN@ACME-SHOP.EXAMPLE",
        ),
        ("outside email", "x-user-email", "ann@example.com"),
        ("office from loopback", "x-office", "1"),
        ("office header other value", "x-office", "yes"),
        ("stable cookie pin", "cookie", "reviews_version=stable"),
        ("v1 cookie pin", "cookie", "reviews_version=v1; uid=c-pin"),
        ("cookie pin other value", "cookie", "reviews_version=v2"),
    ];
    for (i, (label, name, value)) in pins.iter().enumerate() {
        for (j, host) in ["reviews", "www.acme-shop.example"].iter().enumerate() {
            let user = format!("pin-{i}-{j}");
            cases.push(
                Case::new(format!("pin: {label} ({host})"), host, "/")
                    .h(name, value)
                    .h("x-user-id", &user),
            );
        }
    }
    cases.push(Case::new("beta pin without identity", "reviews", "/").h("x-beta", "1"));
    // Tester overrides.
    let overrides: [(&str, &str, Option<&str>); 13] = [
        ("route and flag", "reviews=v2;checkout=off", Some(SECRET)),
        ("comma separated", "theme=contrast,web=green", Some(SECRET)),
        (
            "multivariate flag",
            "pricing=dynamic;checkout=on",
            Some(SECRET),
        ),
        (
            "unknown names and versions",
            "nope=1;reviews=v9;theme=neon",
            Some(SECRET),
        ),
        ("split route", "search=semantic", Some(SECRET)),
        ("killed flag", "legacy-banner=on", Some(SECRET)),
        ("secret only", "", Some(SECRET)),
        ("wrong secret", "reviews=v2;checkout=off", Some("letmein2")),
        ("secret in capitals", "reviews=v2", Some("LETMEIN")),
        ("no secret", "reviews=v2;theme=dark", None),
        ("empty secret", "reviews=v2", Some("")),
        (
            "spaces around pairs",
            " reviews = v2 ; theme = dark ",
            Some(SECRET),
        ),
        // The secret of examples/demo.json (a wrong one for the config above).
        (
            "demo secret",
            "reviews=v2;theme=contrast;ratings=green",
            Some("let-me-test"),
        ),
    ];
    for (i, (label, value, secret)) in overrides.iter().enumerate() {
        for (j, (host, path)) in [("reviews", "/"), ("search", "/web/x")].iter().enumerate() {
            let mut case = Case::new(format!("override: {label} ({host}{path})"), host, path)
                .h("x-user-id", &format!("tester-{i}-{j}"));
            if !value.is_empty() {
                case = case.h("x-sluice-override", value);
            }
            if let Some(secret) = secret {
                case = case.h("x-sluice-secret", secret);
            }
            cases.push(case);
        }
    }
    // Spoofed headers: a client must not choose its version or flags.
    let spoofs: [(&str, &str); 9] = [
        ("x-route-reviews", "v2"),
        ("x-route-web", "green"),
        ("x-route-search", "semantic"),
        ("x-sluice-flags", "checkout=on;theme=dark"),
        ("x-theme", "dark"),
        ("x-pricing", "{\"algo\":\"free\"}"),
        ("baggage", "sluice.checkout=on,other=1"),
        ("baggage", "tenant=acme,sluice.theme=dark;prop=1"),
        ("X-Route-Reviews", "v2"),
    ];
    for (i, (name, value)) in spoofs.iter().enumerate() {
        for (j, host) in ["reviews", "shop.example"].iter().enumerate() {
            let path = if j == 0 { "/" } else { "/web/a" };
            let mut case =
                Case::new(format!("spoofed {name}: {value} ({host})"), host, path).h(name, value);
            if i % 2 == 0 {
                case = case.h("x-user-id", &format!("spoof-{i}"));
            }
            cases.push(case);
        }
    }
    // Blue-green previews.
    let previews: [(&str, &str, &str); 6] = [
        ("x-preview", "1", "/web"),
        ("x-preview", "1", "/web/cart"),
        ("x-preview", "0", "/web"),
        ("x-preview", "true", "/web"),
        ("cookie", "preview=yes", "/web/p"),
        ("x-preview", "1", "/reviews/1"),
    ];
    for (i, (name, value, path)) in previews.iter().enumerate() {
        cases.push(
            Case::new(
                format!("preview {name}: {value} {path}"),
                "shop.example",
                path,
            )
            .h(name, value),
        );
        cases.push(
            Case::new(
                format!("preview {name}: {value} {path}, user"),
                "reviews",
                path,
            )
            .h(name, value)
            .h("x-user-id", &format!("pv-{i}")),
        );
    }
    // Attributes.
    let attributes: [(&str, &str); 14] = [
        ("x-country", "de"),
        ("x-country", "FR"),
        ("x-country", "us"),
        ("x-country", " de"),
        ("x-app-version", "2.1.0"),
        ("x-app-version", "2.0.0"),
        ("x-app-version", "2.0.0-rc.1"),
        ("x-app-version", "1.9.9"),
        ("x-app-version", "two"),
        ("x-cart-items", "12"),
        ("x-cart-items", " 10 "),
        ("x-cart-items", "9.5"),
        ("x-cart-items", "lots"),
        ("cookie", "plan=gold; uid=c-gold"),
    ];
    for (i, (name, value)) in attributes.iter().enumerate() {
        cases.push(
            Case::new(format!("attribute {name}: {value}"), "reviews", "/")
                .h(name, value)
                .h("x-user-id", &format!("attr-{i}")),
        );
    }
    // Employees get checkout (and so may get dynamic pricing on a modern app).
    for i in 0..4 {
        cases.push(
            Case::new(format!("employee on a modern app {i}"), "reviews", "/")
                .h("x-user-email", "bo@acme-shop.example")
                .h("x-app-version", "3.0.0")
                .h("x-user-id", &format!("emp-{i}")),
        );
    }
    cases.push(Case::new("promo query present", "reviews", "/?promo").h("x-user-id", "promo-1"));
    cases.push(
        Case::new("promo query with value", "reviews", "/?a=1&promo=x").h("x-user-id", "promo-2"),
    );
    // Hosts, paths and methods.
    let places: [(&str, &str, &str); 12] = [
        ("GET", "REVIEWS", "/"),
        ("GET", "Reviews.Shop.Svc.Cluster.Local:80", "/"),
        ("GET", "api.acme-shop.example", "/x"),
        ("GET", "acme-shop.example", "/x"),
        ("GET", "shop.example", "/webshop"),
        ("GET", "shop.example", "/Web"),
        ("GET", "shop.example", "/web?x=1"),
        ("POST", "search", "/search"),
        ("POST", "reviews", "/reviews"),
        ("PUT", "shop.example", "/web/item"),
        ("DELETE", "reviews", "/reviews/1"),
        ("GET", "search:443", "/search"),
    ];
    for (i, (method, host, path)) in places.iter().enumerate() {
        cases.push(
            Case::new(format!("{method} {host}{path}"), host, path)
                .method(method)
                .h("x-user-id", &format!("place-{i}")),
        );
    }
    // Header forms.
    cases.push(
        Case::new("user id twice", "reviews", "/")
            .h("x-user-id", "first")
            .h("x-user-id", "second"),
    );
    cases.push(Case::new("mixed-case header name", "reviews", "/").h("X-User-Id", "u-7"));
    cases.push(
        Case::new("empty user id falls back to the cookie", "reviews", "/")
            .h("x-user-id", "")
            .h("cookie", "uid=c-9"),
    );
    cases.push(
        Case::new("two cookie headers", "reviews", "/")
            .h("cookie", "lang=en")
            .h("cookie", "uid=c-10"),
    );
    cases.push(Case::new("cookie without spaces", "reviews", "/").h("cookie", "a=1;uid=c-11;b=2"));
    cases.push(Case::new("user id with spaces", "reviews", "/").h("x-user-id", "  spaced user  "));
    cases.push(Case::new("long user id", "reviews", "/").h("x-user-id", &"x".repeat(300)));
    cases.push(Case::new("unicode user id", "reviews", "/").h("x-user-id", "zoë"));
    cases
}

/// What came out of one request, by header name (all values, in order).
type Seen = BTreeMap<String, Vec<String>>;

/// Replaces the random key of a newly minted sticky cookie.
fn mask_cookie(value: &str) -> String {
    match value.split_once(';') {
        Some((pair, attributes)) if pair.starts_with(&format!("{STICKY_COOKIE}=")) => {
            format!("{STICKY_COOKIE}=<random>;{attributes}")
        }
        _ => value.to_string(),
    }
}

fn through_envoy(stack: &Stack, case: &Case) -> (Seen, String) {
    let mut client = HttpClient::new(stack.envoy.addr());
    let mut headers: Vec<(&str, &str)> = vec![("host", case.authority.as_str())];
    headers.extend(case.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let response = client
        .request(case.method, &case.path, &headers, &[])
        .unwrap_or_else(|e| panic!("{}: {e}", case.label));
    assert_eq!(response.status, 200, "{}: {}", case.label, response.text());
    let echo = response.echo().expect("an echo backend answered");
    let mut seen = Seen::new();
    for name in REQUEST_HEADERS {
        let values = echo.header_values(name).to_vec();
        if !values.is_empty() {
            seen.insert(name.to_string(), values);
        }
    }
    for name in RESPONSE_HEADERS {
        let values: Vec<String> = response
            .headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| mask_cookie(v))
            .collect();
        if !values.is_empty() {
            seen.insert(format!("response {name}"), values);
        }
    }
    (seen, echo.version)
}

fn through_host(host: &mut Host, case: &Case) -> Seen {
    // The virtual clock follows the real one (ramps and steps see the time Envoy sees); it never
    // goes back.
    let at = SystemTime::now().max(host.now());
    let mut request = host
        .request()
        .method(case.method)
        .authority(&case.authority)
        .path(&case.path)
        // Envoy sees the test client on loopback.
        .source("127.0.0.1:50000")
        .at(at);
    // What Envoy's HTTP/1 codec hands to filters: names in lower case, values without the
    // surrounding whitespace (not part of a field value in HTTP).
    for (name, value) in &case.headers {
        request = request.header(name.to_ascii_lowercase(), value.trim_matches([' ', '\t']));
    }
    let out = request
        .send()
        .unwrap_or_else(|e| panic!("{}: host-test: {e:#}", case.label));
    assert!(
        out.forwarded,
        "{}: host-test did not forward: {:?}",
        case.label, out.local_reply
    );
    let mut seen = Seen::new();
    let text = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
    for name in REQUEST_HEADERS {
        let values: Vec<String> = out
            .request_headers
            .get_all(name)
            .into_iter()
            .map(text)
            .collect();
        if !values.is_empty() {
            seen.insert(name.to_string(), values);
        }
    }
    for name in RESPONSE_HEADERS {
        let values: Vec<String> = out
            .response_headers
            .get_all(name)
            .into_iter()
            .map(|v| mask_cookie(&text(v)))
            .collect();
        if !values.is_empty() {
            seen.insert(format!("response {name}"), values);
        }
    }
    seen
}

/// `sluice.route.<sticky route>=<version>` → `…=<random>` in a baggage value.
fn mask_route_member(baggage: &str) -> String {
    let member = format!("sluice.route.{STICKY_ROUTE}=");
    baggage
        .split(',')
        .map(|m| {
            if m.starts_with(&member) {
                format!("{member}<random>")
            } else {
                m.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// A sticky key minted for this request: the split's version is random, so it is only checked.
fn minted(seen: &Seen) -> bool {
    seen.get("response set-cookie").is_some_and(|values| {
        values
            .iter()
            .any(|v| v.starts_with(&format!("{STICKY_COOKIE}=<random>")))
    })
}

/// Header → every value Envoy's upstream (or client) saw over the run: what the requests made
/// Sluice do, so that agreement is not agreement on nothing. Flags headers count per `flag=variant`.
type Coverage = BTreeMap<String, BTreeSet<String>>;

/// Sends every case through Envoy and host-test with `config`; fails listing every request on
/// which they disagree, and every request Envoy did not route to the version Sluice wrote.
fn differential(config: &str, cases: &[Case]) -> Coverage {
    let wasm = paths::sluice_wasm();
    let stack = Stack::start(&wasm, config).expect("envoy starts with sluice");
    let mut host = Plugin::load(&wasm)
        .expect("host-test compiles the module")
        .host()
        .plugin_config(config)
        .start_time(SystemTime::now())
        .build()
        .expect("host-test loads the module with the config");

    let mut coverage = Coverage::new();
    let mut differences = String::new();
    let mut misrouted = String::new();
    for case in cases {
        let (mut envoy, version) = through_envoy(&stack, case);
        let mut wasm_host = through_host(&mut host, case);

        // Envoy sent the request to the version Sluice chose (envoy.yaml: /web by x-route-web,
        // everything else by x-route-reviews; no header: blue / v1).
        let (route_header, fallback) = if case.path.starts_with("/web") {
            ("x-route-web", "blue")
        } else {
            ("x-route-reviews", "v1")
        };
        let chosen = envoy
            .get(route_header)
            .and_then(|v| v.first())
            .map_or(fallback, String::as_str);
        if version != chosen {
            let _ = writeln!(
                misrouted,
                "  {}: {route_header} {chosen}, answered by {version}",
                case.label
            );
        }

        for (name, values) in &envoy {
            let entry = coverage.entry(name.clone()).or_default();
            for value in values {
                if name == "x-sluice-flags" {
                    entry.extend(value.split(';').map(str::to_string));
                } else if name == "response x-sluice-debug" {
                    entry.insert("present".to_string());
                } else {
                    entry.insert(value.clone());
                }
            }
        }
        if minted(&envoy) || minted(&wasm_host) {
            for seen in [&mut envoy, &mut wasm_host] {
                let version = seen.remove(STICKY_ROUTE_HEADER).unwrap_or_default();
                assert!(
                    matches!(version.as_slice(), [v] if ["control", "hybrid", "semantic"].contains(&v.as_str())),
                    "{}: {STICKY_ROUTE_HEADER} {version:?} with a minted cookie",
                    case.label
                );
                seen.remove("response x-sluice-debug");
                // The baggage names the same random version: mask it like the cookie.
                if let Some(values) = seen.get_mut("baggage") {
                    for value in values.iter_mut() {
                        *value = mask_route_member(value);
                    }
                }
            }
        }
        if envoy != wasm_host {
            let _ = writeln!(
                differences,
                "  {} ({} {}{}):",
                case.label, case.method, case.authority, case.path
            );
            let names: BTreeSet<&String> = envoy.keys().chain(wasm_host.keys()).collect();
            for name in names {
                let (e, h) = (envoy.get(name), wasm_host.get(name));
                if e != h {
                    let _ = writeln!(differences, "    {name}: envoy {e:?}, host-test {h:?}");
                }
            }
        }
    }
    assert!(
        differences.is_empty(),
        "Envoy and host-test disagree:\n{differences}"
    );
    assert!(
        misrouted.is_empty(),
        "Envoy did not route as Sluice decided:\n{misrouted}"
    );
    for stripped in ["x-sluice-override", "x-sluice-secret"] {
        assert!(
            !coverage.contains_key(stripped),
            "{stripped} reached the upstream"
        );
    }
    coverage
}

fn assert_covers(coverage: &Coverage, expect: &[(&str, &[&str])]) {
    for (header, values) in expect {
        let seen = coverage.get(*header).cloned().unwrap_or_default();
        for value in *values {
            assert!(
                seen.contains(*value),
                "no request got {header}: {value}; seen {seen:?}"
            );
        }
    }
}

#[test]
fn envoy_and_host_test_decide_the_same_for_every_request() {
    let cases = cases();
    assert!(
        (200..=250).contains(&cases.len()),
        "{} requests",
        cases.len()
    );
    let coverage = differential(&config().to_string(), &cases);
    // The list exercises every decision: both versions of each route, every variant, overrides
    // (v2 forced, web green), previews, the debug header, minted and honoured sticky cookies.
    assert_covers(
        &coverage,
        &[
            ("x-route-reviews", &["v1", "v2"]),
            ("x-route-web", &["blue", "green"]),
            ("x-route-search", &["control", "hybrid", "semantic"]),
            ("x-theme", &["light", "dark", "high-contrast"]),
            (
                "x-pricing",
                &[r#"{"algo":"base"}"#, r#"{"algo":"dyn","max":1.5}"#],
            ),
            (
                "x-sluice-flags",
                &[
                    "checkout=on",
                    "checkout=off",
                    "legacy-banner=off",
                    "per-session=on",
                    "premium=on",
                    "big-cart=on",
                    "new-search=on",
                    "new-search=off",
                ],
            ),
            ("response x-sluice-debug", &["present"]),
        ],
    );
    let cookies = coverage
        .get("response set-cookie")
        .cloned()
        .unwrap_or_default();
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with(&format!("{STICKY_COOKIE}=<random>"))),
        "no sticky cookie minted: {cookies:?}"
    );
}

/// The same list with the demo's config (`make demo`): users by `x-user-id` or the `uid` cookie,
/// a 10% canary on every request, a blue-green with `x-preview: 1`.
#[test]
fn envoy_and_host_test_agree_on_the_demo_config() {
    let coverage = differential(&paths::example("demo.json"), &cases());
    assert_covers(
        &coverage,
        &[
            ("x-route-reviews", &["v1", "v2"]),
            ("x-route-ratings", &["blue", "green"]),
            ("x-theme", &["light", "dark", "high-contrast"]),
            ("response x-sluice-debug", &["present"]),
        ],
    );
}

/// The list again with 96 more rollout flags (32 session-keyed, 64 user-keyed, names of every
/// length modulo 4): enough salts per prefix alignment that the module hashes them in its SIMD batches
/// (`sluice_engine::salt_table`), which the smaller configs above never reach. host-test's
/// `plugin_buckets` checks those batches against the native engine under wasmtime; this checks
/// that V8 in Envoy runs them the same.
#[test]
fn envoy_and_host_test_agree_on_batched_flag_buckets() {
    let mut config = config();
    let flags = config["flags"]
        .as_object_mut()
        .expect("the config has flags");
    for i in 0..96 {
        let name = format!("batch-{i:02}{}", "x".repeat(i % 4));
        let bucket_by = if i < 32 { "session" } else { "user" };
        flags.insert(
            name,
            json!({ "bucket_by": bucket_by, "rules": [{ "rollout": { "on": 50, "off": 50 } }] }),
        );
    }
    let coverage = differential(&config.to_string(), &cases());
    assert_covers(
        &coverage,
        &[(
            "x-sluice-flags",
            &[
                "batch-00=on",
                "batch-00=off",
                "batch-95xxx=on",
                "batch-95xxx=off",
            ],
        )],
    );
}
