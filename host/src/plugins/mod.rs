//! Plugins: capabilities implemented as components, and how a workload's
//! imports are linked to them.
//!
//! For every component of a workload, [`PluginSet::plan`] decides how each
//! import is served: by a plugin composed in ([`composed`]), by the host
//! (WASI, `wasi:http`), or by a deny implementation ([`deny`]) that answers
//! `access-denied` or traps with a message naming the interface. A plugin
//! may itself import what other plugins export: a layer over them, linked
//! as [`layers`] describes. Plugins learn who calls them through
//! `keel:core` (`identity`); workloads may not import `keel:core`
//! themselves. What a plugin may import is decided by [`imports`]; what it
//! asks for (its metadata) against what it is granted is logged by
//! [`asks`].

pub mod advice;
pub mod asks;
pub mod component_info;
pub mod composed;
pub mod deny;
pub mod imports;
pub mod layers;
pub mod shared;

use crate::cache::ComponentCache;
use crate::engine::KeelEngine;
use crate::policy::grants::SubjectGrants;
use crate::spec::builtin;
use crate::spec::plugin_meta::PluginMetadata;
use crate::spec::{LinkMode, PluginSpec, SharedScope, WorkloadId};
use anyhow::{Context, Result, bail};
use keel_compose::{Binding, ComponentInfo, InterfaceName, Registry, Resolution, Unbound};
use layers::{LayerLink, PluginLinks};
use sha2::{Digest, Sha256};
use shared::SharedPlugin;
use std::collections::BTreeMap;
use std::sync::Arc;

pub use imports::reaches_outside;

/// A plugin whose component has been read.
#[derive(Debug, Clone)]
pub struct LoadedPlugin {
    /// What the manifest said.
    pub spec: PluginSpec,
    /// The component's bytes.
    pub bytes: Arc<Vec<u8>>,
    /// SHA-256 of the bytes.
    pub digest: [u8; 32],
    /// Its imports and exports.
    pub info: ComponentInfo,
    /// Whether it is one of keel's built-ins (which yield to declared plugins).
    pub builtin: bool,
    /// What it says about itself (its `keel-plugin` section), if anything.
    pub metadata: Option<PluginMetadata>,
}

/// The plugins a host offers its workloads, and the registry matching
/// imports to their exports.
#[derive(Default)]
pub struct PluginSet {
    plugins: Vec<LoadedPlugin>,
    registry: Registry,
    /// Live shared instances by plugin name and whom they serve.
    shared: BTreeMap<(String, Serves), LiveShared>,
    /// How each plugin's own imports are served (see [`layers`]), resolved
    /// on first use.
    links: BTreeMap<String, PluginLinks>,
    /// Built-ins offered but not read yet (`Some(with_nats)`): reading them
    /// (validating each component and its WIT) is most of a host's start,
    /// and a workload importing only what the host serves itself never
    /// needs them. See [`PluginSet::load_builtins`].
    pending_builtins: Option<bool>,
}

/// A live shared plugin instance (it holds its slot of the pool's reserve
/// for as long as any workload may still call it).
struct LiveShared {
    plugin: Arc<SharedPlugin>,
}

/// Whom one shared plugin instance serves (see [`SharedScope`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Serves {
    /// Every workload of the host.
    Host,
    /// The workloads of one namespace.
    Namespace(String),
    /// One workload.
    Workload(WorkloadId),
}

impl Serves {
    /// Whom an instance of scope `scope` serving `workload` serves.
    fn of(scope: SharedScope, workload: &WorkloadId) -> Serves {
        match scope {
            SharedScope::Host => Serves::Host,
            SharedScope::Namespace => Serves::Namespace(workload.namespace.clone()),
            SharedScope::Workload => Serves::Workload(workload.clone()),
        }
    }

    /// For log lines.
    fn describe(&self) -> String {
        match self {
            Serves::Host => "every workload of the host".to_string(),
            Serves::Namespace(namespace) => format!("namespace {namespace}"),
            Serves::Workload(id) => format!("workload {id}"),
        }
    }
}

