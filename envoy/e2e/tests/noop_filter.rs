//! The harness and the shipped Envoy configs, proven with the no-op wasm filter
//! (`build/noop.wasm`): Envoy 1.40 loads a wasm filter in V8, the route table in
//! `envoy/envoy.yaml` sends each routing header to its version, ECDS pushes reach a running Envoy
//! without failing a request, and failures come with Envoy's log.
//!
//! The no-op filter strips nothing, so here the client's own `x-route-*` header chooses the
//! version: that is how these tests check the route table itself. (Sluice strips those headers;
//! tests/sluice.rs checks that a client cannot choose.)
use std::time::{Duration, Instant};

use sluice_e2e::stack::{self, Stack, ECDS_STATS};
use sluice_e2e::template;
use sluice_e2e::{
    paths, Backend, BackendOptions, Backends, EnvoyOptions, HttpClient, Outcome, RequestSpec,
    Traffic,
};

fn version_of(client: &mut HttpClient, path: &str, headers: &[(&str, &str)]) -> String {
    let response = client.get(path, headers).expect("request through envoy");
    assert_eq!(
        response.status,
        200,
        "{path} {headers:?}: {}",
        response.text()
    );
    let echo = response.echo().expect("an echo backend answered");
    assert_eq!(
        response.header("x-echo-version"),
        Some(echo.version.as_str())
    );
    echo.version
}

/// Path, request headers, version expected to answer.
type Case = (
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static str,
);

#[test]
fn wasm_filter_loads_in_v8_and_routing_headers_pick_the_version() {
    let stack = Stack::start(&paths::noop_wasm(), "{}").expect("envoy starts");
    let envoy = &stack.envoy;
    let mut client = envoy.client();

    // The route table of envoy/envoy.yaml: header → version, no header → stable.
    let cases: [Case; 6] = [
        ("/", &[], "v1"),
        ("/reviews/1", &[("x-route-reviews", "v2")], "v2"),
        ("/reviews/1", &[("x-route-reviews", "v1")], "v1"),
        ("/reviews/1", &[("x-route-reviews", "v9")], "v1"),
        ("/web/home", &[], "blue"),
        ("/web/home", &[("x-route-web", "green")], "green"),
    ];
    for (path, headers, expected) in cases {
        assert_eq!(
            version_of(&mut client, path, headers),
            expected,
            "{path} {headers:?}"
        );
    }

    // What the upstream receives: the request as sent, headers included.
    let response = client
        .get(
            "/reviews/7?u=1",
            &[("x-route-reviews", "v2"), ("x-user", "alice")],
        )
        .unwrap();
    let echo = response.echo().unwrap();
    assert_eq!(
        (echo.method.as_str(), echo.path.as_str()),
        ("GET", "/reviews/7?u=1")
    );
    assert_eq!(echo.header("x-user"), Some("alice"));
    assert_eq!(echo.header("x-route-reviews"), Some("v2"));

    // Thousands of requests on one kept-alive connection, each to the version it asked for.
    let started = Instant::now();
    for i in 0..2000u32 {
        let version = if i % 4 == 0 { "v2" } else { "v1" };
        assert_eq!(
            version_of(&mut client, "/", &[("x-route-reviews", version)]),
            version
        );
    }
    let elapsed = started.elapsed();
    eprintln!(
        "2000 requests through envoy + noop wasm in {elapsed:?} ({:.0} req/s)",
        2000.0 / elapsed.as_secs_f64()
    );
    assert_eq!(client.connects(), 1, "keep-alive held");

    // Envoy's stats agree with the backends: the wasm VM runs in V8, each cluster got its share.
    assert!(envoy.stat("wasm.envoy.wasm.runtime.v8.active").unwrap_or(0) >= 1);
    assert_eq!(
        envoy.stat("cluster.reviews-v2.upstream_rq_200"),
        Some(500 + 1 + 1)
    );
    assert_eq!(stack.backends.get("v2").requests(), 502);
    assert_eq!(stack.backends.get("green").requests(), 1);
    let json = envoy.stats_json().unwrap();
    assert!(json["stats"].as_array().is_some_and(|s| !s.is_empty()));

    // The log is kept in the run directory.
    assert!(envoy
        .log_path()
        .starts_with(paths::target_dir().join("e2e")));
    assert!(envoy.log().contains("starting main dispatch loop"));
}

