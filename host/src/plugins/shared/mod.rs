//! Shared mode: a plugin instantiated once in its own long-lived Store,
//! called by the workloads it serves through host shims ([`forward`],
//! [`typed`]).
//!
//! One async lock serialises calls into the plugin's Store: a
//! [`FairLock`](fair_lock::FairLock), which hands the lock to the longest
//! waiter, so a workload calling in a tight loop cannot starve another
//! workload's calls, and costs one atomic operation each way when nobody
//! waits. The running instance is taken out of the lock's slot for the
//! duration of a call and put back only when the call returns normally: a
//! trap, or a call abandoned half-way, leaves the slot empty, and the next
//! call starts a fresh instance in a fresh Store — the supervisor's
//! restart. The plugin's state is lost then, and the log says so. Handles
//! from the old instance are recognised by their generation and refused.
//!
//! One instance serves the workloads of its scope (a namespace by default,
//! see [`SharedScope`](crate::spec::SharedScope)), so a restart costs
//! those workloads their state, and nobody else's.
//!
//! A plugin that can never wait runs in a synchronous Store
//! ([`sync_store`]); the others in an async one. Either way a call runs
//! under the plugin's own time limit (`call_timeout`), not its caller's
//! deadline: a caller whose deadline passes mid-call gets its error once
//! the call returns ([`in_flight`]), and the plugin keeps its state. Only a
//! call past the plugin's own limit traps it. A synchronous plugin may be
//! called from synchronous host functions (see [`typed`]), which wait for a
//! busy plugin on their thread ([`sync_wait`]).

pub mod fair_lock;
pub mod forward;
pub mod nonblocking_io;
pub mod proxy;
mod release;
mod state;
pub mod streams;
pub mod sync_store;
pub mod sync_wait;
pub mod typed;

pub use state::{PluginState, PluginView};

use crate::core_api::broker::Broker;
use crate::core_api::identity::WorkloadIdentity;
use crate::engine::KeelEngine;
use crate::outgoing::hooks::OutgoingHooks;
use crate::outgoing::resolve::Resolver;
use crate::policy::authority::OutgoingAllowlist;
use crate::policy::grants::SubjectGrants;
use crate::policy::sockets::SocketAllowlist;
use crate::spec::{Forwarder, PluginGrants};
use crate::store::Caller;
use crate::store::in_flight::InFlightGuard;
use crate::store::stdio::{self, OutputRate};
use crate::store::{GuestStore, InvocationState, core_linker};
use anyhow::{Context, Result, anyhow};
use fair_lock::{FairGuard, FairLock};
use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wasmtime::component::{
    Component, ComponentExportIndex, Func, Instance, InstancePre, ResourceAny,
};
use wasmtime::{Store, UpdateDeadline};

/// How long dropping released handles may run in the plugin (no workload
/// waits for it, so no caller's deadline bounds it).
const RELEASE_BUDGET: Duration = Duration::from_secs(5);

/// A plugin's grants, parsed once.
struct Reach {
    outgoing: Arc<OutgoingAllowlist>,
    resolver: Resolver,
    sockets: Arc<SocketAllowlist>,
    name_lookup: bool,
    subjects: Arc<SubjectGrants>,
}

/// A live plugin instance.
pub(crate) struct Running {
    store: Store<InvocationState>,
    instance: Instance,
    /// Whether `store` is synchronous (see [`sync_store`]).
    sync: bool,
    generation: u64,
    funcs: HashMap<ComponentExportIndex, Func>,
    /// Typed exports loaded for this instance, by type (one per typed
    /// family at most: a short list beats hashing).
    typed: Vec<(TypeId, Box<dyn Any + Send + Sync>)>,
}

