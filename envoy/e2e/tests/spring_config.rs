//! Spring Cloud Config as a flag source in a real Envoy: a local Config Server stand-in answers
//! `GET /shop/prod,eu/main` with an Environment document in Spring's documented format (three
//! property sources overriding each other, two profiles, a label), checks basic auth, and the
//! flags header follows it; a bad Environment keeps the last good flags and counts a failure.
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sluice_e2e::{paths, stack, Backends, EnvoyOptions, Stack};

/// base64("sluice:s3cret")
const BASIC: &str = "Basic c2x1aWNlOnMzY3JldA==";

fn environment(version: &str, checkout_enabled: &str) -> String {
    format!(
        r#"{{"name": "shop", "profiles": ["prod", "eu"], "label": "main", "version": "{version}", "state": null,
  "propertySources": [
    {{"name": "git:main:shop-eu.yml", "source": {{"features.search.enabled": "false"}}}},
    {{"name": "git:main:shop-prod.yml", "source": {{"features.checkout.enabled": {checkout_enabled}}}}},
    {{"name": "git:main:application.yml", "source": {{"features.checkout.enabled": false, "features.search.enabled": true, "server.port": 8080}}}}
  ]}}"#
    )
}

/// Answers every request with the current body (401 without the right credentials); records
/// the request lines.
fn config_server(body: Arc<Mutex<String>>, seen: Arc<Mutex<Vec<String>>>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let (body, seen) = (Arc::clone(&body), Arc::clone(&seen));
            std::thread::spawn(move || {
                let mut writer = conn.try_clone().unwrap();
                let mut reader = BufReader::new(conn);
                loop {
                    let mut request = String::new();
                    let mut authorized = false;
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let line = line.trim_end();
                        if line.is_empty() {
                            break;
                        }
                        if request.is_empty() {
                            request = line.to_string();
                        }
                        if line.to_ascii_lowercase()
                            == format!("authorization: {}", BASIC.to_ascii_lowercase())
                        {
                            authorized = true;
                        }
                    }
                    seen.lock().unwrap().push(request.clone());
                    let (status, text) = if !authorized {
                        (401, String::new())
                    } else if request.starts_with("GET /shop/prod,eu/main ") {
                        (200, body.lock().unwrap().clone())
                    } else {
                        (404, String::new())
                    };
                    let reply = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{text}",
                        text.len()
                    );
                    if writer.write_all(reply.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[test]
fn the_flags_header_follows_the_config_servers_environment() {
    let body = Arc::new(Mutex::new(environment("v1", "true")));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let server = config_server(Arc::clone(&body), Arc::clone(&seen));
    let config = r#"{"version": 1, "revision": "spring-e2e", "identity": {"user": [{"header": "x-user"}]},
      "sources": {"spring": {"cluster": "config-server", "application": "shop", "profiles": ["prod", "eu"],
        "label": "main", "basic": {"username": "sluice", "password": "s3cret"},
        "interval": "1s", "timeout": "800ms"}}}"#;
    let backends = Backends::start(&stack::VERSIONS).expect("backends");
    let yaml = stack::envoy_yaml(&paths::sluice_wasm(), config, &backends);
    let cluster = format!(
        "  - name: config-server\n    type: STATIC\n    connect_timeout: 1s\n    load_assignment:\n      cluster_name: config-server\n      endpoints:\n      - lb_endpoints:\n        - endpoint: {{ address: {{ socket_address: {{ address: \"127.0.0.1\", port_value: {} }} }} }}\n",
        server.port()
    );
    let at = yaml.find("  clusters:\n").unwrap() + "  clusters:\n".len();
    let yaml = format!("{}{cluster}{}", &yaml[..at], &yaml[at..]);
    let envoy = sluice_e2e::Envoy::start_with(&yaml, EnvoyOptions::default().concurrency(2))
        .expect("envoy with a config-server cluster");
    let stack = Stack { envoy, backends };
    let stat = |name: &str| {
        stack
            .envoy
            .stat(&format!("wasmcustom.sluice.spring.fetch.{name}"))
            .unwrap_or(0)
    };
    let mut client = stack.envoy.client();
    let mut flags = || {
        client
            .get("/reviews", &[("x-user", "u1")])
            .ok()
            .and_then(|r| r.echo())
            .and_then(|e| e.header("x-sluice-flags").map(str::to_string))
    };
    // prod's `checkout.enabled: true` beats application's false; eu's `search: "false"` beats
    // application's true.
    let want = Some("checkout=on;search=off".to_string());
    assert!(
        sluice_e2e::wait_until(Duration::from_secs(10), || flags() == want),
        "flags {:?}; log:\n{}",
        flags(),
        stack.envoy.log()
    );
    // The same version: not modified.
    assert!(sluice_e2e::wait_until(Duration::from_secs(5), || stat(
        "not_modified"
    ) >= 1));

    // A new version turns checkout off.
    *body.lock().unwrap() = environment("v2", "false");
    assert!(sluice_e2e::wait_until(Duration::from_secs(5), || flags()
        == Some("checkout=off;search=off".into())));

    // A bad Environment: counted, logged with the source, last good kept.
    let failed = stat("failed");
    *body.lock().unwrap() = environment("v3", "\"yes\"");
    assert!(sluice_e2e::wait_until(Duration::from_secs(5), || stat(
        "failed"
    ) >= failed
        + 2));
    assert_eq!(flags(), Some("checkout=off;search=off".into()));
    assert!(stack.envoy.log().contains(
        "spring poll failed: `features.checkout.enabled` in property source `git:main:shop-prod.yml` is \"yes\", not a boolean"
    ));
    let seen = seen.lock().unwrap();
    assert!(
        seen.iter()
            .all(|r| r.starts_with("GET /shop/prod,eu/main ")),
        "{seen:?}"
    );
    println!(
        "spring polls: {}; ok {} not_modified {} failed {}",
        seen.len(),
        stat("ok"),
        stat("not_modified"),
        stat("failed")
    );
}