/// How one component's imports are served.
#[derive(Debug, Clone, Default)]
pub struct LinkPlan {
    /// Imports served by plugins composed into the component.
    pub composed: Vec<Binding>,
    /// Imports served by shared plugin instances.
    pub shared: Vec<Binding>,
    /// Imports the host serves (WASI, `wasi:http`, and `keel:core` for plugins).
    pub host: Vec<String>,
    /// Imports nothing serves: linked to a deny implementation.
    pub denied: Vec<Unbound>,
    /// Imports of interfaces that hold only types (no functions, no
    /// resources, as `wasmcloud:messaging/types`): there is nothing to
    /// serve or deny; they are linked as empty instances.
    pub types_only: Vec<String>,
    /// The NATS subjects granted to the composed plugins: together, since
    /// they share the component's one `keel:core/nats` import.
    pub subjects: SubjectGrants,
    /// The links of the plugin layers beneath the plugins serving the
    /// component (see [`layers`]).
    pub layers: Vec<LayerLink>,
}

impl LinkPlan {
    /// Every import a plugin serves, with the mode it is linked in.
    pub fn plugin_bindings(&self) -> impl Iterator<Item = (&Binding, LinkMode)> {
        let composed = self.composed.iter().map(|b| (b, LinkMode::Composed));
        composed.chain(self.shared.iter().map(|b| (b, LinkMode::Shared)))
    }
}

impl LinkMode {
    /// `composed` or `shared`, as the manifest writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            LinkMode::Composed => "composed",
            LinkMode::Shared => "shared",
        }
    }
}

impl PluginSet {
    /// A set offering keel's built-in plugins (see [`builtin`]): the NATS-backed
    /// set when the host has NATS, the in-memory set otherwise. They are
    /// read on first need ([`PluginSet::load_builtins`]): when a plugin is
    /// added, or a component to plan imports anything the host does not
    /// serve itself.
    pub fn with_builtins(with_nats: bool) -> Result<PluginSet> {
        Ok(PluginSet {
            pending_builtins: Some(with_nats),
            ..PluginSet::default()
        })
    }

    /// Reads and registers the built-ins offered and not read yet; nothing
    /// when they are read already or none are offered. [`PluginSet::iter`]
    /// and [`PluginSet::get`] see built-ins only after this.
    pub fn load_builtins(&mut self) -> Result<()> {
        let Some(with_nats) = self.pending_builtins.take() else {
            return Ok(());
        };
        for name in builtin::defaults(with_nats) {
            let Some((mode, bytes)) = builtin::builtin(name) else {
                continue;
            };
            let spec = PluginSpec {
                grants: builtin::default_grants(name, &BTreeMap::new())?,
                ..PluginSpec::new(name, None, mode)
            };
            self.register(spec, bytes.to_vec(), true)?;
        }
        Ok(())
    }

    /// Whether built-ins are offered but not read yet.
    pub fn builtins_pending(&self) -> bool {
        self.pending_builtins.is_some()
    }

    /// Reads the plugin's component and registers its exports. A plugin
    /// with a source named like a built-in replaces that built-in; one
    /// without a source configures the built-in (and takes its place among the
    /// declared plugins), with the built-in's grants added to its own.
    pub fn add(&mut self, mut spec: PluginSpec) -> Result<()> {
        // A declared plugin may replace or configure a built-in, wrap one as
        // a layer, or import what one exports.
        self.load_builtins()?;
        if self
            .plugins
            .iter()
            .any(|p| p.spec.name == spec.name && !p.builtin)
        {
            bail!("plugin `{}` is declared twice", spec.name);
        }
        let at = located(&spec);
        let bytes = match &spec.source {
            Some(source) => source
                .read()
                .map_err(|e| anyhow::anyhow!("{at}plugin `{}`: {e:#}", spec.name))?
                .into_owned(),
            None => {
                let bytes = builtin::builtin(&spec.name)
                    .with_context(|| format!("{at}no built-in plugin `{}`", spec.name))?
                    .1;
                let mut subjects = builtin::default_grants(&spec.name, &spec.config)
                    .map_err(|e| anyhow::anyhow!("{at}{e:#}"))?
                    .subjects;
                subjects.append(&mut spec.grants.subjects);
                spec.grants.subjects = subjects;
                bytes.to_vec()
            }
        };
        self.register(spec, bytes, false)?;
        if let Some(plugin) = self.plugins.last() {
            asks::log(plugin);
            advice::log_forwarder(plugin);
        }
        Ok(())
    }