/// A plugin shared by the workloads of a host.
pub struct SharedPlugin {
    name: String,
    pre: InstancePre<InvocationState>,
    /// Whether `pre` was linked for a synchronous Store.
    sync: bool,
    reach: Reach,
    broker: Broker,
    /// The running instance, boxed so that a call moves a pointer in and
    /// out of the slot, not the instance.
    running: FairLock<Option<Box<Running>>>,
    generations: AtomicU64,
    restarts: AtomicU64,
    /// Handles whose workload instance ended, to drop at the next chance.
    released: Mutex<Vec<(u64, ResourceAny)>>,
    /// Whether `released` may hold anything (checked without the lock on
    /// every call).
    any_released: AtomicBool,
    /// Whether a typed forwarder may carry its calls (see [`typed`]).
    typed: bool,
    /// Linear memory the instance may hold.
    memory: usize,
    /// How long one call may run in the plugin.
    call_timeout: Duration,
    /// Whom the instance serves, for log lines (`namespace shop`, say).
    serves: String,
    /// Its slot of the pool's reserve for shared plugins (see
    /// [`crate::pool`]).
    reserved: Option<crate::pool::SharedSlot>,
    /// How much the plugin may log, across restarts.
    output: Arc<OutputRate>,
}

impl SharedPlugin {
    /// Links `component` (WASI, `wasi:http` and `keel:core`, reaching only
    /// what `grants` allow; nothing of any workload's) and prepares it; the
    /// first call instantiates it.
    pub fn new(
        engine: &KeelEngine,
        name: &str,
        component: &Component,
        grants: &PluginGrants,
        broker: &Broker,
    ) -> Result<SharedPlugin> {
        let outgoing =
            OutgoingAllowlist::parse(&grants.outgoing_http, grants.outgoing_block_private)
                .map_err(anyhow::Error::msg)?;
        let reach = Reach {
            outgoing: Arc::new(outgoing),
            resolver: Resolver::system(),
            sockets: Arc::new(
                SocketAllowlist::parse(&grants.sockets, &grants.listen)
                    .map_err(anyhow::Error::msg)?,
            ),
            name_lookup: grants.name_lookup,
            subjects: Arc::new(SubjectGrants::parse(&grants.subjects).map_err(anyhow::Error::msg)?),
        };
        let sync_linker = sync_store::linker(engine.engine())?;
        let (pre, sync) = match sync_store::prepare(&sync_linker, component) {
            Some(pre) => (pre, true),
            None => {
                let linker = core_linker(engine.engine())?;
                let pre = linker
                    .instantiate_pre(component)
                    .map_err(anyhow::Error::from)
                    .with_context(|| format!("linking shared plugin `{name}`"))?;
                (pre, false)
            }
        };
        tracing::info!(
            plugin = name,
            store = if sync { "sync" } else { "async" },
            "shared plugin linked"
        );
        Ok(SharedPlugin {
            name: name.to_string(),
            pre,
            sync,
            reach,
            broker: broker.clone(),
            running: FairLock::new(None),
            generations: AtomicU64::new(0),
            restarts: AtomicU64::new(0),
            released: Mutex::new(Vec::new()),
            any_released: AtomicBool::new(false),
            typed: true,
            memory: crate::spec::PluginSpec::DEFAULT_MEMORY.as_usize(),
            call_timeout: crate::spec::PluginSpec::DEFAULT_CALL_TIMEOUT,
            serves: "every workload of the host".to_string(),
            reserved: None,
            // A plugin logs at the rate a workload gets by default.
            output: stdio::log_rate(crate::spec::Limits::default().log_rate.0),
        })
    }

    /// Bounds the instance to `memory` bytes of linear memory, and each
    /// call to `call_timeout`.
    pub fn with_limits(mut self, memory: usize, call_timeout: Duration) -> SharedPlugin {
        self.memory = memory;
        self.call_timeout = call_timeout;
        self
    }

    /// Names whom the instance serves in log lines (`namespace shop`).
    pub fn serving(mut self, serves: impl Into<String>) -> SharedPlugin {
        self.serves = serves.into();
        self
    }

    /// Holds `slot` of the pool's reserve for as long as the plugin lives:
    /// workloads still linked to it keep it (and so its slot) when the
    /// host forgets it.
    pub(crate) fn holding(mut self, slot: crate::pool::SharedSlot) -> SharedPlugin {
        self.reserved = Some(slot);
        self
    }

    /// Resolves the hosts of the plugin's outgoing HTTP requests with
    /// `resolver`.
    pub fn resolving_with(mut self, resolver: Resolver) -> SharedPlugin {
        self.reach.resolver = resolver;
        self
    }

