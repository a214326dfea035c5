//! A call chain of three Sluices, as in a mesh: an edge Envoy in front of service `a`; `a`'s
//! outbound Envoy in front of `b` (v1, v2); `b`'s outbound Envoy in front of `c` (v1, v2). The
//! apps forward only `baggage`, as OpenTelemetry-instrumented apps do. Every Envoy runs the same
//! Sluice config (one WasmPlugin for the gateway and the sidecars), delivered by ECDS so it can be
//! pushed while traffic runs.
use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;

use crate::backend::{Backend, BackendOptions};
use crate::envoy::{Envoy, EnvoyError, EnvoyOptions};
use crate::stack::ECDS_FILE;
use crate::template;

/// The hops, in request order.
pub const HOPS: [&str; 3] = ["edge", "a-outbound", "b-outbound"];

/// What one request saw at each hop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainAnswer {
    /// Per hop: the flags header the service behind it received.
    pub flags: [Option<String>; 3],
    /// The versions of `b` and `c` that answered.
    pub b: String,
    pub c: String,
    /// The baggage `c` received (for size measurements).
    pub c_baggage: Option<String>,
}

/// One pushable filter config: Sluice's JSON and the VM's environment (key secrets).
#[derive(Debug, Clone)]
pub struct FilterConfig {
    pub version: String,
    pub json: String,
    pub env: Vec<(String, String)>,
}

/// The running chain; dropping it stops every Envoy and app.
pub struct Chain {
    // Envoys first: they stop before the apps they talk to.
    pub envoys: Vec<Envoy>,
    _apps: Vec<Backend>,
    wasm: std::path::PathBuf,
}

impl Chain {
    pub fn start(
        wasm: &std::path::Path,
        config: &FilterConfig,
        name: &str,
    ) -> Result<Chain, EnvoyError> {
        let app_error = |e: std::io::Error| EnvoyError {
            message: format!("cannot start an app: {e}"),
            exit: None,
            log: String::new(),
            log_path: Default::default(),
        };
        let c1 = Backend::healthy("v1").map_err(app_error)?;
        let c2 = Backend::healthy("v2").map_err(app_error)?;
        let b_out = start_hop(
            wasm,
            config,
            &format!("{name}-b-outbound"),
            "c",
            &[("v1", c1.addr()), ("v2", c2.addr())],
        )?;
        let b1 = Backend::start("v1", BackendOptions::new("v1").forward(b_out.addr(), "c"))
            .map_err(app_error)?;
        let b2 = Backend::start("v2", BackendOptions::new("v2").forward(b_out.addr(), "c"))
            .map_err(app_error)?;
        let a_out = start_hop(
            wasm,
            config,
            &format!("{name}-a-outbound"),
            "b",
            &[("v1", b1.addr()), ("v2", b2.addr())],
        )?;
        let a = Backend::start("a", BackendOptions::new("a").forward(a_out.addr(), "b"))
            .map_err(app_error)?;
        let edge = start_hop(
            wasm,
            config,
            &format!("{name}-edge"),
            "a",
            &[("a", a.addr())],
        )?;
        Ok(Chain {
            envoys: vec![edge, a_out, b_out],
            _apps: vec![a, b1, b2, c1, c2],
            wasm: wasm.to_path_buf(),
        })
    }

