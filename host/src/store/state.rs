//! The data of a guest's [`Store`](wasmtime::Store): WASI and HTTP
//! contexts, the resource table, the memory limiter, the deadline, the
//! `keel:core` state, and a slot for the state a higher layer keeps per
//! Store. Workload invocations and shared plugin instances run on the same
//! type, built by [`GuestStore`](super::GuestStore).

use super::caller::Caller;
use super::cpu::CpuTurn;
use super::in_flight::InFlight;
use super::limits::GuestLimiter;
use crate::budget::StoreMemory;
use crate::core_api::identity::WorkloadIdentity;
use crate::core_api::{CoreCtx, CoreCtxView, CoreView};
use crate::outgoing::OutgoingHooks;
use std::any::Any;
use std::sync::Arc;
use std::time::Instant;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// The data of one invocation's Store.
///
/// Shared plugins run on the same type: a plugin call is an invocation too,
/// with the calling workload as its identity (set per call) and the plugin's
/// own grants in its WASI and HTTP contexts.
pub struct InvocationState {
    table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: OutgoingHooks,
    limiter: GuestLimiter,
    deadline_hit: bool,
    /// When the invocation must end; for a shared plugin, the deadline of
    /// the call it is serving.
    deadline: Option<Instant>,
    core: CoreCtx,
    /// Set while a call of this invocation runs in an async shared plugin.
    in_flight: InFlight,
    /// The invocation's turn on the CPU, while one is under way.
    cpu: Option<CpuTurn>,
    /// The state a higher layer keeps per Store (the shared-plugin handles
    /// an instance holds and its typed forwarders, see
    /// `crate::plugins::shared::PluginState`). This layer carries it without
    /// knowing its type, so the Store stays below the plugins that use it;
    /// it is made on first use, so a Store without shared plugins pays
    /// nothing for it.
    extension: Option<Box<dyn Any + Send>>,
}

impl InvocationState {
    /// State for a guest with WASI context `wasi`, outgoing HTTP `hooks`,
    /// memory bounded by `limiter`, and `keel:core` state `core`. Built by
    /// [`GuestStore::build`](super::GuestStore::build).
    pub(super) fn new(
        wasi: WasiCtx,
        hooks: OutgoingHooks,
        limiter: GuestLimiter,
        core: CoreCtx,
    ) -> Self {
        InvocationState {
            table: ResourceTable::new(),
            wasi,
            http: WasiHttpCtx::new(),
            hooks,
            limiter,
            deadline_hit: false,
            deadline: None,
            core,
            in_flight: InFlight::default(),
            cpu: None,
            extension: None,
        }
    }

    /// Serves `caller` from now on (a shared plugin, per call): acts as its
    /// identity. The plugin sets its own deadline per call
    /// ([`serve_until`](Self::serve_until)), not the caller's.
    pub fn serve(&mut self, caller: Caller<'_>) {
        if !Arc::ptr_eq(&self.core.identity, caller.identity) {
            self.core.identity = caller.identity.clone();
        }
    }

