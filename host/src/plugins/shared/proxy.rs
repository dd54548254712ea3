//! Proxy resources: how a workload holds a shared plugin's resources.
//!
//! A handle from the plugin's Store means nothing in the workload's, so the
//! workload gets a host resource (`ResourceType::host_dynamic`) whose
//! representation is a slot in its invocation's [`ProxyTable`]; the slot
//! holds the plugin's own handle. Borrows are lent for one call; owned
//! handles move; whatever a workload instance still holds when it ends
//! (normally or by a trap) is dropped in the plugin.

use super::SharedPlugin;
use std::collections::HashMap;
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

/// The proxies of one workload invocation, by slot.
#[derive(Default)]
pub struct ProxyTable {
    slots: HashMap<u32, Proxy>,
    next: u32,
}

impl ProxyTable {
    /// Stores `proxy` and returns its slot (the workload-side representation).
    pub fn insert(&mut self, proxy: Proxy) -> u32 {
        loop {
            let slot = self.next;
            self.next = self.next.wrapping_add(1);
            if let std::collections::hash_map::Entry::Vacant(entry) = self.slots.entry(slot) {
                entry.insert(proxy);
                return slot;
            }
        }
    }

    /// The proxy in `slot`, left in place (for a borrow).
    pub fn get(&self, slot: u32) -> Option<&Proxy> {
        self.slots.get(&slot)
    }

    /// Takes the proxy out of `slot` (the handle moves, or is dropped).
    pub fn take(&mut self, slot: u32) -> Option<Proxy> {
        self.slots.remove(&slot)
    }

    /// How many proxies are held.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether none are held.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

impl Drop for ProxyTable {
    /// The instance is gone: every handle it still held is released in its
    /// plugin (deferred, since dropping cannot wait for the plugin's lock).
    fn drop(&mut self) {
        for (_, proxy) in self.slots.drain() {
            proxy.plugin.release_later(proxy.generation, proxy.handle);
        }
    }
}