    /// One request from a client to the edge (`Host: a`).
    pub fn get(&self, headers: &[(&str, &str)]) -> Result<ChainAnswer, String> {
        let mut client = self.envoys[0].client().with_host("a");
        let response = client
            .get("/checkout", headers)
            .map_err(|e| e.to_string())?;
        if response.status != 200 {
            return Err(format!("status {}: {}", response.status, response.text()));
        }
        let a = response.json().map_err(|e| e.to_string())?;
        let b = a
            .get("downstream")
            .ok_or_else(|| format!("a got no answer from b: {a}"))?;
        let c = b
            .get("downstream")
            .ok_or_else(|| format!("b got no answer from c: {b}"))?;
        let flags = |v: &Value| {
            v.pointer("/headers/x-sluice-flags/0")
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let version = |v: &Value| {
            v.get("version")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        Ok(ChainAnswer {
            flags: [flags(&a), flags(b), flags(c)],
            b: version(b),
            c: version(c),
            c_baggage: c
                .pointer("/headers/baggage/0")
                .and_then(Value::as_str)
                .map(str::to_string),
        })
    }

    /// Pushes `config` to one hop through ECDS and waits until that Envoy applied it.
    pub fn push(&self, hop: usize, config: &FilterConfig) -> Result<(), String> {
        let envoy = &self.envoys[hop];
        envoy
            .write_file(ECDS_FILE, &ecds_filter(&self.wasm, config))
            .map_err(|e| e.to_string())?;
        let stat = format!("{}.version_text", crate::stack::ECDS_STATS);
        let applied = crate::wait_until(Duration::from_secs(20), || {
            envoy.text_stat(&stat) == Some(config.version.clone())
        });
        if applied {
            Ok(())
        } else {
            Err(format!(
                "{} did not apply config {}",
                HOPS[hop], config.version
            ))
        }
    }

    /// A Sluice counter of one hop (`sluice.decisions.accepted`, ...), 0 when absent.
    pub fn stat(&self, hop: usize, name: &str) -> u64 {
        self.envoys[hop]
            .stat(&format!("wasmcustom.{name}"))
            .unwrap_or(0)
    }
}

fn start_hop(
    wasm: &std::path::Path,
    config: &FilterConfig,
    name: &str,
    service: &str,
    versions: &[(&str, SocketAddr)],
) -> Result<Envoy, EnvoyError> {
    let options = EnvoyOptions::default()
        .name(name)
        .file(ECDS_FILE, &ecds_filter(wasm, config));
    Envoy::start_with(&hop_yaml(service, versions), options)
}

/// The ECDS file for `config`: the Wasm filter with Sluice's JSON and the VM's environment.
pub fn ecds_filter(wasm: &std::path::Path, config: &FilterConfig) -> String {
    let env: Vec<String> = config
        .env
        .iter()
        .map(|(k, v)| format!("{k}: {}", template::yaml_string(v)))
        .collect();
    format!(
        r#"version_info: "{version}"
resources:
- "@type": type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig
  name: sluice
  typed_config:
    "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
    config:
      name: sluice
      root_id: sluice
      configuration:
        "@type": type.googleapis.com/google.protobuf.StringValue
        value: {json}
      failure_policy: FAIL_CLOSED
      vm_config:
        runtime: envoy.wasm.runtime.v8
        vm_id: sluice
        environment_variables:
          key_values: {{ {env} }}
        code:
          local: {{ filename: {wasm} }}
"#,
        version = config.version,
        json = template::yaml_string(&config.json),
        env = env.join(", "),
        wasm = wasm.display(),
    )
}

/// One hop's Envoy: Sluice (by ECDS), then the route table on `x-route-<service>`.
fn hop_yaml(service: &str, versions: &[(&str, SocketAddr)]) -> String {
    let mut routes = String::new();
    let mut clusters = String::new();
    for (version, addr) in versions {
        routes.push_str(&format!(
            "              - match: {{ prefix: /, headers: [{{ name: x-route-{service}, string_match: {{ exact: {version} }} }}] }}\n                route: {{ cluster: {service}-{version} }}\n"
        ));
        clusters.push_str(&format!(
            "  - name: {service}-{version}\n    type: STATIC\n    connect_timeout: 1s\n    load_assignment:\n      cluster_name: {service}-{version}\n      endpoints:\n      - lb_endpoints:\n        - endpoint: {{ address: {{ socket_address: {{ address: \"{}\", port_value: {} }} }} }}\n",
            addr.ip(),
            addr.port()
        ));
    }
    let default = versions.first().map_or("", |(v, _)| v);
    format!(
        r#"node: {{ id: sluice-chain, cluster: sluice-chain }}
admin:
  address:
    socket_address: {{ address: "{{{{LISTEN_ADDRESS}}}}", port_value: {{{{ADMIN_PORT}}}} }}
static_resources:
  listeners:
  - name: ingress
    address:
      socket_address: {{ address: "{{{{LISTEN_ADDRESS}}}}", port_value: {{{{LISTEN_PORT}}}} }}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress
          codec_type: AUTO
          route_config:
            name: local
            virtual_hosts:
            - name: {service}
              domains: ["*"]
              routes:
{routes}              - match: {{ prefix: / }}
                route: {{ cluster: {service}-{default} }}
          http_filters:
          - name: sluice
            config_discovery:
              config_source:
                path_config_source:
                  path: {{{{DIR}}}}/{ECDS_FILE}
                  watched_directory: {{ path: {{{{DIR}}}} }}
              type_urls:
              - type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
{clusters}"#
    )
}

/// The chain scenario (`make demo-chain`, `tests/chain.rs`): the mesh's config.
pub fn mesh_config(keys: &[(&str, &str)]) -> String {
    let keys: Vec<Value> = keys
        .iter()
        .map(|(id, env)| serde_json::json!({ "id": id, "env": env }))
        .collect();
    serde_json::json!({
        "version": 1,
        "revision": "chain-demo",
        "identity": { "user": [{ "baggage": "userId" }] },
        "flags": { "new-checkout-ui": { "rules": [{ "rollout": { "on": 40, "off": 60 } }] } },
        "routes": {
            "b": { "match": { "authority": ["b"] }, "header": "x-route-b", "versions": ["v1", "v2"],
                   "canary": { "stable": "v1", "canary": "v2", "weight": 0 } },
            "c": { "match": { "authority": ["c"] }, "header": "x-route-c", "versions": ["v1", "v2"],
                   "canary": { "stable": "v1", "canary": "v2", "weight": 0 } }
        },
        "releases": { "checkout-2": { "routes": { "b": "v2", "c": "v2" }, "weight": 30 } },
        "outputs": { "baggage": { "prefix": "sluice." } },
        "chain": { "keys": keys, "ttl": "10m", "revision": "mesh-1" }
    })
    .to_string()
}

pub const KEY1: (&str, &str) = (
    "SLUICE_CHAIN_KEY_K1",
    "k1-secret-0123456789abcdef0123456789",
);
pub const KEY2: (&str, &str) = (
    "SLUICE_CHAIN_KEY_K2",
    "k2-secret-fedcba9876543210fedcba9876",
);

/// The three configs of a key rotation: k1 signs; k2 added to verify; k2 signs, k1 verifies.
pub fn rotation() -> [FilterConfig; 3] {
    let env = |keys: &[(&str, &str)]| {
        keys.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    [
        FilterConfig {
            version: "keys-k1".into(),
            json: mesh_config(&[("k1", KEY1.0)]),
            env: env(&[KEY1]),
        },
        FilterConfig {
            version: "keys-k1-k2".into(),
            json: mesh_config(&[("k1", KEY1.0), ("k2", KEY2.0)]),
            env: env(&[KEY1, KEY2]),
        },
        FilterConfig {
            version: "keys-k2-k1".into(),
            json: mesh_config(&[("k2", KEY2.0), ("k1", KEY1.0)]),
            env: env(&[KEY1, KEY2]),
        },
    ]
}

/// What the core decides for `user` on route `route` (the reference every hop must agree with).
pub fn expected(plan: &sluice_core::plan::Plan, user: &str, route: &str) -> (String, String) {
    use sluice_core::engine::Headers;
    use sluice_core::pipeline::{run_once, Facts, Live};
    let baggage = format!("userId={user}");
    let pairs: [(&str, &[u8]); 4] = [
        (":authority", route.as_bytes()),
        (":path", b"/checkout"),
        (":method", b"GET"),
        ("baggage", baggage.as_bytes()),
    ];
    let facts = Facts {
        headers: Headers::Pairs(&pairs),
        source: None,
        now_ms: 0,
        entropy: 0,
    };
    let d = run_once(plan, Live::default(), &facts).decision;
    let r = plan
        .routes
        .iter()
        .position(|r| r.name == route)
        .unwrap_or(0);
    let version = d
        .routes
        .iter()
        .find(|o| o.route == r)
        .map(|o| plan.routes[r].versions[o.version].clone())
        .unwrap_or_default();
    let flag = plan.flags.first().map_or(String::new(), |f| {
        format!("{}={}", f.name, f.variant_names[d.flags[0].variant])
    });
    (version, flag)
}

/// One hop's token counters: signed, accepted, and rejected by reason (non-zero ones).
pub type HopStats = (u64, u64, Vec<(String, u64)>);

/// The outcome of the scenario.
#[derive(Debug, Default)]
pub struct Report {
    pub users: usize,
    /// Users whose answers disagree between hops or with the core's evaluation.
    pub inconsistent: Vec<String>,
    pub failed: Vec<String>,
    pub in_release: usize,
    pub flag_on: usize,
    /// Forged clients, and those of them who got something other than their own decision.
    pub forged: usize,
    pub forged_honoured: Vec<String>,
    /// Per hop, in `HOPS` order.
    pub hop_stats: Vec<HopStats>,
    pub baggage_bytes: usize,
    pub token_bytes: usize,
}

/// Runs `users` honest users through the chain (rotating keys at a third and two thirds, with
/// traffic flowing), then `forged` clients that try to choose their versions.
pub fn run_scenario(chain: &Chain, users: usize, forged: usize) -> Report {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    let configs = rotation();
    let plan = match sluice_core::compile::load_with_env(configs[0].json.as_bytes(), &|name| {
        [KEY1, KEY2]
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    }) {
        Ok(plan) => plan,
        Err(e) => panic!("chain config rejected: {e}"),
    };
    // The core's answer for every user, computed before the threads start (a plan is not Sync).
    let names: Vec<String> = (0..users)
        .map(|i| format!("user-{i}"))
        .chain((0..forged).map(|i| format!("mallory-{i}")))
        .collect();
    let reference: std::collections::HashMap<String, (String, String, String)> = names
        .into_iter()
        .map(|user| {
            let (b, flag) = expected(&plan, &user, "b");
            let (c, _) = expected(&plan, &user, "c");
            (user, (b, c, flag))
        })
        .collect();
    drop(plan);
    let next = AtomicUsize::new(0);
    let report = Mutex::new(Report {
        users,
        forged,
        ..Report::default()
    });
    let check = |user: &str, answer: Result<ChainAnswer, String>, forged: bool| {
        let mut r = report.lock().unwrap_or_else(|e| e.into_inner());
        let answer = match answer {
            Ok(a) => a,
            Err(e) => {
                r.failed.push(format!("{user}: {e}"));
                return;
            }
        };
        let Some((b, c, flag)) = reference.get(user) else {
            r.failed.push(format!("{user}: no reference answer"));
            return;
        };
        let agree = &answer.b == b
            && &answer.c == c
            && answer
                .flags
                .iter()
                .all(|f| f.as_deref() == Some(flag.as_str()));
        if !agree {
            let line = format!(
                "{user}: got b={} c={} flags={:?}, expected b={b} c={c} {flag}",
                answer.b, answer.c, answer.flags
            );
            if forged {
                r.forged_honoured.push(line);
            } else {
                r.inconsistent.push(line);
            }
            return;
        }
        if !forged {
            r.in_release += usize::from(answer.b == "v2");
            r.flag_on += usize::from(flag.ends_with("=on"));
            if let Some(b) = &answer.c_baggage {
                r.baggage_bytes = r.baggage_bytes.max(b.len());
                let token = b.split(',').find_map(|m| m.strip_prefix("sluice.token="));
                r.token_bytes = r.token_bytes.max(token.map_or(0, str::len));
            }
        }
    };
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= users {
                    return;
                }
                let user = format!("user-{i}");
                let baggage = format!("userId={user}");
                check(&user, chain.get(&[("baggage", &baggage)]), false);
            });
        }
        // Rotate while the two clients run: every hop, one after another.
        for (stage, at) in [(1, users / 3), (2, 2 * users / 3)] {
            while next.load(Ordering::SeqCst) < at {
                std::thread::sleep(Duration::from_millis(5));
            }
            for hop in 0..HOPS.len() {
                if let Err(e) = chain.push(hop, &configs[stage]) {
                    report
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .failed
                        .push(e);
                }
            }
        }
    });
    // A token that is real, but another user's.
    let stolen = chain
        .get(&[("baggage", "userId=user-0")])
        .ok()
        .and_then(|a| a.c_baggage)
        .and_then(|b| {
            b.split(',')
                .find(|m| m.starts_with("sluice.token="))
                .map(str::to_string)
        })
        .unwrap_or_default();
    for i in 0..forged {
        let user = format!("mallory-{i}");
        let baggage = match i % 3 {
            0 => format!("userId={user},sluice.route.b=v2,sluice.route.c=v2,sluice.release.checkout-2=in,sluice.new-checkout-ui=on"),
            1 => format!("userId={user},{stolen}"),
            _ => format!("userId={user},sluice.token=bm90LWEtdG9rZW4.AAAAAAAAAAAAAAAAAAAAAA"),
        };
        let answer = chain.get(&[
            ("baggage", &baggage),
            ("x-route-b", "v2"),
            ("x-route-c", "v2"),
        ]);
        check(&user, answer, true);
    }
    let mut report = report.into_inner().unwrap_or_else(|e| e.into_inner());
    // Sluice hands its counts to Envoy once a second.
    std::thread::sleep(Duration::from_millis(2500));
    for hop in 0..HOPS.len() {
        let rejected = sluice_core::token::Rejection::ALL
            .iter()
            .map(|r| {
                let name = r.name().to_string();
                let n = chain.stat(hop, &format!("sluice.decisions.rejected.{name}"));
                (name, n)
            })
            .filter(|(_, n)| *n > 0)
            .collect();
        report.hop_stats.push((
            chain.stat(hop, "sluice.decisions.signed"),
            chain.stat(hop, "sluice.decisions.accepted"),
            rejected,
        ));
    }
    report
}

