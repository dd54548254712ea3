//! Releasing plugin handles a workload dropped: at once where the plugin
//! can be entered without waiting, else queued and dropped at the plugin's
//! next chance (from a task of its own, or before its next call).

use super::{RELEASE_BUDGET, Running, SharedPlugin, Slot, sync_store};
use anyhow::Result;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;
use wasmtime::component::ResourceAny;

impl SharedPlugin {
    /// Drops `handle` in the plugin (a workload dropped its proxy): now for
    /// a plugin in a synchronous Store, whose drop cannot be interrupted;
    /// from a task of its own for an async one, so that a workload ending
    /// mid-drop cannot interrupt it (the plugin's next call waits for it).
    pub async fn release(self: &Arc<Self>, generation: u64, handle: ResourceAny) -> Result<()> {
        if !self.sync {
            self.release_later(generation, handle);
            return Ok(());
        }
        let slot = self.lock_running().await;
        self.release_locked(slot, generation, handle).await
    }

    /// [`release`](Self::release) from where waiting is impossible (a
    /// synchronous host function): now if no other call holds the plugin,
    /// else at its next chance ([`release_later`](Self::release_later)).
    /// For a plugin in a synchronous Store.
    pub fn release_sync(self: &Arc<Self>, generation: u64, handle: ResourceAny) -> Result<()> {
        match self.running.try_lock() {
            Some(slot) => sync_store::now(self.release_locked(slot, generation, handle))?,
            None => {
                self.release_later(generation, handle);
                Ok(())
            }
        }
    }

    /// [`release`](Self::release), the lock taken.
    async fn release_locked(
        &self,
        mut slot: Slot<'_>,
        generation: u64,
        handle: ResourceAny,
    ) -> Result<()> {
        let Some(mut running) = slot.take() else {
            return Ok(());
        };
        running
            .store
            .data_mut()
            .serve_until(Some(Instant::now() + RELEASE_BUDGET));
        let result = if running.generation == generation {
            running.drop_handle(handle).await
        } else {
            Ok(())
        };
        let result = match result {
            Ok(()) => self.drop_released(&mut running).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => {
                *slot = Some(running);
                Ok(())
            }
            Err(e) => {
                self.failed(&e, "trapped dropping a handle");
                Err(e.into())
            }
        }
    }

    /// Queues `handle` to be dropped at the plugin's next call (used where
    /// waiting for the plugin is impossible: a workload Store being dropped).
    pub fn release_later(self: &std::sync::Arc<Self>, generation: u64, handle: ResourceAny) {
        self.released
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((generation, handle));
        // One drain task for however many handles are queued meanwhile: a
        // workload dropping many handles must not queue a task per handle
        // on the plugin's lock, ahead of other callers.
        let drain_queued = self.any_released.swap(true, Ordering::AcqRel);
        // Drain soon even if no call comes.
        if !drain_queued && let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let plugin = self.clone();
            runtime.spawn(async move {
                let mut slot = plugin.running.lock().await;
                if let Some(mut running) = slot.take() {
                    running
                        .store
                        .data_mut()
                        .serve_until(Some(Instant::now() + RELEASE_BUDGET));
                    match plugin.drop_released(&mut running).await {
                        Ok(()) => *slot = Some(running),
                        // The Store is poisoned: the next call starts afresh.
                        Err(e) => plugin.failed(&e, "trapped dropping a released handle"),
                    }
                }
            });
        }
    }

    /// Drops the handles queued by [`release_later`](Self::release_later)
    /// that belong to `running`. An error is a trap: the Store is poisoned,
    /// and the caller must not put `running` back.
    pub(super) async fn drop_released(&self, running: &mut Running) -> wasmtime::Result<()> {
        if !self.any_released.swap(false, Ordering::Acquire) {
            return Ok(());
        }
        let released =
            std::mem::take(&mut *self.released.lock().unwrap_or_else(|p| p.into_inner()));
        for (generation, handle) in released {
            if generation != running.generation {
                continue;
            }
            running.drop_handle(handle).await?;
        }
        Ok(())
    }
}
