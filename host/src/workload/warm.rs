//! Warm instances of a workload's HTTP component, for components that opt
//! in ([`WarmSpec`]): instances kept between requests, each with its own
//! Store, never shared with another workload (the pool belongs to its
//! workload's component and nothing else reaches it).
//!
//! What a reused instance keeps is its guest state: linear memory, globals,
//! the resources it holds. What belongs to one request is set again for
//! each ([`InvocationTemplate::arm`]: deadline, turn on the CPU); the
//! Store's identity, limits, stdio and plugin handles are the workload's
//! and stay. An instance whose call did not finish cleanly — a trap, a
//! deadline, a refused memory growth, or any error — is discarded, as is one
//! that has served `max_invocations`, as is one that returned leaving an
//! HTTP body unfinished (it could finish it only from a later request).
//!
//! An idle instance keeps its memory, and that memory stays charged to its
//! workload's memory budget (the Store's limiter gives it back only when
//! the Store is dropped). So an instance is kept idle only while the
//! budget keeps room for one more instance at the workload's full memory
//! limit: idle instances never hold the memory a new request needs, and a
//! workload cannot keep `pool_size` large instances resident past its
//! budget.

use super::InvocationTemplate;
use crate::pool::warm::{WarmLedger, WarmPlace};
use crate::spec::WarmSpec;
use crate::store::InvocationState;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use wasmtime::Store;
use wasmtime_wasi_http::p2::bindings::Proxy;

/// An instance with its Store, between requests or serving one.
pub struct WarmInstance {
    store: Store<InvocationState>,
    proxy: Proxy,
    /// Invocations it served before the current one.
    served: u32,
}

impl WarmInstance {
    /// The instance in `store` with exports `proxy`, which served `served`
    /// invocations before the one that just ended.
    pub fn from_parts(store: Store<InvocationState>, proxy: Proxy, served: u32) -> WarmInstance {
        WarmInstance {
            store,
            proxy,
            served,
        }
    }

    /// Its Store, its exports, and the invocations it served so far.
    pub fn into_parts(self) -> (Store<InvocationState>, Proxy, u32) {
        (self.store, self.proxy, self.served)
    }
}

/// An instance kept idle, and its place in the host's pool.
struct Idle {
    instance: WarmInstance,
    _place: WarmPlace,
}

/// The idle instances of one component.
pub struct WarmPool {
    spec: WarmSpec,
    ledger: Arc<WarmLedger>,
    idle: Mutex<Vec<Idle>>,
    closed: AtomicBool,
}

impl WarmPool {
    /// A pool for a component with settings `spec`, keeping its idle
    /// instances in places of `ledger`.
    pub fn new(spec: WarmSpec, ledger: Arc<WarmLedger>) -> WarmPool {
        WarmPool {
            spec,
            ledger,
            idle: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
        }
    }

    /// An idle instance, armed for an invocation by `template`; `None`
    /// when none is idle (the caller makes a fresh one).
    pub fn take(&self, template: &InvocationTemplate) -> Option<WarmInstance> {
        let idle = self.lock().pop()?;
        let mut instance = idle.instance;
        template.arm(&mut instance.store);
        Some(instance)
    }

    /// Keeps `instance` for a later invocation if its invocation ended
    /// cleanly (`clean`), it may serve more, the pool has room and the host
    /// a place; otherwise drops it (its memory and pool slot go back).
    pub fn give_back(
        &self,
        mut instance: WarmInstance,
        clean: bool,
        template: &InvocationTemplate,
    ) {
        instance.served = instance.served.saturating_add(1);
        let state = instance.store.data();
        let healthy = clean
            && !state.deadline_hit()
            && !state.memory_limit_hit()
            && !state.memory_budget_hit();
        let more = self
            .spec
            .max_invocations
            .is_none_or(|max| instance.served < max);
        // Its own memory counts in the budget already: what is checked is
        // the room left beside it and everything else the workload holds.
        if !healthy || !more || !template.room_for_an_instance() {
            return;
        }
        let mut idle = self.lock();
        // Checked under the lock `close` takes: nothing is kept after it.
        if self.closed.load(Ordering::Acquire) || idle.len() >= self.spec.pool_size as usize {
            return;
        }
        let Some(place) = self.ledger.try_keep() else {
            return;
        };
        template.disarm(&mut instance.store);
        idle.push(Idle {
            instance,
            _place: place,
        });
    }

    /// Instances idle now.
    pub fn idle(&self) -> u32 {
        u32::try_from(self.lock().len()).unwrap_or(u32::MAX)
    }

    /// Drops every idle instance and keeps none from now on (the workload
    /// is stopping).
    pub fn close(&self) {
        let drained: Vec<Idle> = {
            let mut idle = self.lock();
            self.closed.store(true, Ordering::Release);
            idle.drain(..).collect()
        };
        // The Stores are dropped outside the lock.
        drop(drained);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Idle>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }
}
