//! How a synchronous host function waits for a shared plugin that another
//! call holds.
//!
//! A typed forwarder serves a plugin in a synchronous Store with
//! synchronous host functions (see [`super::forwarders::typed`]): the call runs
//! straight through, without Wasmtime's async host-call machinery, which
//! costs more than the plugin's lock. The price is that such a function
//! cannot suspend its workload while the plugin is busy; it waits on its
//! thread instead, in two steps:
//!
//! 1. **Spin** for up to [`SPIN`]. A synchronous plugin's lock is only ever
//!    held by code running on some thread (its calls never wait inside),
//!    for about a microsecond per call, so the lock is usually free again
//!    within a few tries. After the first rounds the thread yields between
//!    tries, so a holder the OS descheduled gets the core back.
//! 2. **Park** in the lock's fair queue, behind the calls already waiting
//!    there (a spinning caller never overtakes one that queued), with
//!    Tokio's `block_in_place`, which hands the runtime's other tasks to
//!    another thread meanwhile. The wait ends by the caller's deadline.
//!
//! Off a multi-threaded Tokio runtime, where `block_in_place` is not
//! allowed, the second step polls the lock with short sleeps instead: on a
//! single-threaded runtime no task of its own can hold a synchronous
//! plugin across the wait, so whoever holds it runs elsewhere and lets go.

use super::{PluginCall, SharedPlugin};
use crate::store::Caller;
use anyhow::{Result, anyhow};
use std::time::{Duration, Instant};
use tokio::runtime::{Handle, RuntimeFlavor};

/// How long a caller spins before it queues.
pub const SPIN: Duration = Duration::from_micros(50);

/// Tries that spin on the CPU before the caller starts yielding its thread
/// between tries.
const BUSY_TRIES: u32 = 64;

/// Longest sleep between tries when polling off a multi-threaded runtime.
const MAX_SLEEP: Duration = Duration::from_millis(1);

