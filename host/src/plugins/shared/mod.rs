//! Shared mode: a plugin instantiated once in its own long-lived Store,
//! called by the workloads it serves through host shims ([`forwarders`]);
//! one call at a time ([`call`]).
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
//! the call returns ([`in_flight`](crate::store::in_flight)), and the plugin keeps its state. Only a
//! call past the plugin's own limit traps it. A synchronous plugin may be
//! called from synchronous host functions (see [`typed`]), which wait for a
//! busy plugin on their thread ([`sync_wait`]).

mod call;
pub mod fair_lock;
pub mod forwarders;
pub mod nonblocking_io;
mod release;
mod state;
pub mod sync_store;
pub mod sync_wait;

pub(crate) use call::{PluginCall, Slot};

pub use state::PluginView;

use crate::core_api::broker::Broker;
use crate::core_api::identity::WorkloadIdentity;
use crate::engine::KeelEngine;
use crate::outgoing::hooks::OutgoingHooks;
use crate::outgoing::resolve::Resolver;
use crate::plugins::deny::{Denial, link_denied};
use crate::policy::authority::OutgoingAllowlist;
use crate::policy::grants::SubjectGrants;
use crate::policy::sockets::SocketAllowlist;
use crate::spec::{Forwarder, PluginGrants};
use crate::store::stdio::{self, OutputRate};
use crate::store::{GuestStore, InvocationState, core_linker};
use anyhow::{Context, Result};
use fair_lock::FairLock;
use forwarders::typed::{SharedBinding, TypedForwarders};
use keel_compose::Unbound;
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
    /// The typed forwarders to the shared plugins beneath it, when it is a
    /// layer (see [`crate::plugins::layers`]).
    beneath: TypedForwarders,
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
        SharedPlugin::layered(engine, name, component, grants, broker, Vec::new(), &[])
    }

    /// [`new`](Self::new) for a layer: its imports `beneath` are forwarded
    /// to the shared plugins serving them (through the forwarders
    /// workloads use; a call keeps the workload it serves as its caller),
    /// and its imports `denied` are linked to deny implementations.
    pub fn layered(
        engine: &KeelEngine,
        name: &str,
        component: &Component,
        grants: &PluginGrants,
        broker: &Broker,
        beneath: Vec<SharedBinding>,
        denied: &[Unbound],
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
        // A layer's forwarders and denials are linked for an async Store.
        let layer = !beneath.is_empty() || !denied.is_empty();
        let prepared = (!layer)
            .then(|| sync_store::prepare(&sync_linker, component))
            .flatten();
        let mut forwarders = TypedForwarders::NONE;
        let (pre, sync) = match prepared {
            Some(pre) => (pre, true),
            None => {
                let mut linker = core_linker(engine.engine())?;
                if layer {
                    let (typed, generic) =
                        forwarders::link_all(&mut linker, engine.engine(), component, beneath)
                            .with_context(|| format!("linking the plugins beneath `{name}`"))?;
                    let denials: Vec<Denial> = denied.iter().map(Denial::of).collect();
                    link_denied(&mut linker, engine.engine(), component, &denials)
                        .with_context(|| format!("linking the denied imports of `{name}`"))?;
                    tracing::info!(plugin = name, generic = ?generic, "layer linked to the plugins beneath it");
                    forwarders = typed;
                }
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
            beneath: forwarders,
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
        self.typed = forwarder != Forwarder::Generic;
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
            labels: crate::store::stdio::LogLabels::new(&label, &self.name),
            output: self.output.clone(),
            env: &[],
            volumes: &[],
            sockets: &self.reach.sockets,
            name_lookup: self.reach.name_lookup,
            outgoing: OutgoingHooks::new(
                Arc::from(label.as_str()),
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
        if !self.beneath.is_empty() {
            store.data_mut().plugin_state().typed = self.beneath.clone();
        }
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
}
