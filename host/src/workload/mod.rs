//! Workloads: loading and linking their components, their lifecycle, and
//! admitting invocations within their bounds.
//!
//! A workload is compiled and linked once, at start (`link`), into an
//! [`InstancePre`](wasmtime::component::InstancePre) per component; every
//! invocation then gets a fresh Store (see [`invocation`]) and a fresh
//! instance from the pool. A workload's service, if it has one, runs
//! beside them under a supervisor ([`service`]).

pub mod invocation;
mod link;
pub mod messages;
pub mod service;
pub mod warm;

pub use invocation::InvocationTemplate;
pub use link::{ComponentFailure, Stage};

use crate::core_api::broker::BrokerSubscription;
use crate::pool::{PoolMember, PoolRefusal, PoolSlot};
use crate::services::Services;
use crate::spec::{WorkloadId, WorkloadSpec, WorkloadState, WorkloadStatus};
use crate::store::InvocationState;
use anyhow::{Context, Result, bail};
use service::{ServiceComponent, Supervisor};
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use wasmtime_wasi_http::p2::bindings::ProxyPre;

/// The interface a component exports to receive HTTP requests.
pub const HTTP_HANDLER: &str = "wasi:http/incoming-handler";

/// A workload on a host.
pub struct Workload {
    spec: WorkloadSpec,
    /// The current state; every change is published to its watchers.
    state: watch::Sender<WorkloadState>,
    slots: Arc<Semaphore>,
    /// Its place in the host's instance pool, from the moment it runs.
    pool: OnceLock<PoolMember>,
    linked: OnceLock<Linked>,
    /// The tasks delivering subscribed messages; aborted at stop.
    deliveries: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// The supervisor of its service, while it runs.
    supervisor: Mutex<Option<Supervisor>>,
}

/// What starting produced: the linked components.
struct Linked {
    http: Option<HttpComponent>,
    handler: Option<messages::HandlerComponent>,
    service: Option<ServiceComponent>,
}

/// The component of a workload that serves its HTTP traffic.
pub struct HttpComponent {
    /// Pre-linked, type-checked component; instantiated per request.
    pub pre: ProxyPre<InvocationState>,
    /// How each request's Store is made (shared with each request's task,
    /// not copied for it).
    pub template: Arc<InvocationTemplate>,
    /// Its idle instances, when the component opted in to reuse.
    pub warm: Option<warm::WarmPool>,
}

/// Why an invocation was not admitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unavailable {
    /// The workload is starting, stopping, stopped or failed.
    #[error("workload is {0}")]
    NotRunning(WorkloadState),
    /// Every instance slot stayed busy for the whole wait.
    #[error("workload is at its limit of {0} instances in flight")]
    Busy(u32),
    /// No host slot the fair-share rule lets the workload take came free
    /// within the wait (see `crate::pool`).
    #[error("host is busy: {0}")]
    HostBusy(PoolRefusal),
}

/// An invocation's right to run: a slot of its workload and a slot of the
/// host's instance pool. Hold it until the guest has finished, so that
/// [`Workload::stop`] can drain.
#[derive(Debug)]
pub struct Admission {
    // Fields drop in order: the host slot goes back first, so once `stop`
    // holds every workload slot, every host slot of the workload is back.
    _host: PoolSlot,
    _workload: OwnedSemaphorePermit,
}

impl Workload {
    /// A workload in state `Starting`; [`Workload::start`] brings it up.
    pub fn new(spec: WorkloadSpec) -> Workload {
        let slots = Arc::new(Semaphore::new(spec.limits.max_instances as usize));
        Workload {
            spec,
            state: watch::Sender::new(WorkloadState::Starting),
            slots,
            pool: OnceLock::new(),
            linked: OnceLock::new(),
            deliveries: Mutex::new(Vec::new()),
            supervisor: Mutex::new(None),
        }
    }

    /// Its id.
    pub fn id(&self) -> &WorkloadId {
        &self.spec.id
    }

    /// What it was started from.
    pub fn spec(&self) -> &WorkloadSpec {
        &self.spec
    }

    /// Its current state.
    pub fn state(&self) -> WorkloadState {
        self.state.borrow().clone()
    }

    /// Its state now, and every change from here on. The channel closes
    /// when the workload is dropped (removed from its host, or replaced by
    /// a new workload with its id).
    pub fn watch(&self) -> watch::Receiver<WorkloadState> {
        self.state.subscribe()
    }

    fn set_state(&self, state: WorkloadState) {
        self.state.send_replace(state);
    }

