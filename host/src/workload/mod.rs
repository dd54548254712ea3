//! Workloads: loading and linking their components, their lifecycle, and
//! admitting invocations within their bounds.
//!
//! A workload is compiled and linked once, at start, into an
//! [`InstancePre`](wasmtime::component::InstancePre) per component; every
//! invocation then gets a fresh Store (see [`invocation`]) and a fresh
//! instance from the pool.

pub mod invocation;
pub mod messages;
pub mod warm;

pub use invocation::{DeadlineExceeded, InvocationTemplate};

use crate::core_api::broker::BrokerSubscription;
use crate::plugins::shared::SharedPlugin;
use crate::plugins::shared::forwarders;
use crate::plugins::{LinkPlan, composed, deny};
use crate::pool::{PoolMember, PoolRefusal, PoolSlot};
use crate::services::Services;
use crate::spec::{
    ComponentSpec, LinkMode, WorkloadId, WorkloadSpec, WorkloadState, WorkloadStatus,
};
use crate::store::InvocationState;
use anyhow::{Context, Result, bail};
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use wasmtime::component::Component;
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
}

/// What starting produced: the linked components.
struct Linked {
    http: Option<HttpComponent>,
    handler: Option<messages::HandlerComponent>,
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
    /// within the wait (see [`crate::pool`]).
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
        }
    }

    /// The component handling messages, once started.
    pub fn handler(&self) -> Option<&messages::HandlerComponent> {
        self.linked.get().and_then(|l| l.handler.as_ref())
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
                // A running workload counts in the shares of the host's slots.
                let _ = self
                    .pool
                    .set(services.engine.pool().join(self.spec.limits.max_instances));
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
        Ok(())
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

    fn link(&self, services: &Services) -> Result<Linked> {
        let engine = &*services.engine;
        let mut http = None;
        let mut handler = None;
        // One budget for every instance of the workload in flight, whichever
        // component and whatever the trigger, inside the host's.
        let memory_budget = crate::budget::MemoryBudget::new(
            self.spec.limits.memory_total().as_usize(),
            Some(services.memory_budget.clone()),
        );
        // One log rate for the whole workload, whichever component writes.
        let output = crate::store::stdio::log_rate(self.spec.limits.log_rate.0);
        // One set of turns on the CPU, whichever component runs.
        let cpu = crate::store::cpu::CpuGate::new(
            self.spec.limits.max_running(),
            engine.options().epoch_tick,
        );
        for spec in &self.spec.components {
            let (component, plan, shared) = load_component(services, spec, &self.spec)?;
            let mut linker = crate::store::core_linker(engine.engine())?;
            let bindings = plan.shared.iter().cloned().zip(shared).collect();
            let (typed, generic) =
                forwarders::link_all(&mut linker, engine.engine(), &component, bindings)
                    .map_err(|e| located(spec, Stage::Link, e))?;
            let generic_imports: Vec<&str> = generic.iter().map(String::as_str).collect();
            log_plan(&self.spec.id, &spec.name, &plan, &generic_imports);
            let denials: Vec<deny::Denial> = plan
                .denied
                .iter()
                .map(deny::Denial::of)
                // An interface of only types is linked the same way: as an
                // instance without members, which denies nothing.
                .chain(plan.types_only.iter().map(|import| deny::Denial {
                    import: import.clone(),
                    why: "it holds only types".to_string(),
                }))
                .collect();
            deny::link_denied(&mut linker, engine.engine(), &component, &denials)
                .map_err(|e| located(spec, Stage::Link, e))?;
            let pre = linker
                .instantiate_pre(&component)
                .map_err(|e| located(spec, Stage::Link, e.into()))?;
            let subjects = Arc::new(plan.subjects.clone());
            let template = || {
                InvocationTemplate::new(
                    &self.spec,
                    spec,
                    &services.broker,
                    subjects.clone(),
                    memory_budget.clone(),
                )
                .map(|template| {
                    template
                        .with_typed(typed.clone())
                        .with_output(output.clone())
                        .with_cpu(cpu.clone())
                        .with_resolver(services.resolver.clone())
                })
            };
            if let Some(found) =
                messages::HandlerComponent::find(&component, engine.engine(), &pre, template)?
            {
                if handler.is_some() {
                    bail!(located_msg(
                        spec,
                        "a second component exports wasmcloud:messaging/handler; \
                         a workload takes messages through one component"
                    ));
                }
                handler = Some(found);
            }
            let exports_http = component
                .component_type()
                .exports(engine.engine())
                .any(|(name, _)| crate::policy::names::is_interface(name, HTTP_HANDLER));
            if !exports_http {
                continue;
            }
            if http.is_some() {
                bail!(located_msg(
                    spec,
                    "a second component exports wasi:http/incoming-handler; \
                     a workload takes HTTP through one component"
                ));
            }
            let pre = ProxyPre::new(pre).map_err(|e| located(spec, Stage::Link, e.into()))?;
            let warm = spec
                .warm
                .enabled()
                .then(|| warm::WarmPool::new(spec.warm, engine.warm().clone()));
            http = Some(HttpComponent {
                pre,
                template: Arc::new(template()?),
                warm,
            });
        }
        if http.is_none() && self.spec.http.host.is_some() {
            let at = self
                .spec
                .http
                .host_origin
                .as_ref()
                .map(|l| format!("{l}: "))
                .unwrap_or_default();
            bail!(
                "{at}workload `{}` declares HTTP host `{}` but none of its components exports {HTTP_HANDLER}",
                self.spec.id,
                self.spec.http.host.as_deref().unwrap_or_default()
            );
        }
        Ok(Linked { http, handler })
    }

    /// Waits (at most the workload's `queue_timeout`, both waits together)
    /// for one of the workload's instance slots, then for a slot of the
    /// host's pool as the fair-share rule gives them out.
    pub async fn admit(&self) -> Result<Admission, Unavailable> {
        let state = self.state();
        let (WorkloadState::Running, Some(member)) = (&state, self.pool.get()) else {
            return Err(Unavailable::NotRunning(state));
        };
        let deadline = tokio::time::Instant::now() + self.spec.limits.queue_timeout;
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
        if !matches!(
            self.state(),
            WorkloadState::Running | WorkloadState::Starting
        ) {
            return;
        }
        self.set_state(WorkloadState::Stopping);
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
        self.set_state(WorkloadState::Stopped);
    }
}