    /// Registers a plugin's bytes. Built-ins get a lower priority: where a
    /// declared plugin fits an import, built-ins are not considered.
    fn register(&mut self, spec: PluginSpec, bytes: Vec<u8>, builtin: bool) -> Result<()> {
        let at = located(&spec);
        self.links.clear();
        keel_compose::WasmKind::expect_component(&bytes)
            .map_err(|e| anyhow::anyhow!("{at}plugin `{}`: {e}", spec.name))?;
        let info =
            ComponentInfo::read(&bytes).with_context(|| format!("{at}plugin `{}`", spec.name))?;
        let metadata = PluginMetadata::read(&bytes)
            .map_err(|e| anyhow::anyhow!("{at}plugin `{}`: {e}", spec.name))?;
        if self.plugins.iter().any(|p| p.spec.name == spec.name) {
            // Replacing a built-in: rebuild the registry without it.
            self.plugins.retain(|p| p.spec.name != spec.name);
            self.shared.retain(|(name, _), _| *name != spec.name);
            self.registry = Registry::new();
            for plugin in &self.plugins {
                self.registry.add_with_priority(
                    &plugin.spec.name,
                    &plugin.bytes,
                    u8::from(!plugin.builtin),
                )?;
            }
        }
        self.registry
            .add_with_priority(&spec.name, &bytes, u8::from(!builtin))
            .with_context(|| format!("{at}plugin `{}`", spec.name))?;
        let digest = Sha256::digest(&bytes).into();
        self.plugins.push(LoadedPlugin {
            spec,
            bytes: Arc::new(bytes),
            digest,
            info,
            builtin,
            metadata,
        });
        Ok(())
    }

    /// The plugin named `name` (a built-in only once read,
    /// [`PluginSet::load_builtins`]).
    pub fn get(&self, name: &str) -> Option<&LoadedPlugin> {
        self.plugins.iter().find(|p| p.spec.name == name)
    }

    /// Every plugin, in the order added (built-ins only once read,
    /// [`PluginSet::load_builtins`]).
    pub fn iter(&self) -> impl Iterator<Item = &LoadedPlugin> {
        self.plugins.iter()
    }

    /// The shared instance of plugin `name` serving `workload`: its
    /// namespace's (the default scope), the host's one for `scope =
    /// "host"`, or the workload's own for `scope = "workload"` (created,
    /// and its component compiled or loaded from the cache, on first use).
    pub fn shared_instance(
        &mut self,
        engine: &KeelEngine,
        cache: &ComponentCache,
        name: &str,
        workload: &WorkloadId,
        broker: &crate::core_api::broker::Broker,
        resolver: &crate::outgoing::Resolver,
    ) -> Result<Arc<SharedPlugin>> {
        let loaded = self
            .get(name)
            .with_context(|| format!("no plugin `{name}`"))?;
        let key = (name.to_string(), Serves::of(loaded.spec.scope, workload));
        if let Some(live) = self.shared.get(&key) {
            return Ok(live.plugin.clone());
        }
        // Taken first, so that a host out of slots says so before compiling.
        let reserved = engine.pool().reserve_shared().with_context(|| {
            format!(
                "starting a shared instance of plugin `{name}` for {}",
                key.1.describe()
            )
        })?;
        // The chain beneath it: composed plugins composed into its
        // component, shared ones reached through forwarders in its Store.
        let mut links = Vec::new();
        self.chain(name, &mut links)?;
        let stack = self.stack(name, &links)?;
        let loaded = self
            .get(name)
            .with_context(|| format!("no plugin `{name}`"))?;
        // A shared plugin's configuration is baked in like a composed one's.
        let bytes = layers::stack_bytes(self, name, layers::baked(loaded)?, &links)?;
        let spec = loaded.spec.clone();
        let component = cache.load(engine.engine(), name, &bytes)?;
        let mut beneath = Vec::new();
        for binding in &stack.shared {
            let below =
                self.shared_instance(engine, cache, &binding.plugin, workload, broker, resolver)?;
            beneath.push((binding.clone(), below));
        }
        let plugin = Arc::new(
            SharedPlugin::layered(
                engine,
                name,
                &component,
                &spec.grants,
                broker,
                beneath,
                &stack.denied,
            )?
            .resolving_with(resolver.clone())
            .with_forwarder(spec.forwarder)
            .with_limits(spec.memory.as_usize(), spec.call_timeout)
            .serving(key.1.describe())
            .holding(reserved),
        );
        self.shared.insert(
            key,
            LiveShared {
                plugin: plugin.clone(),
            },
        );
        Ok(plugin)
    }