    /// A snapshot for `status` and `list`.
    pub fn status(&self) -> WorkloadStatus {
        let free = self.slots.available_permits() as u32;
        WorkloadStatus {
            id: self.spec.id.clone(),
            state: self.state(),
            http_host: self.spec.http.host.clone(),
            in_flight: self.spec.limits.max_instances.saturating_sub(free),
            serves_http: self.serves_http(),
            warm_idle: self
                .http()
                .and_then(|h| h.warm.as_ref())
                .map_or(0, |pool| pool.idle()),
            cpu_running: self.http().map_or(0, |h| h.template.cpu().running()),
            cpu_waiting: self.http().map_or(0, |h| h.template.cpu().waiting()),
            service_ports: self.service().map_or(Vec::new(), |s| s.loopback.ports()),
            memory_used: self.http().map_or(0, |h| {
                u64::try_from(h.template.memory_budget().used()).unwrap_or(u64::MAX)
            }),
        }
    }

    /// The component handling messages, once started.
    pub fn handler(&self) -> Option<&messages::HandlerComponent> {
        self.linked.get().and_then(|l| l.handler.as_ref())
    }

    /// The service, once started, if the workload has one.
    pub(crate) fn service(&self) -> Option<&ServiceComponent> {
        self.linked.get().and_then(|l| l.service.as_ref())
    }

    /// A slot of the host's instance pool for one instance of the service,
    /// waited for until `deadline`; `None` when the workload never ran.
    async fn pool_slot(
        &self,
        deadline: tokio::time::Instant,
    ) -> Option<Result<PoolSlot, PoolRefusal>> {
        Some(self.pool.get()?.acquire(deadline).await)
    }

    /// The component serving HTTP, once started.
    pub fn http(&self) -> Option<&HttpComponent> {
        self.linked.get().and_then(|l| l.http.as_ref())
    }

    /// Whether it serves HTTP: `None` until it has been linked (starting,
    /// or failed before that), then whether a component exports the handler.
    pub fn serves_http(&self) -> Option<bool> {
        self.linked.get().map(|l| l.http.is_some())
    }

    /// Loads, compiles (or takes from the cache) and links every component,
    /// then moves to `Running`; on failure the state becomes `Error` with the
    /// message, and the error is returned.
    pub async fn start(self: &Arc<Self>, services: Arc<Services>) -> Result<()> {
        let this = self.clone();
        let linking = services.clone();
        let linked = tokio::task::spawn_blocking(move || this.link(&linking))
            .await
            .context("the task loading the workload failed")
            .and_then(|r| r);
        let result = match linked {
            Ok(linked) => {
                // `start` runs once per Workload, so the cell is empty here.
                let _ = self.linked.set(linked);
                self.subscribe(&services).await
            }
            Err(e) => Err(e),
        };
        let subscriptions = match result {
            Ok(subscriptions) => subscriptions,
            Err(e) => {
                let message = format!("{e:#}");
                self.set_state(WorkloadState::Error(message));
                return Err(e.context(format!("starting workload `{}`", self.spec.id)));
            }
        };
        // Running only if nothing stopped it meanwhile, checked and set at once.
        let running = self.state.send_if_modified(|state| {
            let starting = *state == WorkloadState::Starting;
            if starting {
                // A running workload counts in the shares of the host's slots;
                // its service's instance takes one beside its invocations.
                let service = u32::from(self.spec.service.is_some());
                let most = self.spec.limits.max_instances.saturating_add(service);
                let _ = self.pool.set(services.engine.pool().join(most));
                *state = WorkloadState::Running;
            }
            starting
        });
        if !running {
            bail!(
                "workload `{}` was stopped while it was starting",
                self.spec.id
            );
        }
        // Subscriptions were live before the workload was reported running;
        // messages that arrived meanwhile wait in them.
        {
            let mut deliveries = self.deliveries.lock().unwrap_or_else(|p| p.into_inner());
            for subscription in subscriptions {
                let task = messages::deliver(
                    self.clone(),
                    subscription,
                    services.engine.clone(),
                    services.broker.subject_scope(),
                );
                deliveries.push(tokio::spawn(task));
            }
        }
        if self.service().is_some() {
            let supervisor = Supervisor::start(self.clone(), services.engine.clone());
            *self.supervisor.lock().unwrap_or_else(|p| p.into_inner()) = Some(supervisor);
            // A stop that came meanwhile found no supervisor to end.
            if self.state() != WorkloadState::Running
                && let Some(supervisor) = self.take_supervisor()
            {
                supervisor.end().await;
            }
        }
        Ok(())
    }