/// Reads a component, plans how its imports are served, and returns it
/// compiled (composed with its plugins first, when any are composed).
fn load_component(
    services: &Services,
    spec: &ComponentSpec,
    workload: &WorkloadSpec,
) -> Result<(Component, LinkPlan, Vec<Arc<SharedPlugin>>)> {
    let bytes = spec
        .source
        .read()
        .map_err(|e| located(spec, Stage::Compile, e))?;
    keel_compose::WasmKind::expect_component(&bytes)
        .map_err(|e| anyhow::anyhow!("{}: {e}", spec.source.describe()))
        .map_err(|e| located(spec, Stage::Compile, e))?;
    // Bytes that are no component at all fail here, as a compile failure,
    // rather than in the plan below, where they would pass for the plugins'.
    let info =
        keel_compose::ComponentInfo::read(&bytes).map_err(|e| located(spec, Stage::Compile, e))?;
    let (engine, cache) = (&*services.engine, &services.cache);
    let mut plugins = services.plugins();
    let plan = plugins
        .plan(&bytes, &info, &workload.plugins)
        .map_err(|e| located(spec, Stage::Plugins, e))?;
    let shared = plan
        .shared
        .iter()
        .map(|b| {
            plugins.shared_instance(
                engine,
                cache,
                &b.plugin,
                &workload.id,
                &services.broker,
                &services.resolver,
            )
        })
        .collect::<Result<Vec<_>>>()
        .map_err(|e| located(spec, Stage::Plugins, e))?;
    let component = if plan.composed.is_empty() {
        cache.load(engine.engine(), &spec.name, &bytes)
    } else {
        composed::prepared_plugins(&plugins, spec, &plan.composed, &plan.layers).and_then(
            |prepared| {
                composed::composed_component(
                    engine.engine(),
                    cache,
                    &spec.name,
                    &bytes,
                    &prepared,
                    &plan.composed,
                )
            },
        )
    };
    Ok((
        component.map_err(|e| located(spec, Stage::Compile, e))?,
        plan,
        shared,
    ))
}

/// One log line per import saying what serves it.
/// Logs how each import of `component` is served; `generic` are the shared
/// imports the generic forwarder carries (a typed one carries the rest).
fn log_plan(workload: &WorkloadId, component: &str, plan: &LinkPlan, generic: &[&str]) {
    let workload = workload.to_string();
    for (binding, mode) in plan.plugin_bindings() {
        let forwarder = match mode {
            LinkMode::Composed => None,
            LinkMode::Shared if generic.contains(&binding.import.as_str()) => Some("generic"),
            LinkMode::Shared => Some("typed"),
        };
        // An import a composed layer left to a shared plugin beneath it.
        let beneath = plan
            .layers
            .iter()
            .find(|l| mode == LinkMode::Shared && l.binding == *binding)
            .map(|l| l.layer.as_str());
        tracing::info!(
            workload,
            component,
            import = binding.import,
            plugin = binding.plugin,
            mode = mode.as_str(),
            forwarder,
            beneath,
            "import served by plugin"
        );
    }
    for import in &plan.host {
        tracing::debug!(workload, component, import, "import served by the host");
    }
    for import in &plan.types_only {
        tracing::debug!(
            workload,
            component,
            import,
            "import holds only types: nothing to serve"
        );
    }
    for denied in &plan.denied {
        tracing::warn!(workload, component, import = denied.import, near_misses = ?denied.near_misses, "import denied: nothing serves it");
    }
}

fn located_msg(spec: &ComponentSpec, message: &str) -> String {
    match &spec.origin {
        Some(at) => format!("{at}: component `{}`: {message}", spec.name),
        None => format!("component `{}`: {message}", spec.name),
    }
}

fn located(spec: &ComponentSpec, stage: Stage, error: anyhow::Error) -> anyhow::Error {
    let prefix = located_msg(spec, "");
    error.context(ComponentFailure {
        component: spec.name.clone(),
        stage,
        prefix: prefix.trim_end_matches([' ', ':']).to_string(),
    })
}

/// Which step of starting a component failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Reading, checking or compiling the component (composed with its
    /// composed plugins, if any).
    Compile,
    /// Deciding which plugins serve its imports, or starting their shared
    /// instances.
    Plugins,
    /// Linking the forwarders, denials and host interfaces.
    Link,
}

/// The context a component's start failure carries: which component, and
/// at which [`Stage`], so the library API can type the error
/// ([`crate::Error::Compile`], [`crate::Error::PluginResolution`]). It
/// prints as the component's location.
#[derive(Debug)]
pub struct ComponentFailure {
    /// The component's name.
    pub component: String,
    /// Where it failed.
    pub stage: Stage,
    prefix: String,
}

impl std::fmt::Display for ComponentFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.prefix)
    }
}