impl Report {
    /// The per-hop table `make demo-chain` prints.
    pub fn table(&self) -> String {
        let pct = |n: usize, of: usize| 100.0 * n as f64 / of.max(1) as f64;
        let mut out = format!(
            "{} users through edge -> a -> b -> c (keys rotated at 1/3 and 2/3), {} forged clients\n\n",
            self.users, self.forged
        );
        out.push_str(&format!(
            "{:<12} {:>8} {:>9} {:>9}  {}\n",
            "hop", "signed", "accepted", "rejected", "by reason"
        ));
        for (hop, (signed, accepted, rejected)) in HOPS.iter().zip(&self.hop_stats) {
            let total: u64 = rejected.iter().map(|(_, n)| n).sum();
            let reasons: Vec<String> = rejected.iter().map(|(r, n)| format!("{r}={n}")).collect();
            out.push_str(&format!(
                "{hop:<12} {signed:>8} {accepted:>9} {total:>9}  {}\n",
                reasons.join(" ")
            ));
        }
        out.push_str(&format!(
            "\nrelease checkout-2 (b v2 + c v2): {:.1}% of users (weight 30%)\nflag new-checkout-ui on: {:.1}% (rollout 40%)\n",
            pct(self.in_release, self.users),
            pct(self.flag_on, self.users)
        ));
        out.push_str(&format!(
            "inconsistent users: {}   failed requests: {}   forged clients honoured: {} of {}\nlargest baggage at c: {} bytes (token {} bytes)\n",
            self.inconsistent.len(),
            self.failed.len(),
            self.forged_honoured.len(),
            self.forged,
            self.baggage_bytes,
            self.token_bytes
        ));
        out
    }
}