    /// Uses `forwarder` for the plugin's calls.
    pub fn with_forwarder(mut self, forwarder: Forwarder) -> SharedPlugin {
        self.typed = forwarder == Forwarder::Typed;
        self
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the plugin runs in a synchronous Store (see [`sync_store`]).
    pub fn runs_sync(&self) -> bool {
        self.sync
    }

    /// How many times the plugin was restarted after a trap or an abandoned call.
    pub fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::Relaxed)
    }

    /// The generation of the current instance (0 before the first call).
    pub fn generation(&self) -> u64 {
        self.generations.load(Ordering::Relaxed)
    }

    /// A fresh instance, whose start must end within the call time limit.
    async fn start(&self) -> Result<Running> {
        let generation = self.generations.fetch_add(1, Ordering::Relaxed) + 1;
        let label = format!("plugin:{}", self.name);
        // Until a call says whom it serves, the plugin acts for nobody.
        let nobody = Arc::new(WorkloadIdentity {
            namespace: String::new(),
            name: String::new(),
            component: String::new(),
        });
        let mut store = GuestStore {
            label: &label,
            component: &self.name,
            output: self.output.clone(),
            env: &[],
            volumes: &[],
            sockets: &self.reach.sockets,
            name_lookup: self.reach.name_lookup,
            outgoing: OutgoingHooks::new(
                &label,
                self.reach.outgoing.clone(),
                self.reach.resolver.clone(),
            ),
            memory: self.memory,
            memory_budget: None,
            identity: nobody,
            broker: self.broker.clone(),
            subjects: self.reach.subjects.clone(),
        }
        .build(self.pre.engine())?;
        store
            .data_mut()
            .serve_until(Some(Instant::now() + self.call_timeout));
        // Each call sets its own deadline, `call_timeout` after it begins
        // (never its caller's: see `in_flight`). An async Store yields every
        // tick, so the runtime's other tasks run; a synchronous one cannot
        // yield and simply goes on.
        let sync = self.sync;
        let timeout = self.call_timeout;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |cx| {
            if cx.data().deadline().is_some_and(|d| Instant::now() >= d) {
                return Err(wasmtime::format_err!(
                    "the plugin call ran past its time limit of {timeout:?} (`call_timeout`)"
                ));
            }
            Ok(if sync {
                UpdateDeadline::Continue(1)
            } else {
                UpdateDeadline::Yield(1)
            })
        });
        let instance = if sync {
            self.pre.instantiate(&mut store)
        } else {
            self.pre.instantiate_async(&mut store).await
        };
        let instance = instance
            .map_err(anyhow::Error::from)
            .with_context(|| format!("instantiating shared plugin `{}`", self.name))?;
        Ok(Running {
            store,
            instance,
            sync,
            generation,
            funcs: HashMap::new(),
            typed: Vec::new(),
        })
    }

    /// Where function `function` of exported interface `interface` is, as an
    /// index that stays valid across restarts (it belongs to the component,
    /// not to an instance). Forwarders look it up once, when they are linked.
    pub fn export_index(&self, interface: &str, function: &str) -> Result<ComponentExportIndex> {
        let component = self.pre.component();
        component
            .get_export_index(None, interface)
            .and_then(|i| component.get_export_index(Some(&i), function))
            .with_context(|| format!("plugin `{}` exports no `{interface}#{function}`", self.name))
    }

    /// The slot of the running instance, locked for one call.
    async fn lock_running(&self) -> Slot<'_> {
        // Waiting is boxed: it is rare, and its future would otherwise make
        // every call's future larger.
        match self.running.try_lock() {
            Some(slot) => slot,
            None => Box::pin(self.running.lock()).await,
        }
    }

    /// Starts a call into the plugin's Store for `caller`, with parameters
    /// holding handles of instance `generation_of_params`: starts the
    /// plugin first if it is not running, refuses handles of an earlier
    /// instance, and drops the handles released since the last call. The
    /// call runs on [`PluginCall::running`] and ends with
    /// [`PluginCall::finish`].
    ///
    /// Past the caller's deadline no call into an async Store begins: the
    /// caller is about to end, and a call begun now would hold it up.
    pub(crate) async fn begin(
        &self,
        caller: Caller<'_>,
        generation_of_params: Option<u64>,
    ) -> Result<PluginCall<'_>> {
        if !self.sync && caller.deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(anyhow!(
                "the caller's deadline passed before its call to plugin `{}` began",
                self.name
            ));
        }
        let slot = self.lock_running().await;
        self.begin_locked(slot, caller, generation_of_params).await
    }

    /// [`begin`](Self::begin), the lock taken.
    async fn begin_locked<'p>(
        &'p self,
        mut slot: Slot<'p>,
        caller: Caller<'_>,
        generation_of_params: Option<u64>,
    ) -> Result<PluginCall<'p>> {
        // From here on the instance is out of its slot: the caller must not
        // drop this half-way (see `in_flight`). A synchronous Store's steps
        // never wait, so they cannot be dropped half-way.
        let in_flight = match caller.in_flight {
            Some(marker) if !self.sync => Some(marker.enter()),
            _ => None,
        };
        let mut running = match slot.take() {
            Some(running) => running,
            // Boxed: instantiation's future is large, and every call's
            // future would carry its size otherwise.
            None => Box::new(Box::pin(self.start()).await?),
        };
        running.store.data_mut().serve(caller);
        if self.any_released.load(Ordering::Acquire) {
            running
                .store
                .data_mut()
                .serve_until(Some(Instant::now() + RELEASE_BUDGET));
            if let Err(e) = Box::pin(self.drop_released(&mut running)).await {
                // The Store is poisoned: this call starts a fresh one.
                self.failed(&e, "trapped dropping a released handle");
                running = Box::new(Box::pin(self.start()).await?);
                running.store.data_mut().serve(caller);
            }
        }
        let mut call = self.call_on(slot, running, caller, generation_of_params)?;
        call.in_flight = in_flight;
        Ok(call)
    }

    /// [`begin`](Self::begin) without waiting for another call: `None` if
    /// one holds the plugin. For a plugin in a synchronous Store, which
    /// starts and drops handles without waiting; an async one gets an error
    /// where it would wait (see [`sync_store::now`]).
    pub(crate) fn begin_sync(
        &self,
        caller: Caller<'_>,
        generation_of_params: Option<u64>,
    ) -> Option<Result<PluginCall<'_>>> {
        let mut slot = self.running.try_lock()?;
        // The common case first, without building a future.
        if !self.any_released.load(Ordering::Acquire)
            && let Some(running) = slot.take()
        {
            return Some(self.call_on(slot, running, caller, generation_of_params));
        }
        Some(self.begin_locked_now(slot, caller, generation_of_params))
    }

    /// [`begin_locked`](Self::begin_locked) at once: the plugin must be
    /// started, or released handles dropped, first. Kept out of line, off
    /// the common path of [`begin_sync`](Self::begin_sync).
    #[cold]
    #[inline(never)]
    fn begin_locked_now<'p>(
        &'p self,
        slot: Slot<'p>,
        caller: Caller<'_>,
        generation_of_params: Option<u64>,
    ) -> Result<PluginCall<'p>> {
        sync_store::now(self.begin_locked(slot, caller, generation_of_params))?
    }

    /// A call on `running` for `caller`, unless its parameters hold handles
    /// of an earlier instance.
    fn call_on<'p>(
        &'p self,
        mut slot: Slot<'p>,
        mut running: Box<Running>,
        caller: Caller<'_>,
        generation_of_params: Option<u64>,
    ) -> Result<PluginCall<'p>> {
        if generation_of_params.is_some_and(|g| g != running.generation) {
            *slot = Some(running);
            return Err(anyhow!(
                "plugin `{}` was restarted since this handle was made; the handle (and the plugin's state) is gone",
                self.name
            ));
        }
        let data = running.store.data_mut();
        data.serve(caller);
        data.serve_until(Some(Instant::now() + self.call_timeout));
        Ok(PluginCall {
            plugin: self,
            slot,
            running,
            in_flight: None,
        })
    }

    /// Logs that the plugin failed with `error` and lost its state.
    fn failed(&self, error: &wasmtime::Error, what: &str) {
        self.restarts.fetch_add(1, Ordering::Relaxed);
        tracing::error!(
            plugin = self.name,
            serving = self.serves,
            error = crate::trap::summary(error),
            "shared plugin {what}; its state was lost and it restarts on the next call"
        );
        tracing::debug!(
            plugin = self.name,
            error = format!("{error:?}"),
            "the whole error"
        );
    }
}

