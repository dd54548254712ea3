//! What every workload of a host shares: the engine, the compiled-component
//! cache, the plugins, and the message broker plugins reach through `keel:core`.

use crate::budget::MemoryBudget;
use crate::cache::ComponentCache;
use crate::core_api::broker::Broker;
use crate::engine::KeelEngine;
use crate::outgoing::Resolver;
use crate::plugins::PluginSet;
use crate::store::cpu::CpuGate;
use std::sync::{Arc, Mutex, MutexGuard};

/// A host's shared services; workloads hold an `Arc` of it while starting.
pub struct Services {
    /// The Wasmtime engine.
    pub engine: Arc<KeelEngine>,
    /// Compiled components on disk.
    pub cache: ComponentCache,
    /// The plugins workloads may be linked to.
    pub plugins: Mutex<PluginSet>,
    /// Where `keel:core/messaging` goes: the in-process bus, or NATS.
    pub broker: Broker,
    /// The linear memory all workload instances of the host may hold at once.
    pub memory_budget: Arc<MemoryBudget>,
    /// How guests' outgoing HTTP requests find their servers.
    pub resolver: Resolver,
    /// The host's turns on the CPU, which every workload's turns also
    /// draw from (see [`crate::store::cpu`]).
    pub cpu: Arc<CpuGate>,
}

impl Services {
    /// The plugin set, locked (a poisoned lock is taken over: the set is
    /// only ever appended to).
    pub fn plugins(&self) -> MutexGuard<'_, PluginSet> {
        self.plugins.lock().unwrap_or_else(|p| p.into_inner())
    }
}
