//! The call protocol of a shared plugin: lock its running instance (fairly,
//! see [`FairLock`](super::fair_lock::FairLock)), start a fresh one if the
//! slot is empty, run one call under the plugin's own time limit, and put
//! the instance back only when the call returned normally.

use super::fair_lock::FairGuard;
use super::{RELEASE_BUDGET, Running, SharedPlugin, sync_store};
use crate::store::Caller;
use crate::store::InvocationState;
use crate::store::in_flight::InFlightGuard;
use anyhow::{Context, Result, anyhow};
use std::any::{Any, TypeId};
use std::sync::atomic::Ordering;
use std::time::Instant;
use wasmtime::Store;
use wasmtime::component::{ComponentExportIndex, Func, Instance, ResourceAny};

impl SharedPlugin {
    /// The slot of the running instance, locked for one call.
    pub(super) async fn lock_running(&self) -> Slot<'_> {
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
    pub(super) fn failed(&self, error: &wasmtime::Error, what: &str) {
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
pub(crate) type Slot<'p> = FairGuard<'p, Option<Box<Running>>>;

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
    pub(crate) async fn drop_handle(&mut self, handle: ResourceAny) -> wasmtime::Result<()> {
        if self.sync {
            handle.resource_drop(&mut self.store)
        } else {
            handle.resource_drop_async(&mut self.store).await
        }
    }

    pub(crate) fn func(&mut self, index: ComponentExportIndex) -> Result<Func> {
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
    pub(crate) fn typed<G: Any + Send + Sync>(
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
