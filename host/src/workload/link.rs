//! Linking a workload at start: each component read, its imports planned
//! against the host's plugins (composed in, shared, host, denied),
//! composed and compiled (through the component cache), and pre-linked
//! into the `InstancePre` its invocations instantiate. A failure says
//! which component and which stage ([`Stage`]) failed.

use super::service::{CLI_RUN, ServiceComponent};
use super::{HTTP_HANDLER, HttpComponent, InvocationTemplate, Linked, Workload, messages, warm};
use crate::plugins::shared::SharedPlugin;
use crate::plugins::shared::forwarders;
use crate::plugins::{LinkPlan, composed, deny};
use crate::policy::loopback::Loopback;
use crate::services::Services;
use crate::spec::{ComponentSpec, LinkMode, WorkloadId, WorkloadSpec};
use anyhow::{Result, bail};
use std::sync::Arc;
use wasmtime::component::Component;
use wasmtime_wasi_http::p2::bindings::ProxyPre;

impl Workload {
    /// Loads, plans, composes, compiles and links each component of the
    /// workload, once, at start.
    pub(super) fn link(&self, services: &Services) -> Result<Linked> {
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
        // One set of turns on the CPU, whichever component runs, each also
        // a turn of the host's.
        let cpu = crate::store::cpu::CpuGate::new(
            self.spec.limits.max_running(),
            engine.options().epoch_tick,
            Some(services.cpu.clone()),
        );
        // The ports the service listens on, for every Store of the workload.
        let loopback = self
            .spec
            .service
            .as_ref()
            .map(|_| Arc::new(Loopback::new()));
        let service_spec = self.spec.service.as_ref().map(|s| &s.component);
        let mut service = None;
        for spec in self.spec.components.iter().chain(service_spec) {
            let is_service = service_spec.is_some_and(|s| std::ptr::eq(s, spec));
            let (component, plan, shared) = load_component(services, spec, &self.spec)?;
            let mut linker = crate::store::core_linker(engine.engine())?;
            if let Some(ports) = &loopback {
                crate::store::loopback::link_loopback(&mut linker, ports.clone(), is_service)
                    .map_err(|e| located(spec, Stage::Link, e))?;
            }
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
                    let template = template
                        .with_typed(typed.clone())
                        .with_output(output.clone())
                        .with_cpu(cpu.clone())
                        .with_resolver(services.resolver.clone());
                    match &loopback {
                        Some(ports) => template.with_loopback(ports.clone(), is_service),
                        None => template,
                    }
                })
            };
            if let Some(service_spec) = self.spec.service.as_ref().filter(|_| is_service) {
                let pre = wasmtime_wasi::p2::bindings::CommandPre::new(pre).map_err(|e| {
                    located(
                        spec,
                        Stage::Link,
                        anyhow::Error::from(e).context(format!("a service must export {CLI_RUN}")),
                    )
                })?;
                let mut template = template()?;
                if let Some(memory) = service_spec.memory {
                    template = template.with_memory(memory.as_usize());
                }
                service = Some(ServiceComponent {
                    pre,
                    template: Arc::new(template),
                    loopback: loopback.clone().unwrap_or_default(),
                    name: spec.name.clone(),
                    max_restarts: service_spec.max_restarts,
                });
                continue;
            }
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
        Ok(Linked {
            http,
            handler,
            service,
        })
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
    let (engine, cache) = (&*services.engine, &services.cache);
    // A component compiled before (its artifact is in the cache) is valid,
    // and its types came with it: reading them from the bytes again would
    // be a good part of a warm start.
    let cached = cache.cached(engine.engine(), &spec.name, &bytes);
    let info = match &cached {
        Some(component) => crate::plugins::component_info::of_component(engine.engine(), component),
        // Bytes that are no component at all fail here, as a compile
        // failure, rather than in the plan below, where they would pass for
        // the plugins'.
        None => keel_compose::ComponentInfo::read(&bytes)
            .map_err(|e| located(spec, Stage::Compile, e))?,
    };
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
        match cached {
            Some(component) => Ok(component),
            None => cache.load(engine.engine(), &spec.name, &bytes),
        }
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
