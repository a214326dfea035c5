//! The demo's topology for one test: echo backends for every version in `envoy/envoy.yaml`
//! (`v1`, `v2` of reviews; `blue`, `green` of web) and Envoy running a filter module, its config
//! either inline (`envoy.yaml`) or delivered by ECDS from a file (`ecds.yaml` + `ecds-filter.yaml`).
use std::io;
use std::path::Path;
use std::time::Duration;

use crate::backend::Backends;
use crate::envoy::{Envoy, EnvoyError, EnvoyOptions};
use crate::paths;
use crate::template::{self, Vars};

/// The versions `envoy/envoy.yaml` routes to.
pub const VERSIONS: [&str; 4] = ["v1", "v2", "blue", "green"];

/// The ECDS file in the run directory.
pub const ECDS_FILE: &str = "sluice-filter.yaml";

/// The ECDS stats prefix of the filter named `sluice`.
pub const ECDS_STATS: &str = "extension_config_discovery.http_filter.sluice";

/// `envoy/envoy.yaml` filled for `wasm`, `config_json` and `backends` (listener/admin ports are
/// left to [`Envoy::start`]).
pub fn envoy_yaml(wasm: &Path, config_json: &str, backends: &Backends) -> String {
    let mut vars = backends.vars();
    vars.insert("WASM".into(), wasm.display().to_string());
    vars.insert("CONFIG_JSON".into(), template::yaml_string(config_json));
    template::fill(&paths::envoy_template("envoy.yaml"), &vars)
}

/// `envoy/ecds.yaml` filled for `backends`, reading the filter config from
/// `<run dir>/sluice-filter.yaml`.
pub fn ecds_yaml(backends: &Backends) -> String {
    let mut vars = backends.vars();
    vars.insert("ECDS_FILE".into(), format!("{{{{DIR}}}}/{ECDS_FILE}"));
    vars.insert("ECDS_DIR".into(), "{{DIR}}".into());
    template::fill(&paths::envoy_template("ecds.yaml"), &vars)
}

/// `envoy/ecds-filter.yaml` for one config version: the file content ECDS reads.
pub fn ecds_filter(version: &str, wasm: &Path, config_json: &str) -> String {
    let mut vars = Vars::new();
    vars.insert("VERSION".into(), version.to_string());
    vars.insert("WASM".into(), wasm.display().to_string());
    vars.insert("CONFIG_JSON".into(), template::yaml_string(config_json));
    template::fill(&paths::envoy_template("ecds-filter.yaml"), &vars)
}

/// Backends for every version plus one Envoy; dropping it stops them all.
pub struct Stack {
    // Envoy first: it stops before the backends it talks to.
    pub envoy: Envoy,
    pub backends: Backends,
}

impl Stack {
    /// Envoy with `envoy/envoy.yaml`: the filter `wasm` with `config_json` inline.
    pub fn start(wasm: &Path, config_json: &str) -> Result<Stack, EnvoyError> {
        Stack::start_with(wasm, config_json, EnvoyOptions::default())
    }

    /// [`Stack::start`] with options (workers, log levels).
    pub fn start_with(
        wasm: &Path,
        config_json: &str,
        options: EnvoyOptions,
    ) -> Result<Stack, EnvoyError> {
        Stack::start_on(start_backends()?, wasm, config_json, options)
    }

    /// [`Stack::start_with`] on backends of your own, e.g. a canary that fails on purpose:
    ///
    /// ```no_run
    /// # use sluice_e2e::{paths, stack, Backend, BackendOptions, Backends, EnvoyOptions, Stack};
    /// let mut backends = Backends::start(&stack::VERSIONS).unwrap();
    /// backends.add(Backend::start("v2", BackendOptions::new("v2").fail_rate(0.1)).unwrap());
    /// let stack = Stack::start_on(backends, &paths::sluice_wasm(), "{}", EnvoyOptions::default());
    /// ```
    pub fn start_on(
        backends: Backends,
        wasm: &Path,
        config_json: &str,
        options: EnvoyOptions,
    ) -> Result<Stack, EnvoyError> {
        let envoy = Envoy::start_with(&envoy_yaml(wasm, config_json, &backends), options)?;
        Ok(Stack { envoy, backends })
    }

    /// Envoy with `envoy/ecds.yaml`: the filter's config comes by ECDS from a file, first version
    /// `"1"` with `wasm` and `config_json`. `customize` may edit the bootstrap (e.g. allow more
    /// filter types).
    pub fn start_ecds(
        wasm: &Path,
        config_json: &str,
        options: EnvoyOptions,
        customize: impl FnOnce(String) -> String,
    ) -> Result<Stack, EnvoyError> {
        Stack::start_ecds_on(start_backends()?, wasm, config_json, options, customize)
    }

    /// [`Stack::start_ecds`] on backends of your own (see [`Stack::start_on`]).
    pub fn start_ecds_on(
        backends: Backends,
        wasm: &Path,
        config_json: &str,
        options: EnvoyOptions,
        customize: impl FnOnce(String) -> String,
    ) -> Result<Stack, EnvoyError> {
        let options = options.file(ECDS_FILE, &ecds_filter("1", wasm, config_json));
        let envoy = Envoy::start_with(&customize(ecds_yaml(&backends)), options)?;
        Ok(Stack { envoy, backends })
    }

    /// Pushes a new filter config through ECDS: replaces the file atomically. Envoy applies it
    /// asynchronously; see [`Stack::wait_ecds`].
    pub fn push(&self, version: &str, wasm: &Path, config_json: &str) -> io::Result<()> {
        self.push_raw(&ecds_filter(version, wasm, config_json))
    }

    /// Pushes any ECDS file content (a DiscoveryResponse with one TypedExtensionConfig).
    pub fn push_raw(&self, content: &str) -> io::Result<()> {
        self.envoy.write_file(ECDS_FILE, content).map(|_| ())
    }

    /// Waits until Envoy has taken in ECDS version `version`; whether it did within `timeout`.
    pub fn wait_ecds(&self, version: &str, timeout: Duration) -> bool {
        crate::wait_until(timeout, || {
            self.envoy.text_stat(&format!("{ECDS_STATS}.version_text")) == Some(version.into())
        })
    }

    /// An ECDS counter of the `sluice` filter (`update_success`, `update_rejected`, ...).
    pub fn ecds_stat(&self, name: &str) -> u64 {
        self.envoy
            .stat(&format!("{ECDS_STATS}.{name}"))
            .unwrap_or(0)
    }
}

fn start_backends() -> Result<Backends, EnvoyError> {
    Backends::start(&VERSIONS).map_err(|e| EnvoyError {
        message: format!("cannot start echo backends: {e}"),
        exit: None,
        log: String::new(),
        log_path: Default::default(),
    })
}