    /// This invocation as the caller of a shared plugin.
    pub fn caller(&self) -> Caller<'_> {
        Caller {
            identity: &self.core.identity,
            deadline: self.deadline,
            in_flight: Some(&self.in_flight),
        }
    }

    /// The marker of a call of this invocation under way in an async shared
    /// plugin: what ends the invocation at its deadline uses it (see
    /// [`InFlight::until`]).
    pub fn in_flight(&self) -> &InFlight {
        &self.in_flight
    }

    /// The turn on the CPU of the invocation under way, if it takes turns.
    pub fn cpu_turn(&self) -> Option<&CpuTurn> {
        self.cpu.as_ref()
    }

    /// Takes turns on the CPU through `turn` from now on (`None`: no more).
    pub fn set_cpu_turn(&mut self, turn: Option<CpuTurn>) {
        self.cpu = turn;
    }

    /// Ends by `deadline` from now on (`None`: no deadline of its own).
    pub fn serve_until(&mut self, deadline: Option<Instant>) {
        self.deadline = deadline;
    }

    /// When the invocation must end, if it has a deadline.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// The memory limiter, for `Store::limiter`.
    pub fn limiter(&mut self) -> &mut GuestLimiter {
        &mut self.limiter
    }

    /// Records that the invocation ran past its deadline (the epoch
    /// callback that ends it calls this).
    pub fn mark_deadline_hit(&mut self) {
        self.deadline_hit = true;
    }

    /// Whether the invocation ran past its deadline.
    pub fn deadline_hit(&self) -> bool {
        self.deadline_hit
    }

    /// The workload and component this invocation runs for.
    pub fn identity(&self) -> &Arc<WorkloadIdentity> {
        &self.core.identity
    }

    /// The Store's resource table.
    pub fn table_mut(&mut self) -> &mut ResourceTable {
        &mut self.table
    }

    /// Aborts every HTTP body (a response's or an outgoing request's) the
    /// guest left unfinished when its call returned, and returns how many
    /// there were. A `wasi:http` guest runs only inside a call, so a body
    /// still open at its end can never be finished by this invocation; the
    /// guest could finish it only from a later call of the same instance
    /// (a warm instance's next request), writing that request's data to
    /// this one's client. Aborted, it ends the client's response with an
    /// error instead of what looks like a complete body.
    pub fn abort_open_bodies(&mut self) -> usize {
        use wasmtime_wasi_http::p2::body::{HostOutgoingBody, StreamContext};
        let mut open = 0;
        for entry in self.table.iter_mut() {
            if let Some(body) = entry.downcast_mut::<HostOutgoingBody>() {
                // The table keeps a finished stand-in (its other end is
                // dropped at once); the open body is aborted.
                let (stand_in, _) = HostOutgoingBody::new(StreamContext::Response, None, 1, 1);
                std::mem::replace(body, stand_in).abort();
                open += 1;
            }
        }
        open
    }

    /// Bytes of linear memory the guest holds.
    pub fn memory_used(&self) -> usize {
        self.limiter.memory_used()
    }

    /// Whether the guest asked for more memory than its limit.
    pub fn memory_limit_hit(&self) -> bool {
        self.limiter.hit_memory_limit()
    }

    /// Whether the guest's growth was refused because its workload's (or
    /// the host's) memory budget was spent by invocations running at once.
    pub fn memory_budget_hit(&self) -> bool {
        self.limiter.hit_budget()
    }

    /// The memory the guest's linear memory and its host pipes share.
    pub fn store_memory(&self) -> &Arc<StoreMemory> {
        self.limiter.memory()
    }

    /// The higher layer's per-Store state of type `T`, if it was made.
    pub fn extension_ref<T: Any>(&self) -> Option<&T> {
        self.extension.as_ref().and_then(|slot| slot.downcast_ref())
    }

    /// The higher layer's per-Store state of type `T` (made on first use,
    /// as by [`extension_mut`](Self::extension_mut)) and this invocation as
    /// a caller, borrowed apart: a forwarder reads its forwarder from the
    /// one while it calls as the other, with no copy of either.
    pub fn extension_and_caller<T: Any + Send + Default>(&mut self) -> (&mut T, Caller<'_>) {
        let caller = Caller {
            identity: &self.core.identity,
            deadline: self.deadline,
            in_flight: Some(&self.in_flight),
        };
        (extension_in(&mut self.extension), caller)
    }

    /// The higher layer's per-Store state of type `T`, made (as
    /// `T::default()`) on first use. One type uses the slot (the plugins'
    /// bookkeeping); a slot holding another type is replaced.
    pub fn extension_mut<T: Any + Send + Default>(&mut self) -> &mut T {
        extension_in(&mut self.extension)
    }
}

/// The `T` in extension slot `slot`, made (as `T::default()`) when the
/// slot is empty or holds another type.
fn extension_in<T: Any + Send + Default>(slot: &mut Option<Box<dyn Any + Send>>) -> &mut T {
    let slot = slot.get_or_insert_with(|| Box::new(T::default()));
    if !slot.is::<T>() {
        *slot = Box::new(T::default());
    }
    match slot.downcast_mut::<T>() {
        Some(state) => state,
        // The slot was made a `T` just above.
        None => unreachable!("the extension slot holds a T"),
    }
}

impl CoreView for InvocationState {
    fn core(&mut self) -> CoreCtxView<'_> {
        CoreCtxView {
            ctx: &mut self.core,
            table: &mut self.table,
        }
    }
}

impl WasiView for InvocationState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for InvocationState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}
