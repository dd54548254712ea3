//! A workload's service and its supervisor: the service component's
//! `wasi:cli/run` called once per instance on a task of its own, a new
//! instance after each failure (up to `max_restarts`, with a growing
//! wait between starts), and the workload's end when it finishes or fails
//! for good.

use super::{InvocationTemplate, Workload};
use crate::engine::KeelEngine;
use crate::policy::loopback::Loopback;
use crate::spec::{ServiceSpec, WorkloadState};
use crate::store::InvocationState;
use anyhow::{Result, bail};
use std::sync::Arc;
use tokio::sync::watch;
use wasmtime_wasi::p2::bindings::CommandPre;

/// The interface a service exports.
pub const CLI_RUN: &str = "wasi:cli/run";

/// The service of a workload, linked.
pub struct ServiceComponent {
    /// Pre-linked, type-checked; instantiated once per start.
    pub(super) pre: CommandPre<InvocationState>,
    /// How its Store is made: the workload's grants, its memory budget,
    /// log rate and CPU turns, no per-invocation timeout.
    pub(super) template: Arc<InvocationTemplate>,
    /// The ports it listens on, as the workload's components see them.
    pub(super) loopback: Arc<Loopback>,
    /// Its name within the workload.
    pub(super) name: String,
    /// New instances after failures before the workload fails.
    pub(super) max_restarts: u32,
}

/// The running supervisor of a workload's service: how to end it, and its
/// task to wait for.
pub(super) struct Supervisor {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Supervisor {
    /// Starts supervising the service of `workload` (which has one).
    pub(super) fn start(workload: Arc<Workload>, engine: Arc<KeelEngine>) -> Supervisor {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(supervise(workload, engine, stopped));
        Supervisor { stop, task }
    }

    /// Ends the service (its instance is dropped where it stands, a wait
    /// between restarts cut short) and waits until it has.
    pub(super) async fn end(self) {
        self.stop.send_replace(true);
        if let Err(e) = self.task.await
            && e.is_panic()
        {
            tracing::error!("the task supervising a service panicked");
        }
    }
}

/// Runs the service until it finishes, fails past its restarts, or the
/// workload is stopped (`stopped` turns true).
async fn supervise(
    workload: Arc<Workload>,
    engine: Arc<KeelEngine>,
    mut stopped: watch::Receiver<bool>,
) {
    let Some(service) = workload.service() else {
        return;
    };
    let id = workload.id().to_string();
    let mut restarts = 0u32;
    loop {
        let outcome = tokio::select! {
            outcome = run_once(&workload, service, &engine) => outcome,
            _ = stopped.wait_for(|stop| *stop) => return,
        };
        // Its listeners closed with its instance.
        service.loopback.clear();
        let error = match outcome {
            Ok(()) => {
                tracing::info!(workload = id, service = service.name, "service completed");
                workload.finish(WorkloadState::Completed).await;
                return;
            }
            Err(error) => error,
        };
        let summary = crate::trap::summary_anyhow(&error);
        tracing::debug!(workload = id, service = service.name, error = ?error, "service failure in full");
        if restarts >= service.max_restarts {
            tracing::warn!(
                workload = id,
                service = service.name,
                restarts,
                error = summary,
                "service failed past its restarts: the workload fails"
            );
            let message = format!(
                "service `{}` failed after {restarts} restart(s) (max_restarts {}): {summary}",
                service.name, service.max_restarts
            );
            workload.finish(WorkloadState::Error(message)).await;
            return;
        }
        restarts += 1;
        let wait = ServiceSpec::backoff(restarts);
        tracing::warn!(
            workload = id,
            service = service.name,
            restart = restarts,
            max_restarts = service.max_restarts,
            wait_ms = wait.as_millis() as u64,
            error = summary,
            "service failed: starting a new instance"
        );
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stopped.wait_for(|stop| *stop) => return,
        }
    }
}

/// One instance of the service: a slot of the host's instance pool, a
/// fresh Store, `wasi:cli/run` called once. `Ok` when it returned
/// success or exited 0.
async fn run_once(
    workload: &Workload,
    service: &ServiceComponent,
    engine: &KeelEngine,
) -> Result<()> {
    // The instance takes a place in the host's pool for as long as it
    // runs, as an invocation does.
    let deadline = tokio::time::Instant::now() + workload.spec().limits.queue_timeout;
    let _slot = match workload.pool_slot(deadline).await {
        Some(Ok(slot)) => slot,
        Some(Err(refusal)) => bail!("no instance slot for the service: {refusal}"),
        None => bail!("the workload is not running"),
    };
    let mut store = service.template.new_store(engine)?;
    service.template.arm_unbounded(&mut store);
    let command = service.pre.instantiate_async(&mut store).await?;
    tracing::info!(
        workload = %workload.id(),
        service = service.name,
        "service instance started"
    );
    let ran = command.wasi_cli_run().call_run(&mut store).await;
    match ran {
        Ok(Ok(())) => Ok(()),
        Ok(Err(())) => bail!("{CLI_RUN} returned an error"),
        Err(e) => {
            match e.downcast_ref::<wasmtime_wasi::I32Exit>() {
                Some(wasmtime_wasi::I32Exit(0)) => Ok(()),
                Some(wasmtime_wasi::I32Exit(code)) => bail!("the service exited with code {code}"),
                None if store.data().memory_limit_hit() => Err(anyhow::Error::from(e)
                    .context("the service's instance reached its memory limit")),
                None => Err(e.into()),
            }
        }
    }
}