    fn take_supervisor(&self) -> Option<Supervisor> {
        self.supervisor
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// The end of a running workload whose service finished (`Completed`)
    /// or failed past its restarts (`Error`): as a stop, ending in `end`.
    /// Nothing happens when a stop is already under way.
    async fn finish(&self, end: WorkloadState) {
        let running = self.state.send_if_modified(|state| {
            let running = *state == WorkloadState::Running;
            if running {
                *state = WorkloadState::Stopping;
            }
            running
        });
        if !running {
            return;
        }
        // Called from the supervisor's own task: it ends by itself.
        drop(self.take_supervisor());
        self.drain().await;
        self.set_state(end);
    }

    /// Subscribes to every subject of the manifest (live on the broker when
    /// this returns).
    async fn subscribe(&self, services: &Services) -> Result<Vec<BrokerSubscription>> {
        if self.spec.subscriptions.is_empty() {
            return Ok(Vec::new());
        }
        if self.handler().is_none() {
            bail!(
                "workload `{}` subscribes to `{}` but none of its components exports {}",
                self.spec.id,
                self.spec.subscriptions[0].subject,
                messages::MESSAGE_HANDLER
            );
        }
        let mut subscriptions = Vec::new();
        let scope = services.broker.subject_scope();
        for s in &self.spec.subscriptions {
            crate::core_api::messaging::check_open(scope, &s.subject, true)
                .map_err(anyhow::Error::msg)?;
            let subject =
                crate::core_api::messaging::scoped(scope, &self.spec.id.namespace, &s.subject);
            let subscription = services
                .broker
                .subscribe(&subject, s.queue.as_deref())
                .await
                .with_context(|| {
                    let shown = crate::policy::subject::shortened(&s.subject);
                    format!("subscribing to `{shown}`")
                })?;
            subscriptions.push(subscription);
        }
        Ok(subscriptions)
    }

    /// Waits (at most the workload's `queue_timeout`, all waits together)
    /// for a starting workload to run, then for one of the workload's
    /// instance slots, then for a slot of the host's pool as the fair-share
    /// rule gives them out.
    pub async fn admit(&self) -> Result<Admission, Unavailable> {
        let deadline = tokio::time::Instant::now() + self.spec.limits.queue_timeout;
        // A request that arrives while the workload links is held until it
        // runs (or fails to start), as if every slot were busy, instead of
        // being turned away: a client that connects as soon as the
        // listener is up gets its answer the moment the workload can give
        // it.
        if *self.state.borrow() == WorkloadState::Starting {
            let mut changes = self.watch();
            let _ = tokio::time::timeout_at(
                deadline,
                changes.wait_for(|state| *state != WorkloadState::Starting),
            )
            .await;
        }
        let state = self.state();
        let (WorkloadState::Running, Some(member)) = (&state, self.pool.get()) else {
            return Err(Unavailable::NotRunning(state));
        };
        let acquired = tokio::time::timeout_at(deadline, self.slots.clone().acquire_owned()).await;
        let permit = match acquired {
            Ok(Ok(permit)) => permit,
            Ok(Err(_closed)) => return Err(Unavailable::NotRunning(self.state())),
            Err(_elapsed) => return Err(Unavailable::Busy(self.spec.limits.max_instances)),
        };
        let slot = match member.acquire(deadline).await {
            Ok(slot) => slot,
            Err(PoolRefusal::Left) => return Err(Unavailable::NotRunning(self.state())),
            Err(full) => return Err(Unavailable::HostBusy(full)),
        };
        match self.state() {
            WorkloadState::Running => Ok(Admission {
                _host: slot,
                _workload: permit,
            }),
            other => Err(Unavailable::NotRunning(other)),
        }
    }

    /// Stops admitting invocations, waits for the in-flight ones to finish,
    /// then reports `Stopped`.
    pub async fn stop(&self) {
        // Checked and set at once: a service finishing meanwhile ends the
        // workload itself ([`Workload::finish`]), and only one of the two may.
        let stopping = self.state.send_if_modified(|state| {
            let active = matches!(state, WorkloadState::Running | WorkloadState::Starting);
            if active {
                *state = WorkloadState::Stopping;
            }
            active
        });
        if !stopping {
            return;
        }
        // The service first: its instance goes, and its listeners with it.
        if let Some(supervisor) = self.take_supervisor() {
            supervisor.end().await;
        }
        if let Some(service) = self.service() {
            service.loopback.clear();
        }
        self.drain().await;
        self.set_state(WorkloadState::Stopped);
    }

    /// Admits nothing more and waits for the invocations in flight.
    async fn drain(&self) {
        // Idle instances go at once: they hold memory and pool places.
        if let Some(pool) = self.http().and_then(|h| h.warm.as_ref()) {
            pool.close();
        }
        // Out of the shares at once; requests waiting for a host slot end.
        if let Some(member) = self.pool.get() {
            member.leave();
        }
        // No new messages: dropping the delivery tasks drops their subscriptions.
        for task in self
            .deliveries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            task.abort();
        }
        let all = self.spec.limits.max_instances;
        // Acquiring every slot means every in-flight invocation has ended.
        if let Ok(permits) = self.slots.acquire_many(all).await {
            permits.forget();
        }
        self.slots.close();
    }
}
