//! `Plugin`: a proxy-wasm module compiled and linked against this host's
//! hostcalls once, from which any number of [`Host`]s are started (wasmtime's
//! Engine / Module / InstancePre model).

use crate::abi;
use crate::host::HostBuilder;
use crate::state::VmState;
use crate::wasi;
use anyhow::{bail, Context as _, Result};
use std::path::Path;
use std::sync::{Arc, OnceLock};
use wasmtime::{Cache, CacheConfig, Config, Engine, InstancePre, Linker, Module};

/// The one engine of the process: fuel metering on, and wasmtime's compilation
/// cache (Cranelift takes seconds for a filter in a debug build; the cache makes
/// a later process load the same module in milliseconds).
pub(crate) fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut config = Config::new();
        config.consume_fuel(true);
        config.cache(cache());
        // Fuel metering is the only setting; an engine without it cannot be built
        // only if the platform has no compiler, and then nothing here can run.
        Engine::new(&config).unwrap_or_else(|e| panic!("cannot create the wasmtime engine: {e}"))
    })
}

/// wasmtime's own cache, configured as the `wasmtime` CLI does: from
/// `~/.config/wasmtime/config.toml` if there is one, else its defaults (the user's
/// cache directory, e.g. `~/.cache/wasmtime`). `SLUICE_WASM_CACHE=off` turns it off;
/// a cache that cannot be set up only costs compile time, so it is then skipped.
fn cache() -> Option<Cache> {
    if std::env::var_os("SLUICE_WASM_CACHE").is_some_and(|v| v == "off") {
        return None;
    }
    CacheConfig::from_file(None)
        .and_then(Cache::new)
        .map_err(|e| eprintln!("sluice-wasm-host: compilation cache disabled: {e:#}"))
        .ok()
}

/// A proxy-wasm module compiled for this host and checked against its
/// hostcalls. Cloning is cheap (a reference count): compile once, then start
/// hosts with [`Plugin::host`].
///
/// ```no_run
/// use sluice_wasm_host::Plugin;
/// # fn main() -> anyhow::Result<()> {
/// let plugin = Plugin::load("build/sluice.wasm")?;
/// let mut a = plugin.host().plugin_config(r#"{"version":1}"#).build()?;
/// let mut b = plugin.host().plugin_config(r#"{"version":1}"#).workers(2).build()?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Plugin {
    pub(crate) pre: Arc<InstancePre<VmState>>,
}

impl Plugin {
    /// Compiles the module at `path` (a `.wasm` file).
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read wasm module {}", path.display()))?;
        Self::new(&bytes).with_context(|| format!("cannot load {}", path.display()))
    }

    /// Compiles a module given as bytes (binary or WAT text).
    pub fn from_bytes(bytes: impl AsRef<[u8]>) -> Result<Self> {
        Self::new(bytes.as_ref())
    }

    fn new(bytes: &[u8]) -> Result<Self> {
        let module = Module::new(engine(), bytes)
            .map_err(anyhow::Error::from)
            .context("cannot compile the wasm module")?;
        let mut linker = Linker::new(engine());
        let mut names = Vec::new();
        abi::link(&mut linker, &mut names)?;
        wasi::link(&mut linker, &mut names)?;
        let unknown: Vec<String> = module
            .imports()
            .filter(|i| !names.contains(&(i.module(), i.name())))
            .map(|i| format!("{}.{}", i.module(), i.name()))
            .collect();
        if !unknown.is_empty() {
            bail!(
                "the module imports functions this host does not provide: {}",
                unknown.join(", ")
            );
        }
        let abi: Vec<&str> = module
            .exports()
            .map(|e| e.name())
            .filter(|n| n.starts_with("proxy_abi_version_"))
            .collect();
        if abi.is_empty() {
            bail!("not a proxy-wasm module: it exports no proxy_abi_version_* function");
        }
        if !abi.contains(&"proxy_abi_version_0_2_1") && !abi.contains(&"proxy_abi_version_0_2_0") {
            bail!(
                "unsupported proxy-wasm ABI {}: this host implements 0.2.1",
                abi.join(", ")
            );
        }
        let pre = linker
            .instantiate_pre(&module)
            .map_err(anyhow::Error::from)
            .context("cannot link the module")?;
        Ok(Self { pre: Arc::new(pre) })
    }

    /// A host for this plugin: set its configuration, then [`HostBuilder::build`].
    pub fn host(&self) -> HostBuilder {
        HostBuilder::new(self.clone())
    }
}
