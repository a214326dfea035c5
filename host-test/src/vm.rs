//! `Vm`: one instance of the plugin, as an Envoy worker thread has it (a
//! wasmtime Store and Instance), and the one place that calls into the module.

use crate::plugin::{engine, Plugin};
use crate::state::*;
use crate::types::*;
use crate::wasi;
use anyhow::{anyhow, bail, Context as _, Result};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wasmtime::{Instance, Store, Trap, Val};

/// One VM: the plugin instantiated in its own wasmtime Store, as each Envoy
/// worker thread has it. `index` is the worker's number.
pub struct Vm {
    pub(crate) store: Store<VmState>,
    instance: Instance,
    index: usize,
    next_context: u32,
    failed: Option<String>,
    fuel_limit: u64,
}

impl Vm {
    pub(crate) fn instantiate(
        plugin: &Plugin,
        shared: Arc<Mutex<Shared>>,
        index: usize,
        seed: u64,
        fuel_limit: u64,
    ) -> Result<Self> {
        let root_id = 1;
        let mut store = Store::new(engine(), VmState::new(shared, index, root_id, seed));
        store.set_fuel(fuel_limit)?;
        let instance = plugin
            .pre
            .instantiate(&mut store)
            .map_err(anyhow::Error::from)
            .context("cannot instantiate the module")?;
        let memory = instance
            .get_memory(&mut store, "memory")
            .ok_or_else(|| anyhow!("the module exports no memory"))?;
        let alloc = instance
            .get_typed_func::<i32, i32>(&mut store, "proxy_on_memory_allocate")
            .or_else(|_| instance.get_typed_func::<i32, i32>(&mut store, "malloc"))
            .map_err(|_| anyhow!("the module exports no proxy_on_memory_allocate(i32) -> i32"))?;
        store.data_mut().memory = Some(memory);
        store.data_mut().alloc = Some(alloc);
        Ok(Self {
            store,
            instance,
            index,
            next_context: root_id + 1,
            failed: None,
            fuel_limit,
        })
    }

    /// `_initialize`, root context creation, `proxy_on_vm_start`.
    pub(crate) fn start(&mut self, vm_config: &[u8]) -> Result<()> {
        let root = self.root_id();
        if self
            .instance
            .get_func(&mut self.store, "_initialize")
            .is_some()
        {
            self.call("_initialize", root, &[])?;
        } else if self.instance.get_func(&mut self.store, "_start").is_some() {
            self.call("_start", root, &[])?;
        }
        self.call("proxy_on_context_create", root, &[root as i32, 0])?;
        self.store.data_mut().config_buffer = Some((6, vm_config.to_vec()));
        let started = self.call(
            "proxy_on_vm_start",
            root,
            &[root as i32, vm_config.len() as i32],
        );
        self.store.data_mut().config_buffer = None;
        if started? == Some(0) {
            bail!(
                "proxy_on_vm_start returned false on worker {}: Envoy fails the VM",
                self.index
            );
        }
        Ok(())
    }

    /// `proxy_on_configure`; its result.
    pub(crate) fn configure(&mut self, config: &[u8]) -> Result<bool> {
        let root = self.root_id();
        self.store.data_mut().config_buffer = Some((7, config.to_vec()));
        let result = self.call(
            "proxy_on_configure",
            root,
            &[root as i32, config.len() as i32],
        );
        self.store.data_mut().config_buffer = None;
        Ok(result? != Some(0))
    }

    /// The size of the VM's linear memory, in bytes (what the module has grown it to: config,
    /// plan, heap).
    pub fn memory_bytes(&self) -> usize {
        self.store
            .data()
            .memory
            .map_or(0, |memory| memory.data_size(&self.store))
    }

    pub fn index(&self) -> usize {
        self.index
    }

    /// The root context id (the plugin's context on this VM).
    pub fn root_id(&self) -> u32 {
        self.store.data().root_id
    }

    /// The tick period the plugin set, if any.
    pub fn tick_period(&self) -> Option<Duration> {
        self.store.data().tick_period
    }

    /// Why this VM is unusable (a trap earlier), if it is.
    pub fn failure(&self) -> Option<&str> {
        self.failed.as_deref()
    }

    pub(crate) fn new_context_id(&mut self) -> u32 {
        let id = self.next_context;
        self.next_context += 1;
        id
    }

    pub(crate) fn state(&self) -> &VmState {
        self.store.data()
    }

    pub(crate) fn state_mut(&mut self) -> &mut VmState {
        self.store.data_mut()
    }

    /// Calls the export `hook` with `args` on behalf of `context_id`; `None` if
    /// the module does not export it (Envoy skips such hooks). A trap or an
    /// exhausted fuel limit is an error naming the hook, and the VM is dead from
    /// then on (as in Envoy, which fails every later request on that VM).
    pub(crate) fn call(
        &mut self,
        hook: &'static str,
        context_id: u32,
        args: &[i32],
    ) -> Result<Option<i32>> {
        if let Some(failure) = &self.failed {
            bail!(
                "{hook} not called: the VM of worker {} is dead since an earlier failure: {failure}",
                self.index
            );
        }
        let Some(func) = self.instance.get_func(&mut self.store, hook) else {
            return Ok(None);
        };
        let params: Vec<Val> = args.iter().map(|a| Val::I32(*a)).collect();
        let mut results = vec![Val::I32(0); func.ty(&self.store).results().len()];
        self.store.data_mut().current = context_id;
        self.store.set_fuel(self.fuel_limit)?;
        self.store.data().shared().execution_last = None;
        let logs_before = self.store.data().shared().logs.len();
        let result = func.call(&mut self.store, &params, &mut results);
        let fuel = self.fuel_limit - self.store.get_fuel().unwrap_or(0);
        let worker = self.index;
        self.store.data().shared().hook_fuel.push(HookFuel {
            worker,
            context_id,
            hook,
            fuel,
        });
        if let Err(error) = result {
            let mut message = format!("{hook} trapped: {}", self.describe(&error));
            let shared = self.store.data().shared();
            if let Some(log) = shared.logs[logs_before..]
                .iter()
                .rev()
                .find(|l| l.worker == worker && l.level == LogLevel::Critical)
            {
                message.push_str(&format!(" (the filter logged: {})", log.message));
            }
            drop(shared);
            self.failed = Some(message.clone());
            // A dead VM has no timers and no callouts any more.
            let state = self.store.data_mut();
            state.tick_period = None;
            state.pending_calls.clear();
            bail!(message);
        }
        Ok(results.first().and_then(Val::i32))
    }

    fn describe(&self, error: &wasmtime::Error) -> String {
        if let Some(trap) = error.downcast_ref::<Trap>() {
            if *trap == Trap::OutOfFuel {
                return format!(
                    "fuel limit of {} instructions exhausted (endless loop?)",
                    self.fuel_limit
                );
            }
            return format!("wasm trap: {trap}");
        }
        if let Some(exit) = error.downcast_ref::<wasi::ProcExit>() {
            return exit.to_string();
        }
        format!("{error}")
    }
}