    /// Drops the shared instances that served only `workload` (those of
    /// plugins of scope `workload`), so that a new workload with its id
    /// starts with fresh ones. Returns how many were dropped.
    pub fn release_workload(&mut self, workload: &WorkloadId) -> usize {
        let before = self.shared.len();
        self.shared
            .retain(|(_, serves), _| !matches!(serves, Serves::Workload(id) if id == workload));
        before - self.shared.len()
    }

    /// Drops the shared instances that served the workloads of namespace
    /// `namespace` (the default scope), once none of them is left on the
    /// host. Returns how many were dropped.
    pub fn release_namespace(&mut self, namespace: &str) -> usize {
        let before = self.shared.len();
        self.shared
            .retain(|(_, serves), _| !matches!(serves, Serves::Namespace(ns) if ns == namespace));
        before - self.shared.len()
    }

    /// How many times the shared instances of plugin `name` restarted,
    /// together.
    pub fn shared_restarts(&self, name: &str) -> u64 {
        self.shared
            .iter()
            .filter(|((plugin, _), _)| plugin == name)
            .map(|(_, live)| live.plugin.restarts())
            .sum()
    }

    /// Decides how each import of `component` (whose imports and exports,
    /// read once by the caller, are `info`) is served. `picks` maps
    /// interfaces to the plugin that must serve them. A plugin a layer
    /// wraps is no candidate unless picked; the chain beneath each plugin
    /// chosen is resolved (see [`layers`]), and every declared layer's chain
    /// is checked for cycles and missing links.
    pub fn plan(
        &mut self,
        component: &[u8],
        info: &ComponentInfo,
        picks: &BTreeMap<String, String>,
    ) -> Result<LinkPlan> {
        if let Some(core) = info.imports.iter().find(|i| is_keel_core(&i.name)) {
            bail!(
                "it imports `{}`: keel:core interfaces are for plugins only; \
                 a workload reaches keel's capabilities through the standard interfaces plugins export",
                core.name
            );
        }
        // Built-ins export no interface the host serves (a test holds them
        // to it), so they change nothing for a component importing only
        // those: then they need not be read.
        if info.imports.iter().any(|i| !host_serves(&i.name)) {
            self.load_builtins()?;
        }
        let resolution = if self.plugins.is_empty() && picks.is_empty() {
            // No plugin to match: every interface import is unbound, without
            // reading the component's types a second time.
            Resolution {
                bindings: Vec::new(),
                unbound: info
                    .imports
                    .iter()
                    .filter(|i| i.interface.is_some())
                    .map(|i| Unbound {
                        import: i.name.clone(),
                        near_misses: Vec::new(),
                    })
                    .collect(),
            }
        } else {
            let covered = self.covered();
            self.registry
                .resolve_excluding(component, picks, &|p, i| {
                    covered.contains(&(p.to_string(), i.to_string()))
                })
                .map_err(advice::pick_for_workload)?
        };
        let mut plan = LinkPlan::default();
        let mut beneath = Vec::new();
        for binding in resolution.bindings {
            let mut links = Vec::new();
            self.chain(&binding.plugin, &mut links)?;
            let stack = self.stack(&binding.plugin, &links)?;
            for link in links {
                if !plan.layers.contains(&link) {
                    plan.layers.push(link);
                }
            }
            let Some(plugin) = self.get(&binding.plugin) else {
                continue;
            };
            let others = self
                .plugins
                .iter()
                .filter(|p| p.spec.name != plugin.spec.name)
                .map(|p| (p.spec.name.as_str(), &p.info));
            if let Some(refusal) = imports::refusal(&plugin.spec.name, &plugin.info, others) {
                bail!("{refusal}");
            }
            match plugin.spec.mode {
                LinkMode::Composed => {
                    if let Some(reach) = plugin
                        .info
                        .imports
                        .iter()
                        .find(|i| reaches_outside(&i.name))
                    {
                        bail!(
                            "plugin `{}` imports `{}`: {}",
                            plugin.spec.name,
                            reach.name,
                            advice::composed_reach(&reach.name)
                        );
                    }
                    for member in std::iter::once(&binding.plugin).chain(&stack.composed) {
                        let Some(member) = self.get(member) else {
                            continue;
                        };
                        let granted = SubjectGrants::parse(&member.spec.grants.subjects)
                            .map_err(anyhow::Error::msg)
                            .with_context(|| format!("plugin `{}`", member.spec.name))?;
                        plan.subjects = plan.subjects.union(&granted);
                    }
                    // What the stack still imports is the composed
                    // component's, served as its own imports are.
                    beneath.extend(
                        stack
                            .shared
                            .into_iter()
                            .map(|b| (b, binding.plugin.clone())),
                    );
                    plan.denied.extend(stack.denied);
                    plan.composed.push(binding);
                }
                LinkMode::Shared => plan.shared.push(binding),
            }
        }
        self.check_layers()?;
        for (binding, layer) in beneath {
            match plan.shared.iter().find(|b| b.import == binding.import) {
                Some(other) if other.plugin != binding.plugin => bail!(
                    "`{}` is imported by the component (served by `{}`) and by the layer `{layer}` \
                     (served by `{}`): composed into one component they import it once; \
                     serve both from one plugin",
                    binding.import,
                    other.plugin,
                    binding.plugin
                ),
                Some(_) => {}
                None => plan.shared.push(binding),
            }
        }
        for unbound in resolution.unbound {
            let types_only = info.imports.iter().any(|i| {
                i.name == unbound.import
                    && i.kind == "instance"
                    && i.functions.is_empty()
                    && i.resources.is_empty()
            });
            if host_serves(&unbound.import) {
                plan.host.push(unbound.import);
            } else if types_only {
                plan.types_only.push(unbound.import);
            } else {
                plan.denied.push(unbound);
            }
        }
        // Imports that are not interfaces (plain functions) nothing serves.
        for import in info.imports.iter().filter(|i| i.interface.is_none()) {
            plan.denied.push(Unbound {
                import: import.name.clone(),
                near_misses: Vec::new(),
            });
        }
        Ok(plan)
    }
}

/// `file:line:col: ` of a plugin's declaration, or nothing.
fn located(spec: &PluginSpec) -> String {
    spec.origin
        .as_ref()
        .map(|l| format!("{l}: "))
        .unwrap_or_default()
}

/// Whether `import` names a `keel:core` interface.
pub fn is_keel_core(import: &str) -> bool {
    InterfaceName::parse(import).is_some_and(|n| n.namespace == "keel" && n.package == "core")
}

/// The WASI P2 interfaces the native core serves itself (through
/// `wasmtime-wasi` and `wasmtime-wasi-http`).
pub fn host_serves(import: &str) -> bool {
    let Some(name) = InterfaceName::parse(import) else {
        return false;
    };
    let p2 = name
        .version
        .as_ref()
        .is_some_and(|v| v.major == 0 && v.minor == 2);
    let served = match (name.namespace.as_str(), name.package.as_str()) {
        ("wasi", "cli" | "clocks" | "filesystem" | "io" | "random" | "sockets") => true,
        ("wasi", "http") => matches!(name.interface.as_str(), "types" | "outgoing-handler"),
        _ => false,
    };
    p2 && served
}
