//! Proxy resources: how a workload holds a shared plugin's resources.
//!
//! A handle from the plugin's Store means nothing in the workload's, so the
//! workload gets a host resource (`ResourceType::host_dynamic`) whose
//! representation is a slot in its invocation's [`ProxyTable`]; the slot
//! holds the plugin's own handle. Borrows are lent for one call; owned
//! handles move; whatever a workload instance still holds when it ends
//! (normally or by a trap) is dropped in the plugin.

use crate::plugins::shared::SharedPlugin;
use std::sync::Arc;
use wasmtime::component::ResourceAny;

/// A plugin resource held by a workload instance.
#[derive(Clone)]
pub struct Proxy {
    /// The plugin that owns the resource.
    pub plugin: Arc<SharedPlugin>,
    /// The plugin instance the handle belongs to (a restart invalidates it).
    pub generation: u64,
    /// The handle in the plugin's Store.
    pub handle: ResourceAny,
}

impl Proxy {
    /// Releases the handle in its plugin, the workload having dropped its
    /// proxy. A failing plugin is not the workload's fault: the failure is
    /// logged, and the workload goes on.
    pub async fn release(self) {
        let released = self.plugin.release(self.generation, self.handle).await;
        self.log_failure(released);
    }

    /// [`release`](Self::release) without waiting, for a plugin in a
    /// synchronous Store: now if the plugin is free, else at its next
    /// chance.
    pub fn release_sync(self) {
        let released = self.plugin.release_sync(self.generation, self.handle);
        self.log_failure(released);
    }

    fn log_failure(&self, released: anyhow::Result<()>) {
        if let Err(e) = released {
            tracing::warn!(
                plugin = self.plugin.name(),
                error = crate::trap::summary_anyhow(&e),
                "releasing a plugin handle failed"
            );
        }
    }
}

/// The proxies of one workload invocation, by slot: a slab, since every
/// forwarded call on a resource looks its proxy up.
///
/// A freed slot is reused. That is sound because a slot reaches only the
/// workload's handle table, and Wasmtime removes the handle when its proxy
/// is dropped or moved.
#[derive(Default)]
pub struct ProxyTable {
    slots: Vec<Option<Proxy>>,
    free: Vec<u32>,
}

impl ProxyTable {
    /// An empty table.
    pub const fn new() -> ProxyTable {
        ProxyTable {
            slots: Vec::new(),
            free: Vec::new(),
        }
    }

    /// Stores `proxy` and returns its slot (the workload-side representation).
    pub fn insert(&mut self, proxy: Proxy) -> u32 {
        if let Some(slot) = self.free.pop()
            && let Some(free) = self.slots.get_mut(slot as usize)
        {
            *free = Some(proxy);
            return slot;
        }
        self.slots.push(Some(proxy));
        // A workload cannot hold 2^32 handles (Wasmtime caps a Store's).
        u32::try_from(self.slots.len() - 1).unwrap_or(u32::MAX)
    }

    /// The proxy in `slot`, left in place (for a borrow).
    pub fn get(&self, slot: u32) -> Option<&Proxy> {
        self.slots.get(slot as usize)?.as_ref()
    }

    /// Takes the proxy out of `slot` (the handle moves, or is dropped).
    pub fn take(&mut self, slot: u32) -> Option<Proxy> {
        let proxy = self.slots.get_mut(slot as usize)?.take()?;
        self.free.push(slot);
        Some(proxy)
    }
}

impl Drop for ProxyTable {
    /// The instance is gone: every handle it still held is released in its
    /// plugin (deferred, since dropping cannot wait for the plugin's lock).
    fn drop(&mut self) {
        for proxy in self.slots.drain(..).flatten() {
            proxy.plugin.release_later(proxy.generation, proxy.handle);
        }
    }
}