#[test]
fn envoy_that_cannot_start_fails_with_its_log() {
    let missing = paths::workspace_root().join("build/does-not-exist.wasm");
    let error = match Stack::start(&missing, "{}") {
        Ok(_) => panic!("envoy started with a missing .wasm"),
        Err(error) => error,
    };
    assert!(error.exit.is_some(), "envoy exited: {error}");
    assert!(
        error.log.contains("does-not-exist.wasm"),
        "the reason is in the log: {error}"
    );
    assert!(error.to_string().contains("envoy exited during startup"));
    assert!(error.log_path.is_file(), "the log is kept");
}

#[test]
fn config_with_an_unfilled_placeholder_is_refused_before_envoy_runs() {
    let error = match sluice_e2e::Envoy::start("admin: {{NO_SUCH_VALUE}}\n") {
        Ok(_) => panic!("started"),
        Err(error) => error,
    };
    assert!(error.message.contains("NO_SUCH_VALUE"), "{error}");
}

/// Allows a Lua filter in the ECDS slot: it sets a routing header, so a push that swaps the no-op
/// wasm filter for it (and back) changes where requests go.
fn allow_lua(bootstrap: String) -> String {
    let wasm_type =
        "              - type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm\n";
    assert!(
        bootstrap.contains(wasm_type),
        "ecds.yaml lists the Wasm type"
    );
    bootstrap.replace(
        wasm_type,
        &format!(
            "{wasm_type}              - type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua\n"
        ),
    )
}

fn lua_routes_to(version: &str, ecds_version: &str) -> String {
    let code = format!(
        "function envoy_on_request(h) h:headers():replace('x-route-reviews', '{version}'); h:clearRouteCache() end"
    );
    format!(
        "version_info: \"{ecds_version}\"\nresources:\n\
         - \"@type\": type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig\n  name: sluice\n  typed_config:\n    \
         \"@type\": type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua\n    \
         default_source_code: {{ inline_string: {} }}\n",
        template::yaml_string(&code)
    )
}

fn summarize(outcomes: &[Outcome]) -> String {
    let failed: Vec<&Outcome> = outcomes.iter().filter(|o| !o.ok()).collect();
    format!(
        "{} requests, {} failed, first failures: {:?}",
        outcomes.len(),
        failed.len(),
        &failed[..failed.len().min(5)]
    )
}

/// Collapses the sequence of versions into runs: ["v1", "v2", "v1"] for a switch and back.
fn runs(outcomes: &[Outcome]) -> Vec<String> {
    let mut runs: Vec<String> = Vec::new();
    for outcome in outcomes {
        let version = outcome.version.clone().unwrap_or_else(|| "-".into());
        if runs.last() != Some(&version) {
            runs.push(version);
        }
    }
    runs
}