/// The locked slot of a plugin's running instance.
type Slot<'p> = FairGuard<'p, Option<Box<Running>>>;

/// A call in progress in a plugin's Store (see [`SharedPlugin::begin`]).
///
/// Dropped without [`finish`](PluginCall::finish) — its caller gave up
/// half-way — it drops the instance too: the next call starts a fresh one.
pub(crate) struct PluginCall<'p> {
    plugin: &'p SharedPlugin,
    slot: Slot<'p>,
    /// The instance, out of its slot while the call runs.
    pub(crate) running: Box<Running>,
    /// Marks the caller's invocation busy in an async plugin until the call
    /// ends.
    in_flight: Option<InFlightGuard>,
}

impl PluginCall<'_> {
    /// Ends the call with what it returned, and the generation of the
    /// instance it ran in.
    ///
    /// An `Err` means the Store can no longer be trusted (a trap, or a
    /// failure half-way through a call): the instance is dropped, the loss of
    /// its state is logged, and the next call starts a fresh one. Errors
    /// that leave the plugin sound belong inside `R`.
    pub(crate) fn finish<R>(self, result: wasmtime::Result<R>) -> Result<(R, u64)> {
        let PluginCall {
            plugin,
            mut slot,
            running,
            in_flight: _in_flight,
        } = self;
        match result {
            Ok(reply) => {
                let generation = running.generation;
                *slot = Some(running);
                Ok((reply, generation))
            }
            Err(e) => {
                plugin.failed(&e, "trapped");
                Err(anyhow::Error::from(e)
                    .context(format!("shared plugin `{}` failed", plugin.name)))
            }
        }
    }
}