impl SharedPlugin {
    /// [`begin`](SharedPlugin::begin) for a synchronous host function:
    /// waits on this thread while another call holds the plugin (see the
    /// module documentation). For a plugin in a synchronous Store.
    #[cold]
    #[inline(never)]
    pub(crate) fn begin_blocking(
        &self,
        caller: Caller<'_>,
        generation_of_params: Option<u64>,
    ) -> Result<PluginCall<'_>> {
        let spin_until = Instant::now() + SPIN;
        let mut tries = 0u32;
        loop {
            if let Some(begun) = self.begin_sync(caller, generation_of_params) {
                return begun;
            }
            if Instant::now() >= spin_until {
                break;
            }
            tries += 1;
            if tries < BUSY_TRIES {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        match Handle::try_current() {
            Ok(runtime) if runtime.runtime_flavor() == RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| {
                    runtime.block_on(self.queue(caller, generation_of_params))
                })
            }
            _ => self.poll_until_free(caller, generation_of_params),
        }
    }

    /// Waits in the lock's queue, until `caller`'s deadline.
    async fn queue(
        &self,
        caller: Caller<'_>,
        generation_of_params: Option<u64>,
    ) -> Result<PluginCall<'_>> {
        let begun = self.begin(caller, generation_of_params);
        let Some(deadline) = caller.deadline else {
            return begun.await;
        };
        match tokio::time::timeout_at(deadline.into(), begun).await {
            Ok(begun) => begun,
            Err(_) => Err(self.busy_past_deadline()),
        }
    }

    /// Tries the lock with growing sleeps between tries, until `caller`'s
    /// deadline.
    fn poll_until_free(
        &self,
        caller: Caller<'_>,
        generation_of_params: Option<u64>,
    ) -> Result<PluginCall<'_>> {
        let mut sleep = Duration::from_micros(10);
        loop {
            if let Some(begun) = self.begin_sync(caller, generation_of_params) {
                return begun;
            }
            if caller.deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(self.busy_past_deadline());
            }
            std::thread::sleep(sleep);
            sleep = (sleep * 2).min(MAX_SLEEP);
        }
    }

    fn busy_past_deadline(&self) -> anyhow::Error {
        anyhow!(
            "plugin `{}` was busy with other calls past the caller's deadline",
            self.name()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core_api::broker::Broker;
    use crate::core_api::bus::Bus;
    use crate::core_api::identity::WorkloadIdentity;
    use crate::engine::{EngineOptions, KeelEngine};
    use crate::spec::PluginGrants;
    use crate::spec::builtin::builtin;
    use std::sync::Arc;
    use wasmtime::component::Component;

    /// The built-in `keyvalue-memory`, shared, not yet started.
    fn keyvalue_memory() -> Result<Arc<SharedPlugin>> {
        let engine = KeelEngine::new(EngineOptions {
            pool_instances: 4,
            ..EngineOptions::default()
        })?;
        let (_, wasm) = builtin("keyvalue-memory").ok_or_else(|| anyhow!("not built in"))?;
        let component = Component::new(engine.engine(), wasm).map_err(anyhow::Error::from)?;
        let broker = Broker::Bus(Bus::new());
        let plugin =
            SharedPlugin::new(&engine, "kv", &component, &PluginGrants::default(), &broker)?;
        assert!(plugin.runs_sync());
        Ok(Arc::new(plugin))
    }

    fn someone() -> Arc<WorkloadIdentity> {
        Arc::new(WorkloadIdentity {
            namespace: "ns".into(),
            name: "w".into(),
            component: "c".into(),
        })
    }

    /// Begins and ends a call on `plugin` with `deadline`, from a
    /// synchronous host function's seat; how long it waited.
    fn call(plugin: &SharedPlugin, deadline: Option<Instant>) -> Result<Duration> {
        let identity = someone();
        let started = Instant::now();
        let call = plugin.begin_blocking(
            Caller {
                identity: &identity,
                deadline,
                in_flight: None,
            },
            None,
        )?;
        let waited = started.elapsed();
        call.finish(Ok(()))?;
        Ok(waited)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_caller_queues_behind_a_long_call_and_gets_the_plugin_when_it_ends() -> Result<()> {
        let plugin = keyvalue_memory()?;
        let held = plugin.running.try_lock().ok_or_else(|| anyhow!("locked"))?;
        let waiter = tokio::spawn({
            let plugin = plugin.clone();
            async move {
                let begun = Instant::now();
                call(&plugin, Some(begun + Duration::from_secs(30))).map(|waited| begun + waited)
            }
        });
        // Once the spin is over the caller waits in the lock's queue, and
        // the runtime's other tasks (this one) still run.
        let queued = Instant::now() + Duration::from_secs(30);
        while plugin.running.waiters() == 0 {
            assert!(Instant::now() < queued, "the caller never queued");
            tokio::task::yield_now().await;
        }
        assert!(!waiter.is_finished(), "the caller did not wait");
        let released = Instant::now();
        drop(held);
        let got_it = tokio::time::timeout(Duration::from_secs(30), waiter).await???;
        assert!(
            got_it >= released,
            "the caller got the plugin before it was free"
        );
        // The call left the plugin running and free.
        assert!(plugin.running.try_lock().is_some_and(|slot| slot.is_some()));
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_caller_gives_up_at_its_deadline() -> Result<()> {
        let plugin = keyvalue_memory()?;
        let _held = plugin.running.try_lock().ok_or_else(|| anyhow!("locked"))?;
        let waiter = tokio::spawn({
            let plugin = plugin.clone();
            async move {
                let started = Instant::now();
                let refused = call(&plugin, Some(started + Duration::from_millis(80)));
                (refused, started.elapsed())
            }
        });
        let (refused, waited) = tokio::time::timeout(Duration::from_secs(30), waiter).await??;
        let error = format!("{:#}", refused.err().ok_or_else(|| anyhow!("no error"))?);
        assert!(
            error.contains("busy with other calls past the caller's deadline"),
            "{error}"
        );
        assert!(waited >= Duration::from_millis(80), "{waited:?}");
        assert!(waited < Duration::from_secs(10), "{waited:?}");
        Ok(())
    }

    #[test]
    fn off_a_runtime_a_caller_polls_until_the_plugin_is_free() -> Result<()> {
        let plugin = keyvalue_memory()?;
        let held = plugin.running.try_lock().ok_or_else(|| anyhow!("locked"))?;
        let (started, has_started) = std::sync::mpsc::channel();
        let waiter = std::thread::spawn({
            let plugin = plugin.clone();
            move || {
                let _ = started.send(());
                // When the caller holds the plugin (and has let it go): on
                // the same monotonic clock as the release below.
                call(&plugin, None).map(|_| Instant::now())
            }
        });
        has_started.recv()?;
        // However long this thread is kept from running, the caller cannot
        // get the plugin while the slot is held.
        std::thread::yield_now();
        assert!(!waiter.is_finished(), "the caller did not wait");
        let released = Instant::now();
        drop(held);
        let got_it = waiter
            .join()
            .map_err(|_| anyhow!("the caller panicked"))??;
        assert!(
            got_it >= released,
            "the caller got the plugin before it was free"
        );
        Ok(())
    }
}