#[test]
fn ecds_push_under_traffic_switches_routing_with_zero_failed_requests() {
    let wasm = paths::noop_wasm();
    let stack = Stack::start_ecds(&wasm, "{}", EnvoyOptions::default(), allow_lua)
        .expect("envoy starts with the ECDS config");
    assert_eq!(
        stack.envoy.text_stat(&format!("{ECDS_STATS}.version_text")),
        Some("1".into())
    );
    let traffic = Traffic::start(stack.envoy.addr(), |_| RequestSpec::get("/reviews"));
    let step = Duration::from_secs(10);
    assert!(traffic.wait_more(200, step), "traffic flows");

    // Push 2: a filter that routes everything to v2.
    let pushed = Instant::now();
    stack.push_raw(&lua_routes_to("v2", "2")).unwrap();
    assert!(stack.wait_ecds("2", step), "ECDS version 2 applied");
    let applied = pushed.elapsed();
    assert!(traffic.wait_more(200, step));

    // Push 3: the no-op wasm filter again, with a new configuration string: back to stable.
    stack.push("3", &wasm, r#"{"push":3}"#).unwrap();
    assert!(stack.wait_ecds("3", step), "ECDS version 3 applied");
    assert!(traffic.wait_more(200, step));
    let outcomes = traffic.stop();

    eprintln!(
        "ECDS push applied {applied:?} after the rename; {}",
        summarize(&outcomes)
    );
    assert!(outcomes.iter().all(Outcome::ok), "{}", summarize(&outcomes));
    // One clean switch each way: every request before a push on the old version, after on the new.
    assert_eq!(runs(&outcomes), ["v1", "v2", "v1"]);
    assert_eq!(stack.ecds_stat("update_rejected"), 0);
    assert!(stack.ecds_stat("update_success") >= 3);
}

#[test]
fn ecds_push_that_envoy_rejects_keeps_the_previous_config_serving() {
    let wasm = paths::noop_wasm();
    let stack = Stack::start_ecds(&wasm, "{}", EnvoyOptions::default(), |b| b).unwrap();
    let traffic = Traffic::start(stack.envoy.addr(), |i| {
        RequestSpec::get("/").header("x-route-reviews", if i % 2 == 0 { "v1" } else { "v2" })
    });
    assert!(traffic.wait_more(100, Duration::from_secs(10)));

    let missing = paths::workspace_root().join("build/does-not-exist.wasm");
    stack.push("2", &missing, "{}").unwrap();
    assert!(
        sluice_e2e::wait_until(Duration::from_secs(10), || stack
            .ecds_stat("update_rejected")
            == 1),
        "the push is rejected"
    );
    assert!(traffic.wait_more(100, Duration::from_secs(10)));
    let outcomes = traffic.stop();

    assert!(outcomes.iter().all(Outcome::ok), "{}", summarize(&outcomes));
    assert_eq!(
        stack.envoy.text_stat(&format!("{ECDS_STATS}.version_text")),
        Some("1".into()),
        "Envoy keeps version 1"
    );
    let log = stack.envoy.log();
    assert!(
        log.contains("Filesystem config update rejected") && log.contains("does-not-exist.wasm"),
        "Envoy logs why"
    );
}

#[test]
fn shipped_configs_validate_in_envoy() {
    // `envoy --mode validate` on envoy/envoy.yaml and envoy/ecds.yaml as the demo fills them.
    let backends = sluice_e2e::Backends::start(&stack::VERSIONS).unwrap();
    let dir = paths::target_dir().join("e2e/validate");
    std::fs::create_dir_all(&dir).unwrap();
    let mut vars = template::Vars::new();
    vars.insert("LISTEN_ADDRESS".into(), "127.0.0.1".into());
    vars.insert("LISTEN_PORT".into(), "0".into());
    vars.insert("ADMIN_PORT".into(), "0".into());
    vars.insert("DIR".into(), dir.display().to_string());
    let ecds_filter = stack::ecds_filter("1", &paths::noop_wasm(), "{}");
    std::fs::write(dir.join(stack::ECDS_FILE), ecds_filter).unwrap();
    for (name, text) in [
        (
            "envoy.yaml",
            stack::envoy_yaml(&paths::noop_wasm(), "{\"a\": \"b\"}", &backends),
        ),
        ("ecds.yaml", stack::ecds_yaml(&backends)),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, template::render(&text, &vars).unwrap()).unwrap();
        let output = std::process::Command::new(paths::envoy_binary())
            .args(["--mode", "validate", "-c"])
            .arg(&path)
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{name} does not validate:\n{log}");
    }
}

#[test]
fn a_backend_failing_on_purpose_shows_in_responses_and_envoy_stats() {
    // What the canary-guard tests build on: v2 answers every 10th request with 503.
    let mut backends = Backends::start(&stack::VERSIONS).unwrap();
    backends.add(Backend::start("v2", BackendOptions::new("v2").fail_rate(0.1)).unwrap());
    let stack = Stack::start_on(backends, &paths::noop_wasm(), "{}", EnvoyOptions::default())
        .expect("envoy starts");
    let traffic = Traffic::start(stack.envoy.addr(), |i| {
        RequestSpec::get("/").header("x-route-reviews", if i % 2 == 0 { "v1" } else { "v2" })
    });
    assert!(traffic.wait_more(400, Duration::from_secs(10)));
    let outcomes = traffic.stop();
    let failed: Vec<&Outcome> = outcomes.iter().filter(|o| !o.ok()).collect();
    assert!(failed
        .iter()
        .all(|o| o.status == Ok(503) && o.version.as_deref() == Some("v2")));
    let v2 = stack.backends.get("v2");
    assert_eq!(v2.failures(), v2.requests() / 10);
    assert_eq!(failed.len() as u64, v2.failures());
    assert_eq!(
        stack.envoy.stat("cluster.reviews-v2.upstream_rq_503"),
        Some(v2.failures())
    );
    assert_eq!(stack.envoy.stat("cluster.reviews-v1.upstream_rq_503"), None);
}