impl PluginCall<'_> {
    /// Runs `call`, a call into the plugin's async Store, until it returns
    /// or the call's time limit passes while it waits (a plugin spinning is
    /// stopped by its epoch callback; one waiting on the network, here).
    /// Past the limit the call is dropped half-way and fails: [`finish`](
    /// Self::finish) then drops the instance.
    pub(crate) async fn bounded<T>(
        deadline: Option<Instant>,
        call: impl Future<Output = wasmtime::Result<T>>,
    ) -> wasmtime::Result<T> {
        let Some(deadline) = deadline else {
            return call.await;
        };
        match tokio::time::timeout_at(deadline.into(), call).await {
            Ok(done) => done,
            Err(_) => Err(wasmtime::format_err!(
                "the plugin call waited past its time limit (`call_timeout`)"
            )),
        }
    }

    /// When the call must end.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.running.store.data().deadline()
    }
}

impl Running {
    /// Drops the plugin's `handle`, the way the Store is called.
    async fn drop_handle(&mut self, handle: ResourceAny) -> wasmtime::Result<()> {
        if self.sync {
            handle.resource_drop(&mut self.store)
        } else {
            handle.resource_drop_async(&mut self.store).await
        }
    }

    fn func(&mut self, index: ComponentExportIndex) -> Result<Func> {
        if let Some(func) = self.funcs.get(&index) {
            return Ok(*func);
        }
        let func = self
            .instance
            .get_func(&mut self.store, index)
            .context("the plugin's export is not a function")?;
        self.funcs.insert(index, func);
        Ok(func)
    }

    /// The typed bindings `G` of this instance's exports, loaded by `load`
    /// on first use and kept for the instance's life.
    fn typed<G: Any + Send + Sync>(
        &mut self,
        load: impl FnOnce(&mut Store<InvocationState>, &Instance) -> wasmtime::Result<G>,
    ) -> wasmtime::Result<&G> {
        let wanted = TypeId::of::<G>();
        let at = match self.typed.iter().position(|(id, _)| *id == wanted) {
            Some(at) => at,
            None => {
                let loaded = load(&mut self.store, &self.instance)?;
                self.typed.push((wanted, Box::new(loaded)));
                self.typed.len() - 1
            }
        };
        self.typed
            .get(at)
            .and_then(|(_, loaded)| loaded.downcast_ref::<G>())
            .ok_or_else(|| wasmtime::format_err!("typed exports filed under the wrong type"))
    }
}
