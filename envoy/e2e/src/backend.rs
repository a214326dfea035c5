//! Echo backends (in-process `sluice-echo` servers on free loopback ports).
use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;

pub use sluice_echo::EchoOptions as BackendOptions;
use sluice_echo::EchoServer;

use crate::template::Vars;

/// One echo upstream standing for one version; stopped (listener and connections) on drop.
pub struct Backend {
    server: EchoServer,
}

impl Backend {
    /// Starts an echo instance answering as `version`, with `options` (fail rate, delay), on a free
    /// port of 127.0.0.1. The version in `options` is replaced by `version`.
    pub fn start(version: &str, options: BackendOptions) -> io::Result<Backend> {
        let options = BackendOptions {
            version: version.to_string(),
            ..options
        };
        Ok(Backend {
            server: EchoServer::start("127.0.0.1:0", options)?,
        })
    }

    /// A healthy instance of `version`.
    pub fn healthy(version: &str) -> io::Result<Backend> {
        Backend::start(version, BackendOptions::new(version))
    }

    pub fn version(&self) -> &str {
        self.server.version()
    }

    pub fn port(&self) -> u16 {
        self.server.port()
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// Requests this instance has answered.
    pub fn requests(&self) -> u64 {
        self.server.requests()
    }

    /// Requests it answered with 503 on purpose.
    pub fn failures(&self) -> u64 {
        self.server.failures()
    }
}

/// Several backends by version name, and the template variables naming their ports.
pub struct Backends {
    by_version: BTreeMap<String, Backend>,
}

impl Backends {
    /// Healthy instances of each version.
    pub fn start(versions: &[&str]) -> io::Result<Backends> {
        let mut by_version = BTreeMap::new();
        for version in versions {
            by_version.insert(version.to_string(), Backend::healthy(version)?);
        }
        Ok(Backends { by_version })
    }

    /// Adds (or replaces) one instance.
    pub fn add(&mut self, backend: Backend) {
        self.by_version
            .insert(backend.version().to_string(), backend);
    }

    /// The instance of `version`.
    ///
    /// # Panics
    /// When there is none.
    pub fn get(&self, version: &str) -> &Backend {
        self.by_version
            .get(version)
            .unwrap_or_else(|| panic!("no backend for version {version}"))
    }

    /// `BACKEND_<VERSION>_HOST` and `BACKEND_<VERSION>_PORT` for each instance (e.g.
    /// `BACKEND_V2_PORT`, `BACKEND_GREEN_HOST`), the placeholders of `envoy/envoy.yaml`.
    pub fn vars(&self) -> Vars {
        let mut vars = Vars::new();
        for (version, backend) in &self.by_version {
            let name = placeholder_part(version);
            vars.insert(
                format!("BACKEND_{name}_HOST"),
                backend.addr().ip().to_string(),
            );
            vars.insert(format!("BACKEND_{name}_PORT"), backend.port().to_string());
        }
        vars
    }

    /// Requests answered per version.
    pub fn requests(&self) -> BTreeMap<String, u64> {
        self.by_version
            .iter()
            .map(|(v, b)| (v.clone(), b.requests()))
            .collect()
    }
}

fn placeholder_part(version: &str) -> String {
    version
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}
